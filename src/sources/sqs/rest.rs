//! A regulation makes progress over SQS (docs/contracts.md §6): when some of its users were
//! deleted and the others must be tried again (the deadline came, CleverTap failed), what is
//! left goes back on the message's own queue as a message of its own (the regulation with only
//! those users, the same `destinationId` attribute) and the original is acked. Users deleted
//! stay deleted: each user meets at most the delete calls of the receives that reach it, and a
//! regulation of 10,000 users needs no more receives than its calls need deadlines. Without
//! that message written, the original comes back whole, as before. Not for FIFO queues, whose
//! order a new message would break: there the container remembers the deleted users instead
//! (`resume`).

use super::decode::Message;
use crate::dead_letters::letter::STOP_BEFORE_DEADLINE;
use crate::engine::{Engine, Settled, Unit, Work};
use crate::outcome::Outcome;
use crate::ports::Ports;
use crate::queue::QueuedMessage;
use tokio::time::Instant;

/// Puts back what is left of each retried regulation that deleted some users; such a message
/// is no longer `failed`.
pub(super) async fn requeue_rests<P: Ports>(
    engine: &Engine<P>,
    messages: &[Message],
    units: &[Unit<'_>],
    settled: &[Settled],
    failed: &mut [bool],
    deadline: Instant,
) {
    let Some(port) = engine.visibility.as_deref() else {
        return;
    };
    let stop = deadline
        .checked_sub(STOP_BEFORE_DEADLINE)
        .unwrap_or(deadline);
    for (i, unit) in units.iter().enumerate() {
        let (Some(m), Some(s), Some(true)) =
            (messages.get(i), settled.get(i), failed.get(i).copied())
        else {
            continue;
        };
        let Work::Regulation { regulation, .. } = &unit.work else {
            continue;
        };
        if s.whole || s.items.len() != regulation.users.len() {
            continue;
        }
        let deleted = s.items.iter().filter(|o| **o == Outcome::Delivered).count();
        let (Some(receipt), true) = (&m.receipt, deleted > 0) else {
            continue;
        };
        let left = s.items.len() - deleted;
        let message = QueuedMessage {
            body: regulation
                .with_users(|u| s.items.get(u).is_some_and(|o| *o != Outcome::Delivered)),
            destination_id: m.destination_attr.as_deref().unwrap_or_default().to_owned(),
            source_request_id: None,
            // A regulation keeps its own form: never marked as one event.
            one_event: false,
            deduplication_id: m
                .id
                .as_ref()
                .map(|id| format!("{id}-rest-{}", m.receive_count)),
        };
        let message_id = m.id.as_deref().unwrap_or("");
        match port.requeue(&receipt.queue_url, &message, stop).await {
            Ok(()) => {
                failed[i] = false;
                tracing::info!(
                    message_id,
                    deleted,
                    left,
                    "regulation partly carried out: the users left are queued again as a \
                     message of their own, this one acked"
                );
            }
            Err(e) => tracing::warn!(
                message_id,
                deleted,
                left,
                code = e.code(),
                error = %e,
                "the users left of a regulation could not be queued again: it comes back whole"
            ),
        }
    }
}
