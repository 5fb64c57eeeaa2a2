//! Reading an SQS batch's records, each on its own: a record that is not an SQS message, or a
//! message without a usable destination, gets its own outcome and never fails its neighbours.
//! A message owns what it keeps, so the payload's text can go once every record is read.

use super::envelope::SqsRecord;
use crate::codes;
use crate::outcome::Outcome;
use crate::settings::DestinationId;
use std::borrow::Cow;
use std::sync::Arc;

/// The message attribute that names the destination (docs/contracts.md §2).
pub const DESTINATION_ATTRIBUTE: &str = "destinationId";

/// One message of the batch as far as it was understood.
pub struct Message {
    pub(crate) id: Option<String>,
    /// The record's `eventSourceARN` names a FIFO queue.
    pub(crate) fifo: bool,
    pub(crate) body: String,
    /// The `destinationId` attribute as it came (copied to a dead letter); shared by the
    /// messages that name the same one.
    pub(crate) destination_attr: Option<Arc<str>>,
    pub(crate) group_id: Option<String>,
    /// The destination, or the outcome of a message that has none.
    pub(crate) destination: Result<DestinationId, Outcome>,
    /// Where SQS can be told about this receive of the message: its queue's URL (from
    /// `eventSourceARN`) and its receipt handle. `None` when the record lacks either.
    pub(crate) receipt: Option<Receipt>,
    /// `ApproximateReceiveCount`: this receive included, so at least 1 (1 when absent).
    pub(crate) receive_count: u32,
    /// The `bodyForm` attribute says the body is exactly one event (queue mode's messages):
    /// it is never split as a batch, NDJSON or a regulation.
    pub(crate) one_event: bool,
}

/// The queue and receipt handle of one receive of a message, for a visibility change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receipt {
    /// Shared by the messages of one queue.
    pub queue_url: Arc<str>,
    pub handle: String,
}

impl Receipt {
    fn of(
        event_source_arn: Option<&str>,
        receipt_handle: Option<&str>,
        queues: &mut QueueUrls,
    ) -> Option<Receipt> {
        let handle = receipt_handle.filter(|h| !h.is_empty())?;
        Some(Receipt {
            queue_url: queues.of(event_source_arn?)?,
            handle: handle.to_owned(),
        })
    }
}

/// The queue URL of the records' `eventSourceARN`s. The records of a batch come from one queue,
/// so its URL is worked out once, not once per message.
#[derive(Default)]
struct QueueUrls {
    last: Option<(String, Option<Arc<str>>)>,
}

impl QueueUrls {
    fn of(&mut self, arn: &str) -> Option<Arc<str>> {
        match &self.last {
            Some((known, url)) if known == arn => url.clone(),
            _ => {
                let url: Option<Arc<str>> = crate::visibility::queue_url_of_arn(arn).map(Arc::from);
                self.last = Some((arn.to_owned(), url.clone()));
                url
            }
        }
    }
}

/// The destination of the records' `destinationId` attributes: a batch's messages mostly name
/// one, so it is checked and allocated once, not once per message (cpu2).
#[derive(Default)]
struct Destinations {
    last: Option<(Arc<str>, Result<DestinationId, Outcome>)>,
}

impl Destinations {
    /// The attribute's text, shared, and the destination it names.
    fn of(&mut self, value: &str) -> (Arc<str>, Result<DestinationId, Outcome>) {
        match &self.last {
            Some((known, destination)) if **known == *value => {
                (Arc::clone(known), destination.clone())
            }
            _ => {
                let text: Arc<str> = Arc::from(value);
                let destination = DestinationId::parse(value).map_err(|e| {
                    Outcome::rejected(
                        codes::INVALID_DESTINATION_ID,
                        format!("message attribute {DESTINATION_ATTRIBUTE}: {e}"),
                    )
                });
                self.last = Some((Arc::clone(&text), destination.clone()));
                (text, destination)
            }
        }
    }
}

/// The receive count an SQS record states, at least 1.
fn receive_count(value: Option<&str>) -> u32 {
    value
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(1)
        .max(1)
}

