//! SQS batches (docs/contracts.md §2, §3): each message decoded on its own, so one bad body
//! never fails the batch (`decode`); settings fetched once per destination and each message
//! planned (`plan`); the events of a standard queue's messages delivered together per
//! destination, a FIFO queue's one at a time, in order (`deliver`); rejected messages
//! dead-lettered (`dead_letter`); and the answer, counters and log lines (`report`).
//! A message ends as the worst of its events: delivered (acked), rejected (dead-lettered, then
//! acked) or retry (reported in `batchItemFailures`); a rejected event whose dead letter is not
//! written is a retry (`dead_letter_failed`). A batch with a message that has no `messageId`
//! fails as a whole before anything is sent: that message could not be reported alone.

mod dead_letter;
mod decode;
mod deliver;
mod origin;
mod plan;
mod record;
mod report;
mod visibility;

pub(crate) use decode::decode_batch;
pub use decode::{DESTINATION_ATTRIBUTE, Message};
pub use record::SqsRecord;

use super::handler::{CleverTapApi, Handler, HandlerError};
use crate::credentials::SettingsSource;
use crate::deadletter::DeadLetterSink;
use crate::input::{Body, split_message_body};
use crate::outcome::{Reason, Status};
use aws_lambda_events::sqs::SqsBatchResponse;
use plan::Plan;
use tokio::time::Instant;

/// Handles the messages of one SQS batch.
pub(crate) async fn handle<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    messages: Vec<Message>,
    deadline: Instant,
) -> Result<SqsBatchResponse, HandlerError> {
    // Before any side effect: a message without an id could not be reported for a retry, so the
    // whole batch must come again; anything sent or dead-lettered now would be sent twice.
    if let Some(record) = messages
        .iter()
        .position(|m| m.id.as_deref().is_none_or(str::is_empty))
    {
        let e = HandlerError::UnreportableFailure;
        tracing::error!(code = e.code(), record, messages = messages.len(), "{e}");
        return Err(e);
    }
    let fifo = messages.iter().any(|m| m.fifo);
    let bodies: Vec<Result<Body<'_>, Reason>> = messages
        .iter()
        .map(|m| origin::scope(m, split_message_body(&m.body)))
        .collect();
    let settings = plan::fetch_settings(&handler.settings_source, &messages, &bodies).await;
    let plans: Vec<Plan<'_>> = messages
        .iter()
        .zip(bodies)
        .map(|(m, body)| plan::plan(m, body, &settings))
        .collect();

    // A FIFO batch keeps order per MessageGroupId (docs/contracts.md §3, FIFO).
    let groups: Vec<Option<&str>> = messages.iter().map(|m| m.group_id.as_deref()).collect();
    let mut settled = if fifo {
        deliver::deliver_in_order(handler, &plans, &groups, deadline).await
    } else {
        deliver::deliver_grouped(handler, &plans, deadline).await
    };

    let dead_lettered = dead_letter::dead_letter(handler, &messages, &plans, &mut settled).await;
    let mut failed: Vec<bool> = settled
        .iter()
        .map(|s| s.outcome.status() == Status::Retry)
        .collect();
    if fifo {
        // The later messages of a failed message's group come again with it, in order.
        deliver::fail_the_rest_of_each_group(&groups, &mut failed);
    }
    visibility::extend(handler, &messages, &settled, &failed, deadline).await;
    report::answer(handler, &messages, &settled, &failed, &dead_lettered, fifo)
}

#[cfg(test)]
mod regulation_tests;
#[cfg(test)]
mod tests;
