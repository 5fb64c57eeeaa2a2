//! Dead-lettering of rejected events (docs/contracts.md §3). A dead letter is redrivable as it is: its
//! body is the rejected events only and its attributes copy the routing (`destinationId`) and say
//! why (`rejectionCode`, `rejectionMessage`, `sourceMessageId`). Attribute values hold only the
//! characters SQS accepts, so a letter is never refused for what an event or a reason echoes. The
//! sender sits behind a small trait so the handler is tested with a fake; the real one is SQS
//! `SendMessageBatch`, packed within SQS's limits, each failed entry reported on its own so only
//! its message is retried; a batch SQS refuses as a whole is sent again letter by letter, so one
//! bad letter never holds back the others. Splitting a group's rejected items into letters is
//! the handler's (`entrypoints::dead_letters`).

use crate::outcome::Reason;
use crate::sqs_batch::{self, EntryResult};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use crate::sqs_batch::{MAX_BATCH_BYTES, MAX_ENTRIES_PER_BATCH};
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

/// Names of the dead letter's message attributes.
pub mod attributes {
    pub const DESTINATION_ID: &str = "destinationId";
    pub const REJECTION_CODE: &str = "rejectionCode";
    pub const REJECTION_MESSAGE: &str = "rejectionMessage";
    pub const SOURCE_MESSAGE_ID: &str = "sourceMessageId";
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
    /// `reason.message` as given (the code when it is empty); every attribute value keeps only
    /// the characters SQS accepts.
    pub fn new(body: String, reason: &Reason, origin: Origin<'_>) -> Self {
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
        }
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
    }

    /// The FIFO deduplication id: the source's id, with the part number when there are several.
    fn deduplication_id(&self) -> Option<String> {
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
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
    }

    /// The size SQS counts against its limit: body plus each attribute's name, type and value.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes()
                .map(|(name, value)| name.len() + "String".len() + value.len())
                .sum::<usize>()
    }
}

/// Whether SQS accepts `c` in a message body or a String attribute value: `#x9 | #xA | #xD |
/// #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF` (Amazon SQS `SendMessage`).
pub const fn sqs_accepts(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `text` with every character SQS refuses replaced by U+FFFD (borrowed when there is none).
pub fn sqs_text(text: &str) -> Cow<'_, str> {
    if text.chars().all(sqs_accepts) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(
            text.chars()
                .map(|c| if sqs_accepts(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
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
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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
        }
    }
}

/// Where dead letters go.
pub trait DeadLetterSink: Send + Sync {
    /// Sends the letters; one result per letter, in the same order.
    fn send(
        &self,
        letters: &[DeadLetter],
    ) -> impl Future<Output = Vec<Result<(), DeadLetterError>>> + Send;

    /// Whether there is a queue at all (`DEAD_LETTER_QUEUE_URL` set).
    fn configured(&self) -> bool {
        true
    }
}

/// No queue configured: every letter fails, so its message is retried instead of lost.
impl<D: DeadLetterSink> DeadLetterSink for Option<D> {
    fn configured(&self) -> bool {
        self.as_ref().is_some_and(DeadLetterSink::configured)
    }

    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), DeadLetterError>> {
        match self {
            Some(sink) => sink.send(letters).await,
            None => letters
                .iter()
                .map(|_| Err(DeadLetterError::NotConfigured))
                .collect(),
        }
    }
}

