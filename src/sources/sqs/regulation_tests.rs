//! SQS assembly of regulations with fakes: which users are deleted where, and what becomes of
//! each message (acked, dead-lettered with only its rejected users, or reported).

use crate::engine::fakes::{self, sqs_failures};
use crate::lambda_events::{FIFO_ARN, QUEUE_ARN, sqs_record};
use crate::outcome::Outcome;
use serde_json::{Value, json};
const TRACK: &str =
    r#"{"type":"track","event":"Order Completed","userId":"u-1","messageId":"e-1"}"#;

fn regulation(destinations: &[&str], users: &[Value]) -> String {
    let mut r = json!({"regulationType": "suppress_with_delete", "users": users});
    if !destinations.is_empty() {
        r["destinationIds"] = json!(destinations);
    }
    r.to_string()
}

fn users(ids: &[&str]) -> Vec<Value> {
    ids.iter().map(|id| json!({"userId": id})).collect()
}

#[tokio::test]
async fn a_regulation_deletes_its_users_in_the_message_destination_and_is_acked() {
    let h = fakes::handler();
    let body = regulation(&[], &users(&["u-1", "u-2"]));
    let failures = sqs_failures(
        &h,
        vec![sqs_record(QUEUE_ARN, "m-1", &body, Some("dest-a"))],
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    let deletes = h.clevertap.deletes();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].account, "ACC-A");
    assert_eq!(deletes[0].identities, ["u-1", "u-2"]);
    assert!(
        h.clevertap.calls().is_empty(),
        "a regulation uploads nothing"
    );
    assert!(h.dead_letters.sent().is_empty());
}

#[tokio::test]
async fn destination_ids_in_the_body_select_the_destinations_of_a_message_without_attribute() {
    let mut h = fakes::handler();
    h.config.default_destination_id =
        Some(crate::settings::DestinationId::parse("dest-other").unwrap());
    let body = regulation(&["dest-a", "dest-b"], &users(&["u-1"]));
    let failures = sqs_failures(&h, vec![sqs_record(QUEUE_ARN, "m-1", &body, None)]).await;
    assert!(failures.is_empty(), "{failures:?}");
    let mut accounts: Vec<String> = h
        .clevertap
        .deletes()
        .into_iter()
        .map(|d| d.account)
        .collect();
    accounts.sort();
    assert_eq!(accounts, ["ACC-A", "ACC-B"]);
    let mut fetched = h.settings_source.fetched.lock().unwrap().clone();
    fetched.sort();
    assert_eq!(
        fetched,
        ["dest-a", "dest-b"],
        "the default destination is not needed"
    );
}

#[tokio::test]
async fn a_regulation_naming_its_destinations_needs_no_attribute_nor_default() {
    let h = fakes::handler();
    let body = regulation(&["dest-b"], &users(&["u-1"]));
    let failures = sqs_failures(&h, vec![sqs_record(QUEUE_ARN, "m-1", &body, None)]).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(h.clevertap.deletes()[0].account, "ACC-B");
}

#[tokio::test]
async fn users_without_user_id_are_dead_lettered_alone_while_the_others_are_deleted() {
    let h = fakes::handler();
    let body = regulation(
        &[],
        &[
            json!({"userId": "u-1"}),
            json!({"email": "a@b.c"}),
            json!({"userId": "u-3"}),
        ],
    );
    let failures = sqs_failures(
        &h,
        vec![sqs_record(QUEUE_ARN, "m-1", &body, Some("dest-a"))],
    )
    .await;
    assert!(
        failures.is_empty(),
        "a rejection is dead-lettered, then acked"
    );
    assert_eq!(h.clevertap.deletes()[0].identities, ["u-1", "u-3"]);
    let sent = h.dead_letters.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].rejection_code, "missing_user_id");
    assert_eq!(sent[0].destination_id.as_deref(), Some("dest-a"));
    assert_eq!(sent[0].source_message_id.as_deref(), Some("m-1"));
    let letter: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(
        letter,
        json!({"regulationType": "suppress_with_delete", "users": [{"email": "a@b.c"}]})
    );
}

#[tokio::test]
async fn an_unknown_regulation_type_is_dead_lettered_as_it_came_and_nothing_is_deleted() {
    let h = fakes::handler();
    let body = r#"{"regulationType":"suppress","users":[{"userId":"u-1"}]}"#;
    let failures = sqs_failures(&h, vec![sqs_record(QUEUE_ARN, "m-1", body, Some("dest-a"))]).await;
    assert!(failures.is_empty());
    assert!(h.clevertap.deletes().is_empty());
    let sent = h.dead_letters.sent();
    assert_eq!(sent[0].rejection_code, "unsupported_regulation_type");
    assert_eq!(sent[0].body, body);
}

