//! The promise "every event ends delivered, rejected (dead-lettered) or retry", through the real
//! binary under a Runtime API, with Secrets Manager and SQS on moto and CleverTap mocked: an
//! event is `rejected` only once its dead letter is written; letters are split by SQS's size
//! limit and cleaned of what SQS refuses; one refused letter does not hold back the others; a
//! batch with a nameless message fails before anything is sent; a webhook body is bounded in
//! items, in answer size and in memory (docs/contracts.md §2, §3).

use crate::support::lambda_events::{
    batch_item_failures, sqs_message as message, webhook_request as webhook,
};
use crate::support::mock_clevertap::MockCleverTap;
use crate::support::moto::MotoServer;
use crate::support::runtime_api::{LambdaProcess, RuntimeApi};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);
const TOKEN_A: &str = "webhook-token-a-9999";

const TRACK: &str = r#"{"type":"track","event":"Order Completed","userId":"u-1","messageId":"e-1","properties":{"revenue":10}}"#;
const UNSUPPORTED: &str = r#"{"type":" track ","userId":"u-3","messageId":"e-3","groupId":"g-1"}"#;

/// Where dead letters go in a test.
enum Dlq {
    /// A queue on moto, with these attributes.
    Queue(Vec<(QueueAttributeName, &'static str)>),
    /// A queue URL nobody answers.
    Unreachable,
    /// No `DEAD_LETTER_QUEUE_URL` at all.
    None,
    /// A queue behind this SQS endpoint (every SQS call of the binary goes there).
    At(String),
}

struct Stack {
    moto: MotoServer,
    clevertap: MockCleverTap,
    api: RuntimeApi,
    process: LambdaProcess,
    dlq_url: Option<String>,
}

/// A dead letter as the queue holds it: body and string attributes.
type Letter = (String, HashMap<String, String>);

impl Stack {
    async fn start(dlq: Dlq) -> Stack {
        let moto = MotoServer::start();
        moto.create_secrets(&[(
            "dest-a",
            json!({"accountId": "ACC-A", "passcode": "pc-a-1234", "webhookToken": TOKEN_A}),
        )])
        .await;
        let clevertap = MockCleverTap::start();
        let api = RuntimeApi::start().await;
        let mut env = moto.env();
        env.push(("CLEVERTAP_ENDPOINT", clevertap.url().to_owned()));
        env.push(("RETRY_BUDGET_SECONDS", "1".into()));
        let dlq_url = match dlq {
            Dlq::Queue(attributes) => Some(
                moto.create_queue_with("rudder-clevertap-dlq", &attributes)
                    .await,
            ),
            Dlq::Unreachable => {
                env.push(("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:1".into()));
                Some("http://127.0.0.1:1/123456789012/gone".to_owned())
            }
            Dlq::None => None,
            Dlq::At(endpoint) => {
                env.push(("AWS_ENDPOINT_URL_SQS", endpoint.clone()));
                Some(format!("{endpoint}/123456789012/dlq"))
            }
        };
        if let Some(url) = &dlq_url {
            env.push(("DEAD_LETTER_QUEUE_URL", url.clone()));
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

    /// The webhook's answer: status, parsed body, whole response.
    async fn webhook(&self, body: &str) -> (u64, Value, Value) {
        let request = webhook("dest-a", Some(&format!("Bearer {TOKEN_A}")), body);
        let response = self.invoke(&request).await;
        let status = response["statusCode"].as_u64().unwrap_or(0);
        let body = serde_json::from_str(response["body"].as_str().unwrap_or("null"))
            .unwrap_or(Value::Null);
        (status, body, response)
    }

    /// The dead letters on the queue (polling up to 2 s for `expected` of them).
    async fn dead_letters(&self, expected: usize) -> Vec<Letter> {
        let url = self.dlq_url.as_deref().expect("a dead-letter queue");
        self.moto.receive_messages(url, expected).await
    }

    fn logs(&self) -> String {
        self.process.logs()
    }

    /// The logs once they hold a line for which `wanted` holds (the process's output is read
    /// by another thread, so lines written before the answer may arrive just after it).
    async fn logs_once(&self, wanted: impl Fn(&str) -> bool) -> String {
        let started = std::time::Instant::now();
        loop {
            let logs = self.logs();
            if logs.lines().any(&wanted) || started.elapsed() > Duration::from_secs(3) {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A group event (always rejected, `unsupported_type`) of about `size` bytes.
fn big_group(id: &str, size: usize) -> String {
    format!(
        r#"{{"type":" track ","userId":"u-3","messageId":"{id}","groupId":"g-1","traits":{{"pad":"{}"}}}}"#,
        "x".repeat(size)
    )
}

/// The events the letters carry, each as its text (a letter holds one event, or a JSON array).
fn events_in(letters: &[Letter]) -> Vec<String> {
    letters
        .iter()
        .flat_map(|(body, _)| match serde_json::from_str::<Value>(body) {
            Ok(Value::Array(items)) => items.iter().map(Value::to_string).collect(),
            _ => vec![body.clone()],
        })
        .collect()
}

fn message_ids(events: &[String]) -> BTreeSet<String> {
    events
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(e).unwrap();
            v["messageId"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

// ---------------------------------------------------------------- rejected only once written

#[tokio::test]
async fn a_webhook_event_whose_dead_letter_fails_is_answered_503_retry_dead_letter_failed() {
    let s = Stack::start(Dlq::Unreachable).await;
    let (status, body, response) = s.webhook(&format!("[{TRACK},{UNSUPPORTED}]")).await;
    assert_eq!(status, 503, "{body}\n{}", s.logs());
    assert_eq!(response["headers"]["retry-after"], "10");
    assert_eq!(body["results"][0]["status"], "delivered");
    assert_eq!(body["results"][1]["status"], "retry", "{body}");
    assert_eq!(body["results"][1]["code"], "dead_letter_failed", "{body}");
    assert_eq!(
        (body["rejected"].as_u64(), body["retry"].as_u64()),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn webhook_rejected_events_over_one_letter_reach_the_queue_in_several_letters() {
    let s = Stack::start(Dlq::Queue(vec![])).await;
    let events: Vec<String> = (1..=3)
        .map(|i| big_group(&format!("g-{i}"), 100 * 1024))
        .collect();
    let (status, body, _) = s.webhook(&format!("[{}]", events.join(","))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["rejected"], 3);
    let letters = s.dead_letters(3).await;
    assert!(
        letters.len() >= 2,
        "{} letters\n{}",
        letters.len(),
        s.logs()
    );
    let carried = events_in(&letters);
    assert_eq!(carried.len(), 3, "each event in exactly one letter");
    assert_eq!(message_ids(&carried), message_ids(&events));
    for (body, attributes) in &letters {
        assert!(
            body.len() + 1024 < 256 * 1024,
            "a letter of {} bytes",
            body.len()
        );
        assert_eq!(attributes["rejectionCode"], "unsupported_type");
        assert_eq!(attributes["sourceMessageId"], "req-1");
    }
}

#[tokio::test]
async fn an_sqs_message_whose_rejected_events_exceed_one_letter_is_split_and_acked() {
    let s = Stack::start(Dlq::Queue(vec![])).await;
    let events: Vec<String> = (1..=3)
        .map(|i| big_group(&format!("g-{i}"), 100 * 1024))
        .collect();
    let body = format!("[{TRACK},{}]", events.join(","));
    let failures = s
        .failures(vec![
            message("m-big", &body, "dest-a"),
            message("m-ok", TRACK, "dest-a"),
        ])
        .await;
    assert!(failures.is_empty(), "{failures:?}\n{}", s.logs());
    let letters = s.dead_letters(3).await;
    assert!(letters.len() >= 2, "{}", letters.len());
    assert!(letters.iter().all(|l| l.1["sourceMessageId"] == "m-big"));
    assert_eq!(message_ids(&events_in(&letters)), message_ids(&events));
    assert_eq!(s.clevertap.requests().len(), 1);
}

#[tokio::test]
async fn an_sqs_message_whose_dead_letter_fails_is_logged_and_counted_as_retry_dead_letter_failed()
{
    let s = Stack::start(Dlq::Unreachable).await;
    let failures = s
        .failures(vec![
            message("m-bad", "not json", "dest-a"),
            message("m-ok", TRACK, "dest-a"),
        ])
        .await;
    assert_eq!(failures, ["m-bad"]);
    let logs = s.logs_once(|l| l.contains("invocation summary")).await;
    let line = logs
        .lines()
        .find(|l| l.contains("m-bad") && l.contains("batch_item_failure"))
        .unwrap_or_else(|| panic!("no message line for m-bad:\n{logs}"));
    assert!(line.contains("dead_letter_failed"), "{line}");
    assert!(
        line.contains("retry") && !line.contains("\"rejected\""),
        "{line}"
    );
    let summary = logs
        .lines()
        .find(|l| l.contains("invocation summary"))
        .unwrap();
    assert!(summary.contains("\"rejected\":0"), "{summary}");
    assert!(summary.contains("\"retried\":1"), "{summary}");
}

#[tokio::test]
async fn the_start_up_line_says_what_becomes_of_rejected_events() {
    let without = Stack::start(Dlq::None).await;
    let with = Stack::start(Dlq::Queue(vec![])).await;
    // The line is written before the first invocation is taken; one invocation makes sure.
    for s in [&without, &with] {
        s.failures(vec![message("m-1", TRACK, "dest-a")]).await;
    }
    async fn ready(s: &Stack) -> String {
        s.logs_once(|l| l.contains("container ready"))
            .await
            .lines()
            .find(|l| l.contains("container ready"))
            .unwrap_or_default()
            .to_owned()
    }
    let line = ready(&without).await;
    assert!(line.contains("not dead-lettered"), "{line}");
    assert!(line.contains("reported for retry"), "{line}");
    assert!(line.contains("answered rejected"), "{line}");
    let line = ready(&with).await;
    assert!(line.contains("dead-lettered to"), "{line}");
}

// ---------------------------------------------------------------- messageId before anything

#[tokio::test]
async fn a_batch_with_a_nameless_message_fails_before_anything_is_uploaded_or_dead_lettered() {
    let s = Stack::start(Dlq::Queue(vec![])).await;
    let mut nameless = message("x", TRACK, "dest-a");
    nameless.as_object_mut().unwrap().remove("messageId");
    // Not reportable alone: it needs a retry (no destination).
    nameless["messageAttributes"] = json!({});
    let error = s
        .api
        .invoke(
            json!({"Records": [
                message("m-1", TRACK, "dest-a"),
                message("m-2", "not json", "dest-a"),
                nameless,
            ]})
            .to_string(),
            TIMEOUT,
        )
        .await
        .error();
    assert_eq!(error["errorType"], "unreportable_failure", "{error}");
    assert!(s.clevertap.requests().is_empty(), "nothing uploaded");
    assert!(s.dead_letters(0).await.is_empty(), "nothing dead-lettered");
    let logs = s.logs_once(|l| l.contains("invocation summary")).await;
    let logged = logs
        .lines()
        .filter(|l| l.contains("unreportable_failure") && !l.contains("invocation summary"))
        .count();
    assert_eq!(logged, 1, "logged once with its code:\n{logs}");
}

// ---------------------------------------------------------------- what SQS refuses

#[tokio::test]
async fn attribute_values_reaching_the_queue_hold_only_characters_sqs_accepts() {
    let s = Stack::start(Dlq::Queue(vec![])).await;
    let failures = s
        .failures(vec![
            message(
                "m-nul",
                r#"{"regulationType":"\u0000","users":[{"userId":"u-1"}]}"#,
                "dest-a",
            ),
            message("m-ok", TRACK, "dest-a"),
        ])
        .await;
    assert!(failures.is_empty(), "{failures:?}\n{}", s.logs());
    let letters = s.dead_letters(1).await;
    assert_eq!(letters.len(), 1);
    let attributes = &letters[0].1;
    assert_eq!(attributes["rejectionCode"], "unsupported_regulation_type");
    for (name, value) in attributes {
        assert!(
            value.chars().all(|c| matches!(c,
                '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)),
            "{name} holds a character SQS refuses: {value:?}"
        );
    }
}

#[tokio::test]
async fn a_letter_the_queue_refuses_does_not_hold_back_the_other_messages_letters() {
    // The queue takes messages of at most 1 KiB: the big letter is refused, the small one not.
    let s = Stack::start(Dlq::Queue(vec![(
        QueueAttributeName::MaximumMessageSize,
        "1024",
    )]))
    .await;
    let failures = s
        .failures(vec![
            message("m-big", &big_group("g-big", 2000), "dest-a"),
            message("m-small", UNSUPPORTED, "dest-a"),
            message("m-ok", TRACK, "dest-a"),
        ])
        .await;
    assert_eq!(failures, ["m-big"], "{}", s.logs());
    let letters = s.dead_letters(1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].0, UNSUPPORTED);
    assert_eq!(letters[0].1["sourceMessageId"], "m-small");
}

// ---------------------------------------------------------------- pathological webhook bodies

#[tokio::test]
async fn a_5_mib_body_of_empty_objects_is_bounded_answered_under_the_cap_and_fits_128_mb() {
    let s = Stack::start(Dlq::Queue(vec![])).await;
    let max_body = 5 * 1024 * 1024;
    let items = (max_body - 2 + 1) / 3; // "[" + "{}," x (n - 1) + "{}" + "]" = 3n + 1 bytes
    let mut body = String::with_capacity(max_body);
    body.push('[');
    for i in 0..items {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{}");
    }
    body.push(']');
    assert!(body.len() <= max_body);
    let request = webhook("dest-a", Some(&format!("Bearer {TOKEN_A}")), &body);
    drop(body);
    let response = s
        .api
        .invoke(request.to_string(), Duration::from_secs(30))
        .await
        .response();
    let peak_kib = s.process.peak_rss_kib().expect("VmHWM of the process");
    eprintln!("peak RSS for a 5 MiB body of {items} empty objects: {peak_kib} KiB");

    let text = response["body"].as_str().unwrap();
    assert!(text.len() < 1_000_000, "an answer of {} bytes", text.len());
    let answer: Value = serde_json::from_str(text).unwrap();
    assert_eq!(response["statusCode"], 400, "every item rejected");
    assert_eq!(answer["rejected"], items);
    assert_eq!(answer["delivered"], 0);
    assert_eq!(
        answer["unprocessed"]["from"], 10_000,
        "{}",
        answer["unprocessed"]
    );
    assert_eq!(answer["unprocessed"]["count"], items - 10_000);
    assert_eq!(answer["unprocessed"]["code"], "too_many_items");
    assert!(s.clevertap.requests().is_empty());
    // The 10,000 processed items are dead-lettered; the rest are not.
    let carried: usize = s
        .dead_letters(1)
        .await
        .iter()
        .map(|(body, _)| serde_json::from_str::<Vec<Value>>(body).map_or(1, |v| v.len()))
        .sum();
    assert_eq!(carried, 10_000);
    assert!(
        peak_kib < 128 * 1024,
        "peak RSS {peak_kib} KiB is over 128 MB"
    );
}

// ------------------------------------------------------------ what cannot heal is not retried

#[tokio::test]
async fn sync_a_good_event_beside_one_too_large_for_any_letter_is_delivered_once_and_answered_finally()
 {
    let s = Stack::start(Dlq::Queue(vec![])).await;
    let big = big_group("g-big", 300 * 1024);
    let body = format!("[{TRACK},{big}]");
    // The sender posts again while the answer asks for a retry, three times at most.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, answer, _) = s.webhook(&body).await;
        statuses.push(status);
        if status < 500 {
            assert_eq!(answer["results"][1]["status"], "rejected", "{answer}");
            break;
        }
    }
    assert_eq!(statuses.len(), 1, "{statuses:?}\n{}", s.logs());
    // Only the good event maps to records: every upload is its.
    assert_eq!(
        s.clevertap.requests().len(),
        1,
        "the good event reaches CleverTap exactly once"
    );
    let letters = s.dead_letters(1).await;
    assert_eq!(letters.len(), 1);
    let (text, attributes) = &letters[0];
    assert!(big.starts_with(text.as_str()));
    assert_eq!(attributes["truncated"], "true");
    assert_eq!(attributes["originalSize"], big.len().to_string());
    assert_eq!(attributes["sha256"].len(), 64);
}

#[tokio::test]
async fn a_line_with_a_control_character_is_rejected_and_its_letter_written_with_it_replaced() {
    let s = Stack::start(Dlq::Queue(vec![])).await;
    let body = format!("{TRACK}\ngarbage\u{1}line");
    let (status, answer, _) = s.webhook(&body).await;
    assert!(status < 500, "{status} {answer}\n{}", s.logs());
    assert_eq!(answer["results"][1]["status"], "rejected", "{answer}");
    assert_eq!(answer["results"][1]["code"], "invalid_json", "{answer}");
    let letters = s.dead_letters(1).await;
    assert_eq!(letters.len(), 1);
    let (text, attributes) = &letters[0];
    assert_eq!(text, "garbage\u{FFFD}line");
    assert_eq!(attributes["bodyChanged"], "true");
}

#[tokio::test]
async fn a_400_to_every_upload_retries_every_event_in_at_most_n_requests_dead_lettering_none() {
    use crate::support::mock_clevertap::Reply;
    let s = Stack::start(Dlq::Queue(vec![])).await;
    s.clevertap
        .go_down(Reply::status(400, r#"{"status":"fail","error":"blocked"}"#));
    let events: Vec<String> = (0..100)
        .map(|n| {
            format!(
                r#"{{"type":"track","event":"Viewed","userId":"u-{n}","messageId":"e-{n}","properties":{{}}}}"#
            )
        })
        .collect();
    let (status, answer, _) = s.webhook(&format!("[{}]", events.join(","))).await;
    assert_eq!(status, 503, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 100);
    for r in results {
        assert_eq!(r["status"], "retry", "{r}");
        assert_eq!(r["code"], "clevertap_refused_whole", "{r}");
    }
    let requests = s.clevertap.request_count();
    assert!(requests <= 100, "{requests} requests for 100 records");
    assert!(s.dead_letters(0).await.is_empty(), "nothing dead-lettered");
    let logs = s.logs_once(|l| l.contains("clevertap_refused_whole")).await;
    assert!(
        logs.lines()
            .any(|l| l.contains("refused whole") && l.contains("items=100")),
        "{logs}"
    );
}

#[tokio::test]
async fn dead_lettering_against_a_slow_sqs_ends_before_the_deadline_and_the_invocation_answers() {
    use crate::support::mock_clevertap::Reply;
    use crate::support::slow_sqs::SlowSqs;
    let sqs = SlowSqs::start().await;
    let s = Stack::start(Dlq::At(sqs.endpoint.clone())).await;
    // CleverTap too is slow: delivery takes its time up to the deadline minus the margin.
    s.clevertap
        .go_down(Reply::status(503, "{}").after(Duration::from_secs(30)));
    let batch = json!({"Records": [
        message("m-bad-1", "not json", "dest-a"),
        message("m-bad-2", "not json either", "dest-a"),
        message("m-ok", TRACK, "dest-a"),
    ]});
    let deadline = Duration::from_secs(6);
    let started = std::time::Instant::now();
    let response = s.api.invoke(batch.to_string(), deadline).await.response();
    let elapsed = started.elapsed();
    assert!(
        elapsed < deadline,
        "answered after {elapsed:?}, past the {deadline:?} deadline\n{}",
        s.logs()
    );
    let mut failures = batch_item_failures(&response);
    failures.sort();
    assert_eq!(failures, ["m-bad-1", "m-bad-2", "m-ok"], "{response}");
    let logs = s.logs_once(|l| l.contains("invocation summary")).await;
    assert!(logs.contains("dead_letter_deadline"), "{logs}");
}

#[tokio::test]
async fn a_6_mb_batch_of_empty_object_messages_and_two_good_ones_fits_256_mb_and_acks_the_good() {
    let s = Stack::start(Dlq::Queue(vec![])).await;
    // SQS's largest message body, `[{},{},...]`: about 87,000 items each.
    let body_bytes = 262_000;
    let items = (body_bytes - 2 + 1) / 3;
    let mut body = String::with_capacity(body_bytes);
    body.push('[');
    for i in 0..items {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{}");
    }
    body.push(']');
    let bad = 22;
    let mut records: Vec<Value> = (0..bad)
        .map(|i| message(&format!("m-empty-{i}"), &body, "dest-a"))
        .collect();
    records.push(message("m-good-1", TRACK, "dest-a"));
    records.push(message("m-good-2", TRACK, "dest-a"));
    let payload = json!({ "Records": records }).to_string();
    assert!(payload.len() <= 6 * 1024 * 1024, "{}", payload.len());
    drop(body);
    let response = s
        .api
        .invoke(payload, Duration::from_secs(60))
        .await
        .response();
    let peak_kib = s.process.peak_rss_kib().expect("VmHWM of the process");
    eprintln!(
        "peak RSS for a 6 MB batch of {bad} messages of {items} empty objects: {peak_kib} KiB"
    );
    assert_eq!(
        batch_item_failures(&response),
        Vec::<String>::new(),
        "{response}"
    );
    assert_eq!(
        s.clevertap.requests().len(),
        1,
        "the good ones are delivered"
    );
    assert!(
        peak_kib < 256 * 1024,
        "peak RSS {peak_kib} KiB is over the template's 256 MB"
    );
    let letters = s.dead_letters(2 * bad).await;
    let beyond: Vec<&Letter> = letters
        .iter()
        .filter(|l| l.1["rejectionCode"] == "too_many_items")
        .collect();
    assert_eq!(beyond.len(), bad, "{} letters", letters.len());
    assert!(
        beyond
            .iter()
            .all(|l| l.1.get("truncated").map(String::as_str) == Some("true"))
    );
}
