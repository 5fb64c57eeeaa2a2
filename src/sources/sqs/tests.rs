//! SQS assembly with fakes: which messages are acked, dead-lettered or reported.

use crate::engine::fakes::{self, FakeCleverTap, FakeDeadLetters, run_sqs};
use crate::handler::{Handler, HandlerError};
use crate::lambda_events::{
    FIFO_ARN, MESSAGE_GROUP_ID, QUEUE_ARN, sqs_record, sqs_record_in_group, with_string_attributes,
};
use crate::outcome::Outcome;
use crate::settings::DestinationId;
use serde_json::{Value, json};

const TRACK: &str = r#"{"type":"track","event":"Order Completed","userId":"u-1","messageId":"e-1","properties":{"revenue":10}}"#;
const IDENTIFY: &str =
    r#"{"type":"identify","userId":"u-2","messageId":"e-2","traits":{"email":"ana@example.com"}}"#;
/// An event the transform rejects: a type neither CleverTap nor RudderStack knows.
const UNSUPPORTED: &str = r#"{"type":" track ","userId":"u-3","messageId":"e-3","groupId":"g-1"}"#;
const NO_IDS: &str = r#"{"type":"track","event":"Viewed","messageId":"e-4"}"#;

fn failing_account(account: &'static str) -> FakeCleverTap {
    FakeCleverTap::answering(move |acc, _| {
        if acc == account {
            Outcome::retry("clevertap_unavailable", "503")
        } else {
            Outcome::Delivered
        }
    })
}

#[tokio::test]
async fn a_batch_across_two_destinations_makes_one_upload_per_destination_and_reports_nothing() {
    let h = fakes::handler();
    let failures = run_sqs(
        &h,
        vec![
            sqs_record(QUEUE_ARN, "m-1", TRACK, Some("dest-a")),
            sqs_record(QUEUE_ARN, "m-2", IDENTIFY, Some("dest-b")),
            sqs_record(
                QUEUE_ARN,
                "m-3",
                &format!("[{TRACK},{IDENTIFY}]"),
                Some("dest-a"),
            ),
        ],
    )
    .await
    .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    let calls = h.clevertap.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let a = calls.iter().find(|c| c.account == "ACC-A").unwrap();
    let b = calls.iter().find(|c| c.account == "ACC-B").unwrap();
    assert_eq!(a.events.len(), 3);
    assert_eq!(b.events.len(), 1);
    assert!(h.dead_letters.sent().is_empty());
}

