//! The webhook through the real binary (docs/contracts.md §2-§4): queue mode end to end (webhook
//! function -> events queue -> queue function -> CleverTap, in batched uploads), SQS refusing
//! some entries, the origin rule on a redriven dead letter, token rotation, and Secrets Manager
//! trouble answered 503. moto is Secrets Manager and SQS, CleverTap is the mock, and each
//! function is its own process under its own Runtime API, as in a deployment.

use crate::support::lambda_events::{batch_item_failures, message_attribute, webhook_request};
use crate::support::mock_clevertap::MockCleverTap;
use crate::support::moto::MotoServer;
use crate::support::runtime_api::{LambdaProcess, RuntimeApi};
use crate::support::sqs_proxy::SqsProxy;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);
const PASSCODE_A: &str = "pc-secret-a-1234";
const PASSCODE_B: &str = "pc-secret-b-5678";
const TOKEN_A: &str = "webhook-token-a-9999";
const TOKEN_B: &str = "webhook-token-b-8888";
/// moto's account id, in the queues' ARNs.
const ACCOUNT: &str = "123456789012";

/// An event the transform rejects: a type neither CleverTap nor RudderStack knows.
const UNSUPPORTED: &str = r#"{"type":" track ","userId":"u-3","messageId":"e-3","groupId":"g-1"}"#;

fn track(n: usize) -> String {
    format!(
        r#"{{"type":"track","event":"Viewed","userId":"u-{n}","messageId":"e-{n}","properties":{{"n":{n}}}}}"#
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// One function: its Runtime API and its process.
struct Function {
    api: RuntimeApi,
    process: LambdaProcess,
}

impl Function {
    fn start_with(api: RuntimeApi, env: &[(&str, String)]) -> Function {
        let process = LambdaProcess::start(&api, env);
        Function { api, process }
    }

    async fn invoke(&self, payload: &Value) -> Value {
        self.api
            .invoke(payload.to_string(), TIMEOUT)
            .await
            .response()
    }

    /// A webhook request's status and parsed body.
    async fn post(&self, destination: &str, token: &str, body: &str) -> (u64, Value, Value) {
        let response = self
            .invoke(&webhook_request(destination, Some(&bearer(token)), body))
            .await;
        let status = response["statusCode"].as_u64().unwrap_or(0);
        let body = response["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, body, response)
    }
}

/// moto with dest-a's and dest-b's secrets, the events queue and the dead-letter queue, and the
/// CleverTap mock.
struct Stack {
    moto: MotoServer,
    sqs: aws_sdk_sqs::Client,
    clevertap: MockCleverTap,
    events_url: String,
    dlq_url: String,
}

impl Stack {
    async fn start() -> Stack {
        let moto = MotoServer::start();
        moto.create_secrets(&[
            (
                "dest-a",
                json!({"accountId": "ACC-A", "passcode": PASSCODE_A, "webhookToken": TOKEN_A}),
            ),
            (
                "dest-b",
                json!({"accountId": "ACC-B", "passcode": PASSCODE_B, "webhookToken": TOKEN_B}),
            ),
        ])
        .await;
        let events_url = moto.create_queue("events").await;
        let dlq_url = moto.create_queue("dlq").await;
        let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
        Stack {
            moto,
            sqs,
            clevertap: MockCleverTap::start(),
            events_url,
            dlq_url,
        }
    }

    /// The environment both functions share.
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.moto.env();
        env.push(("CLEVERTAP_ENDPOINT", self.clevertap.url().to_owned()));
        env.push(("DEAD_LETTER_QUEUE_URL", self.dlq_url.clone()));
        env.push(("RETRY_BUDGET_SECONDS", "1".into()));
        env
    }

    /// The webhook function in queue mode, with `extra` variables.
    async fn webhook(&self, extra: &[(&'static str, String)]) -> Function {
        let mut env = self.env();
        env.push(("WEBHOOK_MODE", "queue".into()));
        env.push(("EVENTS_QUEUE_URL", self.events_url.clone()));
        env.extend(extra.iter().cloned());
        Function::start_with(RuntimeApi::start().await, &env)
    }

    /// The queue function (the SQS event source's).
    async fn queue_function(&self) -> Function {
        Function::start_with(RuntimeApi::start().await, &self.env())
    }

    /// Takes every message off a queue (waiting up to 2 s for `expected`), deleting them.
    async fn drain(&self, queue_url: &str, expected: usize) -> Vec<aws_sdk_sqs::types::Message> {
        let mut got = Vec::new();
        let started = Instant::now();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive from moto");
            for m in out.messages() {
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or(""))
                    .send()
                    .await
                    .expect("delete on moto");
                got.push(m.clone());
            }
            if (got.len() >= expected && out.messages().is_empty())
                || started.elapsed() > Duration::from_secs(2)
            {
                return got;
            }
            if out.messages().is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// What `aws sqs start-message-move-task` does: every dead letter moved back to the events
    /// queue, body and attributes as they are.
    async fn redrive(&self, expected: usize) -> usize {
        let letters = self.drain(&self.dlq_url, expected).await;
        for letter in &letters {
            let mut send = self
                .sqs
                .send_message()
                .queue_url(&self.events_url)
                .message_body(letter.body().unwrap_or(""));
            for (name, value) in letter.message_attributes().into_iter().flatten() {
                send = send.message_attributes(name, value.clone());
            }
            send.send().await.expect("send on moto");
        }
        letters.len()
    }

    /// Sends a message to the events queue as a producer would.
    async fn produce(&self, body: &str, destination: Option<&str>) {
        let mut send = self
            .sqs
            .send_message()
            .queue_url(&self.events_url)
            .message_body(body);
        if let Some(d) = destination {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(d)
                .build()
                .unwrap();
            send = send.message_attributes("destinationId", attribute);
        }
        send.send().await.expect("send on moto");
    }
}

/// The Lambda SQS event for messages received from the events queue.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        message_attribute(v.string_value().unwrap_or_default(), v.data_type()),
                    )
                })
                .collect();
            json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                "body": m.body(), "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": attributes, "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:{ACCOUNT}:events"),
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn attribute(m: &aws_sdk_sqs::types::Message, name: &str) -> Option<String> {
    m.message_attributes()?
        .get(name)?
        .string_value()
        .map(str::to_owned)
}

