//! The real dead-letter queue: SQS `SendMessageBatch`, packed within SQS's limits
//! (`aws::sqs_batch`), each failed entry reported on its own so only its message is retried; a
//! batch SQS refuses as a whole is sent again letter by letter, so one bad letter never holds
//! back the others. Nothing is waited for past the stop the caller gives (the invocation's
//! deadline less what the answer needs): a letter not written by then fails alone.

use crate::aws::sqs_batch::{self, EntryResult};
use crate::dead_letters::letter::*;
use crate::ports::DeadLetterSink;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use std::sync::Arc;
use tokio::time::Instant;

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
        stop: Instant,
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
        let Some(answer) = self.call(&entries, stop).await else {
            return out_of_time(results, &entries);
        };
        match answer {
            Err(e) if entries.len() > 1 && refused_as_a_whole(&e) => {
                tracing::warn!(
                    code = "dead_letter_batch_refused",
                    error = %aws_sdk_sqs::error::DisplayErrorContext(&e),
                    entries = entries.len(),
                    "SQS refused a dead-letter batch as a whole: sending its letters one by one"
                );
                let alone = entries.chunks(1).map(|one| async move {
                    match self.call(one, stop).await {
                        Some(answer) => Self::read(one, answer),
                        None => out_of_time(Vec::new(), one),
                    }
                });
                let sent = futures_util::future::join_all(alone).await;
                results.extend(sent.into_iter().flatten());
            }
            answer => results.extend(Self::read(&entries, answer)),
        }
        results
    }

    /// One `SendMessageBatch` call with these entries; `None` when `stop` came first (or had
    /// come already).
    async fn call(
        &self,
        entries: &[(usize, usize, SendMessageBatchRequestEntry)],
        stop: Instant,
    ) -> Option<Result<SendMessageBatchOutput, SendError>> {
        if Instant::now() >= stop {
            return None;
        }
        let call = self
            .target
            .call(entries.iter().map(|(_, _, entry)| entry))
            .send();
        tokio::time::timeout_at(stop, call).await.ok()
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

/// `results` with every entry of `entries` failed for the deadline.
fn out_of_time(
    mut results: Vec<(usize, Result<(), DeadLetterError>)>,
    entries: &[(usize, usize, SendMessageBatchRequestEntry)],
) -> Vec<(usize, Result<(), DeadLetterError>)> {
    tracing::error!(
        code = DeadLetterError::Deadline.code(),
        entries = entries.len(),
        "dead letters not written before the invocation's deadline"
    );
    results.extend(
        entries
            .iter()
            .map(|(_, index, _)| (*index, Err(DeadLetterError::Deadline))),
    );
    results
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
    async fn send(
        &self,
        letters: &[DeadLetter],
        stop: Instant,
    ) -> Vec<Result<(), DeadLetterError>> {
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
        let sent =
            futures_util::future::join_all(batches.iter().map(|b| self.send_batch(b, stop))).await;
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
    use crate::dead_letters::letter::tests::letter;
    use crate::outcome::Reason;

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
        let results = none.send(&[letter("a"), letter("b")], Instant::now()).await;
        assert_eq!(results.len(), 2);
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(DeadLetterError::NotConfigured)))
        );
    }
}
