//! Queue mode with fakes: what is queued, what is answered, what is dead-lettered, and that a
//! queued message delivers through the SQS path as any other message.

use crate::engine::MAX_USERS_PER_MESSAGE;
use crate::engine::fakes::{self, FakeHandler, FakeQueue, TOKEN, call_http, run_sqs};
use crate::lambda_events::{
    QUEUE_ARN, REQUEST_ID, http_request, sqs_record, with_string_attributes,
};
use crate::queue::QueuedMessage;
use serde_json::{Value, json};

const TRACK: &str = r#"{"type":"track","event":"Viewed","userId":"u-1","messageId":"e-1"}"#;
const IDENTIFY: &str = r#"{"type":"identify","userId":"u-2","messageId":"e-2"}"#;
/// An event the transform rejects: a type neither CleverTap nor RudderStack knows.
const UNSUPPORTED: &str = r#"{"type":" track ","userId":"u-3","messageId":"e-3"}"#;

async fn post(h: &FakeHandler, destination: &str, body: &str) -> (u16, Value, Value) {
    let auth = format!("Bearer {TOKEN}");
    call_http(
        h,
        http_request("POST", Some(destination), Some(&auth), Some(body)),
    )
    .await
}

/// The SQS record the queue function would receive for a queued message.
fn record_of(id: &str, m: &QueuedMessage) -> Value {
    with_string_attributes(sqs_record(QUEUE_ARN, id, &m.body, None), m.attributes())
}

#[tokio::test]
async fn events_are_queued_one_message_each_and_answered_202_without_calling_clevertap() {
    let (h, queue) = fakes::queue_handler(FakeQueue::default());
    let (status, body, response) =
        post(&h, "dest-a", &format!("[{TRACK},{UNSUPPORTED},{IDENTIFY}]")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["results"][0],
        json!({"index": 0, "messageId": "e-1", "status": "queued"})
    );
    assert_eq!(body["results"][1]["status"], "rejected");
    assert_eq!(body["results"][1]["code"], "unsupported_type");
    assert_eq!(body["results"][2]["status"], "queued");
    assert_eq!(
        (
            body["queued"].clone(),
            body["rejected"].clone(),
            body["retry"].clone()
        ),
        (json!(2), json!(1), json!(0))
    );
    assert!(response["headers"]["retry-after"].is_null());
    assert!(
        h.clevertap.calls().is_empty(),
        "queue mode never calls CleverTap"
    );

    let sent = queue.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].body, TRACK);
    assert_eq!(sent[1].body, IDENTIFY);
    for m in &sent {
        assert_eq!(m.destination_id, "dest-a");
        assert_eq!(m.source_request_id.as_deref(), Some(REQUEST_ID));
    }
    let letters = h.dead_letters.sent();
    assert_eq!(letters.len(), 1, "the rejected event is dead-lettered");
    assert_eq!(letters[0].body, UNSUPPORTED);
    assert_eq!(letters[0].destination_id.as_deref(), Some("dest-a"));
}

#[tokio::test]
async fn events_sqs_does_not_take_are_answered_for_a_retry_with_503() {
    let (h, queue) = fakes::queue_handler(FakeQueue {
        refuse_containing: Some("\"u-2\"".into()),
        ..FakeQueue::default()
    });
    let (status, body, response) = post(&h, "dest-a", &format!("[{TRACK},{IDENTIFY}]")).await;
    assert_eq!(status, 503, "{body}");
    assert!(response["headers"]["retry-after"].is_string());
    assert_eq!(body["results"][0]["status"], "queued");
    assert_eq!(body["results"][1]["status"], "retry");
    assert_eq!(body["results"][1]["code"], "enqueue_failed");
    assert_eq!(body["retry"], 1);
    assert_eq!(queue.sent().len(), 1);
    assert!(
        h.dead_letters.sent().is_empty(),
        "a retry is never dead-lettered"
    );

    let (broken, _) = fakes::queue_handler(FakeQueue {
        broken: true,
        ..FakeQueue::default()
    });
    let (status, body, _) = post(&broken, "dest-a", TRACK).await;
    assert_eq!(status, 503);
    assert_eq!(body["results"][0]["code"], "enqueue_failed");
}

