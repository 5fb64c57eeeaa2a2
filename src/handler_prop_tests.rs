//! Properties of the handler's one entry point over arbitrary input, with fakes: arbitrary
//! bytes, arbitrary JSON and arbitrary headers into the webhook (sync and queue mode) and into
//! the SQS path. Whatever arrives: no panic; a webhook request is answered with every item of
//! its body accounted for, in order; an SQS batch reports only its own messages, each once; and
//! every answer stays under Lambda's 6 MB response limit.

use crate::engine::fakes::{self, FakeHandler, FakeQueue, TOKEN, payload};
use crate::input::{Body, split_body};
use crate::lambda_events::{QUEUE_ARN, http_request, sqs_record};
use base64::Engine;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// Lambda's limit on a synchronous invocation's response (6 MB).
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Keys an event or a regulation may hold, so arbitrary JSON often looks like the real thing.
const KEYS: &[&str] = &[
    "type",
    "event",
    "userId",
    "anonymousId",
    "previousId",
    "messageId",
    "traits",
    "properties",
    "context",
    "batch",
    "regulationType",
    "destinationIds",
    "users",
    "timestamp",
];
const TYPES: &[&str] = &[
    "track",
    "identify",
    "page",
    "screen",
    "alias",
    "group",
    "suppress_with_delete",
    "",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        proptest::sample::select(TYPES).prop_map(|t| json!(t)),
        proptest::sample::select(&["dest-a", "dest-b", "u-1", "a/b"][..]).prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ]
}

/// Arbitrary JSON, biased towards objects with the keys events and regulations use.
fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        3 => proptest::sample::select(KEYS).prop_map(str::to_owned),
                        1 => "[a-zA-Z]{1,6}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A body as text: JSON, NDJSON of JSON and junk lines, or arbitrary text.
fn body_text() -> impl Strategy<Value = String> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string()),
        proptest::collection::vec(
            prop_oneof![json_value().prop_map(|v| v.to_string()), ".{0,16}"],
            0..6
        )
        .prop_map(|lines| lines.join("\n")),
        ".{0,64}",
    ]
}

/// What the request's body is: text, or bytes sent base64-encoded.
#[derive(Debug, Clone)]
enum RequestBody {
    Absent,
    Text(String),
    Base64(Vec<u8>),
}

fn request_body() -> impl Strategy<Value = RequestBody> {
    prop_oneof![
        1 => Just(RequestBody::Absent),
        6 => body_text().prop_map(RequestBody::Text),
        2 => body_text().prop_map(|t| RequestBody::Base64(t.into_bytes())),
        2 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(RequestBody::Base64),
    ]
}

fn authorization() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some(format!("Bearer {TOKEN}"))),
        1 => Just(None),
        1 => ".{0,24}".prop_map(Some),
        1 => "[a-z]{1,12}".prop_map(|t| Some(format!("bearer {t}"))),
    ]
}

/// Arbitrary extra headers: names that may or may not be valid, values of any characters.
fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            prop_oneof!["[a-z-]{1,12}", ".{0,8}", Just("authorization".to_owned())],
            ".{0,24}",
        ),
        0..4,
    )
}

fn destination() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => Just(Some("dest-a".to_owned())),
        1 => Just(Some("dest-b".to_owned())),
        1 => Just(None),
        1 => ".{0,10}".prop_map(Some),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![8 => Just("POST".to_owned()), 1 => Just("GET".to_owned()), 1 => "[A-Z]{1,7}"]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
}

fn handler(queue_mode: bool) -> FakeHandler {
    if queue_mode {
        fakes::queue_handler(FakeQueue {
            refuse_containing: Some("refuse".into()),
            ..FakeQueue::default()
        })
        .0
    } else {
        fakes::handler()
    }
}

