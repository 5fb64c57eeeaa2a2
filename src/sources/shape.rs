//! What a payload is, told explicitly from its top-level keys (docs/contracts.md §2) rather than
//! by letting serde guess between overlapping request structs. Read from the text the runtime
//! hands over, in one pass and without a `Value` tree, with the transform's own JSON reader: an
//! SQS batch's records are read here, each into the few members this function uses
//! (`sqs::record`), for `sqs::decode`.

use super::sqs::SqsRecord;
use crate::json::reader::{Raw, Reader, SyntaxError};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The kinds of payload this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `Records[0].eventSource == "aws:sqs"`.
    Sqs,
    /// API Gateway HTTP API, payload format 2.0 (`version: "2.0"`, `requestContext.http`).
    HttpApiV2,
    /// Lambda Function URL: payload format 2.0 on a `*.lambda-url.*` domain.
    FunctionUrl,
    /// API Gateway REST API (or HTTP API payload 1.0): top-level `httpMethod`.
    RestApiV1,
}

impl Shape {
    pub const fn as_str(self) -> &'static str {
        match self {
            Shape::Sqs => "sqs",
            Shape::HttpApiV2 => "http_api_v2",
            Shape::FunctionUrl => "function_url",
            Shape::RestApiV1 => "rest_api_v1",
        }
    }
}

/// A payload, told by its shape.
pub(crate) enum Payload<'a> {
    /// An SQS batch: its records.
    Sqs(Vec<SqsRecord<'a>>),
    /// An HTTP request of this kind (decoded by `http::request`).
    Http(Shape),
    /// Anything else.
    Unknown,
}

/// The top-level members that tell the shapes apart; every other member is skipped unread.
#[derive(Default)]
struct Top<'a> {
    /// Read in the same pass as the rest.
    records: Option<Vec<SqsRecord<'a>>>,
    version: Option<Raw<'a>>,
    request_context: Option<Raw<'a>>,
    http_method: Option<Raw<'a>>,
}

impl<'a> Top<'a> {
    /// The payload's top-level members; `None` when it is not one JSON object, or `Records`
    /// is neither an array nor null.
    fn read(text: &'a str) -> Option<Self> {
        let mut r = Reader::new(text);
        let mut top = Top::default();
        r.members(|r, key| {
            match key.as_ref() {
                "Records" => top.records = records(r)?,
                "version" => top.version = Some(r.value()?),
                "requestContext" => top.request_context = Some(r.value()?),
                "httpMethod" => top.http_method = Some(r.value()?),
                _ => {
                    r.value()?;
                }
            }
            Ok(())
        })
        .ok()?;
        r.end().ok()?;
        Some(top)
    }
}

/// The records of `Records`: `None` for null; an error when it is neither null nor an array.
fn records<'a>(r: &mut Reader<'a>) -> Result<Option<Vec<SqsRecord<'a>>>, SyntaxError> {
    if r.peek() == Some(b'n') {
        r.value()?;
        return Ok(None);
    }
    // Sized from the text left (a record of SQS's is rarely under 1 KB of envelope and body;
    // at most 10,000 per batch): one allocation instead of a dozen growths, each a copy of
    // every record so far (cpu2).
    let mut records = Vec::with_capacity((r.remaining() / 1024).clamp(1, 10_000));
    r.elements(|r| {
        records.push(SqsRecord::read(r)?);
        Ok(())
    })?;
    Ok(Some(records))
}

/// The keys of `requestContext` that tell payload 2.0 requests apart.
#[derive(Deserialize)]
struct Context<'a> {
    #[serde(borrow, default)]
    http: Option<&'a RawValue>,
    #[serde(rename = "domainName", borrow, default)]
    domain_name: Option<&'a RawValue>,
}

fn is_object(raw: Option<&RawValue>) -> bool {
    raw.is_some_and(|r| r.get().starts_with('{'))
}

fn string(raw: Option<&str>) -> Option<String> {
    serde_json::from_str::<String>(raw?).ok()
}