#[tokio::test]
async fn queue_mode_without_a_queue_answers_every_event_for_a_retry() {
    let h = fakes::queue_handler_without_a_queue();
    let (status, body, _) = post(&h, "dest-a", TRACK).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["results"][0]["code"], "enqueue_failed");
    assert!(h.clevertap.calls().is_empty());
}

#[tokio::test]
async fn a_body_of_rejected_events_only_is_400_and_an_empty_one_is_202() {
    let (h, queue) = fakes::queue_handler(FakeQueue::default());
    let (status, body, _) = post(&h, "dest-a", &format!("[{UNSUPPORTED},1]")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["rejected"], 2);
    let (status, body, _) = post(&h, "dest-a", "[]").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["results"], json!([]));
    let (status, body, _) = post(&h, "dest-a", "not json at all").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_json");
    assert!(queue.sent().is_empty());
}

#[tokio::test]
async fn an_event_larger_than_an_sqs_message_is_rejected_event_too_large() {
    let (h, queue) = fakes::queue_handler(FakeQueue::default());
    let big = format!(
        r#"{{"type":"track","event":"Big","userId":"u-1","properties":{{"blob":"{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    let (status, body, _) = post(&h, "dest-a", &format!("[{big},{TRACK}]")).await;
    // Too large to queue, and too large for a dead letter too: its letter holds its start,
    // marked truncated, so the answer is final (issue 21: never a retry no retry can heal).
    assert!(status < 500, "{status} {body}");
    assert_eq!(body["results"][0]["status"], "rejected", "{body}");
    assert_eq!(body["results"][0]["code"], "event_too_large");
    assert_eq!(body["results"][1]["status"], "queued");
    assert_eq!(queue.sent().len(), 1);
}

#[tokio::test]
async fn a_regulation_is_queued_in_messages_of_at_most_100_users_and_bad_users_are_rejected() {
    let (h, queue) = fakes::queue_handler(FakeQueue::default());
    let mut users: Vec<Value> = (0..250)
        .map(|i| json!({"userId": format!("u-{i}")}))
        .collect();
    users.insert(3, json!({"email": "no-id@example.com"}));
    let regulation = json!({"regulationType": "suppress_with_delete",
                            "destinationIds": ["dest-a"], "users": users});
    let (status, body, _) = post(&h, "dest-a", &regulation.to_string()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["queued"], 250);
    assert_eq!(body["rejected"], 1);
    assert_eq!(body["results"][3]["code"], "missing_user_id");
    assert_eq!(
        body["results"][0],
        json!({"index": 0, "userId": "u-0", "status": "queued"})
    );
    let sent = queue.sent();
    let sizes: Vec<usize> = sent
        .iter()
        .map(|m| {
            let r: Value = serde_json::from_str(&m.body).unwrap();
            assert_eq!(r["destinationIds"], json!(["dest-a"]));
            assert_eq!(m.destination_id, "dest-a");
            r["users"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes, [MAX_USERS_PER_MESSAGE, MAX_USERS_PER_MESSAGE, 50]);
    assert!(
        h.clevertap.deletes().is_empty(),
        "nothing deleted by the webhook"
    );
    let letters = h.dead_letters.sent();
    assert_eq!(letters.len(), 1);
    let letter: Value = serde_json::from_str(&letters[0].body).unwrap();
    assert_eq!(letter["users"], json!([{"email": "no-id@example.com"}]));
}

#[tokio::test]
async fn a_regulation_naming_another_destination_is_403_and_nothing_is_queued() {
    let (h, queue) = fakes::queue_handler(FakeQueue::default());
    let regulation = json!({"regulationType": "suppress_with_delete",
                            "destinationIds": ["dest-a", "dest-b"], "users": [{"userId": "u-1"}]});
    let (status, body, _) = post(&h, "dest-a", &regulation.to_string()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "destination_not_allowed");
    assert!(queue.sent().is_empty());
    assert!(h.dead_letters.sent().is_empty());
}

#[tokio::test]
async fn queued_messages_are_delivered_by_the_queue_path_in_one_upload() {
    let (h, queue) = fakes::queue_handler(FakeQueue::default());
    for body in [TRACK, IDENTIFY, TRACK] {
        assert_eq!(post(&h, "dest-a", body).await.0, 202);
    }
    let records: Vec<Value> = queue
        .sent()
        .iter()
        .enumerate()
        .map(|(i, m)| record_of(&format!("m-{i}"), m))
        .collect();
    let failures = run_sqs(&h, records).await.unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    let calls = h.clevertap.calls();
    assert_eq!(calls.len(), 1, "one upload for the three queued events");
    assert_eq!(calls[0].account, "ACC-A");
    assert_eq!(calls[0].events.len(), 3);
}

#[tokio::test]
async fn items_past_max_items_per_body_are_one_rejected_range_and_the_others_are_queued() {
    let (mut h, queue) = fakes::queue_handler(FakeQueue::default());
    h.config.max_items_per_body = 2;
    let (status, body, _) = post(&h, "dest-a", &format!("[{TRACK},{TRACK},{TRACK}]")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["queued"], 2);
    assert_eq!(body["rejected"], 1);
    assert_eq!(body["unprocessed"]["from"], 2);
    assert_eq!(body["unprocessed"]["count"], 1);
    assert_eq!(body["unprocessed"]["code"], "too_many_items");
    assert_eq!(queue.sent().len(), 2);
    assert!(
        h.dead_letters.sent().is_empty(),
        "items past the bound are not dead-lettered"
    );
}

/// The length of the answer's body as Lambda returns it (the JSON text in `body`).
fn answer_bytes(response: &Value) -> usize {
    response["body"].as_str().map_or(usize::MAX, str::len)
}

#[tokio::test]
async fn a_queue_mode_answer_stays_under_the_bound_for_ten_thousand_escape_heavy_unsupported_types()
{
    let (h, queue) = fakes::queue_handler(FakeQueue::default());
    // Each type is unsupported and full of characters the answer must escape.
    let events: Vec<String> = (0..10_000)
        .map(|i| {
            json!({"type": format!("t\u{1}\"\\{i}{}", "\u{2}\"".repeat(20)),
                   "userId": "u", "messageId": format!("{}m-{i}", "\u{3}\"".repeat(25))})
            .to_string()
        })
        .collect();
    let (status, body, response) = post(&h, "dest-a", &format!("[{}]", events.join(","))).await;
    assert!(
        answer_bytes(&response) <= crate::sources::http::MAX_ANSWER_BYTES,
        "{} bytes",
        answer_bytes(&response)
    );
    // Unsupported types are filtered (RudderStack's processor drops them): nothing queued.
    assert_eq!(status, 202, "{}", body["codes"]);
    assert_eq!(body["filtered"], 10_000);
    assert_eq!(body["queued"], 0);
    assert_eq!(
        body["truncated"], true,
        "the full answer would be over 2 MB"
    );
    assert!(queue.sent().is_empty());
}

#[tokio::test]
async fn a_queue_mode_answer_stays_under_the_bound_for_a_hundred_thousand_empty_items() {
    let (mut h, queue) = fakes::queue_handler(FakeQueue::default());
    h.config.max_items_per_body = crate::config::MAX_ITEMS_PER_BODY_LIMIT;
    let text = format!("[{}]", vec!["{}"; 100_000].join(","));
    let (status, body, response) = post(&h, "dest-a", &text).await;
    assert!(
        answer_bytes(&response) <= crate::sources::http::MAX_ANSWER_BYTES,
        "{} bytes",
        answer_bytes(&response)
    );
    assert_eq!(status, 400, "{}", body["codes"]);
    assert_eq!(body["rejected"], 100_000);
    assert_eq!(body["truncated"], true);
    assert!(queue.sent().is_empty());
}
