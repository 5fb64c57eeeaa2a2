//! The real binary end to end: the Lambda Runtime API feeds it SQS batches and HTTP requests;
//! settings come from Secrets Manager and dead letters go to SQS (both moto_server, through the
//! real AWS SDK); CleverTap is the mock. Short retry budgets keep every test to seconds.

use crate::support::lambda_events::{
    FIFO_ARN, batch_item_failures, sqs_message as message, sqs_message_on as message_on,
    sqs_record_in_group, webhook_request as webhook,
};
use crate::support::mock_clevertap::{MockCleverTap, Reply};
use crate::support::moto::MotoServer;
use crate::support::runtime_api::{LambdaProcess, RuntimeApi};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);
const PASSCODE_A: &str = "pc-secret-a-1234";
const PASSCODE_B: &str = "pc-secret-b-5678";
const TOKEN_A: &str = "webhook-token-a-9999";

const TRACK: &str = r#"{"type":"track","event":"Order Completed","userId":"u-1","messageId":"e-1","properties":{"revenue":10}}"#;
const IDENTIFY: &str =
    r#"{"type":"identify","userId":"u-2","messageId":"e-2","traits":{"email":"ana@example.com"}}"#;
/// An event the transform rejects: a type neither CleverTap nor RudderStack knows.
const UNSUPPORTED: &str = r#"{"type":" track ","userId":"u-3","messageId":"e-3","groupId":"g-1"}"#;
const NO_IDS: &str = r#"{"type":"track","event":"Viewed","messageId":"e-4"}"#;

/// Where dead letters go in a test.
enum DeadLetters {
    /// A real queue on moto.
    Queue,
    /// A real FIFO queue on moto (`.fifo`), as the stack makes with `QueueType=fifo`.
    FifoQueue,
    /// A queue URL nobody answers.
    Unreachable,
}

/// moto (Secrets Manager with two destinations' secrets, SQS), the CleverTap mock, and the
/// binary under a Runtime API.
struct Stack {
    moto: MotoServer,
    clevertap: MockCleverTap,
    api: RuntimeApi,
    process: LambdaProcess,
    dlq_url: String,
}

impl Stack {
    async fn start(dead_letters: DeadLetters) -> Stack {
        let moto = MotoServer::start();
        moto.create_secrets(&[
            (
                "dest-a",
                json!({"accountId": "ACC-A", "passcode": PASSCODE_A, "webhookToken": TOKEN_A,
                       "oneTrustCookieCategories": [{"oneTrustCookieCategory": "C0004"}]}),
            ),
            (
                "dest-b",
                json!({"accountId": "ACC-B", "passcode": PASSCODE_B, "region": "in1"}),
            ),
        ])
        .await;
        let dlq_url = match dead_letters {
            DeadLetters::Queue => moto.create_queue("rudder-clevertap-dlq").await,
            DeadLetters::FifoQueue => moto.create_fifo_queue("rudder-clevertap-dlq.fifo").await,
            DeadLetters::Unreachable => "http://127.0.0.1:1/123456789012/gone".to_owned(),
        };
        let clevertap = MockCleverTap::start();
        let api = RuntimeApi::start().await;
        let mut env = moto.env();
        env.push(("CLEVERTAP_ENDPOINT", clevertap.url().to_owned()));
        env.push(("DEAD_LETTER_QUEUE_URL", dlq_url.clone()));
        env.push(("RETRY_BUDGET_SECONDS", "1".into()));
        if matches!(dead_letters, DeadLetters::Unreachable) {
            env.push(("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:1".into()));
        }
        let process = LambdaProcess::start(&api, &env);
        Stack {
            moto,
            clevertap,
            api,
            process,
            dlq_url,
        }
    }

    async fn invoke(&self, payload: &Value) -> Value {
        self.api
            .invoke(payload.to_string(), TIMEOUT)
            .await
            .response()
    }

    async fn failures(&self, records: Vec<Value>) -> Vec<String> {
        batch_item_failures(&self.invoke(&json!({"Records": records})).await)
    }

    /// Every dead letter on the queue: (body, attributes).
    async fn dead_letters(&self, expected: usize) -> Vec<(String, HashMap<String, String>)> {
        self.moto.receive_messages(&self.dlq_url, expected).await
    }