/// Tells the payload's shape; `Unknown` for anything this function does not serve (text that
/// is not a JSON object included).
pub(crate) fn read(text: &str) -> Payload<'_> {
    let Some(top) = Top::read(text) else {
        return Payload::Unknown;
    };
    if let Some(records) = top.records {
        let from_sqs = records
            .first()
            .and_then(|first| first.event_source.as_deref())
            .is_some_and(|source| source == "aws:sqs");
        return if from_sqs {
            Payload::Sqs(records)
        } else {
            Payload::Unknown
        };
    }
    let context = top
        .request_context
        .filter(|c| c.get().starts_with('{'))
        .and_then(|c| serde_json::from_str::<Context<'_>>(c.get()).ok());
    let version = top.version.map(|v| v.get());
    if let Some(context) = &context
        && is_object(context.http)
        && string(version).as_deref() == Some("2.0")
    {
        let domain = string(context.domain_name.map(RawValue::get)).unwrap_or_default();
        return Payload::Http(if domain.contains(".lambda-url.") {
            Shape::FunctionUrl
        } else {
            Shape::HttpApiV2
        });
    }
    if context.is_some() && string(top.http_method.map(|m| m.get())).is_some() {
        return Payload::Http(Shape::RestApiV1);
    }
    Payload::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn shape(payload: &Value) -> Option<Shape> {
        match read(&payload.to_string()) {
            Payload::Sqs(_) => Some(Shape::Sqs),
            Payload::Http(shape) => Some(shape),
            Payload::Unknown => None,
        }
    }

    #[test]
    fn an_sqs_batch_is_told_by_its_event_source() {
        let p = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        assert_eq!(shape(&p), Some(Shape::Sqs));
        match read(&p.to_string()) {
            Payload::Sqs(records) => assert_eq!(records.len(), 1),
            _ => panic!("not an SQS batch"),
        }
    }

    #[test]
    fn records_from_another_service_are_not_an_sqs_batch() {
        for p in [
            json!({"Records": [{"eventSource": "aws:s3"}]}),
            json!({"Records": [{"EventSource": "aws:sns"}]}),
            json!({"Records": []}),
            json!({"Records": "aws:sqs"}),
            json!({"Records": [["aws:sqs"]]}),
        ] {
            assert_eq!(shape(&p), None, "{p}");
        }
    }

    #[test]
    fn an_http_api_v2_request_and_a_function_url_request_are_told_apart_by_domain() {
        let v2 = json!({"version": "2.0", "requestContext": {"http": {"method": "POST"},
            "domainName": "abc.execute-api.us-east-1.amazonaws.com"}});
        let url = json!({"version": "2.0", "requestContext": {"http": {"method": "POST"},
            "domainName": "abc.lambda-url.us-east-1.on.aws"}});
        assert_eq!(shape(&v2), Some(Shape::HttpApiV2));
        assert_eq!(shape(&url), Some(Shape::FunctionUrl));
    }

    #[test]
    fn a_rest_api_request_is_told_by_its_http_method() {
        let v1 = json!({"httpMethod": "POST", "requestContext": {"stage": "prod"}, "body": "{}"});
        assert_eq!(shape(&v1), Some(Shape::RestApiV1));
    }

    #[test]
    fn anything_else_has_no_shape() {
        for p in [
            json!(null),
            json!("text"),
            json!([1, 2]),
            json!({}),
            json!({"version": "2.0", "requestContext": {}}),
            json!({"requestContext": {"http": {"method": "POST"}}}),
            json!({"httpMethod": "POST"}),
            json!({"httpMethod": "POST", "requestContext": ["stage"]}),
            json!({"userId": "u1", "type": "track"}),
        ] {
            assert_eq!(shape(&p), None, "{p}");
        }
        assert!(matches!(read("not json"), Payload::Unknown));
        assert!(matches!(read(r#"{"Records": [{"#), Payload::Unknown));
        assert!(matches!(read(r#"{"Records": null} x"#), Payload::Unknown));
        assert!(matches!(
            read(r#"{"Records": [{"eventSource": "aws:sqs", "body": "\q"}]}"#),
            Payload::Unknown
        ));
    }
}
