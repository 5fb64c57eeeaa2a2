//! The real binary under the Lambda Runtime API: start-up, and surviving every input.

use crate::support::runtime_api::{LambdaProcess, RuntimeApi};
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_process_survives_garbage_and_unknown_events_and_answers_the_next_invocation() {
    let api = RuntimeApi::start().await;
    let process = LambdaProcess::start(&api, &[]);

    let garbage = api.invoke("this is not json {", TIMEOUT).await.error();
    assert!(garbage["errorMessage"].is_string(), "{garbage}");

    for unknown in [
        json!({"hello": "world"}),
        json!([1, 2, 3]),
        json!(null),
        json!({"Records": [{"eventSource": "aws:s3"}]}),
        json!({"version": "2.0", "requestContext": {}}),
    ] {
        let error = api.invoke(unknown.to_string(), TIMEOUT).await.error();
        assert_eq!(error["errorType"], "unknown_event", "{unknown}: {error}");
    }

    // Still alive: a batch whose message names no destination is answered with its id.
    let batch = json!({"Records": [{"messageId": "m-1", "body": "{}", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "messageAttributes": {}, "attributes": {}}]});
    let response = api.invoke(batch.to_string(), TIMEOUT).await.response();
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]}),
        "{}",
        process.logs()
    );
    assert!(
        process.logs().contains("no_destination"),
        "{}",
        process.logs()
    );
}

#[tokio::test]
async fn an_http_request_of_an_unknown_destination_gets_its_own_response_shape() {
    let api = RuntimeApi::start().await;
    let _process = LambdaProcess::start(&api, &[]);
    let request = json!({"version": "2.0", "rawPath": "/", "headers": {},
        "requestContext": {"http": {"method": "GET", "path": "/"}, "domainName": "x.lambda-url.us-east-1.on.aws",
                           "requestId": "r-1", "timeEpoch": 0},
        "isBase64Encoded": false});
    let response = api.invoke(request.to_string(), TIMEOUT).await.response();
    assert_eq!(response["statusCode"], 405);
    assert_eq!(response["headers"]["allow"], "POST");
}

#[test]
fn a_bad_configuration_value_stops_start_up_with_a_message_naming_the_variable() {
    let output = std::process::Command::new(crate::support::binary())
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("MAX_CONCURRENT_REQUESTS", "99")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid MAX_CONCURRENT_REQUESTS"),
        "{stderr}"
    );
}

#[test]
fn a_missing_lambda_variable_stops_start_up_with_its_name_rather_than_a_panic() {
    let output = std::process::Command::new(crate::support::binary())
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid AWS_LAMBDA_FUNCTION_NAME"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn without_arguments_outside_lambda_the_binary_explains_itself() {
    let output = std::process::Command::new(crate::support::binary())
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AWS_LAMBDA_RUNTIME_API"), "{stderr}");
}

#[tokio::test]
async fn an_invocation_is_answered_well_before_a_short_deadline() {
    let api = RuntimeApi::start().await;
    let mut process = LambdaProcess::start(&api, &[]);
    let started = std::time::Instant::now();
    let batch = json!({"Records": [{"messageId": "m-1", "body": "{}", "eventSource": "aws:sqs"}]});
    api.invoke(batch.to_string(), Duration::from_secs(4))
        .await
        .response();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(process.is_running());
}