#[tokio::test]
async fn a_malformed_regulation_is_dead_lettered_with_invalid_regulation() {
    let h = fakes::handler();
    for (id, body) in [
        (
            "m-1",
            r#"{"regulationType":"suppress_with_delete","users":"u-1"}"#,
        ),
        (
            "m-2",
            r#"{"regulationType":"suppress_with_delete","users":[],"destinationIds":[1]}"#,
        ),
    ] {
        assert!(
            sqs_failures(&h, vec![sqs_record(QUEUE_ARN, id, body, Some("dest-a"))])
                .await
                .is_empty()
        );
    }
    let codes: Vec<String> = h
        .dead_letters
        .sent()
        .into_iter()
        .map(|l| l.rejection_code)
        .collect();
    assert_eq!(codes, ["invalid_regulation", "invalid_regulation"]);
    assert!(h.clevertap.deletes().is_empty());
}

#[tokio::test]
async fn a_failing_delete_in_one_named_destination_retries_the_message_and_dead_letters_nothing() {
    let h = fakes::handler_deleting(|account, _| {
        if account == "ACC-B" {
            Outcome::retry("clevertap_unavailable", "503")
        } else {
            Outcome::Delivered
        }
    });
    let body = regulation(
        &["dest-a", "dest-b"],
        &[json!({"userId": "u-1"}), json!({})],
    );
    let failures = sqs_failures(&h, vec![sqs_record(QUEUE_ARN, "m-1", &body, None)]).await;
    assert_eq!(failures, ["m-1"]);
    assert!(
        h.dead_letters.sent().is_empty(),
        "a retry is never dead-lettered"
    );
}

#[tokio::test]
async fn a_destination_without_a_secret_retries_the_regulation() {
    let h = fakes::handler();
    let body = regulation(&["dest-a", "dest-missing"], &users(&["u-1"]));
    let failures = sqs_failures(&h, vec![sqs_record(QUEUE_ARN, "m-1", &body, None)]).await;
    assert_eq!(failures, ["m-1"]);
    assert!(h.dead_letters.sent().is_empty());
}

#[tokio::test]
async fn a_rejected_delete_dead_letters_the_users_clevertap_refused() {
    let h = fakes::handler_deleting(|_, id| {
        if id == "bad" {
            Outcome::rejected("clevertap_bad_request", "400")
        } else {
            Outcome::Delivered
        }
    });
    let body = regulation(&[], &users(&["ok", "bad"]));
    assert!(
        sqs_failures(
            &h,
            vec![sqs_record(QUEUE_ARN, "m-1", &body, Some("dest-a"))]
        )
        .await
        .is_empty()
    );
    let sent = h.dead_letters.sent();
    assert_eq!(sent[0].rejection_code, "clevertap_bad_request");
    let letter: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(letter["users"], json!([{"userId": "bad"}]));
}

#[tokio::test]
async fn regulations_of_a_batch_share_one_delete_call_per_destination_beside_the_uploads() {
    let h = fakes::handler();
    let failures = sqs_failures(
        &h,
        vec![
            sqs_record(
                QUEUE_ARN,
                "m-1",
                &regulation(&[], &users(&["u-1"])),
                Some("dest-a"),
            ),
            sqs_record(QUEUE_ARN, "m-2", TRACK, Some("dest-a")),
            sqs_record(
                QUEUE_ARN,
                "m-3",
                &regulation(&[], &users(&["u-2", "u-3"])),
                Some("dest-a"),
            ),
        ],
    )
    .await;
    assert!(failures.is_empty());
    let deletes = h.clevertap.deletes();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].identities, ["u-1", "u-2", "u-3"]);
    assert_eq!(h.clevertap.calls().len(), 1);
}

#[tokio::test]
async fn a_regulation_inside_an_array_is_rejected_with_regulation_in_batch() {
    let h = fakes::handler();
    let body = format!("[{TRACK},{}]", regulation(&[], &users(&["u-1"])));
    assert!(
        sqs_failures(
            &h,
            vec![sqs_record(QUEUE_ARN, "m-1", &body, Some("dest-a"))]
        )
        .await
        .is_empty()
    );
    assert!(h.clevertap.deletes().is_empty());
    assert_eq!(
        h.dead_letters.sent()[0].rejection_code,
        "regulation_in_batch"
    );
}