impl Message {
    /// The destination for metrics: its id, or `-` when it has none.
    pub(crate) fn metric_label(&self) -> &str {
        self.destination
            .as_ref()
            .map_or(crate::metrics::NO_DESTINATION, DestinationId::as_str)
    }

    /// The span of this message's log lines: its message id and destination id.
    pub(crate) fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "message",
            message_id = self.id.as_deref().unwrap_or(""),
            destination = self.metric_label()
        )
    }
}

/// The messages of a batch's records, in order; each record is consumed (its strings move into
/// the message, or are dropped with it).
pub(crate) fn decode_batch(
    records: Vec<SqsRecord<'_>>,
    default: Option<&DestinationId>,
) -> Vec<Message> {
    let mut queues = QueueUrls::default();
    let mut destinations = Destinations::default();
    records
        .into_iter()
        .map(|r| decode(r, default, &mut queues, &mut destinations))
        .collect()
}

/// One record as a message; a record that is not an SQS message is a retry of that message.
fn decode(
    record: SqsRecord<'_>,
    default: Option<&DestinationId>,
    queues: &mut QueueUrls,
    destinations: &mut Destinations,
) -> Message {
    let fifo = is_fifo_arn(record.event_source_arn.as_deref());
    let receipt = Receipt::of(
        record.event_source_arn.as_deref(),
        record.receipt_handle.as_deref(),
        queues,
    );
    let receive_count = receive_count(record.receive_count.as_deref());
    let id = record.message_id.map(Cow::into_owned);
    let group_id = record.group_id.map(Cow::into_owned);
    if let Some(problem) = record.problem {
        return Message {
            receipt,
            receive_count,
            id,
            fifo,
            body: String::new(),
            destination_attr: None,
            one_event: false,
            group_id,
            destination: Err(Outcome::retry(
                codes::INVALID_SQS_RECORD,
                format!("not an SQS message record: {problem}"),
            )),
        };
    }
    let (destination_attr, destination) = match &record.destination_attr {
        Some(Some(value)) => {
            let (text, destination) = destinations.of(value);
            (Some(text), destination)
        }
        Some(None) => (
            None,
            Err(Outcome::rejected(
                codes::INVALID_DESTINATION_ID,
                format!("message attribute {DESTINATION_ATTRIBUTE} must be a String"),
            )),
        ),
        None => (
            None,
            default.cloned().ok_or_else(|| {
                Outcome::retry(
                    codes::NO_DESTINATION,
                    format!(
                        "no {DESTINATION_ATTRIBUTE} message attribute and no DEFAULT_DESTINATION_ID"
                    ),
                )
            }),
        ),
    };
    Message {
        receipt,
        receive_count,
        id,
        fifo,
        group_id,
        body: record.body.map(Cow::into_owned).unwrap_or_default(),
        destination_attr,
        destination,
        one_event: record.body_form.as_deref() == Some(crate::queue::attributes::BODY_FORM_EVENT),
    }
}