fn assert_no_secret_in(logs: &str) {
    for secret in [PASSCODE_A, PASSCODE_B, TOKEN_A, TOKEN_B] {
        assert!(
            !logs.contains(secret),
            "a secret leaked into the logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn queue_mode_answers_202_at_once_and_the_queue_function_delivers_in_one_batched_upload() {
    let s = Stack::start().await;
    let webhook = s.webhook(&[]).await;
    let queue = s.queue_function().await;

    for n in 0..12 {
        let (status, body, _) = webhook.post("dest-a", TOKEN_A, &track(n)).await;
        assert_eq!(status, 202, "{body}\n{}", webhook.process.logs());
        assert_eq!(
            body["results"],
            json!([{"index": 0, "messageId": format!("e-{n}"), "status": "queued"}])
        );
    }
    // A bad event is rejected at once, dead-lettered, and never queued.
    let (status, body, _) = webhook.post("dest-a", TOKEN_A, UNSUPPORTED).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["results"][0]["code"], "unsupported_type");
    assert!(
        s.clevertap.requests().is_empty(),
        "the webhook never calls CleverTap in queue mode"
    );

    let queued = s.drain(&s.events_url, 12).await;
    assert_eq!(queued.len(), 12);
    for m in &queued {
        assert_eq!(attribute(m, "destinationId").as_deref(), Some("dest-a"));
        assert_eq!(attribute(m, "sourceRequestId").as_deref(), Some("req-1"));
    }
    let letters = s.drain(&s.dlq_url, 1).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].body(), Some(UNSUPPORTED));
    assert_eq!(
        attribute(&letters[0], "destinationId").as_deref(),
        Some("dest-a")
    );

    // The queue function gets them as one SQS batch and uploads them together.
    let response = queue.invoke(&sqs_event(&queued)).await;
    assert!(
        batch_item_failures(&response).is_empty(),
        "{response}\n{}",
        queue.process.logs()
    );
    let uploads = s.clevertap.requests_for("ACC-A");
    assert_eq!(uploads.len(), 1, "one upload for 12 webhook requests");
    assert_eq!(uploads[0].records().len(), 12);
    assert_eq!(uploads[0].passcode, PASSCODE_A);
    assert_no_secret_in(&webhook.process.logs());
    assert_no_secret_in(&queue.process.logs());
}

