//! The origin rule (docs/contracts.md §3, "Origin"): a message that carries a `destinationId`
//! attribute acts on that destination only. Events always do; this is where a regulation that
//! names other destinations in `destinationIds` is refused (`destination_not_allowed`, rejected:
//! dead-lettered as it came, nothing deleted, no other destination's secret read).
//!
//! Why: everything this function writes on behalf of a webhook caller (a dead letter of a
//! request, an event or regulation queued in queue mode) carries the authenticated destination
//! as `destinationId`, and SQS keeps attributes when a message is redriven. So a holder of
//! destination A's token can never act on destination B, not even through a dead letter of
//! theirs redriven into the queue. A regulation for several destinations is sent by a trusted
//! producer (one allowed `sqs:SendMessage` on the queue) without the attribute.

use super::decode::Message;
use crate::codes;
use crate::input::Body;
use crate::outcome::{Outcome, Reason};

/// The body a message may act on: a regulation naming a destination other than the message's
/// own `destinationId` attribute becomes a rejection of the whole message.
pub(super) fn scope<'a>(
    message: &Message,
    body: Result<Body<'a>, Reason>,
) -> Result<Body<'a>, Reason> {
    let Ok(Body::Regulation(regulation)) = &body else {
        return body;
    };
    // The attribute is there when it was read as a String, and also when it was there but
    // unusable (not a String, not a valid id: the message is rejected for that).
    let has_attribute = message.destination_attr.is_some()
        || matches!(message.destination, Err(Outcome::Rejected(_)));
    if !has_attribute {
        return body;
    }
    let own = message.destination.as_ref().ok();
    match regulation
        .destination_ids
        .iter()
        .find(|named| Some(*named) != own)
    {
        None => body,
        Some(other) => {
            let own = message.destination_attr.as_deref().unwrap_or("");
            tracing::warn!(
                message_id = message.id.as_deref().unwrap_or(""),
                destination = own,
                named = %other,
                code = codes::DESTINATION_NOT_ALLOWED,
                "regulation refused: it names a destination other than its message's destinationId"
            );
            Err(Reason::new(
                codes::DESTINATION_NOT_ALLOWED,
                format!(
                    "destinationIds names {other}: a message with a destinationId attribute \
                     ({own}) may only act on that destination"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::dead_letters::letter::DeadLetter;
    use crate::engine::fakes::{self, FakeHandler, TOKEN, call_http, sqs_failures};
    use crate::lambda_events::{QUEUE_ARN, http_request, sqs_record, with_string_attributes};
    use serde_json::{Value, json};

    fn regulation(destinations: &[&str]) -> String {
        json!({"regulationType": "suppress_with_delete", "destinationIds": destinations,
               "users": [{"userId": "victim-1"}]})
        .to_string()
    }

    /// The SQS record of a dead letter moved back to the source queue, attributes and all.
    fn redriven(id: &str, letter: &DeadLetter) -> Value {
        with_string_attributes(
            sqs_record(QUEUE_ARN, id, &letter.body, None),
            letter.attributes(),
        )
    }

    fn fetched(h: &FakeHandler) -> Vec<String> {
        h.settings_source.fetched.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn a_regulation_naming_another_destination_than_its_attribute_is_refused_and_dead_lettered()
     {
        let h = fakes::handler();
        let body = regulation(&["dest-b"]);
        let failures = sqs_failures(
            &h,
            vec![sqs_record(QUEUE_ARN, "m-1", &body, Some("dest-a"))],
        )
        .await;
        assert!(failures.is_empty(), "rejected: dead-lettered, then acked");
        assert!(h.clevertap.deletes().is_empty(), "nothing deleted anywhere");
        assert!(
            !fetched(&h).contains(&"dest-b".to_owned()),
            "B's secret is not even read"
        );
        let letters = h.dead_letters.sent();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].rejection_code, "destination_not_allowed");
        assert_eq!(letters[0].body, body, "as it came");
        assert_eq!(letters[0].destination_id.as_deref(), Some("dest-a"));
    }

    #[tokio::test]
    async fn a_regulation_naming_only_its_own_destination_is_carried_out() {
        let h = fakes::handler();
        let failures = sqs_failures(
            &h,
            vec![sqs_record(
                QUEUE_ARN,
                "m-1",
                &regulation(&["dest-a"]),
                Some("dest-a"),
            )],
        )
        .await;
        assert!(failures.is_empty());
        let deletes = h.clevertap.deletes();
        assert_eq!(deletes.len(), 1);
        assert_eq!(deletes[0].account, "ACC-A");
    }

    #[tokio::test]
    async fn an_unusable_destination_attribute_never_lets_a_regulation_reach_another_destination() {
        let h = fakes::handler();
        let mut binary = sqs_record(QUEUE_ARN, "m-2", &regulation(&["dest-b"]), None);
        binary["messageAttributes"] = json!({"destinationId": {"binaryValue": "ZGVzdC1h",
            "dataType": "Binary", "stringListValues": [], "binaryListValues": []}});
        let failures = sqs_failures(
            &h,
            vec![
                sqs_record(QUEUE_ARN, "m-1", &regulation(&["dest-b"]), Some("a/b")),
                binary,
            ],
        )
        .await;
        assert!(failures.is_empty(), "{failures:?}");
        assert!(h.clevertap.deletes().is_empty());
        let codes: Vec<String> = h
            .dead_letters
            .sent()
            .into_iter()
            .map(|l| l.rejection_code)
            .collect();
        assert_eq!(codes, ["invalid_destination_id", "invalid_destination_id"]);
    }

    #[tokio::test]
    async fn a_webhook_dead_letter_of_a_regulation_naming_b_deletes_nothing_in_b_when_redriven() {
        let h = fakes::handler();
        // A holder of dest-a's token hides a regulation for dest-b in an array.
        let auth = format!("Bearer {TOKEN}");
        let body = format!("[{}]", regulation(&["dest-b"]));
        let (status, answer, _) = call_http(
            &h,
            http_request("POST", Some("dest-a"), Some(&auth), Some(&body)),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["results"][0]["code"], "regulation_in_batch");
        let letters = h.dead_letters.sent();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].destination_id.as_deref(), Some("dest-a"));

        // The operator redrives the dead-letter queue into the source queue.
        let failures = sqs_failures(&h, vec![redriven("m-redriven", &letters[0])]).await;
        assert!(failures.is_empty(), "{failures:?}");
        assert!(h.clevertap.deletes().is_empty(), "B's user is not deleted");
        let again = h.dead_letters.sent();
        assert_eq!(
            again.len(),
            2,
            "refused again, back to the dead-letter queue"
        );
        assert_eq!(again[1].rejection_code, "destination_not_allowed");
        assert_eq!(again[1].destination_id.as_deref(), Some("dest-a"));
    }
}