#[tokio::test]
async fn settings_are_fetched_once_per_destination_of_a_batch() {
    let h = fakes::handler();
    run_sqs(
        &h,
        vec![
            sqs_record(QUEUE_ARN, "m-1", TRACK, Some("dest-a")),
            sqs_record(QUEUE_ARN, "m-2", TRACK, Some("dest-a")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(*h.settings_source.fetched.lock().unwrap(), ["dest-a"]);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_dead_lettered_as_it_came_and_acked() {
    let h = fakes::handler();
    let failures = run_sqs(
        &h,
        vec![
            sqs_record(QUEUE_ARN, "m-bad", "not json {", Some("dest-a")),
            sqs_record(QUEUE_ARN, "m-ok", TRACK, Some("dest-a")),
        ],
    )
    .await
    .unwrap();
    assert!(failures.is_empty());
    let sent = h.dead_letters.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, "not json {");
    assert_eq!(sent[0].rejection_code, "invalid_json");
    assert_eq!(sent[0].source_message_id.as_deref(), Some("m-bad"));
    assert_eq!(sent[0].destination_id.as_deref(), Some("dest-a"));
    assert_eq!(h.clevertap.calls()[0].events.len(), 1);
}

#[tokio::test]
async fn an_empty_body_is_rejected_with_code_empty_body() {
    let h = fakes::handler();
    run_sqs(&h, vec![sqs_record(QUEUE_ARN, "m-1", "", Some("dest-a"))])
        .await
        .unwrap();
    let sent = h.dead_letters.sent();
    assert_eq!(sent[0].rejection_code, "empty_body");
    assert!(h.clevertap.calls().is_empty());
}

#[tokio::test]
async fn only_the_rejected_events_of_a_message_are_dead_lettered_and_the_rest_delivered() {
    let h = fakes::handler();
    let body = format!("[{TRACK},{UNSUPPORTED},{NO_IDS}]");
    let failures = run_sqs(
        &h,
        vec![sqs_record(QUEUE_ARN, "m-1", &body, Some("dest-a"))],
    )
    .await
    .unwrap();
    assert!(failures.is_empty());
    assert_eq!(h.clevertap.calls()[0].events.len(), 1);
    let sent = h.dead_letters.sent();
    assert_eq!(sent.len(), 1);
    let body: Value = serde_json::from_str(&sent[0].body).unwrap();
    let expected: Value = serde_json::from_str(&format!("[{UNSUPPORTED},{NO_IDS}]")).unwrap();
    assert_eq!(body, expected);
    assert!(sent[0].rejection_message.starts_with("2 events rejected"));
}

#[tokio::test]
async fn a_message_with_one_rejected_event_dead_letters_that_event_alone() {
    let h = fakes::handler();
    run_sqs(
        &h,
        vec![sqs_record(QUEUE_ARN, "m-1", UNSUPPORTED, Some("dest-a"))],
    )
    .await
    .unwrap();
    let sent = h.dead_letters.sent();
    assert_eq!(sent[0].body, UNSUPPORTED);
    assert!(!sent[0].rejection_code.is_empty());
}

#[tokio::test]
async fn a_message_without_any_destination_is_retried_with_code_no_destination() {
    let h = fakes::handler();
    let failures = run_sqs(&h, vec![sqs_record(QUEUE_ARN, "m-1", TRACK, None)])
        .await
        .unwrap();
    assert_eq!(failures, ["m-1"]);
    assert!(h.dead_letters.sent().is_empty());
    assert!(h.clevertap.calls().is_empty());
}

#[tokio::test]
async fn the_default_destination_serves_messages_without_the_attribute() {
    let mut h = fakes::handler();
    h.config.default_destination_id = Some(DestinationId::parse("dest-b").unwrap());
    let failures = run_sqs(&h, vec![sqs_record(QUEUE_ARN, "m-1", TRACK, None)])
        .await
        .unwrap();
    assert!(failures.is_empty());
    assert_eq!(h.clevertap.calls()[0].account, "ACC-B");
}

#[tokio::test]
async fn an_invalid_destination_id_is_rejected_and_dead_lettered_with_the_attribute_copied() {
    let h = fakes::handler();
    let failures = run_sqs(
        &h,
        vec![sqs_record(QUEUE_ARN, "m-1", TRACK, Some("../etc"))],
    )
    .await
    .unwrap();
    assert!(failures.is_empty());
    let sent = h.dead_letters.sent();
    assert_eq!(sent[0].rejection_code, "invalid_destination_id");
    assert_eq!(sent[0].destination_id.as_deref(), Some("../etc"));
    assert_eq!(sent[0].body, TRACK);
}

#[tokio::test]
async fn a_missing_secret_retries_its_messages_and_dead_letters_nothing() {
    let h = fakes::handler();
    let failures = run_sqs(
        &h,
        vec![
            sqs_record(QUEUE_ARN, "m-1", TRACK, Some("dest-missing")),
            sqs_record(QUEUE_ARN, "m-2", "not json", Some("dest-missing")),
            sqs_record(QUEUE_ARN, "m-3", TRACK, Some("dest-a")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["m-1", "m-2"]);
    assert!(h.dead_letters.sent().is_empty());
    assert_eq!(h.clevertap.calls().len(), 1);
}

#[tokio::test]
async fn delivery_retries_are_reported_per_message() {
    let mut h = fakes::handler();
    h.clevertap = failing_account("ACC-B");
    let failures = run_sqs(
        &h,
        vec![
            sqs_record(QUEUE_ARN, "m-1", TRACK, Some("dest-a")),
            sqs_record(QUEUE_ARN, "m-2", TRACK, Some("dest-b")),
            sqs_record(
                QUEUE_ARN,
                "m-3",
                &format!("[{TRACK},{UNSUPPORTED}]"),
                Some("dest-b"),
            ),
        ],
    )
    .await
    .unwrap();
    // m-3 has a rejected and a retry event: retry is worse, so it comes back whole.
    assert_eq!(failures, ["m-2", "m-3"]);
    assert!(h.dead_letters.sent().is_empty());
}

#[tokio::test]
async fn credentials_rejected_by_clevertap_drop_the_cached_settings() {
    let mut h = fakes::handler();
    h.clevertap = FakeCleverTap::answering(|_, _| Outcome::retry("unauthorized", "401"));
    h.clevertap.credentials_rejected = true;
    run_sqs(
        &h,
        vec![sqs_record(QUEUE_ARN, "m-1", TRACK, Some("dest-a"))],
    )
    .await
    .unwrap();
    assert_eq!(*h.settings_source.invalidated.lock().unwrap(), ["dest-a"]);
}

#[tokio::test]
async fn a_rejected_message_whose_dead_letter_fails_is_reported_for_a_retry() {
    let mut h = fakes::handler();
    h.dead_letters = FakeDeadLetters {
        broken: true,
        ..FakeDeadLetters::default()
    };
    let failures = run_sqs(
        &h,
        vec![
            sqs_record(QUEUE_ARN, "m-1", "oops", Some("dest-a")),
            sqs_record(QUEUE_ARN, "m-2", TRACK, Some("dest-a")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["m-1"]);
}

#[tokio::test]
async fn a_rejected_message_whose_dead_letter_fails_counts_and_logs_as_retry_dead_letter_failed() {
    let mut h = fakes::handler();
    h.dead_letters = FakeDeadLetters {
        broken: true,
        ..FakeDeadLetters::default()
    };
    let failures = run_sqs(
        &h,
        vec![
            sqs_record(
                QUEUE_ARN,
                "m-1",
                &format!("[{TRACK},{UNSUPPORTED}]"),
                Some("dest-a"),
            ),
            sqs_record(QUEUE_ARN, "m-2", TRACK, Some("dest-a")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["m-1"]);
    let a = &h.take_metrics().per_destination["dest-a"];
    assert_eq!(
        (a.delivered, a.rejected, a.retried, a.dead_lettered),
        (2, 0, 1, 0),
        "the group event is a retry, not a rejection"
    );
}

#[tokio::test]
async fn rejected_events_over_one_letter_are_split_into_letters_and_the_message_acked() {
    let big = |i: usize| {
        format!(
            r#"{{"type":" track ","userId":"u","messageId":"g-{i}","pad":"{}"}}"#,
            "x".repeat(100 * 1024)
        )
    };
    let body = format!("[{TRACK},{},{},{}]", big(1), big(2), big(3));
    let h = fakes::handler();
    let failures = run_sqs(
        &h,
        vec![sqs_record(QUEUE_ARN, "m-1", &body, Some("dest-a"))],
    )
    .await
    .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    let sent = h.dead_letters.sent();
    assert_eq!(sent.len(), 2, "two 100 KiB events fit in one letter");
    let ids: Vec<String> = sent
        .iter()
        .flat_map(|l| match serde_json::from_str::<Value>(&l.body).unwrap() {
            Value::Array(events) => events,
            one => vec![one],
        })
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["g-1", "g-2", "g-3"]);
    assert!(
        sent.iter()
            .all(|l| l.source_message_id.as_deref() == Some("m-1"))
    );
    let a = &h.take_metrics().per_destination["dest-a"];
    assert_eq!((a.delivered, a.rejected, a.dead_lettered), (1, 3, 3));
}

#[tokio::test]
async fn only_the_message_whose_letter_is_refused_is_retried() {
    let mut h = fakes::handler();
    h.dead_letters = FakeDeadLetters::refusing(|l| l.source_message_id.as_deref() == Some("m-1"));
    let failures = run_sqs(
        &h,
        vec![
            sqs_record(QUEUE_ARN, "m-1", UNSUPPORTED, Some("dest-a")),
            sqs_record(QUEUE_ARN, "m-2", "oops", Some("dest-a")),
            sqs_record(QUEUE_ARN, "m-3", TRACK, Some("dest-a")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["m-1"]);
    let sent = h.dead_letters.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].source_message_id.as_deref(), Some("m-2"));
}

#[tokio::test]
async fn a_rejected_regulation_whose_dead_letter_fails_is_retried() {
    let mut h = fakes::handler();
    h.dead_letters = FakeDeadLetters {
        broken: true,
        ..FakeDeadLetters::default()
    };
    let regulation = r#"{"regulationType":"suppress_with_delete","users":[{"userId":"u-1"},{}]}"#;
    let failures = run_sqs(
        &h,
        vec![sqs_record(QUEUE_ARN, "m-1", regulation, Some("dest-a"))],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["m-1"]);
    let a = &h.take_metrics().per_destination["dest-a"];
    assert_eq!((a.delivered, a.rejected, a.retried), (1, 0, 1));
}

#[tokio::test]
async fn without_a_dead_letter_queue_rejected_messages_are_reported_for_a_retry() {
    let h = Handler::new(
        crate::config::Config::default(),
        fakes::FakeSettings::with(&[("dest-a", &fakes::settings_json("ACC-A", true))]),
        FakeCleverTap::delivering(),
        None::<FakeDeadLetters>,
    );
    let ids = run_sqs(
        &h,
        vec![
            sqs_record(QUEUE_ARN, "m-1", "oops", Some("dest-a")),
            sqs_record(QUEUE_ARN, "m-2", TRACK, Some("dest-a")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(ids, ["m-1"]);
}

#[tokio::test]
async fn a_record_that_is_not_an_sqs_message_is_retried_alone() {
    let h = fakes::handler();
    let mut broken = sqs_record(QUEUE_ARN, "m-1", TRACK, Some("dest-a"));
    broken["body"] = json!(5);
    let failures = run_sqs(
        &h,
        vec![broken, sqs_record(QUEUE_ARN, "m-2", TRACK, Some("dest-a"))],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["m-1"]);
}

#[tokio::test]
async fn a_retry_of_a_message_without_message_id_fails_the_whole_batch_rather_than_lose_it() {
    let h = fakes::handler();
    let mut nameless = sqs_record(QUEUE_ARN, "x", TRACK, None);
    nameless.as_object_mut().unwrap().remove("messageId");
    let err = run_sqs(
        &h,
        vec![
            nameless,
            sqs_record(QUEUE_ARN, "m-2", TRACK, Some("dest-a")),
        ],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HandlerError::UnreportableFailure));
}

#[tokio::test]
async fn a_batch_with_a_nameless_message_fails_before_anything_is_sent_or_dead_lettered() {
    // Even a message that would be delivered: had anything else of the batch needed a retry,
    // the whole batch would come again, so nothing may be sent before that is known.
    let h = fakes::handler();
    let mut nameless = sqs_record(QUEUE_ARN, "x", TRACK, Some("dest-a"));
    nameless.as_object_mut().unwrap().remove("messageId");
    let err = run_sqs(
        &h,
        vec![
            sqs_record(QUEUE_ARN, "m-1", TRACK, Some("dest-a")),
            sqs_record(QUEUE_ARN, "m-2", "oops", Some("dest-a")),
            nameless,
        ],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HandlerError::UnreportableFailure));
    assert!(h.clevertap.calls().is_empty(), "nothing uploaded");
    assert!(h.dead_letters.sent().is_empty(), "nothing dead-lettered");
    assert!(h.settings_source.fetched.lock().unwrap().is_empty());
}

#[tokio::test]
async fn fifo_messages_go_one_upload_at_a_time_in_order() {
    let h = fakes::handler();
    let failures = run_sqs(
        &h,
        vec![
            sqs_record(FIFO_ARN, "m-1", TRACK, Some("dest-a")),
            sqs_record(FIFO_ARN, "m-2", IDENTIFY, Some("dest-a")),
        ],
    )
    .await
    .unwrap();
    assert!(failures.is_empty());
    let calls = h.clevertap.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].events[0][0].contains("Charged"), "{calls:?}");
}

#[tokio::test]
async fn fifo_stops_at_the_first_retry_and_reports_it_and_every_later_message() {
    let mut h = fakes::handler();
    h.clevertap = failing_account("ACC-B");
    let failures = run_sqs(
        &h,
        vec![
            sqs_record(FIFO_ARN, "m-1", TRACK, Some("dest-a")),
            sqs_record(FIFO_ARN, "m-2", TRACK, Some("dest-b")),
            sqs_record(FIFO_ARN, "m-3", TRACK, Some("dest-a")),
            sqs_record(FIFO_ARN, "m-4", "oops", Some("dest-a")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["m-2", "m-3", "m-4"]);
    assert_eq!(h.clevertap.calls().len(), 2, "nothing after m-2 is sent");
    assert!(h.dead_letters.sent().is_empty(), "m-4 was never judged");
}

#[tokio::test]
async fn fifo_dead_letters_keep_the_source_group() {
    let h = fakes::handler();
    let failures = run_sqs(
        &h,
        vec![sqs_record(FIFO_ARN, "m-1", "oops", Some("dest-a"))],
    )
    .await
    .unwrap();
    assert!(failures.is_empty());
    assert_eq!(
        h.dead_letters.sent()[0].message_group_id.as_deref(),
        Some(MESSAGE_GROUP_ID)
    );
}

#[tokio::test]
async fn fifo_a_failed_dead_letter_reports_every_later_message_even_delivered_ones() {
    let mut h = fakes::handler();
    h.dead_letters = FakeDeadLetters {
        broken: true,
        ..FakeDeadLetters::default()
    };
    let failures = run_sqs(
        &h,
        vec![
            sqs_record(FIFO_ARN, "m-1", TRACK, Some("dest-a")),
            sqs_record(FIFO_ARN, "m-2", "oops", Some("dest-a")),
            sqs_record(FIFO_ARN, "m-3", TRACK, Some("dest-a")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["m-2", "m-3"]);
}

/// A FIFO record in `group`, routed to `destination`.
fn in_group(id: &str, body: &str, destination: &str, group: Option<&str>) -> Value {
    sqs_record_in_group(FIFO_ARN, id, body, Some(destination), group)
}

#[tokio::test]
async fn fifo_a_retry_blocks_only_the_later_messages_of_its_own_group() {
    let mut h = fakes::handler();
    h.clevertap = failing_account("ACC-B");
    let failures = run_sqs(
        &h,
        vec![
            in_group("a-1", TRACK, "dest-b", Some("A")),
            in_group("b-1", TRACK, "dest-a", Some("B")),
            in_group("a-2", IDENTIFY, "dest-a", Some("A")),
            in_group("b-2", IDENTIFY, "dest-a", Some("B")),
            in_group("a-3", "oops", "dest-a", Some("A")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["a-1", "a-2", "a-3"], "group B goes on");
    let calls = h.clevertap.calls();
    let sent: Vec<&str> = calls.iter().map(|c| c.account.as_str()).collect();
    assert_eq!(sent, ["ACC-B", "ACC-A", "ACC-A"], "a-1, then b-1 and b-2");
    assert!(calls[1].events[0][0].contains("Charged"), "b-1 before b-2");
    assert!(h.dead_letters.sent().is_empty(), "a-3 was never judged");
}

#[tokio::test]
async fn fifo_a_failed_dead_letter_blocks_only_the_later_messages_of_its_own_group() {
    let mut h = fakes::handler();
    h.dead_letters = FakeDeadLetters {
        broken: true,
        ..FakeDeadLetters::default()
    };
    let failures = run_sqs(
        &h,
        vec![
            in_group("a-1", "oops", "dest-a", Some("A")),
            in_group("b-1", TRACK, "dest-a", Some("B")),
            in_group("a-2", TRACK, "dest-a", Some("A")),
            in_group("b-2", IDENTIFY, "dest-a", Some("B")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["a-1", "a-2"], "a-2 comes again after a-1");
    assert_eq!(h.clevertap.calls().len(), 3, "b-1, a-2 and b-2 were sent");
}

#[tokio::test]
async fn fifo_messages_without_a_group_id_are_one_group() {
    let mut h = fakes::handler();
    h.clevertap = failing_account("ACC-B");
    let failures = run_sqs(
        &h,
        vec![
            in_group("n-1", TRACK, "dest-b", None),
            in_group("g-1", TRACK, "dest-a", Some("G")),
            in_group("n-2", TRACK, "dest-a", None),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["n-1", "n-2"]);
    assert_eq!(h.clevertap.calls().len(), 2, "n-1 and g-1");
}

#[tokio::test]
async fn fifo_a_record_that_is_not_an_sqs_message_blocks_only_its_own_group() {
    let h = fakes::handler();
    let mut broken = in_group("a-1", TRACK, "dest-a", Some("A"));
    broken["body"] = json!(42);
    let failures = run_sqs(
        &h,
        vec![
            broken,
            in_group("b-1", TRACK, "dest-a", Some("B")),
            in_group("a-2", TRACK, "dest-a", Some("A")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures, ["a-1", "a-2"]);
    assert_eq!(h.clevertap.calls().len(), 1, "b-1 alone");
}

#[test]
fn fifo_failures_spread_to_the_rest_of_their_group_only() {
    let groups = [
        Some("A"),
        Some("B"),
        None,
        Some("A"),
        Some("B"),
        None,
        Some("C"),
    ];
    let mut failed = [false, true, false, false, false, false, false];
    super::fail_the_rest_of_each_group(&groups, &mut failed);
    assert_eq!(failed, [false, true, false, false, true, false, false]);
    let mut failed = [false, false, true, false, false, false, true];
    super::fail_the_rest_of_each_group(&groups, &mut failed);
    assert_eq!(failed, [false, false, true, false, false, true, true]);
}

#[tokio::test]
async fn a_batch_item_failure_never_has_an_empty_identifier() {
    let h = fakes::handler();
    let failures = run_sqs(&h, vec![sqs_record(QUEUE_ARN, "", TRACK, None)]).await;
    assert!(matches!(failures, Err(HandlerError::UnreportableFailure)));
}

#[tokio::test]
async fn each_invocation_counts_events_per_destination_for_the_metrics() {
    let h = fakes::handler();
    run_sqs(
        &h,
        vec![
            sqs_record(
                QUEUE_ARN,
                "m-1",
                &format!("[{TRACK},{UNSUPPORTED}]"),
                Some("dest-a"),
            ),
            sqs_record(QUEUE_ARN, "m-2", TRACK, Some("dest-b")),
            sqs_record(QUEUE_ARN, "m-3", TRACK, None),
        ],
    )
    .await
    .unwrap();
    let m = h.take_metrics();
    let a = &m.per_destination["dest-a"];
    assert_eq!((a.delivered, a.rejected, a.dead_lettered), (1, 1, 1));
    assert_eq!(m.per_destination["dest-b"].delivered, 1);
    assert_eq!(m.per_destination["-"].retried, 1);
    assert!(h.take_metrics().per_destination.is_empty(), "taken once");
}

#[tokio::test]
async fn a_one_line_body_that_only_looks_like_an_event_gets_the_reason_of_a_body_that_is_not_json()
{
    let h = fakes::handler();
    let body = r#"{"type":"track","userId":"u-1" oops}"#;
    let failures = run_sqs(&h, vec![sqs_record(QUEUE_ARN, "m-1", body, Some("dest-a"))])
        .await
        .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    let letters = h.dead_letters.sent();
    assert_eq!(letters.len(), 1);
    let expected = crate::input::split_body(body).unwrap_err();
    assert_eq!(letters[0].rejection_code, expected.code);
    assert_eq!(letters[0].rejection_message, expected.message);
    assert_eq!(letters[0].body, body);
    assert!(h.clevertap.calls().is_empty());
}

#[tokio::test]
async fn a_message_marked_as_one_event_is_that_event_whatever_members_it_holds() {
    let h = fakes::handler();
    let regulation_like = r#"{"type":"track","event":"Viewed","userId":"u-1","messageId":"e-1","regulationType":"suppress_with_delete","users":[{"userId":"u1"}]}"#;
    let batch_like = r#"{"type":"track","event":"Viewed","userId":"u-2","messageId":"e-2","batch":[{"type":"track","event":"Inner","userId":"u-9","messageId":"e-9"}]}"#;
    let marked = |id: &str, body: &str| {
        with_string_attributes(
            sqs_record(QUEUE_ARN, id, body, Some("dest-a")),
            [("bodyForm", "event")],
        )
    };
    let failures = run_sqs(
        &h,
        vec![
            marked("m-1", regulation_like),
            marked("m-2", batch_like),
            marked("m-3", "[1,2]"),
        ],
    )
    .await
    .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(h.clevertap.deletes().is_empty(), "nothing deleted");
    let calls = h.clevertap.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].events.len(), 2, "the two outer events only");
    assert!(
        calls[0]
            .events
            .iter()
            .flatten()
            .all(|r| !r.contains("Inner")),
        "{calls:?}"
    );
    // A marked body that is not an object is one rejected item, not an array of two.
    let letters = h.dead_letters.sent();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].rejection_code, "not_an_object");
}

/// CleverTap for `account` answers only at the deadline (a hanging account); the others answer
/// at once while there is time left before the safety margin.
struct HangingAccount(&'static str);

impl crate::ports::CleverTapApi for HangingAccount {
    async fn upload(
        &self,
        settings: &crate::settings::DestinationSettings,
        events: &[&[crate::transform::Record]],
        deadline: tokio::time::Instant,
    ) -> crate::delivery::DeliveryReport {
        let outcome = if settings.account_id == self.0 {
            tokio::time::sleep_until(deadline).await;
            Outcome::retry("clevertap_timeout", "no answer before the deadline")
        } else if tokio::time::Instant::now() + std::time::Duration::from_secs(3) >= deadline {
            Outcome::retry("retry_budget_exhausted", "no time left to send")
        } else {
            Outcome::Delivered
        };
        crate::delivery::DeliveryReport {
            outcomes: vec![outcome; events.len()],
            ..Default::default()
        }
    }

    async fn delete(
        &self,
        _settings: &crate::settings::DestinationSettings,
        identities: &[&str],
        _deadline: tokio::time::Instant,
    ) -> crate::delivery::DeliveryReport {
        crate::delivery::DeliveryReport {
            outcomes: vec![Outcome::Delivered; identities.len()],
            ..Default::default()
        }
    }
}

#[tokio::test(start_paused = true)]
async fn fifo_groups_go_at_the_same_time_so_a_hanging_account_delays_no_other_group() {
    let h = Handler::new(
        crate::config::Config::default(),
        fakes::FakeSettings::with(&[
            ("dest-a", &fakes::settings_json("ACC-A", true)),
            ("dest-b", &fakes::settings_json("ACC-B", false)),
        ]),
        HangingAccount("ACC-B"),
        FakeDeadLetters::default(),
    );
    let failures = run_sqs(
        &h,
        vec![
            in_group("m-a1", TRACK, "dest-b", Some("g-a1")),
            in_group("m-a2", TRACK, "dest-b", Some("g-a2")),
            in_group("m-b1", TRACK, "dest-a", Some("g-b1")),
        ],
    )
    .await
    .unwrap();
    // One after another, the two hanging messages used the whole invocation and the healthy
    // one was never sent.
    assert_eq!(
        failures,
        ["m-a1", "m-a2"],
        "the healthy group's message is delivered"
    );
}