/// An SQS client for dead-lettering, with operation timeouts that fit the safety margin.
pub fn sqs_client(sdk_config: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(SEND_OPERATION_TIMEOUT)
        .operation_attempt_timeout(SEND_ATTEMPT_TIMEOUT)
        .build();
    let config = aws_sdk_sqs::config::Builder::from(sdk_config)
        .timeout_config(timeouts)
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// The real dead-letter queue: SQS `SendMessageBatch`.
#[derive(Debug, Clone)]
pub struct SqsDeadLetterQueue {
    target: sqs_batch::Target,
}

impl SqsDeadLetterQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsDeadLetterQueue {
            target: sqs_batch::Target::new(client, queue_url),
        }
    }

    fn entry(
        &self,
        slot: usize,
        letter: &DeadLetter,
    ) -> Result<SendMessageBatchRequestEntry, DeadLetterError> {
        // A FIFO queue needs a group; keep the source's so the order within it survives.
        let deduplication_id = letter.deduplication_id();
        let fifo = self.target.fifo.then(|| sqs_batch::Fifo {
            group: letter
                .message_group_id
                .as_deref()
                .or(letter.destination_id.as_deref())
                .unwrap_or("rudder-clevertap"),
            deduplication_id: deduplication_id.as_deref(),
        });
        sqs_batch::entry(slot, &letter.body, letter.attributes(), fifo)
            .map_err(DeadLetterError::Build)
    }

    /// Sends one batch; a batch SQS refuses as a whole (a client error, such as one letter it
    /// will not take) is sent again one letter at a time, so only that letter fails.
    async fn send_batch(
        &self,
        letters: &[(usize, &DeadLetter)],
    ) -> Vec<(usize, Result<(), DeadLetterError>)> {
        let mut results: Vec<(usize, Result<(), DeadLetterError>)> = Vec::new();
        let mut entries = Vec::with_capacity(letters.len());
        for (slot, (index, letter)) in letters.iter().enumerate() {
            match self.entry(slot, letter) {
                Ok(entry) => entries.push((slot, *index, entry)),
                Err(e) => results.push((*index, Err(e))),
            }
        }
        if entries.is_empty() {
            return results;
        }
        match self.call(&entries).await {
            Err(e) if entries.len() > 1 && refused_as_a_whole(&e) => {
                tracing::warn!(
                    code = "dead_letter_batch_refused",
                    error = %aws_sdk_sqs::error::DisplayErrorContext(&e),
                    entries = entries.len(),
                    "SQS refused a dead-letter batch as a whole: sending its letters one by one"
                );
                let alone = entries.chunks(1).map(|one| async move {
                    let answer = self.call(one).await;
                    Self::read(one, answer)
                });
                let sent = futures_util::future::join_all(alone).await;
                results.extend(sent.into_iter().flatten());
            }
            answer => results.extend(Self::read(&entries, answer)),
        }
        results
    }

    /// One `SendMessageBatch` call with these entries.
    async fn call(
        &self,
        entries: &[(usize, usize, SendMessageBatchRequestEntry)],
    ) -> Result<SendMessageBatchOutput, SendError> {
        self.target
            .call(entries.iter().map(|(_, _, entry)| entry))
            .send()
            .await
    }

    /// Each entry's result from a call's answer.
    fn read(
        entries: &[(usize, usize, SendMessageBatchRequestEntry)],
        answer: Result<SendMessageBatchOutput, SendError>,
    ) -> Vec<(usize, Result<(), DeadLetterError>)> {
        match answer {
            Err(e) => {
                let e = Arc::new(aws_sdk_sqs::Error::from(e));
                tracing::error!(
                    code = "dead_letter_send_failed",
                    error = %aws_sdk_sqs::error::DisplayErrorContext(&*e),
                    entries = entries.len(),
                    "dead-letter SendMessageBatch failed"
                );
                entries
                    .iter()
                    .map(|(_, index, _)| (*index, Err(DeadLetterError::Send(Arc::clone(&e)))))
                    .collect()
            }
            Ok(output) => entries
                .iter()
                .map(|(slot, index, _)| {
                    let result = match sqs_batch::result_of(&output, *slot) {
                        EntryResult::Sent => Ok(()),
                        EntryResult::Refused { code, message, .. } => {
                            Err(DeadLetterError::Refused { code, message })
                        }
                        EntryResult::Unreported => Err(DeadLetterError::Unreported),
                    };
                    (*index, result)
                })
                .collect(),
        }
    }
}

type SendMessageBatchOutput = aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
type SendError = aws_sdk_sqs::error::SdkError<
    aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError,
    aws_sdk_sqs::config::http::HttpResponse,
>;

/// Errors about the queue or the caller, not about any letter: sending the letters one by one
/// would fail the same way.
const NOT_ABOUT_A_LETTER: [&str; 9] = [
    "AccessDenied",
    "AccessDeniedException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "InvalidClientTokenId",
    "InvalidSecurity",
    "UnrecognizedClientException",
    "RequestThrottled",
    "ThrottlingException",
];

/// SQS answered the call with a client error (4xx) that may be about one of its letters: sending
/// them alone may get all but the offending one through.
fn refused_as_a_whole(e: &SendError) -> bool {
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    match e {
        aws_sdk_sqs::error::SdkError::ServiceError(se) => {
            se.raw().status().is_client_error()
                && !se
                    .err()
                    .code()
                    .is_some_and(|code| NOT_ABOUT_A_LETTER.contains(&code))
        }
        _ => false,
    }
}

