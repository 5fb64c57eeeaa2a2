//! What every `SendMessageBatch` this function makes shares (dead letters, the webhook's events
//! queue): SQS's limits, packing messages into calls, building an entry, and reading each
//! entry's result from the answer. Each sender keeps its own errors and policy around them.

use aws_sdk_sqs::error::BuildError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

/// SQS `SendMessageBatch` and `ChangeMessageVisibilityBatch` take at most 10 entries (Amazon SQS
/// quotas).
pub const MAX_ENTRIES_PER_BATCH: usize = 10;
/// SQS's limit on one batch's total size, bodies and attributes included: 256 KiB (Amazon SQS
/// quotas). A single message can be no larger either.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A queue `SendMessageBatch` calls go to: the client (built once per container) and the
/// queue's URL; a URL ending in `.fifo` names a FIFO queue, whose entries need a group.
#[derive(Debug, Clone)]
pub struct Target {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub fifo: bool,
}

impl Target {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        let queue_url = queue_url.into();
        let fifo = queue_url.ends_with(".fifo");
        Target {
            client,
            queue_url,
            fifo,
        }
    }

    /// A `SendMessageBatch` call to this queue holding `entries`.
    pub fn call<'e>(
        &self,
        entries: impl IntoIterator<Item = &'e SendMessageBatchRequestEntry>,
    ) -> aws_sdk_sqs::operation::send_message_batch::builders::SendMessageBatchFluentBuilder {
        entries.into_iter().fold(
            self.client.send_message_batch().queue_url(&self.queue_url),
            |request, entry| request.entries(entry.clone()),
        )
    }
}

/// Messages packed into calls: each call's message indices, in order, and the indices of the
/// messages too large to go at all.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Packed {
    pub calls: Vec<Vec<usize>>,
    pub too_large: Vec<usize>,
}

/// Packs messages of these sizes into calls of at most [`MAX_ENTRIES_PER_BATCH`] entries and
/// [`MAX_BATCH_BYTES`], keeping their order.
pub fn pack(sizes: impl IntoIterator<Item = usize>) -> Packed {
    let mut packed = Packed::default();
    let mut current: Vec<usize> = Vec::new();
    let mut current_size = 0;
    for (index, size) in sizes.into_iter().enumerate() {
        if size > MAX_BATCH_BYTES {
            packed.too_large.push(index);
            continue;
        }
        if current.len() == MAX_ENTRIES_PER_BATCH || current_size + size > MAX_BATCH_BYTES {
            packed.calls.push(std::mem::take(&mut current));
            current_size = 0;
        }
        current.push(index);
        current_size += size;
    }
    if !current.is_empty() {
        packed.calls.push(current);
    }
    packed
}

/// The FIFO parameters of an entry.
pub struct Fifo<'a> {
    pub group: &'a str,
    pub deduplication_id: Option<&'a str>,
}

/// One entry: `slot` is its id within the call; String attributes only.
pub fn entry<N: AsRef<str>, V: AsRef<str>>(
    slot: usize,
    body: &str,
    attributes: impl IntoIterator<Item = (N, V)>,
    fifo: Option<Fifo<'_>>,
) -> Result<SendMessageBatchRequestEntry, BuildError> {
    let mut entry = SendMessageBatchRequestEntry::builder()
        .id(slot.to_string())
        .message_body(body);
    for (name, value) in attributes {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value.as_ref())
            .build()?;
        entry = entry.message_attributes(name.as_ref(), value);
    }
    if let Some(fifo) = fifo {
        entry = entry.message_group_id(fifo.group);
        if let Some(id) = fifo.deduplication_id {
            entry = entry.message_deduplication_id(id);
        }
    }
    entry.build()
}

/// What the answer says of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Sent,
    Refused {
        code: String,
        message: String,
        sender_fault: bool,
    },
    /// Neither listed as successful nor as failed.
    Unreported,
}

/// The result of the entry with id `slot` in a call's answer.
pub fn result_of(output: &SendMessageBatchOutput, slot: usize) -> EntryResult {
    let id = slot.to_string();
    if output.successful().iter().any(|s| s.id() == id) {
        EntryResult::Sent
    } else if let Some(f) = output.failed().iter().find(|f| f.id() == id) {
        EntryResult::Refused {
            code: f.code().to_owned(),
            message: f.message().unwrap_or_default().to_owned(),
            sender_fault: f.sender_fault(),
        }
    } else {
        EntryResult::Unreported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_hold_at_most_ten_entries_and_256_kib_and_a_message_too_large_goes_alone_nowhere() {
        let packed = pack(std::iter::repeat_n(10, 25));
        assert_eq!(
            packed.calls.iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        let big = MAX_BATCH_BYTES / 2;
        let packed = pack([big, big, 1, MAX_BATCH_BYTES + 1, 1]);
        assert_eq!(packed.calls, vec![vec![0, 1], vec![2, 4]]);
        assert_eq!(packed.too_large, [3]);
    }

    #[test]
    fn an_entry_carries_its_attributes_and_fifo_parameters() {
        let e = entry(
            3,
            "{}",
            [("destinationId", "dest-a")],
            Some(Fifo {
                group: "g",
                deduplication_id: Some("d-1"),
            }),
        )
        .unwrap();
        assert_eq!(e.id(), "3");
        assert_eq!(e.message_group_id(), Some("g"));
        assert_eq!(e.message_deduplication_id(), Some("d-1"));
        let attributes = e.message_attributes().unwrap();
        assert_eq!(attributes["destinationId"].string_value(), Some("dest-a"));
    }
}
