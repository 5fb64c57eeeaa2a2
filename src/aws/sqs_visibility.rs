//! The real visibility port: SQS `ChangeMessageVisibilityBatch`, 10 entries a call, each entry
//! succeeding or failing alone. A change that fails costs nothing but time: the message comes
//! back after the queue's own visibility timeout. The same client puts what is left of a
//! regulation back on its own queue (`requeue`, docs/contracts.md §6), one `SendMessageBatch`
//! entry through `aws::sqs_batch`, like every other SQS writer.

use crate::aws::sqs_batch::MAX_ENTRIES_PER_BATCH;
use crate::ports::MessageVisibility;
use crate::visibility::{VisibilityChange, VisibilityError};
use std::sync::Arc;

/// The real one: SQS `ChangeMessageVisibilityBatch`, with the client built once per container
/// (`aws::dead_letter_queue::sqs_client`, whose operation timeouts fit the safety margin).
#[derive(Debug, Clone)]
pub struct SqsVisibility {
    client: aws_sdk_sqs::Client,
}

impl SqsVisibility {
    pub fn new(client: aws_sdk_sqs::Client) -> Self {
        SqsVisibility { client }
    }

    async fn change_batch(
        &self,
        queue_url: &str,
        changes: &[VisibilityChange],
    ) -> Vec<Result<(), VisibilityError>> {
        use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry as Entry;
        let mut entries = Vec::with_capacity(changes.len());
        for (n, change) in changes.iter().enumerate() {
            let entry = Entry::builder()
                .id(n.to_string())
                .receipt_handle(&change.receipt_handle)
                .visibility_timeout(i32::try_from(change.timeout_seconds).unwrap_or(i32::MAX))
                .build();
            match entry {
                Ok(entry) => entries.push(entry),
                Err(e) => {
                    return changes
                        .iter()
                        .map(|_| Err(VisibilityError::Build(e.to_string())))
                        .collect();
                }
            }
        }
        let output = match self
            .client
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let e = Arc::new(aws_sdk_sqs::Error::from(e));
                return changes
                    .iter()
                    .map(|_| Err(VisibilityError::Send(Arc::clone(&e))))
                    .collect();
            }
        };
        let mut results: Vec<Result<(), VisibilityError>> = changes
            .iter()
            .map(|_| Err(VisibilityError::Unreported))
            .collect();
        for ok in output.successful() {
            if let Some(slot) = ok
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|n| results.get_mut(n))
            {
                *slot = Ok(());
            }
        }
        for failed in output.failed() {
            if let Some(slot) = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|n| results.get_mut(n))
            {
                *slot = Err(VisibilityError::Refused {
                    code: failed.code().to_owned(),
                    message: failed.message().unwrap_or_default().to_owned(),
                });
            }
        }
        results
    }
}

impl MessageVisibility for SqsVisibility {
    async fn change(
        &self,
        queue_url: &str,
        changes: &[VisibilityChange],
    ) -> Vec<Result<(), VisibilityError>> {
        let batches = futures_util::future::join_all(
            changes
                .chunks(MAX_ENTRIES_PER_BATCH)
                .map(|batch| self.change_batch(queue_url, batch)),
        )
        .await;
        batches.into_iter().flatten().collect()
    }

    async fn requeue(
        &self,
        queue_url: &str,
        message: &crate::queue::QueuedMessage,
        stop: tokio::time::Instant,
    ) -> Result<(), crate::queue::EnqueueError> {
        use crate::aws::sqs_batch::{self, EntryResult};
        use crate::queue::EnqueueError;
        let target = sqs_batch::Target::new(self.client.clone(), queue_url);
        let fifo = target.fifo.then(|| sqs_batch::Fifo {
            group: &message.destination_id,
            deduplication_id: message.deduplication_id.as_deref(),
        });
        let entry = sqs_batch::entry(0, &message.body, message.attributes(), fifo)
            .map_err(|_| EnqueueError::Build)?;
        let call = target.call([&entry]).send();
        match tokio::time::timeout_at(stop, call).await {
            Err(_) => Err(EnqueueError::Deadline),
            Ok(Err(_)) => Err(EnqueueError::Send),
            Ok(Ok(output)) => match sqs_batch::result_of(&output, 0) {
                EntryResult::Sent => Ok(()),
                EntryResult::Refused { code, .. } => Err(EnqueueError::Refused { code }),
                EntryResult::Unreported => Err(EnqueueError::Unreported),
            },
        }
    }
}
