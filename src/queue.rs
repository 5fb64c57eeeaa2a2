//! The events queue the webhook writes to in queue mode (docs/contracts.md §2, "Queue mode"):
//! one SQS message per event (or per chunk of a regulation's users), carrying the authenticated
//! destination as its `destinationId` attribute and the HTTP request id as `sourceRequestId`.
//! An event's message also carries `bodyForm` = `event`: its body is that one event as it came,
//! and the queue function reads it as exactly one event, never as a batch, NDJSON or a
//! regulation (an event may well hold a top-level `batch` or `regulationType` member). A
//! regulation's message is the regulation itself, read by the body rules.
//! The queue function then delivers them in batches, as any other message.
//!
//! The sender sits behind a small object-safe trait, so the handler keeps its three type
//! parameters and unit tests use a fake; the real one is SQS `SendMessageBatch`: at most 10
//! entries and 256 KiB per call, calls run together, each entry succeeding or failing alone,
//! nothing started after the deadline.

use crate::aws::sqs_batch::MAX_BATCH_BYTES;

/// The largest message SQS takes, body and attributes together (Amazon SQS quotas).
pub const MAX_MESSAGE_BYTES: usize = MAX_BATCH_BYTES;
/// `SendMessageBatch` calls in flight at once for one request.
pub const MAX_CALLS_IN_FLIGHT: usize = 8;

/// Names of a queued message's attributes.
pub mod attributes {
    /// The authenticated destination: the only one the message may act on (§3, origin rule).
    pub const DESTINATION_ID: &str = crate::dead_letters::letter::attributes::DESTINATION_ID;
    /// The id of the HTTP request the event came in (API Gateway's or the Function URL's).
    pub const SOURCE_REQUEST_ID: &str = "sourceRequestId";
    /// How the body is to be read; [`BODY_FORM_EVENT`] is the one form there is.
    pub const BODY_FORM: &str = "bodyForm";
    /// The body is exactly one event.
    pub const BODY_FORM_EVENT: &str = "event";
}

/// One message for the events queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// One event as it came, or a regulation with some of its users.
    pub body: String,
    /// The authenticated destination; never empty.
    pub destination_id: String,
    pub source_request_id: Option<String>,
    /// For a FIFO queue: the deduplication id (the request id and the item's index).
    pub deduplication_id: Option<String>,
    /// The body is one event (`bodyForm` = `event`); false for a regulation.
    pub one_event: bool,
}

impl QueuedMessage {
    /// The attributes, as name/value pairs, in a fixed order; empty values left out.
    pub fn attributes(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (
                attributes::DESTINATION_ID,
                Some(self.destination_id.as_str()),
            ),
            (
                attributes::SOURCE_REQUEST_ID,
                self.source_request_id.as_deref(),
            ),
            (
                attributes::BODY_FORM,
                self.one_event.then_some(attributes::BODY_FORM_EVENT),
            ),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.filter(|v| !v.is_empty()).map(|v| (name, v)))
    }

    /// The size SQS counts against its limit: the body as it is sent (`aws::sqs_batch::sqs_body`)
    /// plus each attribute's name, type and value.
    pub fn size(&self) -> usize {
        crate::aws::sqs_batch::message_size(&self.body, self.attributes())
    }
}

/// Why one message was not put on the queue. Its item is then answered `retry`
/// (`enqueue_failed`): the caller sends it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    #[error("no events queue is configured (EVENTS_QUEUE_URL is unset)")]
    NotConfigured,
    #[error("message of {size} bytes is over SQS's limit of {MAX_MESSAGE_BYTES} bytes")]
    TooLarge { size: usize },
    #[error("SQS refused the message ({code})")]
    Refused { code: String },
    #[error("could not build the SQS request")]
    Build,
    #[error("SQS SendMessageBatch failed")]
    Send,
    #[error("SQS did not report on the message")]
    Unreported,
    #[error("not sent: the invocation's deadline came first")]
    Deadline,
}

impl EnqueueError {
    /// Stable snake_case code, for logs.
    pub const fn code(&self) -> &'static str {
        match self {
            EnqueueError::NotConfigured => "events_queue_not_configured",
            EnqueueError::TooLarge { .. } => "enqueue_too_large",
            EnqueueError::Refused { .. } => "enqueue_refused",
            EnqueueError::Build | EnqueueError::Send => "enqueue_send_failed",
            EnqueueError::Unreported => "enqueue_unreported",
            EnqueueError::Deadline => "enqueue_deadline",
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::events_queue::pack;

    fn message(body_len: usize) -> QueuedMessage {
        QueuedMessage {
            body: "x".repeat(body_len),
            destination_id: "dest-a".into(),
            source_request_id: Some("req-1".into()),
            deduplication_id: None,
            one_event: false,
        }
    }

    #[test]
    fn the_size_counts_the_body_and_both_attributes() {
        let m = message(5);
        assert_eq!(
            m.size(),
            5 + ("destinationId".len() + 6 + 6) + ("sourceRequestId".len() + 6 + 5)
        );
        let names: Vec<_> = QueuedMessage {
            source_request_id: Some(String::new()),
            ..message(1)
        }
        .attributes()
        .map(|(n, _)| n)
        .collect();
        assert_eq!(names, ["destinationId"], "an empty request id is left out");
    }

    #[test]
    fn messages_are_packed_by_ten_and_by_256_kib_and_an_oversized_one_alone_fails() {
        let small: Vec<QueuedMessage> = (0..25).map(|_| message(10)).collect();
        let (batches, too_large) = pack(&small);
        assert!(too_large.is_empty());
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);

        let big = vec![
            message(100 * 1024),
            message(100 * 1024),
            message(100 * 1024),
            message(MAX_MESSAGE_BYTES),
            message(10),
        ];
        let (batches, too_large) = pack(&big);
        let indices: Vec<Vec<usize>> = batches
            .iter()
            .map(|b| b.iter().map(|(i, _)| *i).collect())
            .collect();
        assert_eq!(indices, [vec![0, 1], vec![2, 4]]);
        assert_eq!(too_large.len(), 1);
        assert_eq!(too_large[0].0, 3);
        assert!(matches!(too_large[0].1, EnqueueError::TooLarge { .. }));
        for batch in &batches {
            let total: usize = batch.iter().map(|(_, m)| m.size()).sum();
            assert!(total <= MAX_BATCH_BYTES);
        }
    }
}
