//! Reading an SQS batch's records, each on its own: a record that is not an SQS message, or a
//! message without a usable destination, gets its own outcome and never fails its neighbours.
//! A message owns what it keeps, so the payload's text can go once every record is read.

use super::record::SqsRecord;
use crate::codes;
use crate::outcome::Outcome;
use crate::settings::DestinationId;
use std::borrow::Cow;

/// The message attribute that names the destination (docs/contracts.md §2).
pub const DESTINATION_ATTRIBUTE: &str = "destinationId";

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

/// The messages of a batch's records, in order; each record is consumed (its strings move into
/// the message, or are dropped with it).
pub(crate) fn decode_batch(
    records: Vec<SqsRecord<'_>>,
    default: Option<&DestinationId>,
) -> Vec<Message> {
    records.into_iter().map(|r| decode(r, default)).collect()
}

/// One record as a message; a record that is not an SQS message is a retry of that message.
fn decode(record: SqsRecord<'_>, default: Option<&DestinationId>) -> Message {
    let fifo = is_fifo_arn(record.event_source_arn.as_deref());
    let id = record.message_id.map(Cow::into_owned);
    let group_id = record.group_id.map(Cow::into_owned);
    if let Some(problem) = record.problem {
        return Message {
            id,
            fifo,
            body: String::new(),
            destination_attr: None,
            group_id,
            destination: Err(Outcome::retry(
                codes::INVALID_SQS_RECORD,
                format!("not an SQS message record: {problem}"),
            )),
        };
    }
    let destination_attr = record
        .destination_attr
        .as_ref()
        .and_then(|value| value.as_deref())
        .map(str::to_owned);
    let destination = match (&record.destination_attr, &destination_attr) {
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
        id,
        fifo,
        group_id,
        body: record.body.map(Cow::into_owned).unwrap_or_default(),
        destination_attr,
        destination,
    }
}

fn is_fifo_arn(arn: Option<&str>) -> bool {
    arn.is_some_and(|arn| arn.ends_with(".fifo"))
}
