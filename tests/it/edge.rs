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
    // A padded type: RudderStack drops unknown types (filtered), but rejects this one.
    let unsupported = r#"{"type":" track ","userId":"u-3","messageId":"e-3"}"#;
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

/// A server that accepts connections, reads what comes, and never answers: a Secrets Manager
/// that hangs. It keeps every byte received, per connection.
struct Silent {
    url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl Silent {
    async fn start() -> Silent {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = received.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let kept = kept.clone();
                let n = {
                    let mut all = kept.lock().unwrap();
                    all.push(Vec::new());
                    all.len() - 1
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(read) = stream.read(&mut buf).await {
                        if read == 0 {
                            break;
                        }
                        kept.lock().unwrap()[n].extend_from_slice(&buf[..read]);
                    }
                });
            }
        });
        Silent { url, received }
    }

    /// HTTP attempts that asked for `needle` (a secret id).
    fn attempts_for(&self, needle: &str) -> usize {
        let all = self.received.lock().unwrap();
        all.iter()
            .map(|c| String::from_utf8_lossy(c).matches(needle).count())
            .sum()
    }
}

#[tokio::test]
async fn a_secrets_manager_that_never_answers_costs_one_operation_per_destination_within_5_s() {
    let silent = Silent::start().await;
    let clevertap = MockCleverTap::start();
    let s = Stack::start(&[
        ("CLEVERTAP_ENDPOINT", clevertap.url().to_owned()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", silent.url.clone()),
    ])
    .await;
    let max_attempts = rudder_clevertap::credentials::SECRETS_MAX_ATTEMPTS as usize;

    // The webhook: one lookup, one operation, answered 503 within the operation's bound.
    let request = crate::support::lambda_events::webhook_request(
        "dest-a",
        Some(&format!("Bearer {TOKEN}")),
        TRACK,
    );
    let started = std::time::Instant::now();
    let response = s.invoke(&request).await;
    let took = started.elapsed();
    assert_eq!(response["statusCode"], 503, "{response}");
    assert!(
        response["body"]
            .as_str()
            .unwrap_or("")
            .contains("secrets_unavailable"),
        "{response}"
    );
    assert!(took < Duration::from_millis(6500), "{took:?}");
    let attempts = silent.attempts_for("rudder-clevertap/dest-a");
    assert!(
        (1..=max_attempts).contains(&attempts),
        "{attempts} attempts"
    );

    // An SQS batch naming two destinations: one operation each, side by side.
    let started = std::time::Instant::now();
    let response = s
        .invoke(&json!({"Records": [
            sqs_message("m-1", TRACK, "dest-b"),
            sqs_message("m-2", TRACK, "dest-c"),
            sqs_message("m-3", TRACK, "dest-b"),
        ]}))
        .await;
    let took = started.elapsed();
    assert_eq!(batch_item_failures(&response), ["m-1", "m-2", "m-3"]);
    assert!(took < Duration::from_millis(6500), "{took:?}");
    for d in ["dest-b", "dest-c"] {
        let attempts = silent.attempts_for(&format!("rudder-clevertap/{d}"));
        assert!((1..=max_attempts).contains(&attempts), "{d}: {attempts}");
    }
    assert!(clevertap.requests().is_empty());
}

/// The webhook's whole response (status, headers, body) to `token` for `destination`.
async fn post(s: &Stack, destination: &str, token: &str) -> Value {
    let request = crate::support::lambda_events::webhook_request(
        destination,
        Some(&format!("Bearer {token}")),
        TRACK,
    );
    s.invoke(&request).await
}

/// The EMF documents the process wrote so far.
fn metric_documents(s: &Stack) -> Vec<Value> {
    s.process
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.get("_aws").is_some())
        .collect()
}

#[tokio::test]
async fn random_ids_with_a_bogus_token_look_like_a_wrong_token_evict_nothing_and_mint_no_metric() {
    let clevertap = MockCleverTap::start();
    let s = Stack::start(&[
        ("CLEVERTAP_ENDPOINT", clevertap.url().to_owned()),
        ("SETTINGS_CACHE_SIZE", "3".to_owned()),
    ])
    .await;
    s.moto
        .create_secrets(&[("dest-bad", json!("not a settings object"))])
        .await;
    let first = post(&s, "dest-a", TOKEN).await;
    assert_eq!(first["statusCode"], 200, "{first}");

    // The answer to a wrong token for a destination that exists...
    let wrong = post(&s, "dest-a", "guess").await;
    assert_eq!(wrong["statusCode"], 401, "{wrong}");
    // ...is the answer for an unusable secret and for ids without any secret, to the byte.
    let started = std::time::Instant::now();
    let bad = post(&s, "dest-bad", "guess").await;
    assert_eq!(bad, wrong);
    let burst = rudder_clevertap::credentials::UNKNOWN_LOOKUP_BURST as usize;
    for n in 0..burst - 2 {
        let random = post(&s, &format!("attacker-{n}"), "guess").await;
        assert_eq!(random, wrong, "attacker-{n}");
    }
    // Past the container's budget, ids it holds nothing for are 503 (retry), not looked up.
    let mut unavailable = 0;
    for n in 100..120 {
        let answer = post(&s, &format!("attacker-{n}"), "guess").await;
        if answer["statusCode"] == 503 {
            assert!(
                answer["body"]
                    .as_str()
                    .unwrap_or("")
                    .contains("secrets_unavailable"),
                "{answer}"
            );
            unavailable += 1;
        } else {
            assert_eq!(answer, wrong, "attacker-{n}");
        }
    }
    // At most the bucket's leftover call and one per 2 s since it started being drawn on.
    let refilled = 1 + (started.elapsed().as_secs_f64() / 2.0).ceil() as usize;
    assert!(
        unavailable + refilled >= 20,
        "{unavailable} of 20 past the budget"
    );

    // dest-a is still cached: served without a GetSecretValue.
    let again = post(&s, "dest-a", TOKEN).await;
    assert_eq!(again["statusCode"], 200, "{again}\n{}", s.process.logs());
    assert_eq!(clevertap.requests_for("ACC-A").len(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let docs = metric_documents(&s);
    let last_a = docs
        .iter()
        .rfind(|d| d["destination"] == "dest-a")
        .expect("a document for dest-a");
    assert_eq!(last_a["SecretsCacheMiss"], 0, "{last_a}");
    assert_eq!(last_a["EventsDelivered"], 1, "{last_a}");
    for doc in &docs {
        let destination = doc["destination"].as_str().unwrap_or("");
        assert!(
            !destination.starts_with("attacker-") && destination != "dest-bad",
            "a metric dimension for an unauthenticated id: {doc}"
        );
    }
}
