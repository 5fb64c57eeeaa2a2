//! The one Lambda handler. It tells SQS batches and HTTP requests apart explicitly, by the
//! payload's shape (design.md §2), instead of letting serde guess between overlapping structs;
//! then `sqs` and `http` turn each into events and outcomes. Anything else gets an error
//! response, never a panic, and the container goes on to the next invocation.

pub mod http;
mod regulation;
pub mod sqs;

use crate::clevertap::transport::Transport;
use crate::config::Config;
use crate::credentials::SettingsSource;
use crate::deadletter::DeadLetterSink;
use crate::delivery::{Delivery, DeliveryReport};
use crate::metrics::{DestinationCounters, InvocationMetrics};
use crate::outcome::{Outcome, Reason, Status};
use crate::settings::DestinationSettings;
use crate::transform::{Mapped, Record, TransformOptions, transform_event};
use serde_json::Value;
use serde_json::value::RawValue;
use std::future::Future;
use std::sync::Mutex;
use tokio::time::Instant;

/// What a payload is, told by its shape.
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
    /// Looks at the payload's shape only; `None` for anything this function does not serve.
    pub fn detect(payload: &Value) -> Option<Shape> {
        let object = payload.as_object()?;
        if let Some(records) = object.get("Records") {
            let source = records.get(0)?.get("eventSource")?.as_str()?;
            return (source == "aws:sqs").then_some(Shape::Sqs);
        }
        let context = object.get("requestContext");
        if let Some(http) = context.and_then(|c| c.get("http"))
            && http.is_object()
            && object.get("version").and_then(Value::as_str) == Some("2.0")
        {
            let domain = context
                .and_then(|c| c.get("domainName"))
                .and_then(Value::as_str)
                .unwrap_or("");
            return Some(if domain.contains(".lambda-url.") {
                Shape::FunctionUrl
            } else {
                Shape::HttpApiV2
            });
        }
        if object.get("httpMethod").is_some_and(Value::is_string)
            && context.is_some_and(Value::is_object)
        {
            return Some(Shape::RestApiV1);
        }
        None
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Shape::Sqs => "sqs",
            Shape::HttpApiV2 => "http_api_v2",
            Shape::FunctionUrl => "function_url",
            Shape::RestApiV1 => "rest_api_v1",
        }
    }
}

/// An invocation the handler cannot answer with a normal response. Lambda records it as a
/// function error; for SQS that retries the whole batch.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(
        "unknown event: expected an SQS batch (Records[].eventSource \"aws:sqs\") or an HTTP request \
         (API Gateway HTTP API v2, Lambda Function URL, API Gateway REST API v1)"
    )]
    UnknownEvent,
    #[error(
        "an SQS message without messageId needs a retry and cannot be reported alone: \
         failing the whole batch so that nothing is lost"
    )]
    UnreportableFailure,
    #[error("could not encode the response")]
    Encode(#[source] serde_json::Error),
}

