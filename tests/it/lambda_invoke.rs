//! `rudder-clevertap invoke` on the sample events in `events/`: what `make run` shows, and that
//! every sample is a Lambda event the real handler serves.

use crate::support::{binary, repo_root};
use serde_json::{Value, json};
use std::process::{Command, Output};

const DESTINATIONS: &str = "events/destinations.example.json";

fn invoke(args: &[&str]) -> Output {
    Command::new(binary())
        .current_dir(repo_root())
        .env_clear()
        .env("RUST_LOG", "info")
        .arg("invoke")
        .args(args)
        .output()
        .unwrap()
}

fn dry_run(event: &str) -> (Value, String) {
    let out = invoke(&["--dry-run", "--destinations", DESTINATIONS, event]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let response: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not only the JSON response ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (response, stderr)
}

#[test]
fn make_run_prints_the_batch_response_with_only_the_unconfigured_destination_to_retry() {
    let (response, stderr) = dry_run("events/sqs-batch.json");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "0c2b8f6e-1a1e-4d1c-9a55-000000000006"}]}),
        "{stderr}"
    );
    assert!(
        stderr.contains("dry-run: would send this CleverTap request"),
        "{stderr}"
    );
    assert!(
        stderr.contains("https://in1.api.clevertap.com/1/upload"),
        "{stderr}"
    );
    assert!(
        stderr.contains("https://us1.api.clevertap.com/1/upload"),
        "{stderr}"
    );
    assert!(
        stderr.contains("dry-run: would dead-letter this message"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid_json"), "{stderr}");
    assert!(stderr.contains("secret_not_found"), "{stderr}");
    assert!(stderr.contains("<redacted>"));
    for secret in [
        "FAKE-PASSCODE-A",
        "FAKE-PASSCODE-B",
        "example-webhook-token-a",
    ] {
        assert!(!stderr.contains(secret), "{secret} leaked:\n{stderr}");
    }
}

#[test]
fn the_fifo_sample_is_delivered_in_order() {
    let (response, stderr) = dry_run("events/sqs-fifo-batch.json");
    assert_eq!(response, json!({"batchItemFailures": []}), "{stderr}");
    assert_eq!(
        stderr.matches("would send this CleverTap request").count(),
        3,
        "{stderr}"
    );
}

#[test]
fn every_http_sample_is_authenticated_and_answered_200_in_its_own_shape() {
    for event in [
        "events/apigw-v2-request.json",
        "events/function-url-request.json",
        "events/apigw-v1-request.json",
    ] {
        let (response, stderr) = dry_run(event);
        assert_eq!(response["statusCode"], 200, "{event}: {response}\n{stderr}");
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["retry"], 0, "{event}");
        assert!(body["delivered"].as_u64().unwrap() >= 1, "{event}: {body}");
        assert_eq!(
            response.get("cookies").is_some(),
            event != "events/apigw-v1-request.json",
            "{event}: response shape"
        );
    }
}

#[test]
fn an_unknown_event_file_exits_1_with_a_lambda_error_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s3.json");
    std::fs::write(&path, r#"{"Records":[{"eventSource":"aws:s3"}]}"#).unwrap();
    let out = invoke(&[
        "--dry-run",
        "--destinations",
        DESTINATIONS,
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["errorType"], "unknown_event");
}

#[test]
fn an_unreadable_event_or_destinations_file_is_a_usage_error() {
    let out = invoke(&[
        "--dry-run",
        "--destinations",
        DESTINATIONS,
        "events/nope.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("events/nope.json"));
    let out = invoke(&[
        "--dry-run",
        "--destinations",
        "nope.json",
        "events/sqs-batch.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