fn is_fifo_arn(arn: Option<&str>) -> bool {
    arn.is_some_and(|arn| arn.ends_with(".fifo"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda_events::{QUEUE_ARN, sqs_message_on};
    use serde_json::json;

    fn decode_value(record: &serde_json::Value) -> Message {
        let text = record.to_string();
        decode(
            SqsRecord::from_text(&text).unwrap(),
            None,
            &mut QueueUrls::default(),
            &mut Destinations::default(),
        )
    }

    #[test]
    fn a_message_keeps_its_receipt_handle_queue_url_and_receive_count() {
        let mut record = sqs_message_on(QUEUE_ARN, "m-1", "{}", "dest-a");
        record["attributes"]["ApproximateReceiveCount"] = json!("7");
        let m = decode_value(&record);
        assert_eq!(m.receive_count, 7);
        assert_eq!(
            m.receipt,
            Some(Receipt {
                queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/events".into(),
                handle: "rh-m-1".into(),
            })
        );
    }

    #[test]
    fn messages_of_two_queues_in_one_batch_keep_their_own_queue_urls() {
        let other = "arn:aws:sqs:eu-west-1:123456789012:other";
        let texts = [
            sqs_message_on(QUEUE_ARN, "m-1", "{}", "dest-a").to_string(),
            sqs_message_on(other, "m-2", "{}", "dest-a").to_string(),
            sqs_message_on(QUEUE_ARN, "m-3", "{}", "dest-a").to_string(),
        ];
        let records = texts
            .iter()
            .map(|t| SqsRecord::from_text(t).unwrap())
            .collect();
        let urls: Vec<Option<String>> = decode_batch(records, None)
            .into_iter()
            .map(|m| m.receipt.map(|r| r.queue_url.to_string()))
            .collect();
        let events = "https://sqs.us-east-1.amazonaws.com/123456789012/events";
        let other = "https://sqs.eu-west-1.amazonaws.com/123456789012/other";
        assert_eq!(
            urls,
            [
                Some(events.to_owned()),
                Some(other.to_owned()),
                Some(events.to_owned())
            ]
        );
    }

    #[test]
    fn messages_naming_destinations_in_turn_keep_their_own_and_share_equal_ones() {
        let mut bad = sqs_message_on(QUEUE_ARN, "m-3", "{}", "dest a");
        bad["messageAttributes"]["destinationId"]["stringValue"] = json!("dest a");
        let texts = [
            sqs_message_on(QUEUE_ARN, "m-1", "{}", "dest-a").to_string(),
            sqs_message_on(QUEUE_ARN, "m-2", "{}", "dest-a").to_string(),
            bad.to_string(),
            sqs_message_on(QUEUE_ARN, "m-4", "{}", "dest-b").to_string(),
            sqs_message_on(QUEUE_ARN, "m-5", "{}", "dest-a").to_string(),
        ];
        let records = texts
            .iter()
            .map(|t| SqsRecord::from_text(t).unwrap())
            .collect();
        let messages = decode_batch(records, None);
        let seen: Vec<(Option<&str>, Result<&str, &str>)> = messages
            .iter()
            .map(|m| {
                let d = m.destination.as_ref().map(DestinationId::as_str);
                (
                    m.destination_attr.as_deref(),
                    d.map_err(|o| o.reason().map_or("", |r| r.code.as_ref())),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (Some("dest-a"), Ok("dest-a")),
                (Some("dest-a"), Ok("dest-a")),
                (Some("dest a"), Err(codes::INVALID_DESTINATION_ID)),
                (Some("dest-b"), Ok("dest-b")),
                (Some("dest-a"), Ok("dest-a")),
            ]
        );
        let (a, b) = (&messages[0].destination_attr, &messages[1].destination_attr);
        assert!(Arc::ptr_eq(a.as_ref().unwrap(), b.as_ref().unwrap()));
    }

    #[test]
    fn without_a_count_a_receive_is_the_first_and_without_a_handle_there_is_no_receipt() {
        let mut record = sqs_message_on(QUEUE_ARN, "m-1", "{}", "dest-a");
        record["attributes"] = json!({});
        record["receiptHandle"] = json!("");
        let m = decode_value(&record);
        assert_eq!(m.receive_count, 1);
        assert_eq!(m.receipt, None);
        record["attributes"]["ApproximateReceiveCount"] = json!("0");
        assert_eq!(decode_value(&record).receive_count, 1);
        record["eventSourceARN"] = json!("not an arn");
        record["receiptHandle"] = json!("rh");
        assert_eq!(decode_value(&record).receipt, None);
    }

    #[test]
    fn a_record_that_is_not_an_sqs_message_still_gives_its_receipt() {
        let mut record = sqs_message_on(QUEUE_ARN, "m-1", "{}", "dest-a");
        record["body"] = json!(5);
        record["attributes"]["ApproximateReceiveCount"] = json!("3");
        let m = decode_value(&record);
        assert!(m.destination.is_err());
        assert_eq!(m.receive_count, 3);
        assert_eq!(m.receipt.map(|r| r.handle), Some("rh-m-1".to_owned()));
    }
}
