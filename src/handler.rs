//! The Lambda handler: its one entry point, [`Handler::handle`], takes the payload's bytes
//! exactly as the Lambda runtime hands them over, tells its source (`sources::shape`) and
//! dispatches it to that source (`sources::sqs`, `sources::http`), which settles it on the
//! engine (`crate::engine`) and answers. The runtime loop, the `invoke` command (with or without
//! `--dry-run`) and the tests all call it, so there is one path from payload to answer.

use crate::config::Config;
use crate::engine::Engine;
use crate::ports::{
    AnyEventQueue, CleverTapApi, DeadLetterSink, MessageVisibility, Ports, SettingsSource,
};
pub use crate::sources::error::HandlerError;
use crate::sources::http::{self, WebhookState};
use crate::sources::shape::{self, Payload, Shape};
use crate::sources::sqs;
use bytes::Bytes;
use serde_json::Value;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use tokio::time::Instant;

/// The answer to one invocation, and the payload's shape for the summary line.
#[derive(Debug)]
pub struct Invocation {
    pub shape: Option<Shape>,
    pub answer: Result<Value, HandlerError>,
}

/// The Lambda handler of one container: the engine (configuration and ports, built once) and
/// what the webhook keeps across requests. It derefs to its engine.
pub struct Handler<S, C, D>
where
    (S, C, D): Ports,
{
    engine: Engine<(S, C, D)>,
    webhook: WebhookState,
}

impl<S, C, D> Deref for Handler<S, C, D>
where
    (S, C, D): Ports,
{
    type Target = Engine<(S, C, D)>;
    fn deref(&self) -> &Self::Target {
        &self.engine
    }
}

impl<S, C, D> DerefMut for Handler<S, C, D>
where
    (S, C, D): Ports,
{
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.engine
    }
}

impl<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink> Handler<S, C, D> {
    /// The webhook answers in sync or queue mode as `config.webhook_mode` says, decided here
    /// once; queue mode needs [`Handler::with_events_queue`] (without it every event is a retry).
    pub fn new(config: Config, settings_source: S, clevertap: C, dead_letters: D) -> Self {
        let webhook = WebhookState::new(&config);
        Handler {
            engine: Engine::new(config, settings_source, clevertap, dead_letters),
            webhook,
        }
    }

    /// The same handler putting webhook events on `queue` in queue mode (docs/contracts.md §2).
    pub fn with_events_queue(mut self, queue: Arc<dyn AnyEventQueue>) -> Self {
        self.webhook.set_queue(queue);
        self
    }

    /// The same handler, changing the visibility of retried SQS messages through `visibility`.
    pub fn with_visibility(mut self, visibility: impl MessageVisibility + 'static) -> Self {
        self.engine.visibility = Some(Box::new(visibility));
        self
    }

    /// Handles one invocation from its JSON bytes, as the Lambda runtime receives them (not
    /// checked before: what is read is checked as it is read); the answer is due before
    /// `deadline`. The one place that tells a payload's source and hands it over.
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
                let answer = sqs::handle(&self.engine, messages, deadline)
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
                    answer: Ok(
                        http::handle(&self.engine, &self.webhook, shape, request, deadline).await,
                    ),
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
    use crate::engine::fakes::{self, payload};
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
