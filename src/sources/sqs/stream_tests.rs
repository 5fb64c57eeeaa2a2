//! A standard queue's batch uploads while it is still being transformed (docs/contracts.md §5,
//! "Batching"): the first request leaves before the last message is made a unit, and requests,
//! retries, dead letters and answers stay what they were; meanwhile the runtime gets turns, so
//! answers are read too. Through the real delivery over a recording transport, in paused time;
//! the order is read from the test trace (`fakes::trace`), never from the clock.

use crate::clevertap::transport::{ApiRequest, HttpReply, TransportError};
use crate::config::Config;
use crate::delivery::{Delivery, DeliveryPolicy};
use crate::engine::fakes::{self, FakeCleverTap, FakeDeadLetters, FakeSettings, settings_json};
use crate::handler::Handler;
use crate::lambda_events::{QUEUE_ARN, sqs_message, sqs_record};
use crate::ports::Transport;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// How the recording transport answers a request: from its records, and how many requests
/// holding the same first record came before it.
type Answer = Box<dyn Fn(&[Value], usize) -> HttpReply + Send + Sync>;

/// CleverTap over the wire, in memory: keeps each request's records, traces `request <n
/// records>` when a request is sent, and answers from a task of its own, as a connection task
/// does: the answer only arrives once the runtime had a turn, and then it traces `answered <n
/// records>`.
struct Recording {
    requests: Mutex<Vec<Vec<Value>>>,
    answer: Answer,
}

impl Recording {
    fn answering(answer: impl Fn(&[Value], usize) -> HttpReply + Send + Sync + 'static) -> Self {
        Recording {
            requests: Mutex::new(Vec::new()),
            answer: Box::new(answer),
        }
    }

    fn requests(&self) -> Vec<Vec<Value>> {
        self.requests.lock().unwrap().clone()
    }
}

impl Transport for Recording {
    async fn post(&self, request: ApiRequest<'_>) -> Result<HttpReply, TransportError> {
        let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
        let records = body["d"].as_array().cloned().unwrap_or_default();
        fakes::trace(|| format!("request {}", records.len()));
        let before = {
            let mut requests = self.requests.lock().unwrap();
            let before = requests
                .iter()
                .filter(|r| r.first() == records.first())
                .count();
            requests.push(records.clone());
            before
        };
        let reply = (self.answer)(&records, before);
        let reply = tokio::spawn(async move { reply })
            .await
            .expect("the answering task runs");
        fakes::trace(|| format!("answered {}", records.len()));
        Ok(reply)
    }
}

fn reply(status: u16, body: Value) -> HttpReply {
    HttpReply {
        status,
        body: Bytes::from(body.to_string()),
    }
}

fn success(records: &[Value]) -> HttpReply {
    reply(
        200,
        json!({"status":"success","processed":records.len(),"unprocessed":[]}),
    )
}

type Streaming = Handler<FakeSettings, Delivery<Recording>, FakeDeadLetters>;

/// `dest-a` (objectId mapping on, so an identify with a device token makes two records) over
/// the real delivery and `transport`.
fn handler(transport: Recording) -> Streaming {
    let settings = settings_json("ACC-A", false).replace(
        r#""passcode""#,
        r#""enableObjectIdMapping":true,"passcode""#,
    );
    Handler::new(
        Config::default(),
        FakeSettings::with(&[("dest-a", &settings)]),
        Delivery::new(transport, DeliveryPolicy::default()),
        FakeDeadLetters::default(),
    )
}

/// Message `i`'s one event: a track (one record, `identity` u-i) or, every tenth, an identify
/// with a device token (two records, `objectId` a-i).
fn event(i: usize) -> String {
    if i % 10 == 7 {
        format!(
            r#"{{"type":"identify","userId":"u-{i}","anonymousId":"a-{i}","messageId":"e-{i}","context":{{"os":{{"name":"android"}},"device":{{"token":"t-{i}"}}}}}}"#
        )
    } else {
        format!(r#"{{"type":"track","event":"Viewed","userId":"u-{i}","messageId":"e-{i}"}}"#)
    }
}

fn records_of(i: usize) -> usize {
    if i % 10 == 7 { 2 } else { 1 }
}

/// The message a record came from, by its `u-` identity or `a-` objectId.
fn event_of(record: &Value) -> usize {
    let id = record["identity"]
        .as_str()
        .or_else(|| record["objectId"].as_str())
        .unwrap_or_default();
    id[2..].parse().expect("u-<n> or a-<n>")
}

fn batch(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| sqs_message(&format!("m-{i}"), &event(i), "dest-a"))
        .collect()
}

