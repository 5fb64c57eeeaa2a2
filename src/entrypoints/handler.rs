//! The handler's state, built once per container, and its one entry point: [`Handler::handle`]
//! takes the payload's bytes exactly as the Lambda runtime hands them over. The runtime loop, the
//! `invoke` command (with or without `--dry-run`) and the tests all call it, so there is one
//! path from payload to answer. The steps every entry point shares (an upload or a delete with
//! its bookkeeping, the counters) live here too.

use super::shape::{self, Payload, Shape};
use super::{http, sqs};
use crate::clevertap::transport::Transport;
use crate::config::Config;
use crate::credentials::SettingsSource;
use crate::deadletter::DeadLetterSink;
use crate::delivery::{Delivery, DeliveryReport};
use crate::metrics::{DestinationCounters, InvocationMetrics};
use crate::outcome::{Outcome, StatusCounts};
use crate::settings::{DestinationId, DestinationSettings};
use crate::transform::Record;
use crate::visibility::MessageVisibility;
use bytes::Bytes;
use serde_json::Value;
use std::future::Future;
use std::sync::Mutex;
use tokio::time::Instant;

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
        "an SQS message has no messageId, so it could not be reported alone: the whole batch \
         fails before anything is sent, so that nothing is lost or sent twice"
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

/// What the handler needs of CleverTap: uploads of events and, for regulations
/// (docs/contracts.md §6), deletes of profiles. [`Delivery`] is the real one; unit tests use a
/// fake.
pub trait CleverTapApi: Send + Sync {
    /// Uploads each event's records; one outcome per event, in order.
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

impl<T: Transport> CleverTapApi for Delivery<T> {
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

/// The answer to one invocation, and the payload's shape for the summary line.
#[derive(Debug)]
pub struct Invocation {
    pub shape: Option<Shape>,
    pub answer: Result<Value, HandlerError>,
}

/// Everything one container shares across invocations: configuration and clients, built once.
pub struct Handler<S, C, D> {
    pub config: Config,
    /// Where destination settings come from (Secrets Manager, cached).
    pub settings_source: S,
    /// CleverTap's API, behind the delivery engine.
    pub clevertap: C,
    pub dead_letters: D,
    /// The webhook's events queue (queue mode) and token re-read limiter.
    pub(crate) webhook: http::WebhookState,
    /// Where retried SQS messages are told when to come back (visibility backoff); `None`
    /// leaves them to the queue's own visibility timeout.
    pub visibility: Option<Box<dyn MessageVisibility>>,
    /// Counters of the invocation in progress (Lambda runs one at a time per container).
    metrics: Mutex<InvocationMetrics>,
}

impl<S, C, D> Handler<S, C, D> {
    /// Adds to one destination's counters (`-` where no destination is known).
    pub(crate) fn count(&self, destination: &str, add: impl FnOnce(&mut DestinationCounters)) {
        let mut metrics = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        add(metrics.destination(destination));
    }

    /// Counts items' outcomes, and how many of them were dead-lettered.
    pub(crate) fn count_outcomes(
        &self,
        destination: &str,
        counts: StatusCounts,
        dead_lettered: usize,
    ) {
        self.count(destination, |c| {
            c.delivered += counts.delivered as u64;
            c.filtered += counts.filtered as u64;
            c.rejected += counts.rejected as u64;
            c.retried += counts.retry as u64;
            c.dead_lettered += dead_lettered as u64;
        });
    }

    /// Counts one delivery call's requests.
    fn count_delivery(&self, destination: &str, report: &DeliveryReport) {
        self.count(destination, |c| {
            c.upload_requests += u64::from(report.stats.requests);
            c.retries += u64::from(report.stats.retries);
            c.throttled += u64::from(report.stats.throttled);
            c.circuit_opened += u64::from(report.stats.circuit_opened);
            c.circuit_closed += u64::from(report.stats.circuit_closed);
            c.circuit_refused += u64::from(report.stats.circuit_refused);
            for &latency in &report.stats.latencies {
                c.record_latency(latency);
            }
        });
    }
}

impl<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink> Handler<S, C, D> {
    pub fn new(config: Config, settings_source: S, clevertap: C, dead_letters: D) -> Self {
        let webhook = http::WebhookState::new(&config);
        Handler {
            config,
            settings_source,
            clevertap,
            dead_letters,
            webhook,
            visibility: None,
            metrics: Mutex::new(InvocationMetrics::default()),
        }
    }

    /// The same handler putting webhook events on `queue` when `WEBHOOK_MODE` is `queue`
    /// (docs/contracts.md §2).
    pub fn with_events_queue(
        mut self,
        queue: std::sync::Arc<dyn crate::queue::EventQueue>,
    ) -> Self {
        self.webhook.queue = Some(queue);
        self
    }

    /// The same handler, changing the visibility of retried SQS messages through `visibility`.
    pub fn with_visibility(mut self, visibility: impl MessageVisibility + 'static) -> Self {
        self.visibility = Some(Box::new(visibility));
        self
    }