#[tokio::test]
async fn events_sqs_refuses_are_answered_for_a_retry_and_the_others_are_queued() {
    let s = Stack::start().await;
    let proxy = SqsProxy::start(&s.moto.endpoint, "refuse-me").await;
    let webhook = s
        .webhook(&[("AWS_ENDPOINT_URL_SQS", proxy.endpoint.clone())])
        .await;
    let refused = r#"{"type":"track","event":"refuse-me","userId":"u-9","messageId":"e-9"}"#;
    let body = format!("[{},{refused},{}]", track(1), track(2));
    let (status, answer, response) = webhook.post("dest-a", TOKEN_A, &body).await;
    assert_eq!(status, 503, "{answer}\n{}", webhook.process.logs());
    assert_eq!(response["headers"]["retry-after"], "10");
    let statuses: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["queued", "retry", "queued"]);
    assert_eq!(answer["results"][1]["code"], "enqueue_failed");
    assert_eq!(proxy.refused(), 1);
    let queued = s.drain(&s.events_url, 2).await;
    let mut bodies: Vec<&str> = queued.iter().filter_map(|m| m.body()).collect();
    bodies.sort();
    let mut expected = [track(1), track(2)];
    expected.sort();
    assert_eq!(
        bodies,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(
        s.drain(&s.dlq_url, 0).await.is_empty(),
        "a retry is never dead-lettered"
    );
}

#[tokio::test]
async fn a_redriven_dead_letter_of_destination_a_never_deletes_a_user_in_destination_b() {
    let s = Stack::start().await;
    let webhook = s.webhook(&[]).await;
    let queue = s.queue_function().await;
    let regulation_for_b = json!({"regulationType": "suppress_with_delete",
        "destinationIds": ["dest-b"], "users": [{"userId": "victim-1"}]})
    .to_string();

    // A holder of dest-a's token hides a regulation naming dest-b in an array.
    let (status, answer, _) = webhook
        .post("dest-a", TOKEN_A, &format!("[{regulation_for_b}]"))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["results"][0]["code"], "regulation_in_batch");
    // Its dead letter carries dest-a, the authenticated destination.
    assert_eq!(
        s.redrive(1).await,
        1,
        "an operator redrives the dead-letter queue"
    );

    let redriven = s.drain(&s.events_url, 1).await;
    assert_eq!(redriven.len(), 1);
    assert_eq!(redriven[0].body(), Some(regulation_for_b.as_str()));
    assert_eq!(
        attribute(&redriven[0], "destinationId").as_deref(),
        Some("dest-a")
    );
    let response = queue.invoke(&sqs_event(&redriven)).await;
    assert!(batch_item_failures(&response).is_empty(), "{response}");
    assert!(
        s.clevertap.requests().is_empty(),
        "nothing deleted, in dest-b or anywhere: {:?}",
        s.clevertap.requests()
    );
    // Refused again, back in the dead-letter queue with the reason.
    let letters = s.drain(&s.dlq_url, 1).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        attribute(&letters[0], "rejectionCode").as_deref(),
        Some("destination_not_allowed")
    );
    assert_eq!(
        attribute(&letters[0], "destinationId").as_deref(),
        Some("dest-a")
    );

    // The same regulation from a trusted producer (no destinationId attribute) does delete in
    // dest-b: the setup could have deleted, the origin rule is what stopped it.
    s.produce(&regulation_for_b, None).await;
    let trusted = s.drain(&s.events_url, 1).await;
    let response = queue.invoke(&sqs_event(&trusted)).await;
    assert!(batch_item_failures(&response).is_empty(), "{response}");
    let deletes = s.clevertap.requests_for("ACC-B");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].identities(), ["victim-1"]);
}