    fn assert_no_secret_in_logs(&self) {
        let logs = self.process.logs();
        for secret in [PASSCODE_A, PASSCODE_B, TOKEN_A] {
            assert!(
                !logs.contains(secret),
                "a secret leaked into the logs:\n{logs}"
            );
        }
    }
}

#[tokio::test]
async fn a_normal_batch_across_two_destinations_is_delivered_and_the_response_is_empty() {
    let s = Stack::start(DeadLetters::Queue).await;
    let response = s
        .invoke(&json!({"Records": [
            message("m-1", TRACK, "dest-a"),
            message("m-2", &format!("[{IDENTIFY},{TRACK}]"), "dest-b"),
            message("m-3", &format!(r#"{{"batch":[{IDENTIFY}]}}"#), "dest-a"),
        ]}))
        .await;
    assert_eq!(
        response,
        json!({"batchItemFailures": []}),
        "{}",
        s.process.logs()
    );
    let a = s.clevertap.requests_for("ACC-A");
    let b = s.clevertap.requests_for("ACC-B");
    assert_eq!(a.len(), 1, "one upload for all of dest-a's messages");
    assert_eq!(b.len(), 1);
    assert_eq!(a[0].passcode, PASSCODE_A);
    assert_eq!(a[0].records().len(), 2);
    assert_eq!(b[0].records().len(), 2);
    assert!(s.dead_letters(0).await.is_empty());
    s.assert_no_secret_in_logs();
    // Each destination's counters reach CloudWatch as an EMF line on stdout.
    let emf: Vec<Value> = s
        .process
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    let a = emf.iter().find(|d| d["destination"] == "dest-a").unwrap();
    assert_eq!(a["EventsDelivered"], 2);
    assert_eq!(a["UploadRequests"], 1);
    assert_eq!(a["function"], "rudder-clevertap");
}

#[tokio::test]
async fn a_group_event_and_a_consent_denied_event_are_filtered_neither_dead_lettered_nor_retried() {
    let s = Stack::start(DeadLetters::Queue).await;
    let group = r#"{"type":"group","userId":"u-3","messageId":"e-3","groupId":"g-1"}"#;
    let denied = r#"{"type":"track","event":"Viewed","userId":"u-4","messageId":"e-5",
        "context":{"consentManagement":{"deniedConsentIds":["C0004"]}}}"#;
    let failures = s
        .failures(vec![
            message("m-1", group, "dest-a"),
            message("m-2", denied, "dest-a"),
            message("m-3", TRACK, "dest-a"),
        ])
        .await;
    assert!(failures.is_empty(), "{failures:?}\n{}", s.process.logs());
    let uploads = s.clevertap.requests_for("ACC-A");
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        uploads[0].records().len(),
        1,
        "only the allowed track event"
    );
    assert!(s.dead_letters(0).await.is_empty());
    // The counters reach CloudWatch: two filtered, one delivered, nothing rejected.
    let started = Instant::now();
    let doc = loop {
        let found = s
            .process
            .logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v.get("_aws").is_some() && v["destination"] == "dest-a");
        match found {
            Some(doc) => break doc,
            None if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None => panic!("no EMF line for dest-a:\n{}", s.process.logs()),
        }
    };
    assert_eq!(doc["EventsFiltered"], 2, "{doc}");
    assert_eq!(doc["EventsDelivered"], 1, "{doc}");
    assert_eq!(doc["EventsRejected"], 0, "{doc}");
    assert_eq!(doc["EventsDeadLettered"], 0, "{doc}");
}

