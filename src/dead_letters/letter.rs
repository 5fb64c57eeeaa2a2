//! Dead-lettering of rejected events (docs/contracts.md §3). A dead letter is redrivable as it is: its
//! body is the rejected events only and its attributes copy the routing (`destinationId`) and say
//! why (`rejectionCode`, `rejectionMessage`, `sourceMessageId`). Body and attribute values hold
//! only the characters SQS accepts (`aws::sqs_batch::sqs_body`, `sqs_text`), so a letter is
//! never refused for what an event or a reason echoes. An item too large for any letter is still
//! written, cut to fit and marked (`truncated`, `originalSize`, `sha256` of the whole item), so
//! `rejected` always means a letter exists.
//! Splitting a unit's rejected items into letters is `crate::dead_letters`'s; the sender is the
//! port `ports::DeadLetterSink`, whose real one is `aws::dead_letter_queue`.

use crate::aws::sqs_batch::{BODY_CHANGED_VALUE, attribute_size, sqs_body};
use crate::outcome::Reason;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

pub use crate::aws::sqs_batch::{MAX_BATCH_BYTES, MAX_ENTRIES_PER_BATCH, sqs_accepts, sqs_text};
/// `rejectionMessage` is cut to at most 1 KB (docs/contracts.md §3).
pub const MAX_REJECTION_MESSAGE_BYTES: usize = 1024;
/// Room kept for `rejectionCode` when a letter's size is bounded before its reason is known;
/// every code of `crate::codes` is far shorter.
const MAX_REJECTION_CODE_BYTES: usize = 64;
/// SQS's longest `MessageDeduplicationId`.
const MAX_DEDUPLICATION_ID_CHARS: usize = 128;
/// Operation timeout of a dead-letter send: it must fit in the 3 s safety margin (docs/contracts.md §5).
pub const SEND_OPERATION_TIMEOUT: Duration = Duration::from_millis(2500);
/// Attempt timeout of a dead-letter send, so one retry still fits the operation timeout.
pub const SEND_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Dead-lettering ends this long before the invocation's deadline, whatever SQS does: the
/// visibility changes and the answer need the rest (docs/contracts.md §3).
pub const STOP_BEFORE_DEADLINE: Duration = Duration::from_secs(1);

/// Names of the dead letter's message attributes.
pub mod attributes {
    pub const DESTINATION_ID: &str = "destinationId";
    pub const REJECTION_CODE: &str = "rejectionCode";
    pub const REJECTION_MESSAGE: &str = "rejectionMessage";
    pub const SOURCE_MESSAGE_ID: &str = "sourceMessageId";
    /// The body had characters SQS refuses and is not JSON: they were replaced by U+FFFD.
    pub const BODY_CHANGED: &str = crate::aws::sqs_batch::BODY_CHANGED;
    /// `"true"`: the body is the first part of the item only.
    pub const TRUNCATED: &str = "truncated";
    /// The whole item's size in bytes, as it came.
    pub const ORIGINAL_SIZE: &str = "originalSize";
    /// SHA-256 of the whole item as it came, lower-case hex.
    pub const SHA256: &str = "sha256";
}

/// The most bytes the marking attributes can take: `bodyChanged`, `truncated`, `originalSize`
/// (at most 20 digits) and `sha256` (64 hex digits).
const MAX_MARKS_BYTES: usize = attribute_size(attributes::BODY_CHANGED, BODY_CHANGED_VALUE)
    + attribute_size(attributes::TRUNCATED, "true")
    + attribute_size(attributes::ORIGINAL_SIZE, "18446744073709551615")
    + attribute_size(
        attributes::SHA256,
        "0000000000000000000000000000000000000000000000000000000000000000",
    );

/// What a letter cut to fit says of the whole item it holds the start of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The whole item's size in bytes, in decimal.
    pub original_size: String,
    /// SHA-256 of the whole item, lower-case hex.
    pub sha256: String,
}

