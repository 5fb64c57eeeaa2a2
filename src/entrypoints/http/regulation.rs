//! A regulation over HTTP (docs/contracts.md §2, §6). The bearer token authenticates one destination, so
//! a regulation may only name that one in `destinationIds` (else 403 and nothing is deleted):
//! one destination's token can never delete another's users. The answer lists every user, with
//! the same statuses as events: 200 when nothing needs a retry, 400 when every user was
//! rejected, 503 (with `Retry-After`) when any user needs a retry.

use super::Reply;
use crate::codes;
use crate::credentials::SettingsSource;
use crate::deadletter::{DeadLetter, DeadLetterSink, Origin};
use crate::entrypoints::handler::{CleverTapApi, Handler};
use crate::entrypoints::regulation::{Erasure, Target, erase_all, rejected_users};
use crate::outcome::{Outcome, StatusCounts};
use crate::regulation::Regulation;
use crate::settings::{DestinationId, DestinationSettings};
use serde::Serialize;
use std::sync::Arc;
use tokio::time::Instant;

/// Deletes the regulation's users in the authenticated destination and answers per user.
pub(super) async fn serve<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    destination: &DestinationId,
    settings: &Arc<DestinationSettings>,
    request_id: Option<&str>,
    regulation: &Regulation<'_>,
    deadline: Instant,
) -> Reply {
    if let Some(refused) = refuse_other_destinations(regulation, destination) {
        return refused;
    }
    let targets = [Target {
        destination: destination.clone(),
        settings: Ok(Arc::clone(settings)),
    }];
    let erasure = Erasure {
        regulation,
        targets: &targets,
    };
    let outcomes = erase_all(handler, std::slice::from_ref(&erasure), deadline)
        .await
        .pop()
        .unwrap_or_default();
    // The rejected users are dead-lettered whatever became of the others, as for events: the
    // caller is not asked to send them again.
    let dead_lettered = match rejected_users(regulation, &outcomes) {
        Some(rejected) => {
            let letter = DeadLetter::new(
                rejected.body,
                &rejected.reason,
                Origin {
                    destination_id: Some(destination.as_str()),
                    source_message_id: request_id,
                    message_group_id: None,
                },
            );
            super::send_dead_letter(
                handler,
                destination,
                &letter,
                rejected.count,
                "regulation users",
            )
            .await
        }
        None => 0,
    };
    let counts = StatusCounts::of(&outcomes);
    handler.count_outcomes(destination.as_str(), counts, dead_lettered);
    tracing::info!(
        destination = %destination,
        users = outcomes.len(),
        delivered = counts.delivered,
        rejected = counts.rejected,
        retry = counts.retry,
        "regulation"
    );
    results(regulation, &outcomes)
}