#[tokio::test]
async fn during_a_rotation_old_and_new_tokens_work_a_third_does_not_and_a_new_secret_is_seen_at_once()
 {
    let s = Stack::start().await;
    s.moto
        .create_secrets(&[(
            "dest-r",
            json!({"accountId": "ACC-R", "passcode": "pc-r", "webhookToken": "tok-new",
                   "previousWebhookToken": "tok-old"}),
        )])
        .await;
    let webhook = s
        .webhook(&[("WEBHOOK_TOKEN_REFRESH_SECONDS", "1".to_owned())])
        .await;
    assert_eq!(webhook.post("dest-r", "tok-new", &track(1)).await.0, 202);
    assert_eq!(webhook.post("dest-r", "tok-old", &track(2)).await.0, 202);
    // A third token: the secret is read again, and the token is still wrong.
    let (status, body, _) = webhook.post("dest-r", "tok-third", &track(3)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    // Within the refresh period the secret is not read again: "retry later", never a 401
    // that would make RudderStack drop events carrying a newer token.
    let (status, body, _) = webhook.post("dest-r", "tok-third", &track(3)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "webhook_token_unverified");

    // The next rotation: the container still caches the old secret (TTL 300 s), yet the new
    // token works as soon as the period allows one more read.
    let secrets = aws_sdk_secretsmanager::Client::new(&s.moto.sdk_config().await);
    secrets
        .put_secret_value()
        .secret_id("rudder-clevertap/dest-r")
        .secret_string(
            json!({"accountId": "ACC-R", "passcode": "pc-r", "webhookToken": ["tok-newer", "tok-new"]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(webhook.post("dest-r", "tok-newer", &track(4)).await.0, 202);
    assert_eq!(webhook.post("dest-r", "tok-new", &track(5)).await.0, 202);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(webhook.post("dest-r", "tok-old", &track(6)).await.0, 401);
    assert_eq!(s.drain(&s.events_url, 4).await.len(), 4);
    let logs = webhook.process.logs();
    for token in ["tok-new", "tok-old", "tok-newer", "tok-third"] {
        assert!(!logs.contains(token), "{token} in the logs:\n{logs}");
    }
}

#[tokio::test]
async fn secrets_manager_down_is_503_and_a_malformed_secret_or_a_wrong_token_401() {
    let s = Stack::start().await;
    s.moto
        .create_secrets(&[("dest-bad", json!("not a settings object"))])
        .await;
    let webhook = s.webhook(&[]).await;
    // Before authentication a malformed secret answers as a wrong token does (issue 20); the
    // operator finds the code in the log.
    let (status, malformed, _) = webhook.post("dest-bad", TOKEN_A, &track(1)).await;
    assert_eq!(status, 401, "{malformed}");
    let (status, body, _) = webhook.post("dest-a", "wrong", &track(1)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body, malformed);
    assert!(webhook.process.logs().contains("secret_malformed"));

    let down = s
        .webhook(&[(
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            "http://127.0.0.1:1".to_owned(),
        )])
        .await;
    let (status, body, response) = down.post("dest-a", TOKEN_A, &track(1)).await;
    assert_eq!(status, 503, "{body}\n{}", down.process.logs());
    assert_eq!(body["error"]["code"], "secrets_unavailable");
    assert_eq!(response["headers"]["retry-after"], "10");
    assert!(s.drain(&s.events_url, 0).await.is_empty());
    assert!(s.clevertap.requests().is_empty());
}

#[tokio::test]
async fn the_settings_cache_is_bounded_and_an_unknown_destination_costs_one_read_per_period() {
    use rudder_clevertap::credentials::{SecretsManagerSource, secrets_client};
    use rudder_clevertap::ports::SettingsSource;
    use rudder_clevertap::settings::DestinationId;

    let s = Stack::start().await;
    s.moto
        .create_secrets(&[(
            "dest-c",
            json!({"accountId": "ACC-C", "passcode": "pc-c", "webhookToken": "t"}),
        )])
        .await;
    let sdk = s.moto.sdk_config().await;
    let source = SecretsManagerSource::new(
        secrets_client(&sdk),
        "rudder-clevertap/".into(),
        Duration::from_secs(300),
    )
    .with_capacity(2);
    let id = |d: &str| DestinationId::parse(d).unwrap();
    let reads = |source: &SecretsManagerSource| -> u64 {
        source.take_cache_misses().iter().map(|m| m.count).sum()
    };

    // An unknown destination: one read, then the negative entry answers.
    for _ in 0..5 {
        let e = source.settings(&id("dest-unknown")).await.unwrap_err();
        assert_eq!(e.code(), "secret_not_found");
    }
    assert_eq!(reads(&source), 1);

    // Three destinations through a cache of two: the least recently used one goes.
    for d in ["dest-a", "dest-b", "dest-a", "dest-c"] {
        source.settings(&id(d)).await.unwrap();
        assert!(source.cached_destinations() <= 2);
    }
    assert_eq!(reads(&source), 3, "dest-a was used again, so cached");
    source.settings(&id("dest-a")).await.unwrap();
    assert_eq!(reads(&source), 0, "dest-a is still cached");
    source.settings(&id("dest-b")).await.unwrap();
    assert_eq!(reads(&source), 1, "dest-b was evicted, so read again");
}

#[tokio::test]
async fn a_queued_event_with_a_top_level_regulation_type_or_batch_is_delivered_as_that_one_event() {
    let s = Stack::start().await;
    let webhook = s.webhook(&[]).await;
    let queue = s.queue_function().await;
    let looks_like_a_regulation = r#"{"type":"track","event":"Viewed","userId":"u-1","messageId":"e-1","regulationType":"suppress_with_delete","users":[{"userId":"u1"}]}"#;
    let looks_like_a_batch = r#"{"type":"track","event":"Viewed","userId":"u-2","messageId":"e-2","batch":[{"type":"track","event":"Inner","userId":"u-9","messageId":"e-9"}]}"#;
    let body = format!("[{looks_like_a_regulation},{looks_like_a_batch}]");
    let (status, answer, _) = webhook.post("dest-a", TOKEN_A, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["results"][0]["status"], "queued", "{answer}");
    assert_eq!(answer["results"][1]["status"], "queued", "{answer}");

    let queued = s.drain(&s.events_url, 2).await;
    assert_eq!(queued.len(), 2);
    for m in &queued {
        assert_eq!(attribute(m, "bodyForm").as_deref(), Some("event"));
    }
    let response = queue.invoke(&sqs_event(&queued)).await;
    assert!(
        batch_item_failures(&response).is_empty(),
        "{response}\n{}",
        queue.process.logs()
    );
    let requests = s.clevertap.requests_for("ACC-A");
    assert!(
        requests.iter().all(|r| !r.path.contains("delete")),
        "nothing deleted: {requests:?}"
    );
    let mut delivered: Vec<(String, String)> = requests
        .iter()
        .flat_map(|r| r.records())
        .map(|r| {
            (
                r["identity"].as_str().unwrap_or("").to_owned(),
                r["evtName"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        [
            ("u-1".to_owned(), "Viewed".to_owned()),
            ("u-2".to_owned(), "Viewed".to_owned())
        ]
    );
    assert!(s.drain(&s.dlq_url, 0).await.is_empty());
}

// ------------------------------------------------------------ what cannot heal is not retried

/// A track event of about `size` bytes (it maps to records: only its size is wrong).
fn big_track(id: &str, size: usize) -> String {
    format!(
        r#"{{"type":"track","event":"Viewed","userId":"u-1","messageId":"{id}","properties":{{"pad":"{}"}}}}"#,
        "x".repeat(size)
    )
}

#[tokio::test]
async fn queue_mode_an_event_too_large_to_queue_is_rejected_with_its_letter_cut_and_marked() {
    use sha2::Digest;
    let s = Stack::start().await;
    let webhook = s.webhook(&[]).await;
    let event = big_track("e-big", 300 * 1024);
    let (status, body, response) = webhook.post("dest-a", TOKEN_A, &event).await;
    assert!(
        status < 500,
        "{status} {response}\n{}",
        webhook.process.logs()
    );
    assert_eq!(body["results"][0]["status"], "rejected", "{body}");
    assert_eq!(body["results"][0]["code"], "event_too_large", "{body}");
    let letters = s.drain(&s.dlq_url, 1).await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    let text = letter.body().unwrap_or("");
    assert!(
        event.starts_with(text),
        "the letter holds the event's start"
    );
    assert!(text.len() > 200 * 1024, "{} bytes", text.len());
    assert_eq!(attribute(letter, "truncated").as_deref(), Some("true"));
    assert_eq!(
        attribute(letter, "originalSize"),
        Some(event.len().to_string())
    );
    let sha: String = sha2::Sha256::digest(event.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(attribute(letter, "sha256"), Some(sha));
    assert_eq!(
        attribute(letter, "rejectionCode").as_deref(),
        Some("event_too_large")
    );
    assert!(s.drain(&s.events_url, 0).await.is_empty(), "nothing queued");
}

#[tokio::test]
async fn a_json_event_with_characters_sqs_refuses_is_queued_as_the_same_json_value() {
    let s = Stack::start().await;
    let webhook = s.webhook(&[]).await;
    let event = "{\"type\":\"track\",\"event\":\"Viewed\",\"userId\":\"u-1\",\"messageId\":\"e-ffff\",\"properties\":{\"odd\":\"a\u{FFFF}b\u{FFFE}c\"}}";
    let (status, body, _) = webhook.post("dest-a", TOKEN_A, event).await;
    assert_eq!(status, 202, "{body}\n{}", webhook.process.logs());
    let queued = s.drain(&s.events_url, 1).await;
    assert_eq!(queued.len(), 1);
    let text = queued[0].body().unwrap_or("");
    assert!(text.chars().all(sqs_accepts), "{text:?}");
    let sent: Value = serde_json::from_str(text).unwrap();
    assert_eq!(sent, serde_json::from_str::<Value>(event).unwrap());
    assert_eq!(attribute(&queued[0], "bodyChanged"), None);
}

/// What SQS accepts in a body (Amazon SQS `SendMessage`).
fn sqs_accepts(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}