impl HandlerError {
    /// Stable snake_case code (the Lambda `errorType`).
    pub const fn code(&self) -> &'static str {
        match self {
            HandlerError::UnknownEvent => "unknown_event",
            HandlerError::UnreportableFailure => "unreportable_failure",
            HandlerError::Encode(_) => "response_encoding_failed",
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.code().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// The narrow part of delivery the handler needs, so SQS and HTTP assembly is tested with fakes:
/// uploads of events and, for regulations (design.md §6), deletes of profiles.
pub trait Upload: Send + Sync {
    fn upload(
        &self,
        settings: &DestinationSettings,
        events: &[&[Record]],
        deadline: Instant,
    ) -> impl Future<Output = DeliveryReport> + Send;

    /// Deletes the profiles of `identities`; one outcome per identity, in order.
    fn delete(
        &self,
        settings: &DestinationSettings,
        identities: &[&str],
        deadline: Instant,
    ) -> impl Future<Output = DeliveryReport> + Send;
}

impl<T: Transport> Upload for Delivery<T> {
    fn upload(
        &self,
        settings: &DestinationSettings,
        events: &[&[Record]],
        deadline: Instant,
    ) -> impl Future<Output = DeliveryReport> + Send {
        Delivery::upload(self, settings, events, deadline)
    }

    fn delete(
        &self,
        settings: &DestinationSettings,
        identities: &[&str],
        deadline: Instant,
    ) -> impl Future<Output = DeliveryReport> + Send {
        Delivery::delete(self, settings, identities, deadline)
    }
}

/// Everything one container shares across invocations: configuration and clients, built once.
pub struct Handler<S, U, D> {
    pub config: Config,
    pub settings: S,
    pub delivery: U,
    pub dead_letters: D,
    /// Counters of the invocation in progress (Lambda runs one at a time per container).
    metrics: Mutex<InvocationMetrics>,
}

impl<S, U, D> Handler<S, U, D> {
    /// Adds to one destination's counters (`-` where no destination is known).
    pub(crate) fn count(&self, destination: &str, add: impl FnOnce(&mut DestinationCounters)) {
        let mut metrics = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        add(metrics.destination(destination));
    }

    /// Counts one delivery call.
    pub(crate) fn count_delivery(&self, destination: &str, report: &DeliveryReport) {
        self.count(destination, |c| {
            c.upload_requests += u64::from(report.stats.requests);
            c.retries += u64::from(report.stats.retries);
            c.throttled += u64::from(report.stats.throttled);
            for &latency in &report.stats.latencies {
                c.record_latency(latency);
            }
        });
    }

    /// Counts event outcomes.
    pub(crate) fn count_outcomes(
        &self,
        destination: &str,
        counts: [usize; 3],
        dead_lettered: usize,
    ) {
        self.count(destination, |c| {
            c.delivered += counts[Status::Delivered as usize] as u64;
            c.rejected += counts[Status::Rejected as usize] as u64;
            c.retried += counts[Status::Retry as usize] as u64;
            c.dead_lettered += dead_lettered as u64;
        });
    }
}

impl<S: SettingsSource, U: Upload, D: DeadLetterSink> Handler<S, U, D> {
    pub fn new(config: Config, settings: S, delivery: U, dead_letters: D) -> Self {
        Handler {
            config,
            settings,
            delivery,
            dead_letters,
            metrics: Mutex::new(InvocationMetrics::default()),
        }
    }

    /// The counters gathered since the last call, with the settings source's cache misses, for
    /// the invocation's summary line and EMF documents.
    pub fn take_metrics(&self) -> InvocationMetrics {
        for (destination, misses) in self.settings.take_cache_misses() {
            self.count(destination.as_str(), |c| c.secrets_cache_miss += misses);
        }
        std::mem::take(&mut *self.metrics.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Handles one invocation from its JSON text, as the Lambda runtime loop receives it; the
    /// answer is due before `deadline`. Also returns the payload's shape, for the summary line.
    ///
    /// An SQS batch is read straight from the text into its messages and the text is dropped
    /// before the transform starts: a `serde_json::Value` tree of 10,000 messages costs several
    /// times the payload's size, and would decide whether the function fits in 128 MB
    /// (BENCHMARKS.md, "Whole path"). Anything else is small and takes the [`Handler::handle`] path.
    pub async fn handle_raw(
        &self,
        payload: Box<RawValue>,
        deadline: Instant,
    ) -> (Option<Shape>, Result<Value, HandlerError>) {
        let default = self.config.default_destination_id.as_ref();
        if let Some(messages) = sqs::read_batch(payload.get(), default) {
            drop(payload);
            tracing::debug!(shape = Shape::Sqs.as_str(), "invocation");
            let answer = match sqs::handle_messages(self, messages, deadline).await {
                Ok(response) => serde_json::to_value(response).map_err(HandlerError::Encode),
                Err(e) => Err(e),
            };
            return (Some(Shape::Sqs), answer);
        }
        let value: Value = match serde_json::from_str(payload.get()) {
            Ok(value) => value,
            // The runtime only hands over JSON; this is for callers that do not check.
            Err(_) => Value::Null,
        };
        drop(payload);
        let shape = Shape::detect(&value);
        (shape, self.handle(value, deadline).await)
    }

    /// Handles one invocation; the answer is due before `deadline`.
    pub async fn handle(&self, payload: Value, deadline: Instant) -> Result<Value, HandlerError> {
        let Some(shape) = Shape::detect(&payload) else {
            tracing::error!(code = "unknown_event", "{}", HandlerError::UnknownEvent);
            return Err(HandlerError::UnknownEvent);
        };
        tracing::debug!(shape = shape.as_str(), "invocation");
        match shape {
            Shape::Sqs => {
                let response = sqs::handle(self, payload, deadline).await?;
                serde_json::to_value(response).map_err(HandlerError::Encode)
            }
            Shape::HttpApiV2 | Shape::FunctionUrl | Shape::RestApiV1 => {
                Ok(http::handle(self, shape, payload, deadline).await)
            }
        }
    }
}

/// One event of a body after the transform: its raw text (for dead-lettering), its messageId,
/// and its records or why it is rejected.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub raw: &'a str,
    pub message_id: Option<Box<str>>,
    pub records: Result<Vec<Record>, Reason>,
}

/// Transforms the items of a body; items that could not be read are rejected as they are.
/// A filtered event (dropped on purpose) has no records: nothing is sent for it.
pub(crate) fn prepare<'a, 's>(
    items: Vec<crate::input::Item<'a>>,
    mapping: impl Into<TransformOptions<'s>>,
) -> Vec<Prepared<'a>> {
    let mapping = mapping.into();
    items
        .into_iter()
        .map(|item| match item.error {
            Some(reason) => Prepared {
                raw: item.raw,
                message_id: None,
                records: Err(reason),
            },
            None => {
                let t = transform_event(item.raw, mapping);
                let records = match t.result {
                    Mapped::Records(records) => Ok(records),
                    Mapped::Filtered(_) => Ok(Vec::new()),
                    Mapped::Rejected(reason) => {
                        crate::regulation::explain_rejection(item.raw, Err(reason))
                    }
                };
                Prepared {
                    raw: item.raw,
                    message_id: t.message_id,
                    records,
                }
            }
        })
        .collect()
}

/// The outcome of each prepared event, given the delivery outcomes of those that had records
/// (in order). Events without records are delivered: there is nothing to send.
pub(crate) fn merge_outcomes(
    prepared: &[Prepared<'_>],
    delivered: &mut impl Iterator<Item = Outcome>,
) -> Vec<Outcome> {
    prepared
        .iter()
        .map(|p| match &p.records {
            Err(reason) => Outcome::Rejected(reason.clone()),
            Ok(records) if records.is_empty() => Outcome::Delivered,
            Ok(_) => delivered.next().unwrap_or_else(|| {
                Outcome::retry(
                    "delivery_incomplete",
                    "delivery reported no outcome for this event",
                )
            }),
        })
        .collect()
}

/// The record slices of the prepared events that have records, in order.
pub(crate) fn record_slices<'p>(
    prepared: &'p [Prepared<'_>],
) -> impl Iterator<Item = &'p [Record]> {
    prepared.iter().filter_map(|p| match &p.records {
        Ok(records) if !records.is_empty() => Some(records.as_slice()),
        _ => None,
    })
}