/// How many items the body splits into when it is usable as a whole (events, or a
/// regulation's users); `None` when the whole body is refused.
fn expected_items(body: &RequestBody) -> Option<usize> {
    let text = match body {
        RequestBody::Absent => String::new(),
        RequestBody::Text(t) => t.clone(),
        RequestBody::Base64(bytes) => String::from_utf8(bytes.clone()).ok()?,
    };
    match split_body(&text).ok()? {
        Body::Events(items) => Some(items.len()),
        Body::Regulation(r) => Some(r.users.len()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_webhook_request_is_always_answered_with_every_item_accounted_for(
        queue_mode in any::<bool>(),
        method in method(),
        destination in destination(),
        authorization in authorization(),
        extra in headers(),
        body in request_body(),
    ) {
        let h = handler(queue_mode);
        let mut request = http_request(&method, destination.as_deref(), authorization.as_deref(), None);
        for (name, value) in &extra {
            request["headers"][name.as_str()] = json!(value);
        }
        match &body {
            RequestBody::Absent => {}
            RequestBody::Text(t) => request["body"] = json!(t),
            RequestBody::Base64(bytes) => {
                request["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                request["isBase64Encoded"] = json!(true);
            }
        }
        let invocation = runtime().block_on(h.handle(payload(&request), fakes::deadline()));
        let response = invocation.answer.expect("an HTTP request is always answered");
        prop_assert!(response.to_string().len() < MAX_RESPONSE_BYTES);
        let status = response["statusCode"].as_u64().expect("a status");
        let answer: Value = serde_json::from_str(response["body"].as_str().expect("a body"))
            .expect("the body is JSON");
        if let Some(results) = answer.get("results") {
            // A processed request: one result per item, in order.
            let results = results.as_array().expect("results is a list");
            let items = expected_items(&body);
            prop_assert_eq!(Some(results.len()), items, "{}", answer);
            for (i, r) in results.iter().enumerate() {
                prop_assert_eq!(r["index"].as_u64(), Some(i as u64));
                let s = r["status"].as_str().unwrap_or("");
                // `filtered` in both modes: an event RudderStack would drop (another message
                // type, consent, ...) is answered so before it is queued or sent
                // (docs/contracts.md §3).
                let allowed: &[&str] = if queue_mode {
                    &["queued", "filtered", "rejected", "retry"]
                } else {
                    &["delivered", "filtered", "rejected", "retry"]
                };
                prop_assert!(allowed.contains(&s), "{}", r);
                prop_assert_eq!(
                    r.get("code").is_some(),
                    s == "filtered" || s == "rejected" || s == "retry"
                );
            }
            prop_assert!([200, 202, 400, 503].contains(&status), "{}", status);
            prop_assert_eq!(status == 202, queue_mode && status < 300);
        } else {
            let code = answer["error"]["code"].as_str().unwrap_or("");
            prop_assert!(!code.is_empty(), "an error answer has a code: {}", answer);
            prop_assert!(crate::codes::ALL.contains(&code), "{}", code);
        }
        // Nothing is sent on behalf of a caller that did not prove the token.
        let authenticated = authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))
            && !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        if !authenticated {
            prop_assert!(h.clevertap.calls().is_empty());
            prop_assert!(h.dead_letters.sent().is_empty());
        }
        if queue_mode {
            prop_assert!(h.clevertap.calls().is_empty() && h.clevertap.deletes().is_empty());
        }
        // The token never comes back.
        prop_assert!(!response.to_string().contains(TOKEN));
    }

    #[test]
    fn an_sqs_batch_reports_only_its_own_messages_each_once(
        records in proptest::collection::vec(
            prop_oneof![
                4 => (body_text(), destination()).prop_map(|(body, d)| (Some(body), d, None)),
                1 => json_value().prop_map(|v| (None, None, Some(v))),
            ],
            1..8,
        ),
    ) {
        let h = fakes::handler();
        let records: Vec<Value> = records
            .into_iter()
            .enumerate()
            .map(|(i, (body, destination, raw))| match raw {
                // Not an SQS record at all, but under the batch's `Records`.
                Some(mut v) => {
                    if let Some(o) = v.as_object_mut() {
                        o.insert("messageId".into(), json!(format!("m-{i}")));
                        o.insert("eventSource".into(), json!("aws:sqs"));
                    }
                    v
                }
                None => sqs_record(QUEUE_ARN, &format!("m-{i}"), &body.unwrap_or_default(), destination.as_deref()),
            })
            .collect();
        let ids: BTreeSet<String> = (0..records.len()).map(|i| format!("m-{i}")).collect();
        let batch = crate::lambda_events::sqs_batch(records);
        let invocation = runtime().block_on(h.handle(payload(&batch), fakes::deadline()));
        match invocation.answer {
            Ok(answer) => {
                prop_assert!(answer.to_string().len() < MAX_RESPONSE_BYTES);
                let failures: Vec<String> = answer["batchItemFailures"]
                    .as_array()
                    .expect("a batch response")
                    .iter()
                    .map(|f| f["itemIdentifier"].as_str().unwrap_or("").to_owned())
                    .collect();
                let unique: BTreeSet<String> = failures.iter().cloned().collect();
                prop_assert_eq!(unique.len(), failures.len(), "each failure once");
                prop_assert!(unique.is_subset(&ids), "{:?}", failures);
                // A dead-lettered message is acked, never also retried.
                for letter in h.dead_letters.sent() {
                    let source = letter.source_message_id.unwrap_or_default();
                    prop_assert!(ids.contains(&source));
                    prop_assert!(!unique.contains(&source), "{}", source);
                }
            }
            // The first record decides the shape (garbage there: an unknown event); a record
            // that is not even an object has no messageId to report a retry under.
            Err(e) => prop_assert!(
                ["unknown_event", "unreportable_failure"].contains(&e.code()),
                "{}",
                e
            ),
        }
    }

    #[test]
    fn any_payload_text_is_answered_or_refused_without_a_panic(
        text in prop_oneof![
            json_value().prop_map(|v| v.to_string()),
            json_value().prop_map(|v| json!({"Records": [v]}).to_string()),
            json_value().prop_map(|v| json!({"version": "2.0", "requestContext": {"http": v}, "body": v}).to_string()),
            json_value().prop_map(|v| json!({"httpMethod": "POST", "requestContext": v, "headers": v}).to_string()),
        ],
        queue_mode in any::<bool>(),
    ) {
        let h = handler(queue_mode);
        // Any bytes at all: the handler reads them as they come, JSON or not.
        let invocation = runtime().block_on(h.handle(bytes::Bytes::from(text), fakes::deadline()));
        if let Ok(answer) = invocation.answer {
            prop_assert!(answer.to_string().len() < MAX_RESPONSE_BYTES);
        }
    }
}
