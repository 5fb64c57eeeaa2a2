//! Queueing units instead of delivering them (the webhook's queue mode, docs/contracts.md §2,
//! §3): each event that maps to records becomes one message on the events queue, a regulation's
//! valid users messages of at most [`MAX_USERS_PER_MESSAGE`]. Every message carries the unit's
//! destination as `destinationId` (the queue function lets it act on that destination only) and
//! its source id as `sourceRequestId`; an event's message is marked `bodyForm` = `event`, so the
//! queue function reads it back as exactly that one event (`crate::queue`). An item SQS did not take (a refused entry, a failed call,
//! the deadline) is `retry` (`enqueue_failed`); one too large for a message is rejected
//! (`event_too_large`). A queued item's outcome is `Delivered`, standing for queued.

use super::unit::{Unit, Work};
use crate::codes;
use crate::config::SAFETY_MARGIN;
use crate::engine::prepare::Prepared;
use crate::outcome::Outcome;
use crate::ports::AnyEventQueue;
use crate::queue::{EnqueueError, MAX_MESSAGE_BYTES, QueuedMessage};
use crate::regulation::Regulation;
use crate::settings::DestinationId;
use crate::transform::Mapped;
use tokio::time::Instant;

/// Most users of a regulation in one queued message: one CleverTap delete call's worth.
pub const MAX_USERS_PER_MESSAGE: usize = 100;

/// Queues every unit's items; per unit, one outcome per item (none for a decided unit).
pub(super) async fn enqueue(
    queue: Option<&dyn AnyEventQueue>,
    units: &[Unit<'_>],
    deadline: Instant,
) -> Vec<Vec<Outcome>> {
    let stop = deadline.checked_sub(SAFETY_MARGIN).unwrap_or(deadline);
    let mut all = Vec::with_capacity(units.len());
    for unit in units {
        let outcomes = match &unit.work {
            Work::Decided(_) => Vec::new(),
            Work::Events {
                destination,
                prepared,
                ..
            } => {
                let sender = Sender {
                    queue,
                    destination,
                    request_id: unit.origin.source_message_id,
                    stop,
                };
                sender.events(prepared).await
            }
            Work::Regulation {
                regulation,
                targets,
            } => match targets.first() {
                Some(target) => {
                    let sender = Sender {
                        queue,
                        destination: &target.destination,
                        request_id: unit.origin.source_message_id,
                        stop,
                    };
                    sender.users(regulation).await
                }
                None => regulation
                    .users
                    .iter()
                    .map(|_| {
                        Outcome::retry(
                            codes::NO_DESTINATION,
                            "no destination to queue the user for",
                        )
                    })
                    .collect(),
            },
        };
        all.push(outcomes);
    }
    all
}

/// Who the messages are sent for, where, and until when.
struct Sender<'r> {
    queue: Option<&'r dyn AnyEventQueue>,
    destination: &'r DestinationId,
    request_id: Option<&'r str>,
    /// Nothing is sent from here on: the safety margin before the deadline is kept for the
    /// dead letters and the answer.
    stop: Instant,
}