#[tokio::test]
async fn bad_messages_are_dead_lettered_with_their_reasons_and_the_good_ones_delivered() {
    let s = Stack::start(DeadLetters::Queue).await;
    let failures = s
        .failures(vec![
            message("good-1", TRACK, "dest-a"),
            message("bad-json", "{\"type\":\"track\",", "dest-a"),
            message("bad-empty", "", "dest-a"),
            message("bad-group", UNSUPPORTED, "dest-b"),
            message("bad-no-ids", NO_IDS, "dest-b"),
            message("mixed", &format!("[{IDENTIFY},{UNSUPPORTED}]"), "dest-b"),
        ])
        .await;
    assert!(failures.is_empty(), "{failures:?}\n{}", s.process.logs());

    let letters = s.dead_letters(5).await;
    assert_eq!(letters.len(), 5, "{letters:?}");
    let by_source: HashMap<&str, &(String, HashMap<String, String>)> = letters
        .iter()
        .map(|l| (l.1["sourceMessageId"].as_str(), l))
        .collect();
    let (body, attrs) = by_source["bad-json"];
    assert_eq!(body, "{\"type\":\"track\",");
    assert_eq!(attrs["rejectionCode"], "invalid_json");
    assert_eq!(attrs["destinationId"], "dest-a");
    assert!(!attrs["rejectionMessage"].is_empty());
    assert_eq!(by_source["bad-empty"].1["rejectionCode"], "empty_body");
    let (body, attrs) = by_source["bad-group"];
    assert_eq!(body, UNSUPPORTED);
    assert_eq!(attrs["destinationId"], "dest-b");
    assert_eq!(by_source["bad-no-ids"].0, NO_IDS);
    // Only the rejected event of a mixed message is dead-lettered; its good event was delivered.
    assert_eq!(by_source["mixed"].0, UNSUPPORTED);

    let delivered: usize = s
        .clevertap
        .requests()
        .iter()
        .map(|r| r.records().len())
        .sum();
    assert_eq!(delivered, 2, "TRACK of good-1 and IDENTIFY of mixed");
    s.assert_no_secret_in_logs();
}

#[tokio::test]
async fn clevertap_down_reports_every_message_before_the_deadline() {
    let s = Stack::start(DeadLetters::Queue).await;
    s.clevertap
        .respond_with(|_| Reply::status(503, "Service Unavailable"));
    let started = Instant::now();
    let failures = s
        .failures(vec![
            message("m-1", TRACK, "dest-a"),
            message("m-2", IDENTIFY, "dest-b"),
            message("m-3", TRACK, "dest-a"),
        ])
        .await;
    assert_eq!(failures, ["m-1", "m-2", "m-3"]);
    assert!(started.elapsed() < TIMEOUT, "answered after the deadline");
    assert!(s.clevertap.requests().len() >= 2);
    assert!(s.dead_letters(0).await.is_empty());
}

#[tokio::test]
async fn a_missing_secret_reports_its_messages_and_dead_letters_nothing() {
    let s = Stack::start(DeadLetters::Queue).await;
    let failures = s
        .failures(vec![
            message("m-1", TRACK, "dest-missing"),
            message("m-2", "not json", "dest-missing"),
            message("m-3", TRACK, "dest-a"),
        ])
        .await;
    assert_eq!(failures, ["m-1", "m-2"]);
    assert!(s.dead_letters(0).await.is_empty());
    assert_eq!(s.clevertap.requests_for("ACC-A").len(), 1);
    assert!(
        s.process.logs().contains("secret_not_found"),
        "{}",
        s.process.logs()
    );
}

#[tokio::test]
async fn an_unreachable_dead_letter_queue_turns_rejections_into_batch_item_failures() {
    let s = Stack::start(DeadLetters::Unreachable).await;
    let failures = s
        .failures(vec![
            message("m-1", TRACK, "dest-a"),
            message("m-2", "not json", "dest-a"),
            message("m-3", UNSUPPORTED, "dest-b"),
        ])
        .await;
    assert_eq!(failures, ["m-2", "m-3"], "{}", s.process.logs());
    assert_eq!(s.clevertap.requests_for("ACC-A").len(), 1);
}

#[tokio::test]
async fn a_webhook_with_the_right_token_is_delivered_and_answered_per_event() {
    let s = Stack::start(DeadLetters::Queue).await;
    let response = s
        .invoke(&webhook(
            "dest-a",
            Some(&format!("Bearer {TOKEN_A}")),
            &format!("[{TRACK},{UNSUPPORTED}]"),
        ))
        .await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["delivered"], 1);
    assert_eq!(body["rejected"], 1);
    assert_eq!(
        body["results"][0],
        json!({"index": 0, "messageId": "e-1", "status": "delivered"})
    );
    assert_eq!(body["results"][1]["status"], "rejected");
    assert_eq!(s.clevertap.requests_for("ACC-A").len(), 1);
    let letters = s.dead_letters(1).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, UNSUPPORTED);
    assert_eq!(letters[0].1["destinationId"], "dest-a");
    s.assert_no_secret_in_logs();
}

