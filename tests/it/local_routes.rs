//! The local routes of the README's "Try it locally": offline mode of the real runtime loop
//! (what `sam local invoke --env-vars events/env.local.json` and `make invoke-local` run) gives
//! the answer `make run` gives, is refused next to a queue on AWS, and `--version` works.
//! scripts/test-sam-local.sh runs the same through SAM and Docker.

use crate::support::runtime_api::{LambdaProcess, RuntimeApi};
use crate::support::{binary, repo_root};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).expect(path);
    serde_json::from_str(&text).expect(path)
}

/// `invoke --dry-run` on a sample: the answer `make run` prints.
fn dry_run_answer(event: &str) -> Value {
    let out = Command::new(binary())
        .current_dir(repo_root())
        .env_clear()
        .args(["invoke", "--dry-run", "--destinations"])
        .args(["events/destinations.example.json", event])
        .output()
        .expect("invoke runs");
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).expect("JSON answer")
}

/// One function's variables from events/env.local.json.
fn local_env(function: &str) -> Vec<(String, String)> {
    let env = read_json("events/env.local.json");
    let vars = env[function].as_object().expect("a function's variables");
    vars.iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string values").to_owned()))
        .collect()
}

async fn runtime_answer(env: &[(String, String)], event: &str) -> (Value, String) {
    let api = RuntimeApi::start().await;
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let process = LambdaProcess::start(&api, &env);
    let payload = std::fs::read(repo_root().join(event)).expect(event);
    let answer = api.invoke(payload, TIMEOUT).await.response();
    (answer, process.logs())
}

#[test]
fn env_local_json_holds_the_example_destinations_and_blanks_every_queue() {
    let example = read_json("events/destinations.example.json");
    for function in ["QueueFunction", "WebhookFunction"] {
        let env: std::collections::HashMap<_, _> = local_env(function).into_iter().collect();
        let local: Value = serde_json::from_str(&env["LOCAL_DESTINATIONS"]).expect("JSON");
        assert_eq!(
            local, example,
            "{function}: a copy of destinations.example.json"
        );
        assert_eq!(env["DRY_RUN"], "true", "{function}");
        assert_eq!(env["DEAD_LETTER_QUEUE_URL"], "", "{function}");
    }
    let webhook: std::collections::HashMap<_, _> =
        local_env("WebhookFunction").into_iter().collect();
    assert_eq!(webhook["WEBHOOK_MODE"], "sync");
    assert_eq!(webhook["EVENTS_QUEUE_URL"], "");
}

#[tokio::test]
async fn the_runtime_loop_offline_answers_the_sample_batch_as_make_run_does() {
    let (answer, logs) = runtime_answer(&local_env("QueueFunction"), "events/sqs-batch.json").await;
    assert_eq!(answer, dry_run_answer("events/sqs-batch.json"), "{logs}");
    assert!(logs.contains("offline_mode"), "{logs}");
    assert!(
        logs.contains("dry-run: would send this CleverTap request"),
        "{logs}"
    );
    assert!(
        logs.contains("dry-run: would dead-letter this message"),
        "{logs}"
    );
    assert!(
        !logs.contains("FAKE-PASSCODE"),
        "a passcode reached the logs: {logs}"
    );
}

#[tokio::test]
async fn the_webhook_offline_answers_the_function_url_sample_as_invoke_does() {
    let event = "events/function-url-request.json";
    let (answer, logs) = runtime_answer(&local_env("WebhookFunction"), event).await;
    assert_eq!(answer, dry_run_answer(event), "{logs}");
    assert_eq!(answer["statusCode"], 200, "{logs}");
}

#[tokio::test]
async fn settings_can_come_from_a_file_as_make_invoke_local_passes_them() {
    let file = repo_root().join("events/destinations.example.json");
    let env = vec![
        (
            "LOCAL_DESTINATIONS_FILE".to_owned(),
            file.display().to_string(),
        ),
        ("DRY_RUN".to_owned(), "true".to_owned()),
    ];
    let (answer, logs) = runtime_answer(&env, "events/sqs-batch.json").await;
    assert_eq!(answer, dry_run_answer("events/sqs-batch.json"), "{logs}");
}

#[test]
fn offline_mode_next_to_a_dead_letter_queue_on_aws_is_refused_at_start_up() {
    let output = Command::new(binary())
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("DRY_RUN", "true")
        .env(
            "DEAD_LETTER_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/rudder-clevertap-dlq",
        )
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid DRY_RUN"), "{stderr}");
    assert!(stderr.contains("DEAD_LETTER_QUEUE_URL"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn broken_local_settings_stop_start_up_naming_the_variable_but_no_value() {
    let output = Command::new(binary())
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_LAMBDA_FUNCTION_NAME", "f")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env(
            "LOCAL_DESTINATIONS",
            r#"{"d":{"accountId":"A","passcode":"pc-hidden-3","region":"moon"}}"#,
        )
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stderr.contains("invalid LOCAL_DESTINATIONS"), "{stderr}");
    assert!(
        !stderr.contains("pc-hidden-3") && !stdout.contains("pc-hidden-3"),
        "{stderr}{stdout}"
    );
}

#[test]
fn version_prints_the_package_version() {
    let output = Command::new(binary())
        .arg("--version")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("rudder-clevertap {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn invoke_honours_the_offline_variables_as_the_runtime_loop_does() {
    let json = std::fs::read_to_string(repo_root().join("events/destinations.example.json"))
        .expect("the example settings");
    let out = Command::new(binary())
        .current_dir(repo_root())
        .env_clear()
        .env("LOCAL_DESTINATIONS", json)
        .env("DRY_RUN", "true")
        .args(["invoke", "events/sqs-batch.json"])
        .output()
        .expect("invoke runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON answer");
    assert_eq!(answer, dry_run_answer("events/sqs-batch.json"), "{stderr}");
    assert!(stderr.contains("dry-run: would send"), "{stderr}");
}
