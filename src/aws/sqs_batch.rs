//! What every `SendMessageBatch` this function makes shares (dead letters, the webhook's events
//! queue): SQS's limits, the characters SQS accepts and the one rule making any body one it
//! accepts ([`sqs_body`]), packing messages into calls, building an entry, and reading each
//! entry's result from the answer. Each sender keeps its own errors and policy around them.

use aws_sdk_sqs::error::BuildError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use std::borrow::Cow;

/// SQS `SendMessageBatch` and `ChangeMessageVisibilityBatch` take at most 10 entries (Amazon SQS
/// quotas).
pub const MAX_ENTRIES_PER_BATCH: usize = 10;
/// SQS's limit on one batch's total size, bodies and attributes included: 256 KiB (Amazon SQS
/// quotas). A single message can be no larger either.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The attribute a message carries when its body is not the text it was given: it was not JSON
/// and held characters SQS refuses, each replaced by U+FFFD (docs/contracts.md §3).
pub const BODY_CHANGED: &str = "bodyChanged";
/// The value of [`BODY_CHANGED`].
pub const BODY_CHANGED_VALUE: &str = "true";

/// Whether SQS accepts `c` in a message body or a String attribute value: `#x9 | #xA | #xD |
/// #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF` (Amazon SQS `SendMessage`).
pub const fn sqs_accepts(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// An attribute value: `text` with every character SQS refuses replaced by U+FFFD (borrowed
/// when there is none).
pub fn sqs_text(text: &str) -> Cow<'_, str> {
    if text.chars().all(sqs_accepts) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(replaced(text))
    }
}

fn replaced(text: &str) -> String {
    text.chars()
        .map(|c| if sqs_accepts(c) { c } else { '\u{FFFD}' })
        .collect()
}

/// A body as SQS will take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsBody<'a> {
    pub text: Cow<'a, str>,
    /// Characters were replaced by U+FFFD: the body is no longer the text it was given (the
    /// message is marked [`BODY_CHANGED`]).
    pub changed: bool,
}

/// The one rule for every body written to SQS: a text SQS accepts is kept as it is; a JSON text
/// holding characters SQS refuses (in valid JSON only U+FFFE and U+FFFF can appear raw, inside
/// strings) gets them escaped (`\uFFFF`), so it is the same JSON value; any other text gets
/// U+FFFD for each of them and is marked changed.
pub fn sqs_body(text: &str) -> SqsBody<'_> {
    if text.chars().all(sqs_accepts) {
        return SqsBody {
            text: Cow::Borrowed(text),
            changed: false,
        };
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        let mut escaped = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            if sqs_accepts(c) {
                escaped.push(c);
            } else {
                escaped.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
        }
        return SqsBody {
            text: Cow::Owned(escaped),
            changed: false,
        };
    }
    SqsBody {
        text: Cow::Owned(replaced(text)),
        changed: true,
    }
}

/// The size SQS counts for a message of this body and these attributes, once the body is made
/// one SQS accepts ([`sqs_body`], with its [`BODY_CHANGED`] mark when it is changed).
pub fn message_size<N: AsRef<str>, V: AsRef<str>>(
    body: &str,
    attributes: impl IntoIterator<Item = (N, V)>,
) -> usize {
    let body = sqs_body(body);
    let mark = if body.changed {
        attribute_size(BODY_CHANGED, BODY_CHANGED_VALUE)
    } else {
        0
    };
    body.text.len()
        + mark
        + attributes
            .into_iter()
            .map(|(name, value)| attribute_size(name.as_ref(), value.as_ref()))
            .sum::<usize>()
}

/// What a String attribute counts against SQS's limit: its name, its type and its value.
pub const fn attribute_size(name: &str, value: &str) -> usize {
    name.len() + "String".len() + value.len()
}

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

/// One entry: `slot` is its id within the call; String attributes only. The body goes as
/// [`sqs_body`] makes it, marked [`BODY_CHANGED`] when it changed; attribute values lose what
/// SQS refuses ([`sqs_text`]).
pub fn entry<N: AsRef<str>, V: AsRef<str>>(
    slot: usize,
    body: &str,
    attributes: impl IntoIterator<Item = (N, V)>,
    fifo: Option<Fifo<'_>>,
) -> Result<SendMessageBatchRequestEntry, BuildError> {
    let body = sqs_body(body);
    let mut entry = SendMessageBatchRequestEntry::builder()
        .id(slot.to_string())
        .message_body(body.text.as_ref());
    let mark = body.changed.then_some((BODY_CHANGED, BODY_CHANGED_VALUE));
    let given = attributes.into_iter().map(|(name, value)| {
        (
            name.as_ref().to_owned(),
            sqs_text(value.as_ref()).into_owned(),
        )
    });
    let mark = mark.map(|(n, v)| (n.to_owned(), v.to_owned()));
    for (name, value) in given.chain(mark) {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()?;
        entry = entry.message_attributes(name, value);
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
    fn every_body_becomes_one_sqs_accepts_json_keeping_its_value_and_other_text_marked() {
        let json = "{\"a\":\"x\u{FFFF}y\u{FFFE}\"}";
        let body = sqs_body(json);
        assert!(!body.changed);
        assert!(body.text.chars().all(sqs_accepts), "{:?}", body.text);
        let value = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap();
        assert_eq!(value(&body.text), value(json));
        let other = sqs_body("garbage\u{1}line\u{FFFF}");
        assert!(other.changed);
        assert_eq!(other.text, "garbage\u{FFFD}line\u{FFFD}");
        let kept = "a\tb\nc\rd é 漢 🎉 \u{E000}\u{FFFD}";
        assert!(matches!(sqs_body(kept).text, Cow::Borrowed(t) if t == kept));
        // What goes on the wire, and what the size counts.
        let e = entry(0, "bad\u{0}", [("destinationId", "d\u{1}")], None).unwrap();
        assert_eq!(e.message_body(), "bad\u{FFFD}");
        let attributes = e.message_attributes().unwrap();
        assert_eq!(attributes[BODY_CHANGED].string_value(), Some("true"));
        assert_eq!(
            attributes["destinationId"].string_value(),
            Some("d\u{FFFD}")
        );
        assert_eq!(
            message_size("bad\u{0}", [("destinationId", "d")]),
            "bad\u{FFFD}".len()
                + attribute_size(BODY_CHANGED, "true")
                + attribute_size("destinationId", "d")
        );
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