const MESSAGES: usize = 2500;

#[tokio::test(start_paused = true)]
async fn the_first_request_leaves_before_the_last_message_is_transformed() {
    let h = handler(Recording::answering(|records, _| success(records)));
    fakes::start_trace();
    let failures = fakes::run_sqs(&h, batch(MESSAGES)).await.expect("answered");
    let trace = fakes::take_trace();

    let last_planned = trace
        .iter()
        .position(|line| *line == format!("planned m-{}", MESSAGES - 1))
        .expect("every message is planned");
    let first_request = trace
        .iter()
        .position(|line| line.starts_with("request "))
        .expect("requests were sent");
    assert!(
        first_request < last_planned,
        "the first request waited for the whole batch: {:?}",
        &trace[first_request.saturating_sub(2)..(first_request + 2).min(trace.len())]
    );
    // The runtime had turns while messages were still being transformed: an answer was read.
    let first_answer = trace
        .iter()
        .position(|line| line.starts_with("answered "))
        .expect("answers were read");
    assert!(
        first_answer < last_planned,
        "no answer was read before the last message was transformed"
    );
    let planned_before = trace[..first_request]
        .iter()
        .filter(|line| line.starts_with("planned "))
        .count();
    assert!(
        planned_before < MESSAGES / 2,
        "{planned_before} planned first"
    );

    // The requests: at most 1000 records, each event in exactly one request, whole.
    let requests = h.clevertap.transport().requests();
    let mut seen: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for (n, records) in requests.iter().enumerate() {
        assert!(
            records.len() <= 1000,
            "request {n}: {} records",
            records.len()
        );
        for record in records {
            let (request, count) = seen.entry(event_of(record)).or_insert((n, 0));
            assert_eq!(*request, n, "an event's records in two requests");
            *count += 1;
        }
    }
    assert_eq!(seen.len(), MESSAGES, "every event sent");
    for (i, (_, count)) in &seen {
        assert_eq!(*count, records_of(*i), "event {i} sent once, every record");
    }
    let records: usize = (0..MESSAGES).map(records_of).sum();
    assert_eq!(requests.len(), records.div_ceil(1000), "{requests:?}");

    // The answer main gives: every message delivered.
    assert!(failures.is_empty(), "{failures:?}");
    assert!(h.dead_letters.sent().is_empty());
    let metrics = h.take_metrics();
    let a = &metrics.per_destination["dest-a"];
    assert_eq!(a.delivered, MESSAGES as u64);
    assert_eq!(a.retried + a.rejected + a.dead_lettered, 0);
    assert_eq!(a.upload_requests, requests.len() as u64);
}

