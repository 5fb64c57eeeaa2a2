//! HTTP assembly with fakes: status codes, authentication, response shapes.

use crate::engine::fakes::{self, FakeCleverTap, FakeDeadLetters, TOKEN, call_http};
use crate::handler::Handler;
use crate::lambda_events::{function_url_request, http_request, rest_api_request};
use crate::outcome::Outcome;
use crate::settings::DestinationId;
use base64::Engine;
use serde_json::json;

const TRACK: &str =
    r#"{"type":"track","event":"Order Completed","userId":"u-1","messageId":"e-1"}"#;
/// An event the transform rejects: a type neither CleverTap nor RudderStack knows.
const UNSUPPORTED: &str = r#"{"type":" track ","userId":"u-3","messageId":"e-3","groupId":"g-1"}"#;

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[tokio::test]
async fn the_right_token_delivers_and_answers_200_with_a_result_per_event() {
    let h = fakes::handler();
    let body = format!("[{TRACK},{UNSUPPORTED}]");
    let (status, body, response) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(&body)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivered"], 1);
    assert_eq!(body["rejected"], 1);
    assert_eq!(body["retry"], 0);
    assert_eq!(
        body["results"][0],
        json!({"index": 0, "messageId": "e-1", "status": "delivered"})
    );
    assert_eq!(body["results"][1]["status"], "rejected");
    assert!(body["results"][1]["code"].is_string());
    assert_eq!(response["headers"]["content-type"], "application/json");
    assert!(
        response.get("cookies").is_some(),
        "a v2 response: {response}"
    );
    assert_eq!(h.clevertap.calls().len(), 1);
    let sent = h.dead_letters.sent();
    assert_eq!(sent.len(), 1, "the rejected event is dead-lettered too");
    assert_eq!(sent[0].body, UNSUPPORTED);
    assert_eq!(sent[0].destination_id.as_deref(), Some("dest-a"));
    assert_eq!(sent[0].source_message_id.as_deref(), Some("req-1"));
}

#[tokio::test]
async fn every_authentication_failure_is_the_same_401_and_sends_nothing() {
    let h = fakes::handler();
    let right = bearer();
    let cases = [
        ("dest-a", Some("Bearer wrong-token")),
        ("dest-a", None),
        ("dest-a", Some("Basic dG9rOnNlY3JldA==")),
        ("dest-b", Some(right.as_str())), // no webhookToken
    ];
    let mut bodies = Vec::new();
    for (destination, auth) in cases {
        let (status, body, _) = call_http(
            &h,
            http_request("POST", Some(destination), auth, Some(TRACK)),
        )
        .await;
        assert_eq!(status, 401, "{destination} {auth:?}");
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(bodies[0]["error"]["code"], "unauthorized");
    assert!(h.clevertap.calls().is_empty());
    assert!(h.dead_letters.sent().is_empty());
}

#[tokio::test]
async fn the_token_is_never_echoed() {
    let h = fakes::handler();
    let (_, body, _) = call_http(
        &h,
        http_request(
            "POST",
            Some("dest-a"),
            Some("Bearer guess-123"),
            Some(TRACK),
        ),
    )
    .await;
    assert!(!body.to_string().contains("guess-123"));
    assert!(!body.to_string().contains(TOKEN));
}

#[tokio::test]
async fn a_method_other_than_post_gets_405_with_allow() {
    let h = fakes::handler();
    let (status, body, response) = call_http(
        &h,
        http_request("GET", Some("dest-a"), Some(&bearer()), None),
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert_eq!(response["headers"]["allow"], "POST");
}

#[tokio::test]
async fn a_body_over_max_body_bytes_gets_413_before_any_secret_is_read() {
    let mut h = fakes::handler();
    h.config.max_body_bytes = 16;
    let (status, body, _) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(TRACK)),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "body_too_large");
    assert!(h.settings_source.fetched.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_base64_body_is_decoded() {
    let h = fakes::handler();
    let mut request = http_request("POST", Some("dest-a"), Some(&bearer()), None);
    request["body"] = json!(base64::engine::general_purpose::STANDARD.encode(TRACK));
    request["isBase64Encoded"] = json!(true);
    let (status, body, _) = call_http(&h, request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivered"], 1);
}

#[tokio::test]
async fn a_body_that_is_not_base64_gets_400() {
    let h = fakes::handler();
    let mut request = http_request("POST", Some("dest-a"), Some(&bearer()), Some("%%%"));
    request["isBase64Encoded"] = json!(true);
    let (status, body, _) = call_http(&h, request).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_base64");
}

#[tokio::test]
async fn an_empty_or_unparseable_body_gets_400() {
    let h = fakes::handler();
    for (body, code) in [
        (None, "empty_body"),
        (Some(""), "empty_body"),
        (Some("{nope"), "invalid_json"),
    ] {
        let (status, answer, _) = call_http(
            &h,
            http_request("POST", Some("dest-a"), Some(&bearer()), body),
        )
        .await;
        assert_eq!(status, 400, "{body:?}");
        assert_eq!(answer["error"]["code"], code, "{body:?}");
    }
    assert!(h.clevertap.calls().is_empty());
}

#[tokio::test]
async fn no_or_an_invalid_destination_gets_400() {
    let h = fakes::handler();
    let (status, body, _) =
        call_http(&h, http_request("POST", None, Some(&bearer()), Some(TRACK))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("no_destination"))
    );
    let (status, body, _) = call_http(
        &h,
        http_request("POST", Some("a%2Fb"), Some(&bearer()), Some(TRACK)),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_destination_id"))
    );
}

#[tokio::test]
async fn the_default_destination_serves_requests_without_the_parameter() {
    let mut h = fakes::handler();
    h.config.default_destination_id = Some(DestinationId::parse("dest-a").unwrap());
    let (status, _, _) =
        call_http(&h, http_request("POST", None, Some(&bearer()), Some(TRACK))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn every_event_rejected_gets_400_with_the_results() {
    let h = fakes::handler();
    let (status, body, _) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(UNSUPPORTED)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["rejected"], 1);
    assert_eq!(body["results"][0]["messageId"], "e-3");
}

#[tokio::test]
async fn any_event_needing_a_retry_gets_503_with_retry_after() {
    let mut h = fakes::handler();
    h.clevertap = FakeCleverTap::answering(|_, _| {
        Outcome::retry("clevertap_unavailable", "503 from CleverTap")
    });
    let (status, body, response) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(TRACK)),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["retry"], 1);
    assert_eq!(body["results"][0]["code"], "clevertap_unavailable");
    assert_eq!(response["headers"]["retry-after"], "10");
}

#[tokio::test]
async fn secrets_manager_being_down_is_a_503_not_a_401() {
    let mut h = fakes::handler();
    h.settings_source.down.push("dest-a".into());
    let (status, body, _) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(TRACK)),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "secrets_unavailable");
    assert!(
        !body.to_string().contains("connection refused"),
        "no detail before auth: {body}"
    );
}