/// The dead-letter body for rejected events: one event as it came, a JSON array of several, or
/// NDJSON when some of them are not JSON at all (so each still arrives as it came).
pub(crate) fn dead_letter_body<'a>(raws: impl IntoIterator<Item = &'a str>) -> String {
    let raws: Vec<&str> = raws.into_iter().collect();
    match raws.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        many => {
            let all_json = many
                .iter()
                .all(|r| serde_json::from_str::<&serde_json::value::RawValue>(r).is_ok());
            if all_json {
                let mut body =
                    String::with_capacity(many.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
                body.push('[');
                for (i, raw) in many.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(raw.trim());
                }
                body.push(']');
                body
            } else {
                many.join("\n")
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod fakes;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_sqs_batch_is_told_by_its_event_source() {
        let p = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        assert_eq!(Shape::detect(&p), Some(Shape::Sqs));
    }

    #[test]
    fn records_from_another_service_are_not_an_sqs_batch() {
        for p in [
            json!({"Records": [{"eventSource": "aws:s3"}]}),
            json!({"Records": [{"EventSource": "aws:sns"}]}),
            json!({"Records": []}),
            json!({"Records": "aws:sqs"}),
        ] {
            assert_eq!(Shape::detect(&p), None, "{p}");
        }
    }

    #[test]
    fn an_http_api_v2_request_and_a_function_url_request_are_told_apart_by_domain() {
        let v2 = json!({"version": "2.0", "requestContext": {"http": {"method": "POST"},
            "domainName": "abc.execute-api.us-east-1.amazonaws.com"}});
        let url = json!({"version": "2.0", "requestContext": {"http": {"method": "POST"},
            "domainName": "abc.lambda-url.us-east-1.on.aws"}});
        assert_eq!(Shape::detect(&v2), Some(Shape::HttpApiV2));
        assert_eq!(Shape::detect(&url), Some(Shape::FunctionUrl));
    }

    #[test]
    fn a_rest_api_request_is_told_by_its_http_method() {
        let v1 = json!({"httpMethod": "POST", "requestContext": {"stage": "prod"}, "body": "{}"});
        assert_eq!(Shape::detect(&v1), Some(Shape::RestApiV1));
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
            json!({"userId": "u1", "type": "track"}),
        ] {
            assert_eq!(Shape::detect(&p), None, "{p}");
        }
    }

    #[test]
    fn one_rejected_event_is_dead_lettered_as_it_came() {
        assert_eq!(dead_letter_body([r#"{"a":1}"#]), r#"{"a":1}"#);
        assert_eq!(dead_letter_body(["not json"]), "not json");
    }

    #[test]
    fn several_rejected_events_become_a_json_array() {
        assert_eq!(
            dead_letter_body([r#"{"a":1}"#, r#" {"b":2}"#]),
            r#"[{"a":1},{"b":2}]"#
        );
    }

    #[test]
    fn several_rejected_lines_with_one_not_json_stay_ndjson() {
        assert_eq!(
            dead_letter_body([r#"{"a":1}"#, "{oops"]),
            "{\"a\":1}\n{oops"
        );
    }

    fn sqs_record(id: &str, body: Value, arn: &str) -> Value {
        json!({"messageId": id, "receiptHandle": "rh", "body": body, "attributes": {},
               "messageAttributes": {"destinationId": {"stringValue": "dest-a",
                   "dataType": "String", "stringListValues": [], "binaryListValues": []}},
               "md5OfBody": "x", "eventSource": "aws:sqs", "eventSourceARN": arn,
               "awsRegion": "us-east-1"})
    }

    fn raw(value: &Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).unwrap()
    }

    #[tokio::test]
    async fn the_lambda_text_path_answers_an_sqs_batch_exactly_like_the_value_path() {
        let track = r#"{"type":"track","event":"Viewed","userId":"u-1","messageId":"e-1"}"#;
        let arn = "arn:aws:sqs:us-east-1:123456789012:events";
        let batch = json!({"Records": [
            sqs_record("m-1", json!(track), arn),
            sqs_record("m-2", json!("oops"), arn),
            // Not an SQS message (body is a number): a retry of that message alone.
            sqs_record("m-3", json!(5), arn),
        ]});
        let h = fakes::handler();
        let (shape, from_text) = h.handle_raw(raw(&batch), fakes::deadline()).await;
        assert_eq!(shape, Some(Shape::Sqs));
        let from_value = h.handle(batch, fakes::deadline()).await.unwrap();
        let from_text = from_text.unwrap();
        assert_eq!(from_text, from_value);
        assert_eq!(
            from_text,
            json!({"batchItemFailures": [{"itemIdentifier": "m-3"}]})
        );
    }

    #[tokio::test]
    async fn the_lambda_text_path_tells_fifo_batches_and_other_payloads_apart() {
        let h = fakes::handler();
        let fifo = json!({"Records": [sqs_record("f-1", json!("oops"), "arn:aws:sqs:us-east-1:1:q.fifo")]});
        let text = fifo.to_string();
        let messages = sqs::read_batch(&text, None).unwrap();
        assert!(messages[0].fifo);

        let (shape, answer) = h
            .handle_raw(
                raw(&json!({"Records": [{"eventSource": "aws:s3"}]})),
                fakes::deadline(),
            )
            .await;
        assert_eq!(shape, None);
        assert!(matches!(answer, Err(HandlerError::UnknownEvent)));

        // An HTTP request is answered in its own shape (this one is incomplete: a 400).
        let request = json!({"httpMethod": "GET", "requestContext": {"stage": "prod"}});
        let (shape, answer) = h.handle_raw(raw(&request), fakes::deadline()).await;
        assert_eq!(shape, Some(Shape::RestApiV1));
        assert_eq!(answer.unwrap()["statusCode"], 400);
    }

    #[test]
    fn a_handler_error_becomes_a_lambda_diagnostic_with_its_code() {
        let d: lambda_runtime::Diagnostic = HandlerError::UnknownEvent.into();
        assert_eq!(d.error_type, "unknown_event");
        assert!(d.error_message.contains("SQS batch"));
    }
}
