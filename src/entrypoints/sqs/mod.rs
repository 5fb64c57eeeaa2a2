//! SQS batches (docs/contracts.md §2, §3): each message decoded on its own, so one bad body
//! never fails the batch (`decode`); settings fetched once per destination and each message
//! planned (`plan`); the events of a standard queue's messages delivered together per
//! destination, a FIFO queue's one at a time, in order (`deliver`); rejected messages
//! dead-lettered (`dead_letter`); and the answer, counters and log lines (`report`).
//! A message ends as the worst of its events: delivered (acked), rejected (dead-lettered, then
//! acked) or retry (reported in `batchItemFailures`).

mod dead_letter;
mod decode;
mod deliver;
mod plan;
mod report;
mod visibility;

pub(crate) use decode::decode_batch;
pub use decode::{DESTINATION_ATTRIBUTE, Message};

use super::handler::{CleverTapApi, Handler, HandlerError};
use crate::credentials::SettingsSource;
use crate::deadletter::DeadLetterSink;
use crate::input::{Body, split_body};
use crate::outcome::Reason;
use aws_lambda_events::sqs::SqsBatchResponse;
use plan::Plan;
use tokio::time::Instant;

/// Handles the messages of one SQS batch.
pub(crate) async fn handle<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    messages: Vec<Message>,
    deadline: Instant,
) -> Result<SqsBatchResponse, HandlerError> {
    let fifo = messages.iter().any(|m| m.fifo);
    let bodies: Vec<Result<Body<'_>, Reason>> =
        messages.iter().map(|m| split_body(&m.body)).collect();
    let settings = plan::fetch_settings(&handler.settings_source, &messages, &bodies).await;
    let plans: Vec<Plan<'_>> = messages
        .iter()
        .zip(bodies)
        .map(|(m, body)| plan::plan(m, body, &settings))
        .collect();

    let settled = if fifo {
        deliver::deliver_in_order(handler, &plans, deadline).await
    } else {
        deliver::deliver_grouped(handler, &plans, deadline).await
    };

    let mut failed = dead_letter::dead_letter(handler, &messages, &settled).await;
    if fifo && let Some(first) = failed.iter().position(|f| *f) {
        // Everything after a failed message comes again, in order (docs/contracts.md §3, FIFO).
        failed[first..].iter_mut().for_each(|f| *f = true);
    }
    visibility::extend(handler, &messages, &settled, &failed, deadline).await;
    report::answer(handler, &messages, &settled, &failed, fifo)
}

#[cfg(test)]
mod regulation_tests;
#[cfg(test)]
mod tests;