/// The 403 of a regulation naming a destination other than the authenticated one (sync and
/// queue mode alike); `None` when it names none or only that one.
pub(super) fn refuse_other_destinations(
    regulation: &Regulation<'_>,
    destination: &DestinationId,
) -> Option<Reply> {
    let other = regulation
        .destination_ids
        .iter()
        .find(|d| *d != destination)?;
    tracing::warn!(
        destination = %destination,
        code = codes::DESTINATION_NOT_ALLOWED,
        named = %other,
        "regulation refused: it names another destination"
    );
    Some(Reply::error(
        403,
        codes::DESTINATION_NOT_ALLOWED,
        format!(
            "destinationIds names {other}: over HTTP a regulation may only name the \
             authenticated destination ({destination})"
        ),
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserResult<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// One result per user (`userId` in place of `messageId`), and the status from the outcomes.
fn results(regulation: &Regulation<'_>, outcomes: &[Outcome]) -> Reply {
    let results: Vec<UserResult<'_>> = regulation
        .users
        .iter()
        .zip(outcomes)
        .enumerate()
        .map(|(index, (user, o))| UserResult {
            index,
            user_id: user.user_id.as_deref().ok(),
            status: o.status().as_str(),
            code: o.reason().map(|r| r.code.as_ref()),
            message: o.reason().map(|r| r.message.as_str()),
        })
        .collect();
    super::results_reply(&results, outcomes)
}

#[cfg(test)]
mod tests {
    use crate::entrypoints::fakes::{self, FakeHandler, TOKEN, call_http};
    use crate::lambda_events::{REQUEST_ID, function_url_request};
    use crate::outcome::Outcome;
    use serde_json::{Value, json};

    async fn call(h: &FakeHandler, body: &str) -> (u16, Value, Value) {
        let bearer = format!("Bearer {TOKEN}");
        call_http(h, function_url_request("dest-a", Some(&bearer), body)).await
    }

    fn regulation(destinations: Value, users: Value) -> String {
        json!({"regulationType": "suppress_with_delete", "destinationIds": destinations,
               "users": users})
        .to_string()
    }

    #[tokio::test]
    async fn a_regulation_is_answered_200_with_one_result_per_user() {
        let h = fakes::handler();
        let body = regulation(json!(["dest-a"]), json!([{"userId": "u-1"}, {"name": "x"}]));
        let (status, body, _) = call(&h, &body).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["results"][0],
            json!({"index": 0, "userId": "u-1", "status": "delivered"})
        );
        assert_eq!(body["results"][1]["status"], "rejected");
        assert_eq!(body["results"][1]["code"], "missing_user_id");
        assert!(body["results"][1].get("userId").is_none());
        assert_eq!(
            (body["delivered"].clone(), body["rejected"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(h.clevertap.deletes()[0].identities, ["u-1"]);
        let letters = h.dead_letters.sent();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].destination_id.as_deref(), Some("dest-a"));
        assert_eq!(letters[0].source_message_id.as_deref(), Some(REQUEST_ID));
        let letter: Value = serde_json::from_str(&letters[0].body).unwrap();
        assert_eq!(letter["users"], json!([{"name": "x"}]));
    }

    #[tokio::test]
    async fn a_regulation_naming_another_destination_gets_403_and_nothing_is_deleted() {
        let h = fakes::handler();
        for destinations in [json!(["dest-b"]), json!(["dest-a", "dest-b"])] {
            let body = regulation(destinations, json!([{"userId": "u-1"}]));
            let (status, body, _) = call(&h, &body).await;
            assert_eq!(status, 403, "{body}");
            assert_eq!(body["error"]["code"], "destination_not_allowed");
        }
        assert!(h.clevertap.deletes().is_empty());
        assert!(h.dead_letters.sent().is_empty());
    }

    #[tokio::test]
    async fn a_regulation_whose_users_are_all_rejected_gets_400() {
        let h = fakes::handler();
        let body = regulation(json!(null), json!([{}, {"userId": ""}]));
        let (status, body, _) = call(&h, &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["rejected"], 2);
        assert!(h.clevertap.deletes().is_empty());
    }

    #[tokio::test]
    async fn a_delete_needing_a_retry_gets_503_with_retry_after() {
        let h = fakes::handler_deleting(|_, _| Outcome::retry("clevertap_unavailable", "503"));
        let body = regulation(json!([]), json!([{"userId": "u-1"}]));
        let (status, body, response) = call(&h, &body).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["results"][0]["code"], "clevertap_unavailable");
        assert!(response["headers"]["retry-after"].is_string(), "{response}");
        assert!(h.dead_letters.sent().is_empty());
    }

    #[tokio::test]
    async fn a_malformed_or_unknown_regulation_gets_400_with_its_code() {
        let h = fakes::handler();
        for (body, code) in [
            (
                r#"{"regulationType":"suppress","users":[]}"#,
                "unsupported_regulation_type",
            ),
            (
                r#"{"regulationType":"suppress_with_delete","users":{}}"#,
                "invalid_regulation",
            ),
        ] {
            let (status, answer, _) = call(&h, body).await;
            assert_eq!(status, 400, "{answer}");
            assert_eq!(answer["error"]["code"], code);
        }
        assert!(h.clevertap.deletes().is_empty());
    }
}