#[tokio::test(start_paused = true)]
async fn a_failure_mid_batch_gets_the_retries_dead_letters_and_outcomes_it_got_before() {
    // u-500's request always fails; u-1500's fails once; u-2100 is refused by CleverTap.
    let has = |records: &[Value], user: &str| records.iter().any(|r| r["identity"] == user);
    let h = handler(Recording::answering(move |records, before| {
        if has(records, "u-500") {
            return reply(500, json!({"status":"fail"}));
        }
        if has(records, "u-1500") && before == 0 {
            return reply(503, json!({"status":"fail"}));
        }
        if let Some(at) = records.iter().position(|r| r["identity"] == "u-2100") {
            let error = format!("Invalid event. Skipped record number : {}", at + 1);
            return reply(
                200,
                json!({"status":"partial","processed":records.len() - 1,
                       "unprocessed":[{"status":"fail","code":509,"error":error}]}),
            );
        }
        success(records)
    }));
    let tracks: Vec<Value> = (0..MESSAGES)
        .map(|i| {
            let body = format!(r#"{{"type":"track","event":"Viewed","userId":"u-{i}"}}"#);
            sqs_message(&format!("m-{i}"), &body, "dest-a")
        })
        .collect();
    let failures = fakes::run_sqs(&h, tracks).await.expect("answered");

    // The first request's messages come back; the rest are delivered, u-1500's on the resend.
    let first: Vec<String> = (0..1000).map(|i| format!("m-{i}")).collect();
    assert_eq!(failures, first);
    let requests = h.clevertap.transport().requests();
    let with = |user: &str| requests.iter().filter(|r| has(r, user)).count();
    assert!(with("u-500") > 1, "the failing request is resent");
    assert_eq!(with("u-1500"), 2, "sent, refused 503, resent once");
    assert_eq!(with("u-2100"), 1, "a per-record rejection is not resent");
    assert!(requests.iter().all(|r| r.len() <= 1000));

    // The refused event is dead-lettered and its message acked.
    let letters = h.dead_letters.sent();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].source_message_id.as_deref(), Some("m-2100"));
    assert_eq!(letters[0].rejection_code, "clevertap_record_rejected");
    let metrics = h.take_metrics();
    let a = &metrics.per_destination["dest-a"];
    assert_eq!(
        (a.delivered, a.rejected, a.retried, a.dead_lettered),
        (1499, 1, 1000, 1)
    );
    assert_eq!(a.upload_requests, requests.len() as u64);
}

#[tokio::test]
async fn two_destinations_regulations_and_bad_bodies_settle_as_before_in_calls_of_one_request() {
    // dest-a: 1600 one-event messages; dest-b: 200 messages of seven events; between them a
    // regulation and a body that is not JSON.
    let mut h = fakes::handler();
    h.clevertap = FakeCleverTap::delivering();
    let mut records = Vec::new();
    for i in 0..1800 {
        let track = format!(r#"{{"type":"track","event":"Viewed","userId":"u-{i}"}}"#);
        records.push(if i % 9 == 5 {
            let seven = [track.as_str(); 7].join(",");
            sqs_message(&format!("m-{i}"), &format!("[{seven}]"), "dest-b")
        } else {
            sqs_message(&format!("m-{i}"), &track, "dest-a")
        });
        if i == 900 {
            let regulation =
                r#"{"regulationType":"suppress_with_delete","users":[{"userId":"u-9"}]}"#;
            records.push(sqs_record(QUEUE_ARN, "m-reg", regulation, Some("dest-a")));
            records.push(sqs_message("m-bad", "not json {", "dest-b"));
        }
    }
    let failures = fakes::sqs_failures(&h, records).await;
    assert!(failures.is_empty(), "{failures:?}");

    let calls = h.clevertap.calls();
    let per_account = |account: &str| -> Vec<usize> {
        calls
            .iter()
            .filter(|c| c.account == account)
            .map(|c| c.events.iter().map(Vec::len).sum())
            .collect()
    };
    let a = per_account("ACC-A");
    let b = per_account("ACC-B");
    assert_eq!(a.iter().sum::<usize>(), 1600, "{a:?}");
    assert_eq!(b.iter().sum::<usize>(), 1400, "{b:?}");
    assert_eq!(a, [1000, 600], "dest-a's first 1000 records went ahead");
    assert!(a.iter().chain(&b).all(|&n| n <= 1000), "{a:?} {b:?}");
    // A message's events stay in one call: every dest-b call holds whole messages.
    assert_eq!(
        b,
        [994, 406],
        "dest-b's calls end before the message that would overflow"
    );
    assert_eq!(h.clevertap.deletes().len(), 1);
    let letters = h.dead_letters.sent();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].source_message_id.as_deref(), Some("m-bad"));

    let metrics = h.take_metrics();
    // dest-a: its events and the regulation's user.
    assert_eq!(metrics.per_destination["dest-a"].delivered, 1600 + 1);
    assert_eq!(metrics.per_destination["dest-b"].delivered, 1400);
    assert_eq!(metrics.per_destination["dest-b"].rejected, 1);
}
