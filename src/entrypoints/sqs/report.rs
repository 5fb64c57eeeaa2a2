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
    // Counted per destination here, then added to the invocation's counters once each.
    let mut per_destination: Vec<DestinationCount<'_>> = Vec::new();
    for (((message, s), failed), dead_lettered) in
        messages.iter().zip(settled).zip(failed).zip(dead_lettered)
    {
        counts.add(s.outcome.status());
        let label = message.metric_label();
        let count = match per_destination.iter_mut().find(|c| c.label == label) {
            Some(count) => count,
            None => {
                per_destination.push(DestinationCount {
                    label,
                    counts: StatusCounts::default(),
                    dead_lettered: 0,
                });
                let last = per_destination.len() - 1;
                &mut per_destination[last]
            }
        };
        count.counts.add_all(&s.counts);
        count.dead_lettered += *dead_lettered;
        log_message(message, s, *failed);
        if *failed {
            match message.id.as_deref().filter(|id| !id.is_empty()) {
                Some(id) => response.add_failure(id),
                None => unreportable = true,
            }
        }
    }
    for count in &per_destination {
        handler.count_outcomes(count.label, count.counts, count.dead_lettered);
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

/// One destination's counts in a batch.
struct DestinationCount<'m> {
    label: &'m str,
    counts: StatusCounts,
    dead_lettered: usize,
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