impl DeadLetterSink for SqsDeadLetterQueue {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), DeadLetterError>> {
        let mut results: Vec<Option<Result<(), DeadLetterError>>> =
            letters.iter().map(|_| None).collect();
        let packed = sqs_batch::pack(letters.iter().map(DeadLetter::size));
        for index in packed.too_large {
            let size = letters[index].size();
            results[index] = Some(Err(DeadLetterError::TooLarge { size }));
        }
        let batches: Vec<Vec<(usize, &DeadLetter)>> = packed
            .calls
            .into_iter()
            .map(|call| call.into_iter().map(|i| (i, &letters[i])).collect())
            .collect();
        let sent = futures_util::future::join_all(batches.iter().map(|b| self.send_batch(b))).await;
        for (index, result) in sent.into_iter().flatten() {
            results[index] = Some(result);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(DeadLetterError::Unreported)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(body: &str) -> DeadLetter {
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

    fn queue(url: &str) -> SqsDeadLetterQueue {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .build();
        SqsDeadLetterQueue::new(aws_sdk_sqs::Client::from_conf(config), url)
    }

    fn all_accepted(text: &str) -> bool {
        text.chars().all(|c| {
            matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        })
    }

    #[test]
    fn attribute_values_lose_every_character_sqs_refuses() {
        // A regulationType of "\u0000" is quoted in the reason; a destinationId attribute may
        // hold anything a producer put there.
        let reason = Reason::new(
            "unsupported_regulation_type",
            "regulationType \"\u{0}\" is not supported; \u{1}\u{8}\u{B}\u{C}\u{1F}\u{FFFE}\u{FFFF}",
        );
        let origin = Origin {
            destination_id: Some("dest\u{0}-a"),
            source_message_id: Some("m\u{7}-1"),
            message_group_id: None,
        };
        let l = DeadLetter::new("{}".into(), &reason, origin);
        for (name, value) in l.attributes() {
            assert!(all_accepted(value), "{name}: {value:?}");
        }
        assert_eq!(l.destination_id.as_deref(), Some("dest\u{FFFD}-a"));
        assert!(
            l.rejection_message
                .starts_with("regulationType \"\u{FFFD}\" is not supported")
        );
        // What goes on the wire: the entry's attribute values.
        let entry = queue("https://sqs.us-east-1.amazonaws.com/1/dlq")
            .entry(0, &l)
            .unwrap();
        for (name, value) in entry.message_attributes().unwrap() {
            let value = value.string_value().unwrap();
            assert!(all_accepted(value), "{name}: {value:?}");
        }
        // Tabs, line ends and the rest of Unicode are kept as they are.
        let kept = "a\tb\nc\rd é 漢 🎉 \u{E000}\u{FFFD}";
        assert_eq!(sqs_text(kept), kept);
    }

    #[test]
    fn a_message_cut_after_cleaning_still_fits_one_kilobyte() {
        let long = "\u{0}".repeat(2000);
        let l = DeadLetter::new(String::new(), &Reason::new("c", long), Origin::default());
        assert!(l.rejection_message.len() <= MAX_REJECTION_MESSAGE_BYTES);
        assert!(l.rejection_message.chars().all(|c| c == '\u{FFFD}'));
    }

    #[test]
    fn the_parts_of_a_split_group_get_distinct_fifo_deduplication_ids() {
        let q = queue("https://sqs.us-east-1.amazonaws.com/1/dlq.fifo");
        let dedup = |l: &DeadLetter| {
            q.entry(0, l)
                .unwrap()
                .message_deduplication_id()
                .map(str::to_owned)
        };
        assert_eq!(dedup(&letter("a")).as_deref(), Some("m-1"));
        let parts = [letter("a").part(1), letter("b").part(2)];
        assert_eq!(dedup(&parts[0]).as_deref(), Some("m-1-1"));
        assert_eq!(dedup(&parts[1]).as_deref(), Some("m-1-2"));
        let long_id = "x".repeat(200);
        let origin = Origin {
            source_message_id: Some(&long_id),
            ..Origin::default()
        };
        let l = DeadLetter::new("{}".into(), &Reason::new("c", "m"), origin).part(12);
        let id = dedup(&l).unwrap();
        assert_eq!(id.len(), 128);
        assert!(id.ends_with("-12"));
    }

    #[test]
    fn the_attributes_bound_covers_any_reason() {
        let origin = Origin {
            destination_id: Some("dest-1"),
            source_message_id: Some("m-1"),
            message_group_id: Some("g"),
        };
        let bound = DeadLetter::attributes_bound(origin);
        for reason in [
            Reason::new("invalid_json", ""),
            Reason::new("clevertap_record_rejected", "é".repeat(5000)),
        ] {
            let l = DeadLetter::new(String::new(), &reason, origin);
            assert!(l.size() <= bound, "{} > {bound}", l.size());
        }
        assert!(bound < 2048, "{bound}");
    }

    #[tokio::test]
    async fn without_a_queue_every_letter_fails_so_nothing_is_lost() {
        let none: Option<SqsDeadLetterQueue> = None;
        assert!(!none.configured());
        let results = none.send(&[letter("a"), letter("b")]).await;
        assert_eq!(results.len(), 2);
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(DeadLetterError::NotConfigured)))
        );
    }
}
