//! The public edge (docs/contracts.md §2, §4, §5, "What an unauthenticated caller can learn or
//! cause"): the passcode goes to the CleverTap host and nowhere else, and a caller without a
//! token can neither switch off a destination's stale settings, nor evict them, nor mint metrics,
//! nor tell which destination ids exist. The real binary under a Runtime API, moto for Secrets
//! Manager and SQS, local HTTP stand-ins for CleverTap.

use crate::support::lambda_events::{batch_item_failures, sqs_message};
use crate::support::mock_clevertap::{MockCleverTap, Reply};
use crate::support::moto::MotoServer;
use crate::support::runtime_api::{LambdaProcess, RuntimeApi};
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);
const PASSCODE: &str = "pc-edge-secret-4242";
const TOKEN: &str = "webhook-token-edge-7777";
const TRACK: &str = r#"{"type":"track","event":"Viewed","userId":"u-1","messageId":"e-1"}"#;

/// moto holding dest-a's secret, and the binary under a Runtime API with `env` added.
struct Stack {
    moto: MotoServer,
    api: RuntimeApi,
    process: LambdaProcess,
}

impl Stack {
    async fn start(env: &[(&'static str, String)]) -> Stack {
        let moto = MotoServer::start();
        moto.create_secrets(&[(
            "dest-a",
            json!({"accountId": "ACC-A", "passcode": PASSCODE, "webhookToken": TOKEN}),
        )])
        .await;
        let api = RuntimeApi::start().await;
        let mut all = moto.env();
        all.push(("RETRY_BUDGET_SECONDS", "1".into()));
        all.extend(env.iter().cloned());
        let process = LambdaProcess::start(&api, &all);
        Stack { moto, api, process }
    }

    async fn invoke(&self, payload: &Value) -> Value {
        self.api
            .invoke(payload.to_string(), TIMEOUT)
            .await
            .response()
    }
}

#[tokio::test]
async fn a_307_from_clevertap_reaches_no_other_host_and_ends_retry() {
    let elsewhere = MockCleverTap::start();
    let clevertap = MockCleverTap::start();
    let target = format!("{}/1/upload", elsewhere.url());
    clevertap.respond_with(move |_| Reply::redirect(307, &target));
    let s = Stack::start(&[("CLEVERTAP_ENDPOINT", clevertap.url().to_owned())]).await;

    let response = s
        .invoke(&json!({"Records": [sqs_message("m-1", TRACK, "dest-a")]}))
        .await;
    assert_eq!(
        batch_item_failures(&response),
        ["m-1"],
        "{response}\n{}",
        s.process.logs()
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the passcode followed the redirect: {:?}",
        elsewhere.requests()
    );
    assert_eq!(clevertap.requests().len(), 1, "a 3xx is not resent");
    let logs = s.process.logs();
    assert!(logs.contains("clevertap_unexpected_status"), "{logs}");
    assert!(!logs.contains(PASSCODE), "{logs}");
    drop(s.moto);
}

#[tokio::test]
async fn the_aws_clients_follow_no_redirect_either() {
    // Secrets Manager, then SQS (dead letters), behind a server that redirects every request
    // to another host: the SDK signs for its configured endpoint and follows no redirect.
    let elsewhere = MockCleverTap::start();
    let redirecting = MockCleverTap::start();
    let target = format!("{}/", elsewhere.url());
    redirecting.respond_with(move |_| Reply::redirect(307, &target));
    let clevertap = MockCleverTap::start();
    let s = Stack::start(&[
        ("CLEVERTAP_ENDPOINT", clevertap.url().to_owned()),
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            redirecting.url().to_owned(),
        ),
    ])
    .await;
    let response = s
        .invoke(&json!({"Records": [sqs_message("m-1", TRACK, "dest-a")]}))
        .await;
    assert_eq!(batch_item_failures(&response), ["m-1"], "{response}");
    assert!(
        !redirecting.requests().is_empty(),
        "Secrets Manager was asked"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
    assert!(clevertap.requests().is_empty());
    let logs = s.process.logs();
    assert!(logs.contains("secrets_unavailable"), "{logs}");

    // A rejected event's dead letter, to an SQS endpoint that redirects.
    let dlq = format!("{}/123456789012/dlq", redirecting.url());
    let s = Stack::start(&[
        ("CLEVERTAP_ENDPOINT", clevertap.url().to_owned()),
        ("AWS_ENDPOINT_URL_SQS", redirecting.url().to_owned()),
        ("DEAD_LETTER_QUEUE_URL", dlq),
    ])
    .await;
    let before = redirecting.requests().len();
    let unsupported = r#"{"type":"purchase","userId":"u-3","messageId":"e-3"}"#;
    let response = s
        .invoke(&json!({"Records": [sqs_message("m-2", unsupported, "dest-a")]}))
        .await;
    assert_eq!(batch_item_failures(&response), ["m-2"], "{response}");
    assert!(redirecting.requests().len() > before, "SQS was asked");
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
    let logs = s.process.logs();
    assert!(logs.contains("dead_letter_failed"), "{logs}");
}