#[tokio::test]
async fn fifo_stops_at_a_regulation_needing_a_retry_and_reports_every_later_message() {
    let h = fakes::handler_deleting(|_, _| Outcome::retry("clevertap_throttled", "429"));
    let failures = sqs_failures(
        &h,
        vec![
            sqs_record(FIFO_ARN, "f-1", TRACK, Some("dest-a")),
            sqs_record(
                FIFO_ARN,
                "f-2",
                &regulation(&[], &users(&["u-1"])),
                Some("dest-a"),
            ),
            sqs_record(FIFO_ARN, "f-3", TRACK, Some("dest-a")),
        ],
    )
    .await;
    assert_eq!(failures, ["f-2", "f-3"]);
    assert_eq!(h.clevertap.calls().len(), 1, "nothing after f-2 is sent");
    assert_eq!(h.clevertap.deletes().len(), 1);
}

/// A regulation whose delete of u-2 fails (a retry), with a visibility port that records.
async fn partly_deleted(
    visibility: crate::engine::fakes::FakeVisibility,
) -> (Vec<String>, crate::engine::fakes::FakeVisibility) {
    let h = fakes::handler_deleting(|_, identity| {
        if identity == "u-2" {
            Outcome::retry("clevertap_unavailable", "503")
        } else {
            Outcome::Delivered
        }
    })
    .with_visibility(visibility.clone());
    let body = regulation(&[], &users(&["u-1", "u-2", "u-3"]));
    let failures = sqs_failures(
        &h,
        vec![sqs_record(QUEUE_ARN, "m-1", &body, Some("dest-a"))],
    )
    .await;
    (failures, visibility)
}

#[tokio::test]
async fn a_regulation_partly_deleted_puts_its_other_users_back_on_its_queue_and_is_acked() {
    let (failures, visibility) = partly_deleted(fakes::FakeVisibility::default()).await;
    assert!(failures.is_empty(), "{failures:?}");
    let requeued = visibility.requeued();
    assert_eq!(requeued.len(), 1);
    let (_, message) = &requeued[0];
    assert_eq!(message.destination_id, "dest-a");
    let rest: Value = serde_json::from_str(&message.body).unwrap();
    assert_eq!(rest["users"], json!([{"userId": "u-2"}]));
    assert_eq!(rest["regulationType"], "suppress_with_delete");
}

#[tokio::test]
async fn when_the_rest_cannot_be_queued_the_regulation_comes_back_whole() {
    let (failures, visibility) = partly_deleted(fakes::FakeVisibility::broken()).await;
    assert_eq!(failures, ["m-1"]);
    assert!(visibility.requeued().is_empty());
}

#[tokio::test]
async fn a_fifo_regulation_partly_deleted_comes_back_soon_and_then_deletes_only_its_rest() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let visibility = fakes::FakeVisibility::default();
    let down = Arc::new(AtomicBool::new(true));
    let failing = down.clone();
    let h = fakes::handler_deleting(move |_, identity| {
        if identity != "u-1" && failing.load(Ordering::SeqCst) {
            Outcome::retry("clevertap_unavailable", "503")
        } else {
            Outcome::Delivered
        }
    })
    .with_visibility(visibility.clone());
    let body = regulation(&[], &users(&["u-1", "u-2", "u-3"]));
    let record = |id: &str| sqs_record(FIFO_ARN, id, &body, Some("dest-a"));
    let identities = |h: &fakes::FakeHandler, from: usize| -> Vec<String> {
        h.clevertap.deletes()[from..]
            .iter()
            .flat_map(|d| d.identities.clone())
            .collect()
    };

    assert_eq!(sqs_failures(&h, vec![record("m-1")]).await, ["m-1"]);
    assert!(
        visibility.requeued().is_empty(),
        "FIFO: no message of its own"
    );
    assert_eq!(identities(&h, 0), ["u-1", "u-2", "u-3"]);
    // It made progress: the short fixed timeout, not an outage's 20 minutes.
    let changes = visibility.changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].1.timeout_seconds, 60, "{changes:?}");

    // Received again, still failing: nothing new deleted, so it backs off.
    let calls = h.clevertap.deletes().len();
    assert_eq!(sqs_failures(&h, vec![record("m-1")]).await, ["m-1"]);
    assert_eq!(
        identities(&h, calls),
        ["u-2", "u-3"],
        "u-1 is not deleted again"
    );
    let timeout = visibility.changes()[1].1.timeout_seconds;
    assert!((900..=1200).contains(&timeout), "{timeout}");

    // CleverTap is back: the rest is deleted and the message acked.
    down.store(false, Ordering::SeqCst);
    let calls = h.clevertap.deletes().len();
    assert!(sqs_failures(&h, vec![record("m-1")]).await.is_empty());
    assert_eq!(identities(&h, calls), ["u-2", "u-3"]);
    assert!(h.dead_letters.sent().is_empty());

    // Finished: forgotten; another message of the same body is another regulation.
    let calls = h.clevertap.deletes().len();
    assert!(sqs_failures(&h, vec![record("m-2")]).await.is_empty());
    assert_eq!(identities(&h, calls), ["u-1", "u-2", "u-3"]);
}
