//! Regulations over HTTP with fakes: one result per user, the destination rule, statuses.

use crate::engine::fakes::{self, FakeHandler, TOKEN, call_http};
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
async fn a_rejected_user_whose_dead_letter_fails_is_answered_503_retry() {
    let mut h = fakes::handler();
    h.dead_letters = fakes::FakeDeadLetters {
        broken: true,
        ..fakes::FakeDeadLetters::default()
    };
    let body = regulation(json!(null), json!([{"userId": "u-1"}, {}]));
    let (status, body, response) = call(&h, &body).await;
    assert_eq!(status, 503, "{body}");
    assert!(response["headers"]["retry-after"].is_string());
    assert_eq!(body["results"][0]["status"], "delivered");
    assert_eq!(body["results"][1]["status"], "retry");
    assert_eq!(body["results"][1]["code"], "dead_letter_failed");
}

#[tokio::test]
async fn users_past_max_items_per_body_are_too_many_items_and_not_deleted() {
    let mut h = fakes::handler();
    h.config.max_items_per_body = 2;
    let body = regulation(
        json!(null),
        json!([{"userId": "u-1"}, {"userId": "u-2"}, {"userId": "u-3"}]),
    );
    let (status, body, _) = call(&h, &body).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
    assert_eq!(body["unprocessed"]["code"], "too_many_items");
    assert_eq!(body["unprocessed"]["from"], 2);
    assert_eq!(body["rejected"], 1);
    assert_eq!(h.clevertap.deletes()[0].identities, ["u-1", "u-2"]);
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
