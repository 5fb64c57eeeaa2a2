//! Reading an SQS batch's records, each on its own: a record that is not an SQS message, or a
//! message without a usable destination, gets its own outcome and never fails its neighbours.
//! A message owns what it keeps, so the payload's text can go once every record is read.

use crate::codes;
use crate::outcome::Outcome;
use crate::settings::DestinationId;
use aws_lambda_events::sqs::SqsMessage;
use serde_json::Value;
use serde_json::value::RawValue;

/// The message attribute that names the destination (docs/contracts.md §2).
pub const DESTINATION_ATTRIBUTE: &str = "destinationId";
/// The system attribute that holds a FIFO message's group.
const MESSAGE_GROUP_ID: &str = "MessageGroupId";

/// One message of the batch as far as it was understood.
pub struct Message {
    pub(crate) id: Option<String>,
    /// The record's `eventSourceARN` names a FIFO queue.
    pub(crate) fifo: bool,
    pub(crate) body: String,
    /// The `destinationId` attribute as it came (copied to a dead letter).
    pub(crate) destination_attr: Option<String>,
    pub(crate) group_id: Option<String>,
    /// The destination, or the outcome of a message that has none.
    pub(crate) destination: Result<DestinationId, Outcome>,
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

/// The messages of a batch's records, in order.
pub(crate) fn decode_batch(records: &[&RawValue], default: Option<&DestinationId>) -> Vec<Message> {
    records.iter().map(|r| decode(r, default)).collect()
}

/// Reads one record; a record that is not an SQS message is a retry of that message.
fn decode(record: &RawValue, default: Option<&DestinationId>) -> Message {
    // Only an object is a record: serde would also read a JSON array positionally.
    let parsed = if record.get().trim_start().starts_with('{') {
        serde_json::from_str::<SqsMessage>(record.get())
    } else {
        Err(serde::de::Error::custom("a record must be a JSON object"))
    };
    match parsed {
        Ok(m) => {
            let attr = m.message_attributes.get(DESTINATION_ATTRIBUTE);
            let destination_attr = attr.and_then(|a| a.string_value.clone());
            let destination = match (attr, &destination_attr) {
                (Some(_), Some(value)) => DestinationId::parse(value).map_err(|e| {
                    Outcome::rejected(
                        codes::INVALID_DESTINATION_ID,
                        format!("message attribute {DESTINATION_ATTRIBUTE}: {e}"),
                    )
                }),
                (Some(_), None) => Err(Outcome::rejected(
                    codes::INVALID_DESTINATION_ID,
                    format!("message attribute {DESTINATION_ATTRIBUTE} must be a String"),
                )),
                (None, _) => default.cloned().ok_or_else(|| {
                    Outcome::retry(
                        codes::NO_DESTINATION,
                        format!(
                            "no {DESTINATION_ATTRIBUTE} message attribute and no DEFAULT_DESTINATION_ID"
                        ),
                    )
                }),
            };
            Message {
                id: m.message_id,
                fifo: is_fifo_arn(m.event_source_arn.as_deref()),
                group_id: m.attributes.get(MESSAGE_GROUP_ID).cloned(),
                body: m.body.unwrap_or_default(),
                destination_attr,
                destination,
            }
        }
        Err(e) => {
            let probe = RecordProbe::of(record);
            Message {
                id: probe.message_id,
                fifo: is_fifo_arn(probe.event_source_arn.as_deref()),
                body: String::new(),
                destination_attr: None,
                group_id: None,
                destination: Err(Outcome::retry(
                    codes::INVALID_SQS_RECORD,
                    format!("not an SQS message record: {e}"),
                )),
            }
        }
    }
}

/// What can still be read of a record that is not a valid SQS message: enough to report it.
#[derive(Default)]
struct RecordProbe {
    message_id: Option<String>,
    event_source_arn: Option<String>,
}

impl RecordProbe {
    fn of(record: &RawValue) -> RecordProbe {
        let Ok(value) = serde_json::from_str::<Value>(record.get()) else {
            return RecordProbe::default();
        };
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        RecordProbe {
            message_id: text("messageId"),
            event_source_arn: text("eventSourceARN"),
        }
    }
}

fn is_fifo_arn(arn: Option<&str>) -> bool {
    arn.is_some_and(|arn| arn.ends_with(".fifo"))
}
