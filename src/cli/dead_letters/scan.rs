//! Reading a dead-letter queue without consuming it: letters are received with a visibility
//! timeout long enough for the whole run, each counted once (by message id, however often SQS
//! hands it out again), and every letter not deleted on purpose is made visible again at the
//! end, so the queue is left as it was found.

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use std::collections::{HashMap, HashSet};

/// How long a received letter stays hidden while the command runs. A run stopped half-way
/// leaves letters hidden at most this long; then SQS shows them again by itself.
pub const VISIBILITY_TIMEOUT_SECONDS: i32 = 300;
/// Long polling of each receive: asks every SQS server, so an empty answer means empty.
const WAIT_SECONDS: i32 = 1;
/// Consecutive empty receives that end the scan.
const EMPTY_RECEIVES_TO_STOP: u32 = 2;
/// SQS's limit of one `ReceiveMessage` and of one `...Batch` call.
const MAX_PER_CALL: usize = 10;

/// One letter as received: body, every message attribute, and what a redrive needs.
#[derive(Debug, Clone)]
pub struct Letter {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub attributes: HashMap<String, MessageAttributeValue>,
    /// The letter's `MessageGroupId` (a FIFO dead-letter queue).
    pub group_id: Option<String>,
}

impl Letter {
    /// A String (or Number) attribute's value.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(|v| v.string_value())
    }
}

/// An SQS call failed; the message names the call and the queue.
#[derive(Debug, thiserror::Error)]
#[error("{call} on {queue_url} failed: {detail}")]
pub struct ScanError {
    pub call: &'static str,
    pub queue_url: String,
    pub detail: String,
}

/// A scan of one queue in progress.
pub struct Scanner {
    client: aws_sdk_sqs::Client,
    pub queue_url: String,
    max: usize,
    seen: HashSet<String>,
    /// Letters received and not deleted: message id to its latest receipt handle.
    held: HashMap<String, String>,
    empty_in_a_row: u32,
}

impl Scanner {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: &str, max: usize) -> Self {
        Scanner {
            client,
            queue_url: queue_url.to_owned(),
            max,
            seen: HashSet::new(),
            held: HashMap::new(),
            empty_in_a_row: 0,
        }
    }

    fn error(&self, call: &'static str, e: impl std::error::Error) -> ScanError {
        ScanError {
            call,
            queue_url: self.queue_url.clone(),
            detail: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
        }
    }

    /// SQS's approximate count of the queue's letters, visible and in flight.
    pub async fn approximate_total(&self) -> Result<u64, ScanError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| self.error("GetQueueAttributes", e))?;
        let attributes = out.attributes();
        let count = |name: QueueAttributeName| {
            attributes
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    /// Letters read so far, each counted once.
    pub fn read(&self) -> usize {
        self.seen.len()
    }

    /// Whether the scan stopped at `max` rather than at an empty queue.
    pub fn stopped_at_max(&self) -> bool {
        self.seen.len() >= self.max
    }

    /// The next letters not seen before; `None` once the queue answers empty twice in a row or
    /// `max` letters were read. Every letter returned is held until [`Scanner::delete`] or
    /// [`Scanner::release`].
    pub async fn next_page(&mut self) -> Result<Option<Vec<Letter>>, ScanError> {
        loop {
            if self.stopped_at_max() || self.empty_in_a_row >= EMPTY_RECEIVES_TO_STOP {
                return Ok(None);
            }
            let want = MAX_PER_CALL.min(self.max - self.seen.len()) as i32;
            let out = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(want)
                .visibility_timeout(VISIBILITY_TIMEOUT_SECONDS)
                .wait_time_seconds(WAIT_SECONDS)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .send()
                .await
                .map_err(|e| self.error("ReceiveMessage", e))?;
            let mut page = Vec::new();
            for m in out.messages() {
                let (Some(id), Some(receipt)) = (m.message_id(), m.receipt_handle()) else {
                    continue;
                };
                if !self.seen.insert(id.to_owned()) {
                    // Seen before: only its receipt handle is new.
                    if let Some(held) = self.held.get_mut(id) {
                        receipt.clone_into(held);
                    }
                    continue;
                }
                self.held.insert(id.to_owned(), receipt.to_owned());
                page.push(Letter {
                    message_id: id.to_owned(),
                    receipt_handle: receipt.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    attributes: m.message_attributes().cloned().unwrap_or_default(),
                    group_id: m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                        .cloned(),
                });
            }
            if out.messages().is_empty() {
                self.empty_in_a_row += 1;
            } else {
                self.empty_in_a_row = 0;
            }
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
    }

    /// Deletes these letters (already copied elsewhere); returns the ids SQS did not delete,
    /// which stay held and are released with the others.
    pub async fn delete(&mut self, ids: &[String]) -> Vec<String> {
        let mut not_deleted = Vec::new();
        for chunk in ids.chunks(MAX_PER_CALL) {
            let mut call = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url);
            for (slot, id) in chunk.iter().enumerate() {
                let Some(receipt) = self.held.get(id) else {
                    continue;
                };
                if let Ok(entry) = aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(slot.to_string())
                    .receipt_handle(receipt)
                    .build()
                {
                    call = call.entries(entry);
                }
            }
            let ok: HashSet<String> = match call.send().await {
                Ok(out) => out.successful().iter().map(|s| s.id().to_owned()).collect(),
                Err(_) => HashSet::new(),
            };
            for (slot, id) in chunk.iter().enumerate() {
                if ok.contains(&slot.to_string()) {
                    self.held.remove(id);
                } else {
                    not_deleted.push(id.clone());
                }
            }
        }
        not_deleted
    }

    /// Makes every held letter visible again; returns how many SQS did not take back (those
    /// come back by themselves after [`VISIBILITY_TIMEOUT_SECONDS`]).
    pub async fn release(&mut self) -> usize {
        let held: Vec<(String, String)> = self.held.drain().collect();
        let mut failed = 0;
        for chunk in held.chunks(MAX_PER_CALL) {
            let mut call = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url);
            for (slot, (_, receipt)) in chunk.iter().enumerate() {
                if let Ok(entry) = ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(slot.to_string())
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .build()
                {
                    call = call.entries(entry);
                }
            }
            failed += match call.send().await {
                Ok(out) => chunk.len() - out.successful().len(),
                Err(_) => chunk.len(),
            };
        }
        failed
    }
}