impl Sender<'_> {
    /// Message `n` of the request; `one_event`: its body is one event (`bodyForm` = `event`).
    fn message(&self, body: String, n: usize, one_event: bool) -> QueuedMessage {
        QueuedMessage {
            body,
            destination_id: self.destination.as_str().to_owned(),
            source_request_id: self.request_id.map(str::to_owned),
            deduplication_id: self.request_id.map(|id| format!("{id}-{n}")),
            one_event,
        }
    }

    /// Sends the messages; per message, its outcome: delivered standing for queued.
    async fn send(&self, messages: &[QueuedMessage]) -> Vec<Outcome> {
        if messages.is_empty() {
            return Vec::new();
        }
        let results = match self.queue {
            Some(queue) => queue.send(messages, self.stop).await,
            None => messages
                .iter()
                .map(|_| Err(EnqueueError::NotConfigured))
                .collect(),
        };
        let mut outcomes: Vec<Outcome> = results
            .into_iter()
            .map(|r| match r {
                Ok(()) => Outcome::Delivered,
                Err(e) => {
                    tracing::error!(
                        destination = %self.destination,
                        code = e.code(),
                        error = %e,
                        "event not queued: answered for a retry"
                    );
                    Outcome::retry(codes::ENQUEUE_FAILED, format!("not queued: {e}"))
                }
            })
            .collect();
        // A queue that reports on fewer messages than it was given: the rest are not queued.
        outcomes.resize(
            messages.len(),
            Outcome::retry(
                codes::ENQUEUE_FAILED,
                "not queued: the queue did not report",
            ),
        );
        outcomes
    }

    /// One message per event that maps to records; the others keep their verdict.
    async fn events(&self, prepared: &[Prepared<'_>]) -> Vec<Outcome> {
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(prepared.len());
        let mut messages = Vec::new();
        let mut queued_items = Vec::new();
        for (index, p) in prepared.iter().enumerate() {
            match &p.records {
                Mapped::Rejected(reason) => outcomes.push(Outcome::Rejected(reason.clone())),
                Mapped::Filtered(reason) => outcomes.push(Outcome::Filtered(reason.clone())),
                Mapped::Records(_) => {
                    let message = self.message(p.raw.to_owned(), index, true);
                    let size = message.size();
                    if size > MAX_MESSAGE_BYTES {
                        outcomes.push(too_large(size));
                    } else {
                        outcomes.push(Outcome::Delivered);
                        messages.push(message);
                        queued_items.push(index);
                    }
                }
            }
        }
        let sent = self.send(&messages).await;
        for (index, outcome) in queued_items.into_iter().zip(sent) {
            outcomes[index] = outcome;
        }
        outcomes
    }

    /// The valid users in messages of at most [`MAX_USERS_PER_MESSAGE`]; the others rejected.
    async fn users(&self, regulation: &Regulation<'_>) -> Vec<Outcome> {
        let mut outcomes: Vec<Outcome> = regulation
            .users
            .iter()
            .map(|u| match &u.user_id {
                Ok(_) => Outcome::Delivered,
                Err(reason) => Outcome::Rejected(reason.clone()),
            })
            .collect();
        let valid: Vec<usize> = regulation.identities().map(|(i, _)| i).collect();
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let mut messages = Vec::new();
        for chunk in valid.chunks(MAX_USERS_PER_MESSAGE) {
            self.fit(regulation, chunk, &mut chunks, &mut messages, &mut outcomes);
        }
        let sent = self.send(&messages).await;
        for (chunk, outcome) in chunks.iter().zip(sent) {
            for &user in chunk {
                outcomes[user] = outcome.clone();
            }
        }
        outcomes
    }

    /// Makes one message of the users `chunk` (indices into the regulation's users), halving it
    /// until each part fits in an SQS message; a single user too large alone is rejected.
    fn fit(
        &self,
        regulation: &Regulation<'_>,
        chunk: &[usize],
        chunks: &mut Vec<Vec<usize>>,
        messages: &mut Vec<QueuedMessage>,
        outcomes: &mut [Outcome],
    ) {
        let (Some(&first), Some(&last)) = (chunk.first(), chunk.last()) else {
            return;
        };
        // `chunk` is a run of the sorted valid users: the valid users from `first` to `last`.
        let body = regulation.with_users_in(first..last + 1, |i| {
            regulation.users.get(i).is_some_and(|u| u.user_id.is_ok())
        });
        let message = self.message(body, first, false);
        let size = message.size();
        if size <= MAX_MESSAGE_BYTES {
            chunks.push(chunk.to_vec());
            messages.push(message);
        } else if let [only] = chunk {
            outcomes[*only] = too_large(size);
        } else {
            let (left, right) = chunk.split_at(chunk.len() / 2);
            self.fit(regulation, left, chunks, messages, outcomes);
            self.fit(regulation, right, chunks, messages, outcomes);
        }
    }
}

/// The rejection of an item too large for one SQS message.
fn too_large(size: usize) -> Outcome {
    Outcome::rejected(
        codes::EVENT_TOO_LARGE,
        format!(
            "the item is {size} bytes as a queued message; SQS takes at most {MAX_MESSAGE_BYTES}"
        ),
    )
}
