//! The real events queue of queue mode: SQS `SendMessageBatch`, at most 10 entries and 256 KiB
//! per call (`aws::sqs_batch`), calls run together, each entry succeeding or failing alone,
//! nothing started after the deadline.

use crate::aws::sqs_batch::{self, EntryResult};
use crate::ports::EventQueue;
use crate::queue::*;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures_util::StreamExt;
use tokio::time::Instant;

/// The real events queue: SQS `SendMessageBatch`.
#[derive(Debug, Clone)]
pub struct SqsEventQueue {
    target: sqs_batch::Target,
}

impl SqsEventQueue {
    /// A sender to `queue_url` with `client` (built once per container, with the dead-letter
    /// queue's timeouts: `deadletter::sqs_client`).
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsEventQueue {
            target: sqs_batch::Target::new(client, queue_url),
        }
    }

    fn entry(
        &self,
        slot: usize,
        message: &QueuedMessage,
    ) -> Result<SendMessageBatchRequestEntry, EnqueueError> {
        // One group per destination keeps each destination's events in order.
        let fifo = self.target.fifo.then(|| sqs_batch::Fifo {
            group: &message.destination_id,
            deduplication_id: message.deduplication_id.as_deref(),
        });
        sqs_batch::entry(slot, &message.body, message.attributes(), fifo)
            .map_err(|_| EnqueueError::Build)
    }

    /// One `SendMessageBatch` call; per message (its index in the request), its result.
    async fn send_batch(
        &self,
        batch: Batch<'_>,
        stop: Instant,
    ) -> Vec<(usize, Result<(), EnqueueError>)> {
        let mut results = Vec::with_capacity(batch.len());
        if Instant::now() >= stop {
            return batch
                .iter()
                .map(|(index, _)| (*index, Err(EnqueueError::Deadline)))
                .collect();
        }
        let mut entries = Vec::with_capacity(batch.len());
        for (slot, (index, message)) in batch.iter().enumerate() {
            match self.entry(slot, message) {
                Ok(entry) => entries.push((slot, *index, entry)),
                Err(e) => results.push((*index, Err(e))),
            }
        }
        if entries.is_empty() {
            return results;
        }
        let call = self
            .target
            .call(entries.iter().map(|(_, _, entry)| entry))
            .send();
        match tokio::time::timeout_at(stop, call).await {
            Err(_) => {
                tracing::error!(
                    code = EnqueueError::Deadline.code(),
                    entries = entries.len(),
                    "SendMessageBatch to the events queue did not finish before the deadline"
                );
                for (_, index, _) in &entries {
                    results.push((*index, Err(EnqueueError::Deadline)));
                }
            }
            Ok(Err(e)) => {
                tracing::error!(
                    code = EnqueueError::Send.code(),
                    error = %aws_sdk_sqs::error::DisplayErrorContext(&e),
                    entries = entries.len(),
                    "SendMessageBatch to the events queue failed"
                );
                for (_, index, _) in &entries {
                    results.push((*index, Err(EnqueueError::Send)));
                }
            }
            Ok(Ok(output)) => {
                for (slot, index, _) in &entries {
                    let result = match sqs_batch::result_of(&output, *slot) {
                        EntryResult::Sent => Ok(()),
                        EntryResult::Refused {
                            code, sender_fault, ..
                        } => {
                            tracing::warn!(
                                code = "enqueue_refused",
                                sqs_code = %code,
                                sender_fault,
                                "SQS refused an entry of the events queue batch"
                            );
                            Err(EnqueueError::Refused { code })
                        }
                        EntryResult::Unreported => Err(EnqueueError::Unreported),
                    };
                    results.push((*index, result));
                }
            }
        }
        results
    }
}

/// One `SendMessageBatch` call's messages, each with its index in the request.
pub type Batch<'a> = Vec<(usize, &'a QueuedMessage)>;

/// Packs messages into `SendMessageBatch` calls of at most 10 entries and 256 KiB, in order;
/// a message over the limit alone gets `TooLarge` and joins no call.
pub fn pack(messages: &[QueuedMessage]) -> (Vec<Batch<'_>>, Vec<(usize, EnqueueError)>) {
    let packed = sqs_batch::pack(messages.iter().map(QueuedMessage::size));
    let too_large = packed
        .too_large
        .into_iter()
        .map(|index| {
            let size = messages[index].size();
            (index, EnqueueError::TooLarge { size })
        })
        .collect();
    let batches = packed
        .calls
        .into_iter()
        .map(|call| call.into_iter().map(|i| (i, &messages[i])).collect())
        .collect();
    (batches, too_large)
}

impl EventQueue for SqsEventQueue {
    async fn send(
        &self,
        messages: &[QueuedMessage],
        stop: Instant,
    ) -> Vec<Result<(), EnqueueError>> {
        let mut results: Vec<Option<Result<(), EnqueueError>>> =
            messages.iter().map(|_| None).collect();
        let (batches, too_large) = pack(messages);
        for (index, e) in too_large {
            results[index] = Some(Err(e));
        }
        let calls: Vec<_> = batches
            .into_iter()
            .map(|b| self.send_batch(b, stop))
            .collect();
        let sent: Vec<Vec<(usize, Result<(), EnqueueError>)>> = futures_util::stream::iter(calls)
            .buffer_unordered(MAX_CALLS_IN_FLIGHT)
            .collect()
            .await;
        for (index, result) in sent.into_iter().flatten() {
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(EnqueueError::Unreported)))
            .collect()
    }

    fn is_fifo(&self) -> bool {
        self.target.fifo
    }
}