#[tokio::test]
async fn a_rest_api_request_gets_a_rest_api_response_and_headers_are_case_insensitive() {
    let h = fakes::handler();
    let (status, body, response) = call_http(
        &h,
        rest_api_request("AUTHORIZATION", "dest-a", TOKEN, TRACK),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        response.get("cookies").is_none(),
        "a v1 response: {response}"
    );
    assert!(response.get("multiValueHeaders").is_some());
}

#[tokio::test]
async fn a_function_url_request_is_served_like_an_http_api_request() {
    let h = fakes::handler();
    let request = function_url_request("dest-a", Some(&bearer()), TRACK);
    let invocation = h.handle(fakes::payload(&request), fakes::deadline()).await;
    assert_eq!(invocation.shape, Some(crate::sources::Shape::FunctionUrl));
    assert_eq!(invocation.answer.unwrap()["statusCode"], 200);
}

#[tokio::test]
async fn a_request_of_the_right_shape_but_wrong_fields_gets_400_not_a_panic() {
    let h = fakes::handler();
    let mut request = http_request("POST", Some("dest-a"), Some(&bearer()), Some(TRACK));
    request["requestContext"]["http"]["method"] = json!(42);
    let (status, body, _) = call_http(&h, request).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_request");
}

#[tokio::test]
async fn a_rejected_event_whose_dead_letter_fails_is_answered_503_retry_dead_letter_failed() {
    let mut h = fakes::handler();
    h.dead_letters = FakeDeadLetters {
        broken: true,
        ..FakeDeadLetters::default()
    };
    let body = format!("[{TRACK},{UNSUPPORTED}]");
    let (status, body, response) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(&body)),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(response["headers"]["retry-after"], "10");
    assert_eq!(body["results"][0]["status"], "delivered");
    assert_eq!(body["results"][1]["status"], "retry");
    assert_eq!(body["results"][1]["code"], "dead_letter_failed");
    let message = body["results"][1]["message"].as_str().unwrap();
    assert!(message.contains("unsupported_type"), "{message}");
    assert_eq!(
        (body["rejected"].clone(), body["retry"].clone()),
        (json!(0), json!(1))
    );
    let a = &h.take_metrics().per_destination["dest-a"];
    assert_eq!((a.rejected, a.retried, a.dead_lettered), (0, 1, 0));
}