/// One message for the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The rejected events only: one event, a JSON array of them, or a body that could not be
    /// decoded as it came.
    pub body: String,
    /// The source's `destinationId` attribute, copied so a redrive routes the same way.
    pub destination_id: Option<String>,
    pub rejection_code: String,
    /// At most [`MAX_REJECTION_MESSAGE_BYTES`].
    pub rejection_message: String,
    pub source_message_id: Option<String>,
    /// The source's `MessageGroupId` (FIFO sources).
    pub message_group_id: Option<String>,
    /// Which letter of its group this is (1, 2, ...) when the group's rejected items did not
    /// fit in one; `None` for a group's only letter. Keeps FIFO deduplication ids distinct.
    pub part: Option<usize>,
    /// The body had characters SQS refuses and is not JSON: they were replaced by U+FFFD.
    pub body_changed: bool,
    /// Set when the body is only the start of the item: the item alone was too large for SQS.
    pub truncated: Option<Truncation>,
}

/// Where a dead letter's items came from; copied to its attributes so a redrive routes the same
/// way. Empty values are left out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The source's `destinationId` (message attribute, or the authenticated destination).
    pub destination_id: Option<&'a str>,
    /// The SQS message id, or the HTTP request id.
    pub source_message_id: Option<&'a str>,
    /// The source's `MessageGroupId` (FIFO sources).
    pub message_group_id: Option<&'a str>,
}

impl DeadLetter {
    /// A letter carrying `body` (the rejected items), rejected for `reason`. The message is
    /// `reason.message` as given (the code when it is empty); the body is made one SQS accepts
    /// (`sqs_body`) and every attribute value keeps only the characters SQS accepts.
    pub fn new(body: String, reason: &Reason, origin: Origin<'_>) -> Self {
        let clean = sqs_body(&body);
        let body_changed = clean.changed;
        let body = match clean.text {
            std::borrow::Cow::Borrowed(_) => body,
            std::borrow::Cow::Owned(text) => text,
        };
        let attribute = |s: Option<&str>| {
            s.filter(|s| !s.is_empty())
                .map(|s| sqs_text(s).into_owned())
        };
        let message = if reason.message.is_empty() {
            reason.code.as_ref()
        } else {
            reason.message.as_str()
        };
        DeadLetter {
            body,
            destination_id: attribute(origin.destination_id),
            rejection_code: sqs_text(&reason.code).into_owned(),
            rejection_message: truncate(&sqs_text(message), MAX_REJECTION_MESSAGE_BYTES).to_owned(),
            source_message_id: attribute(origin.source_message_id),
            message_group_id: origin
                .message_group_id
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            part: None,
            body_changed,
            truncated: None,
        }
    }

    /// A letter for one item too large for any letter: the start of it (as much as fits in
    /// `room` bytes once made one SQS accepts), marked `truncated`, with the whole item's size
    /// and SHA-256.
    pub fn cut(whole: String, room: usize, reason: &Reason, origin: Origin<'_>) -> Self {
        let original_size = whole.len().to_string();
        let sha256: String = Sha256::digest(whole.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut letter = DeadLetter::new(whole, reason, origin);
        let end = floor_char_boundary(&letter.body, room);
        letter.body.truncate(end);
        letter.body.shrink_to_fit();
        letter.truncated = Some(Truncation {
            original_size,
            sha256,
        });
        letter
    }

    /// The same letter as part `part` (1, 2, ...) of a group split into several.
    pub fn part(self, part: usize) -> Self {
        DeadLetter {
            part: Some(part),
            ..self
        }
    }

    /// The most bytes the attributes of a letter from `origin` can take, whatever its reason:
    /// the room its body must leave under [`MAX_BATCH_BYTES`].
    pub fn attributes_bound(origin: Origin<'_>) -> usize {
        let letter = DeadLetter::new(String::new(), &Reason::new("", ""), origin);
        letter.size() - letter.rejection_code.len() - letter.rejection_message.len()
            + MAX_REJECTION_CODE_BYTES
            + MAX_REJECTION_MESSAGE_BYTES
            + MAX_MARKS_BYTES
    }

    /// The FIFO deduplication id: the source's id, with the part number when there are several.
    pub(crate) fn deduplication_id(&self) -> Option<String> {
        let id = self.source_message_id.as_deref()?;
        Some(match self.part {
            None => truncate_chars(id, MAX_DEDUPLICATION_ID_CHARS).to_owned(),
            Some(n) => {
                let suffix = format!("-{n}");
                let room = MAX_DEDUPLICATION_ID_CHARS - suffix.len();
                format!("{}{suffix}", truncate_chars(id, room))
            }
        })
    }

    /// The attributes, as name/value pairs, in a fixed order.
    pub fn attributes(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (attributes::DESTINATION_ID, self.destination_id.as_deref()),
            (
                attributes::REJECTION_CODE,
                Some(self.rejection_code.as_str()),
            ),
            (
                attributes::REJECTION_MESSAGE,
                Some(self.rejection_message.as_str()),
            ),
            (
                attributes::SOURCE_MESSAGE_ID,
                self.source_message_id.as_deref(),
            ),
            (
                attributes::BODY_CHANGED,
                self.body_changed.then_some(BODY_CHANGED_VALUE),
            ),
            (
                attributes::TRUNCATED,
                self.truncated.as_ref().map(|_| "true"),
            ),
            (
                attributes::ORIGINAL_SIZE,
                self.truncated.as_ref().map(|t| t.original_size.as_str()),
            ),
            (
                attributes::SHA256,
                self.truncated.as_ref().map(|t| t.sha256.as_str()),
            ),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
    }

    /// The size SQS counts against its limit: body plus each attribute's name, type and value.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes()
                .map(|(name, value)| attribute_size(name, value))
                .sum::<usize>()
    }
}

