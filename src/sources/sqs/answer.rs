//! The batch's answer: `batchItemFailures` (never with an empty `itemIdentifier`), and one log
//! line per message that did not simply get delivered. The engine has counted them already.

use super::decode::Message;
use crate::engine::Settled;
use crate::outcome::{Outcome, StatusCounts};
use crate::sources::error::HandlerError;
use aws_lambda_events::sqs::SqsBatchResponse;

/// Logs every message, and answers with the ones that `failed`.
pub(super) fn answer(
    messages: &[Message],
    settled: &[Settled],
    failed: &[bool],
    fifo: bool,
) -> Result<SqsBatchResponse, HandlerError> {
    let mut response = SqsBatchResponse::default();
    let mut unreportable = false;
    let mut counts = StatusCounts::default();
    for ((message, s), failed) in messages.iter().zip(settled).zip(failed) {
        counts.add(s.outcome.status());
        log_message(message, s, *failed);
        if *failed {
            match message.id.as_deref().filter(|id| !id.is_empty()) {
                Some(id) => response.add_failure(id),
                None => unreportable = true,
            }
        }
    }
    // The invocation's summary line (crate::lambda) has the counters; this adds the batch's shape.
    tracing::debug!(
        messages = messages.len(),
        fifo,
        delivered = counts.delivered,
        rejected = counts.rejected,
        retry = counts.retry,
        batch_item_failures = response.batch_item_failures.len(),
        "sqs batch"
    );
    if unreportable {
        // Never expected: sqs::handle fails a batch with a nameless message before sending.
        tracing::error!(
            code = "unreportable_failure",
            "{}",
            HandlerError::UnreportableFailure
        );
        return Err(HandlerError::UnreportableFailure);
    }
    Ok(response)
}

/// The log line of a message: at info, in the message's span, when it was not delivered; at
/// debug otherwise. No span and no formatting on the way of a delivered message: a span per
/// message cost more than a tenth of a 10,000-message batch (BENCHMARKS.md, "Whole path").
fn log_message(message: &Message, settled: &Settled, failed: bool) {
    let id = message.id.as_deref().unwrap_or("");
    let destination = match &message.destination {
        Ok(d) => d.as_str(),
        Err(_) => message.destination_attr.as_deref().unwrap_or(""),
    };
    match &settled.outcome {
        Outcome::Delivered => tracing::debug!(
            message_id = id,
            destination,
            status = "delivered",
            "message"
        ),
        Outcome::Filtered(reason) => tracing::debug!(
            message_id = id,
            destination,
            status = "filtered",
            code = %reason.code,
            "message"
        ),
        Outcome::Rejected(reason) | Outcome::Retry(reason) => message.span().in_scope(|| {
            tracing::info!(
            message_id = id,
            destination,
            status = settled.outcome.status().as_str(),
            code = %reason.code,
            reason = %reason.message,
            batch_item_failure = failed,
            "message"
            )
        }),
    }
}