#[tokio::test]
async fn without_a_dead_letter_queue_rejected_events_are_answered_rejected() {
    let h = Handler::new(
        crate::config::Config::default(),
        fakes::FakeSettings::with(&[("dest-a", &fakes::settings_json("ACC-A", true))]),
        FakeCleverTap::delivering(),
        None::<FakeDeadLetters>,
    );
    let (status, body, _) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(UNSUPPORTED)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["results"][0]["status"], "rejected");
    assert_eq!(body["results"][0]["code"], "unsupported_type");
}

#[tokio::test]
async fn rejected_events_over_one_letter_are_dead_lettered_in_several() {
    let h = fakes::handler();
    let big: Vec<String> = (1..=3)
        .map(|i| {
            format!(
                r#"{{"type":" track ","userId":"u","messageId":"g-{i}","pad":"{}"}}"#,
                "x".repeat(100 * 1024)
            )
        })
        .collect();
    let body = format!("[{}]", big.join(","));
    let (status, answer, _) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(&body)),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let sent = h.dead_letters.sent();
    assert_eq!(sent.len(), 2);
    let carried: usize = sent
        .iter()
        .map(
            |l| match serde_json::from_str::<serde_json::Value>(&l.body).unwrap() {
                serde_json::Value::Array(v) => v.len(),
                _ => 1,
            },
        )
        .sum();
    assert_eq!(carried, 3);
    assert_eq!(h.take_metrics().per_destination["dest-a"].dead_lettered, 3);
}

#[tokio::test]
async fn items_past_max_items_per_body_are_rejected_too_many_items_unsent_and_not_dead_lettered() {
    let mut h = fakes::handler();
    h.config.max_items_per_body = 2;
    let body = format!("[{TRACK},{UNSUPPORTED},{TRACK},{UNSUPPORTED},{TRACK}]");
    let (status, answer, _) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(&body)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"].as_array().unwrap().len(), 2);
    assert_eq!(
        (answer["delivered"].clone(), answer["rejected"].clone()),
        (json!(1), json!(4))
    );
    assert_eq!(answer["unprocessed"]["from"], 2);
    assert_eq!(answer["unprocessed"]["count"], 3);
    assert_eq!(answer["unprocessed"]["status"], "rejected");
    assert_eq!(answer["unprocessed"]["code"], "too_many_items");
    let calls = h.clevertap.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].events.len(), 1, "only the first TRACK is sent");
    let sent = h.dead_letters.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].body, UNSUPPORTED,
        "only the processed rejected event"
    );
    let a = &h.take_metrics().per_destination["dest-a"];
    assert_eq!((a.delivered, a.rejected, a.dead_lettered), (1, 4, 1));
}

#[tokio::test]
async fn a_large_answer_shares_its_reasons_and_stays_under_the_cap() {
    let h = fakes::handler();
    let body = format!("[{}]", vec![UNSUPPORTED; 10_000].join(","));
    let (status, answer, response) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(&body)),
    )
    .await;
    assert_eq!(status, 400);
    let text = response["body"].as_str().unwrap();
    assert!(
        text.len() <= super::answer::MAX_ANSWER_BYTES,
        "{}",
        text.len()
    );
    assert_eq!(answer["results"].as_array().unwrap().len(), 10_000);
    assert_eq!(
        answer["reasons"].as_array().unwrap().len(),
        1,
        "{}",
        answer["reasons"]
    );
    assert_eq!(answer["reasons"][0]["count"], 10_000);
    assert_eq!(answer["results"][9_999]["reason"], 0);
    assert!(answer["results"][9_999].get("message").is_none());
}

#[tokio::test]
async fn a_filtered_event_is_answered_filtered_with_its_code_and_is_not_dead_lettered() {
    let h = fakes::handler();
    let group = r#"{"type":"group","userId":"u-3","messageId":"e-9","groupId":"g-1"}"#;
    let body = format!("[{TRACK},{group}]");
    let (status, body, _) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(&body)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["filtered"], 1);
    assert_eq!(body["delivered"], 1);
    assert_eq!(body["results"][1]["status"], "filtered");
    assert_eq!(body["results"][1]["code"], "filtered_message_type");
    assert!(h.dead_letters.sent().is_empty());
    let (status, body, _) = call_http(
        &h,
        http_request("POST", Some("dest-a"), Some(&bearer()), Some(group)),
    )
    .await;
    assert_eq!(status, 200, "all filtered is not an error: {body}");
}