#[tokio::test]
async fn a_webhook_with_a_wrong_or_missing_token_gets_401_and_nothing_is_sent() {
    let s = Stack::start(DeadLetters::Queue).await;
    for (destination, auth) in [
        ("dest-a", Some("Bearer not-the-token")),
        ("dest-a", None),
        ("dest-b", Some(&*format!("Bearer {TOKEN_A}"))),
    ] {
        let response = s.invoke(&webhook(destination, auth, TRACK)).await;
        assert_eq!(
            response["statusCode"], 401,
            "{destination} {auth:?}: {response}"
        );
    }
    assert!(s.clevertap.requests().is_empty());
    assert!(s.dead_letters(0).await.is_empty());
}

#[tokio::test]
async fn fifo_stops_at_the_first_message_needing_a_retry_and_reports_all_after_it() {
    let s = Stack::start(DeadLetters::Queue).await;
    s.clevertap.respond_with(|req| {
        if req.account_id == "ACC-B" {
            Reply::status(503, "")
        } else {
            Reply::success(req)
        }
    });
    let failures = s
        .failures(vec![
            message_on(FIFO_ARN, "f-1", TRACK, "dest-a"),
            message_on(FIFO_ARN, "f-2", TRACK, "dest-b"),
            message_on(FIFO_ARN, "f-3", IDENTIFY, "dest-a"),
            message_on(FIFO_ARN, "f-4", "not json", "dest-a"),
        ])
        .await;
    assert_eq!(failures, ["f-2", "f-3", "f-4"], "{}", s.process.logs());
    let a = s.clevertap.requests_for("ACC-A");
    assert_eq!(a.len(), 1, "nothing after f-2 is sent");
    assert_eq!(a[0].records().len(), 1);
    assert!(s.dead_letters(0).await.is_empty(), "f-4 was never judged");
}

/// A record from the FIFO queue in message group `group`, routed to `destination`.
fn in_group(id: &str, body: &str, destination: &str, group: &str) -> Value {
    sqs_record_in_group(FIFO_ARN, id, body, Some(destination), Some(group))
}

#[tokio::test]
async fn fifo_a_failing_message_blocks_only_its_own_group_and_dead_letters_go_to_a_fifo_queue() {
    let s = Stack::start(DeadLetters::FifoQueue).await;
    s.clevertap.respond_with(|req| {
        if req.account_id == "ACC-B" {
            Reply::status(503, "")
        } else {
            Reply::success(req)
        }
    });
    let failures = s
        .failures(vec![
            in_group("a-1", TRACK, "dest-b", "A"), // CleverTap 503: retry
            in_group("b-1", TRACK, "dest-a", "B"),
            in_group("a-2", IDENTIFY, "dest-a", "A"), // waits behind a-1
            in_group("b-2", "not json", "dest-a", "B"), // rejected: dead-lettered
            in_group("b-3", IDENTIFY, "dest-a", "B"),
        ])
        .await;
    // Blocking the whole batch reported every message from a-1 on.
    assert_eq!(
        failures,
        ["a-1", "a-2"],
        "only group A waits; group B goes on\n{}",
        s.process.logs()
    );
    let a = s.clevertap.requests_for("ACC-A");
    assert_eq!(a.len(), 2, "b-1 then b-3; a-2 is not sent");
    assert_eq!(a[0].records()[0]["type"], "event", "b-1 first");
    assert_eq!(a[1].records()[0]["type"], "profile", "then b-3");
    assert_eq!(
        s.moto.receive_message_groups(&s.dlq_url, 1).await,
        [("not json".to_owned(), "B".to_owned())],
        "b-2 is dead-lettered in its own group"
    );
}

#[tokio::test]
async fn the_same_process_serves_sqs_http_and_garbage_in_any_order() {
    let s = Stack::start(DeadLetters::Queue).await;
    assert!(
        s.failures(vec![message("m-1", TRACK, "dest-a")])
            .await
            .is_empty()
    );
    s.api.invoke("{garbage", TIMEOUT).await.error();
    let response = s
        .invoke(&webhook(
            "dest-a",
            Some(&format!("Bearer {TOKEN_A}")),
            IDENTIFY,
        ))
        .await;
    assert_eq!(response["statusCode"], 200);
    s.api.invoke("{\"neither\": true}", TIMEOUT).await.error();
    assert!(
        s.failures(vec![message("m-2", TRACK, "dest-b")])
            .await
            .is_empty()
    );
    assert_eq!(s.clevertap.requests().len(), 3);
}
