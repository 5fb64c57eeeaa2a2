//! SQS batches (docs/contracts.md §2, §3): each message decoded on its own, so one bad body
//! never fails the batch (`envelope`, `decode`); settings fetched once per destination and each
//! message made a unit of work (`plan`); the units settled on the engine, a standard queue's
//! together and as they are made (each message planned, so transformed, when the engine pulls
//! it: the first uploads leave while later messages are transformed), a FIFO queue's in order
//! per `MessageGroupId` once all are made; retried messages told when to come back
//! (`backoff`); and the answer and log lines (`answer`).
//! A message ends as the worst of its events: delivered (acked), rejected (dead-lettered, then
//! acked) or retry (reported in `batchItemFailures`); a rejected event whose dead letter is not
//! written is a retry (`dead_letter_failed`). A batch with a message that has no `messageId`
//! fails as a whole before anything is sent: that message could not be reported alone.

mod answer;
mod backoff;
mod decode;
mod envelope;
mod origin;
mod plan;
mod rest;
mod resume;

pub(crate) use decode::decode_batch;
pub use decode::{DESTINATION_ATTRIBUTE, Message};
pub use envelope::SqsRecord;

use crate::dead_letters::letter::Origin;
use crate::engine::{Answers, Carry, Engine, Unit, settle, settle_as_made};
use crate::input::{Body, one_event_body, split_message_body_bounded};
use crate::outcome::Reason;
use crate::ports::Ports;
use crate::sources::error::HandlerError;
use aws_lambda_events::sqs::SqsBatchResponse;
use std::collections::HashSet;
use tokio::time::Instant;

/// Handles the messages of one SQS batch.
pub(crate) async fn handle<P: Ports>(
    engine: &Engine<P>,
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
    // At most MAX_ITEMS_PER_BODY items of a message are read: any batch fits the memory.
    let max_items = engine.config.max_items_per_body;
    let mut beyond: Vec<usize> = Vec::with_capacity(messages.len());
    let bodies: Vec<Result<Body<'_>, Reason>> = messages
        .iter()
        .map(|m| {
            // A queued event (`bodyForm=event`) is that one event; other bodies are split, at
            // most MAX_ITEMS_PER_BODY items read.
            let split = if m.one_event {
                one_event_body(&m.body).map(|body| crate::input::Split { body, beyond: 0 })
            } else {
                split_message_body_bounded(&m.body, max_items)
            };
            beyond.push(split.as_ref().map_or(0, |s| s.beyond));
            if let Ok(split) = &split
                && split.beyond > 0
            {
                tracing::warn!(
                    message_id = m.id.as_deref().unwrap_or(""),
                    code = crate::codes::TOO_MANY_ITEMS,
                    processed = max_items,
                    beyond = split.beyond,
                    "message has more items than MAX_ITEMS_PER_BODY: the rest are rejected \
                     too_many_items, dead-lettered with the message body"
                );
            }
            origin::scope(m, split.map(|s| s.body))
        })
        .collect();
    let settings = plan::fetch_settings(&engine.settings_source, &messages, &bodies).await;
    // Each message made a unit as it is pulled (the transform runs then): a standard queue's
    // uploads start while the later messages are still being transformed.
    let units = messages
        .iter()
        .zip(bodies)
        .zip(beyond)
        .map(|((m, body), beyond)| {
            let unit = Unit {
                work: plan::plan(m, body, &settings),
                body: &m.body,
                origin: Origin {
                    destination_id: m.destination_attr.as_deref(),
                    source_message_id: m.id.as_deref(),
                    message_group_id: m.group_id.as_deref(),
                },
                label: m.metric_label(),
                order_key: m.group_id.as_deref(),
                beyond,
            };
            #[cfg(test)]
            crate::engine::fakes::trace(|| format!("planned {}", m.id.as_deref().unwrap_or("")));
            unit
        });
    // Declared here: a FIFO regulation's remembered rest (`resume`) lives as long as the units.
    let resumed;
    let (units, settled, progressed) = if fifo {
        // A FIFO batch keeps order per MessageGroupId (docs/contracts.md §3, FIFO): every unit
        // is made first, then carried in order.
        let units: Vec<Unit<'_>> = units.collect();
        // FIFO: a regulation this container remembers in part deletes only its rest.
        resumed = resume::Resumed::find(engine, &messages, &units);
        let units = resumed.units(units);
        let mut settled = settle(engine, &units, Carry::InOrder, Answers::PerUnit, deadline).await;
        let progressed = resumed.settle(engine, &mut settled, &units);
        (units, settled, progressed)
    } else {
        let (units, settled) = settle_as_made(engine, units, Answers::PerUnit, deadline).await;
        // Only FIFO regulations are remembered and resumed (`resume`).
        let progressed = vec![false; settled.len()];
        (units, settled, progressed)
    };
    let mut failed: Vec<bool> = settled.iter().map(|s| s.is_retry()).collect();
    if !fifo {
        rest::requeue_rests(engine, &messages, &units, &settled, &mut failed, deadline).await;
    }
    if fifo {
        // The later messages of a failed message's group come again with it, in order.
        let groups: Vec<Option<&str>> = units.iter().map(|u| u.order_key).collect();
        fail_the_rest_of_each_group(&groups, &mut failed);
    }
    backoff::extend(engine, &messages, &settled, &failed, &progressed, deadline).await;
    answer::answer(&messages, &settled, &failed, fifo)
}

/// FIFO queue, once dead letters are sent: every message after a `failed` one in the same group
/// (`groups[i]`) is failed too, even one already delivered, so that SQS hands the group back in
/// order. Messages of other groups keep their answer.
fn fail_the_rest_of_each_group(groups: &[Option<&str>], failed: &mut [bool]) {
    debug_assert_eq!(groups.len(), failed.len(), "one group per message");
    let mut blocked: HashSet<Option<&str>> = HashSet::new();
    for (group, failed) in groups.iter().zip(failed.iter_mut()) {
        if blocked.contains(group) {
            *failed = true;
        } else if *failed {
            blocked.insert(*group);
        }
    }
}

#[cfg(test)]
mod regulation_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