    /// The counters gathered since the last call, with the settings source's cache misses, for
    /// the invocation's summary line and EMF documents.
    pub fn take_metrics(&self) -> InvocationMetrics {
        for miss in self.settings_source.take_cache_misses() {
            self.count(miss.destination.as_str(), |c| {
                c.secrets_cache_miss += miss.count;
                c.secrets_stale += miss.stale;
            });
        }
        std::mem::take(&mut *self.metrics.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Handles one invocation from its JSON bytes, as the Lambda runtime receives them (not
    /// checked before: what is read is checked as it is read); the answer is due before
    /// `deadline`.
    ///
    /// The payload is dropped as soon as it is read: an SQS batch of 10,000 messages keeps only
    /// its messages (each owning its body), never a `Value` tree of the whole event, which
    /// would cost several times the payload's size and decide whether the function fits in
    /// 128 MB (BENCHMARKS.md, "Whole path").
    pub async fn handle(&self, payload: Bytes, deadline: Instant) -> Invocation {
        let default = self.config.default_destination_id.as_ref();
        let read = match std::str::from_utf8(&payload) {
            Ok(text) => match shape::read(text) {
                Payload::Sqs(records) => Read::Sqs(sqs::decode_batch(records, default)),
                Payload::Http(shape) => Read::Http(shape, http::Request::decode(shape, text)),
                Payload::Unknown => Read::Unknown,
            },
            Err(_) => Read::Unknown,
        };
        drop(payload);
        match read {
            Read::Sqs(messages) => {
                tracing::debug!(shape = Shape::Sqs.as_str(), "invocation");
                let answer = sqs::handle(self, messages, deadline)
                    .await
                    .and_then(|r| serde_json::to_value(r).map_err(HandlerError::Encode));
                Invocation {
                    shape: Some(Shape::Sqs),
                    answer,
                }
            }
            Read::Http(shape, request) => {
                tracing::debug!(shape = shape.as_str(), "invocation");
                Invocation {
                    shape: Some(shape),
                    answer: Ok(http::handle(self, shape, request, deadline).await),
                }
            }
            Read::Unknown => {
                tracing::error!(code = "unknown_event", "{}", HandlerError::UnknownEvent);
                Invocation {
                    shape: None,
                    answer: Err(HandlerError::UnknownEvent),
                }
            }
        }
    }

    /// Uploads the events' records to a destination: drops its cached settings when CleverTap
    /// refuses them (401/403) and counts the requests. One outcome per event, in order; none
    /// for no events.
    pub(crate) async fn upload(
        &self,
        destination: &DestinationId,
        settings: &DestinationSettings,
        events: &[&[Record]],
        deadline: Instant,
    ) -> Vec<Outcome> {
        if events.is_empty() {
            return Vec::new();
        }
        let report = self.clevertap.upload(settings, events, deadline).await;
        self.settle_call(destination, &report);
        report.outcomes
    }

    /// Deletes profiles in a destination, with the same bookkeeping as [`Handler::upload`].
    pub(crate) async fn delete(
        &self,
        destination: &DestinationId,
        settings: &DestinationSettings,
        identities: &[&str],
        deadline: Instant,
    ) -> Vec<Outcome> {
        if identities.is_empty() {
            return Vec::new();
        }
        let report = self.clevertap.delete(settings, identities, deadline).await;
        self.settle_call(destination, &report);
        report.outcomes
    }

    fn settle_call(&self, destination: &DestinationId, report: &DeliveryReport) {
        if report.credentials_rejected {
            self.settings_source.invalidate(destination);
        }
        self.count_delivery(destination.as_str(), report);
        tracing::debug!(destination = %destination, stats = ?report.stats, "clevertap call");
    }
}

/// A payload after reading, its text dropped.
enum Read {
    Sqs(Vec<sqs::Message>),
    Http(Shape, Result<http::Request, serde_json::Error>),
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entrypoints::fakes::{self, payload};
    use crate::lambda_events::{QUEUE_ARN, sqs_message_on};
    use serde_json::json;

    #[tokio::test]
    async fn an_sqs_batch_is_answered_per_message_whatever_each_body_holds() {
        let track = r#"{"type":"track","event":"Viewed","userId":"u-1","messageId":"e-1"}"#;
        let mut not_a_message = sqs_message_on(QUEUE_ARN, "m-3", "x", "dest-a");
        // Not an SQS message (body is a number): a retry of that message alone.
        not_a_message["body"] = json!(5);
        let batch = json!({"Records": [
            sqs_message_on(QUEUE_ARN, "m-1", track, "dest-a"),
            sqs_message_on(QUEUE_ARN, "m-2", "oops", "dest-a"),
            not_a_message,
        ]});
        let h = fakes::handler();
        let invocation = h.handle(payload(&batch), fakes::deadline()).await;
        assert_eq!(invocation.shape, Some(Shape::Sqs));
        assert_eq!(
            invocation.answer.unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "m-3"}]})
        );
    }

    #[tokio::test]
    async fn other_payloads_are_an_unknown_event_and_http_requests_get_their_own_shape() {
        let h = fakes::handler();
        let invocation = h
            .handle(
                payload(&json!({"Records": [{"eventSource": "aws:s3"}]})),
                fakes::deadline(),
            )
            .await;
        assert_eq!(invocation.shape, None);
        assert!(matches!(invocation.answer, Err(HandlerError::UnknownEvent)));

        // An HTTP request is answered in its own shape (this one is incomplete: a 400).
        let request = json!({"httpMethod": "GET", "requestContext": {"stage": "prod"}});
        let invocation = h.handle(payload(&request), fakes::deadline()).await;
        assert_eq!(invocation.shape, Some(Shape::RestApiV1));
        assert_eq!(invocation.answer.unwrap()["statusCode"], 400);
    }

    #[test]
    fn a_handler_error_becomes_a_lambda_diagnostic_with_its_code() {
        let d: lambda_runtime::Diagnostic = HandlerError::UnknownEvent.into();
        assert_eq!(d.error_type, "unknown_event");
        assert!(d.error_message.contains("SQS batch"));
    }
}