/// At most `max` characters of `text`.
fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    &text[..floor_char_boundary(text, max)]
}

/// The largest character boundary of `text` at most `max`.
fn floor_char_boundary(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Why one dead letter was not sent. Its source message is then reported for a retry.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("no dead-letter queue is configured (DEAD_LETTER_QUEUE_URL is unset)")]
    NotConfigured,
    #[error("dead letter of {size} bytes is over SQS's limit of {MAX_BATCH_BYTES} bytes")]
    TooLarge { size: usize },
    #[error("SQS refused the dead letter ({code}): {message}")]
    Refused { code: String, message: String },
    #[error("could not build the SQS request")]
    Build(#[source] aws_sdk_sqs::error::BuildError),
    #[error("SQS SendMessageBatch failed")]
    Send(#[source] Arc<aws_sdk_sqs::Error>),
    #[error("SQS did not report on the dead letter")]
    Unreported,
    #[error("not written before the invocation's deadline")]
    Deadline,
}

impl DeadLetterError {
    /// Stable snake_case code, for logs.
    pub const fn code(&self) -> &'static str {
        match self {
            DeadLetterError::NotConfigured => "dead_letter_queue_not_configured",
            DeadLetterError::TooLarge { .. } => "dead_letter_too_large",
            DeadLetterError::Refused { .. } => "dead_letter_refused",
            DeadLetterError::Build(_) | DeadLetterError::Send(_) => "dead_letter_send_failed",
            DeadLetterError::Unreported => "dead_letter_unreported",
            DeadLetterError::Deadline => "dead_letter_deadline",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A letter of `body` with fixed reason and origin.
    pub(crate) fn letter(body: &str) -> DeadLetter {
        DeadLetter::new(
            body.to_owned(),
            &Reason::new("invalid_json", "bad"),
            Origin {
                destination_id: Some("dest-1"),
                source_message_id: Some("m-1"),
                message_group_id: None,
            },
        )
    }

    #[test]
    fn the_rejection_message_is_cut_to_one_kilobyte_on_a_character_boundary() {
        let long = "é".repeat(1000);
        let l = DeadLetter::new(String::new(), &Reason::new("c", long), Origin::default());
        assert!(l.rejection_message.len() <= 1024);
        assert_eq!(l.rejection_message.len(), 1024);
        assert!(l.rejection_message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn empty_attributes_are_left_out_rather_than_sent_empty() {
        let origin = Origin {
            destination_id: Some(""),
            ..Origin::default()
        };
        let l = DeadLetter::new("{}".into(), &Reason::new("code", ""), origin);
        let names: Vec<_> = l.attributes().map(|(n, _)| n).collect();
        assert_eq!(names, ["rejectionCode", "rejectionMessage"]);
        assert_eq!(l.rejection_message, "code");
    }

    #[test]
    fn the_size_counts_body_and_every_attribute() {
        let l = letter("12345");
        let expected = 5
            + ("destinationId".len() + 6 + 6)
            + ("rejectionCode".len() + 6 + 12)
            + ("rejectionMessage".len() + 6 + 3)
            + ("sourceMessageId".len() + 6 + 3);
        assert_eq!(l.size(), expected);
    }
}
