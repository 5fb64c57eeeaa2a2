//! The batch's answer and its record: `batchItemFailures` (never with an empty
//! `itemIdentifier`), the counters per destination, and one log line per message that did not
//! simply get delivered.

use super::decode::Message;
use crate::credentials::SettingsSource;
use crate::deadletter::DeadLetterSink;
use crate::entrypoints::handler::{CleverTapApi, Handler, HandlerError};
use crate::entrypoints::pipeline::Settled;
use crate::outcome::{Outcome, StatusCounts};
use aws_lambda_events::sqs::SqsBatchResponse;

/// Counts and logs every message, and answers with the ones that `failed`. `dead_lettered`:
/// per message, how many of its items were dead-lettered.
pub(super) fn answer<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    messages: &[Message],
    settled: &[Settled],
    failed: &[bool],
    dead_lettered: &[usize],
    fifo: bool,
) -> Result<SqsBatchResponse, HandlerError> {
    let mut response = SqsBatchResponse::default();
    let mut unreportable = false;
    let mut counts = StatusCounts::default();
    for (((message, s), failed), dead_lettered) in
        messages.iter().zip(settled).zip(failed).zip(dead_lettered)
    {
        let _span = message.span().entered();
        counts.add(s.outcome.status());
        handler.count_outcomes(message.metric_label(), s.counts, *dead_lettered);
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
        Outcome::Rejected(reason) | Outcome::Retry(reason) => tracing::info!(
            message_id = id,
            destination,
            status = settled.outcome.status().as_str(),
            code = %reason.code,
            reason = %reason.message,
            batch_item_failure = failed,
            "message"
        ),
    }
}
