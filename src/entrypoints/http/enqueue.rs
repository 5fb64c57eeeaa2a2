//! Queue mode (`WEBHOOK_MODE=queue`, docs/contracts.md §2, §3): the request's events are put on
//! the events queue, one SQS message each, and the answer comes in milliseconds, without a call
//! to CleverTap; the queue function delivers them in batches of up to 1000 records.
//!
//! - Each event is checked as in sync mode (split, then the mapping): a bad one is `rejected`
//!   with its code and dead-lettered, never queued. The others are `queued`.
//! - Every message carries the authenticated destination as `destinationId` and the request id
//!   as `sourceRequestId`. The queue function lets a message with a `destinationId` act on that
//!   destination only (docs/contracts.md §3, "Origin"), so nothing queued or dead-lettered here
//!   can reach another destination, however it is redriven.
//! - An event SQS did not take (a refused entry, a failed call, the deadline) is `retry`
//!   (`enqueue_failed`), and the request is answered 503: the sender sends it again.
//! - A regulation is queued too, its valid users in messages of at most 100 users, after the
//!   same check as in sync mode: it may name the authenticated destination only (else 403).
//!
//! Status: 202 when nothing needs a retry and something was queued (or there was nothing to
//! queue), 400 when every item was rejected, 503 (with `Retry-After`) when any item needs a retry.

use super::Reply;
use crate::codes;
use crate::config::SAFETY_MARGIN;
use crate::credentials::SettingsSource;
use crate::deadletter::{DeadLetterSink, Origin};
use crate::entrypoints::dead_letters::{self, Group, WithoutQueue};
use crate::entrypoints::handler::{CleverTapApi, Handler};
use crate::entrypoints::pipeline::{Prepared, Rejections, prepare};
use crate::input::{Body, split_body_bounded};
use crate::outcome::{Outcome, Reason, StatusCounts};
use crate::queue::{EnqueueError, MAX_MESSAGE_BYTES, QueuedMessage};
use crate::regulation::Regulation;
use crate::settings::{DestinationId, DestinationSettings};
use crate::transform::Mapped;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

/// Most users of a regulation in one queued message: one CleverTap delete call's worth.
pub const MAX_USERS_PER_MESSAGE: usize = 100;

/// Queues the body's events (or regulation) and answers per item.
pub(super) async fn serve<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    destination: &DestinationId,
    settings: &DestinationSettings,
    request_id: Option<&str>,
    text: &str,
    deadline: Instant,
) -> Reply {
    let sender = Sender {
        destination,
        request_id,
        stop: deadline.checked_sub(SAFETY_MARGIN).unwrap_or(deadline),
        beyond: Beyond::default(),
    };
    // As in sync mode, at most MAX_ITEMS_PER_BODY items are taken; the rest are answered
    // `too_many_items` by count (docs/contracts.md §2).
    let split = match split_body_bounded(text, handler.config.max_items_per_body) {
        Ok(split) => split,
        Err(reason) => return Reply::error(400, &reason.code, reason.message),
    };
    let sender = Sender {
        beyond: Beyond {
            from: handler.config.max_items_per_body,
            count: split.beyond,
        },
        ..sender
    };
    match split.body {
        Body::Events(items) => {
            let prepared = prepare(items, settings);
            events(handler, &sender, &prepared).await
        }
        Body::Regulation(regulation) => {
            if let Some(refused) =
                super::regulation::refuse_other_destinations(&regulation, destination)
            {
                return refused;
            }
            users(handler, &sender, &regulation).await
        }
    }
}

/// Who the messages are sent for, and until when.
struct Sender<'r> {
    destination: &'r DestinationId,
    request_id: Option<&'r str>,
    /// Nothing is sent from here on: the safety margin before the deadline is kept for the
    /// dead letter and the answer.
    stop: Instant,
    /// The items of the body past `MAX_ITEMS_PER_BODY`: neither queued nor dead-lettered.
    beyond: Beyond,
}

/// The items of a body past `MAX_ITEMS_PER_BODY`, answered as one range as in sync mode
/// (docs/contracts.md §3): they count as rejected with `too_many_items`.
#[derive(Debug, Clone, Copy, Default)]
struct Beyond {
    from: usize,
    count: usize,
}

impl Sender<'_> {
    fn message(&self, body: String, n: usize) -> QueuedMessage {
        QueuedMessage {
            body,
            destination_id: self.destination.as_str().to_owned(),
            source_request_id: self.request_id.map(str::to_owned),
            deduplication_id: self.request_id.map(|id| format!("{id}-{n}")),
        }
    }

    /// Sends the messages; per message, its outcome: delivered standing for queued.
    async fn send<S, C, D>(
        &self,
        handler: &Handler<S, C, D>,
        messages: &[QueuedMessage],
    ) -> Vec<Outcome> {
        if messages.is_empty() {
            return Vec::new();
        }
        let results = match &handler.webhook.queue {
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

    /// Dead-letters the rejected `items` (one outcome each in `outcomes`): a rejected item whose
    /// letter is not written becomes `retry` (`dead_letter_failed`). How many were written.
    async fn dead_letter<D: DeadLetterSink>(
        &self,
        sink: &D,
        items: Rejections<'_, '_>,
        outcomes: &mut [Outcome],
    ) -> usize {
        let written = dead_letters::dead_letter(
            sink,
            &mut [Group {
                items,
                origin: Origin {
                    destination_id: Some(self.destination.as_str()),
                    source_message_id: self.request_id,
                    message_group_id: None,
                },
                outcomes,
            }],
            WithoutQueue::StayRejected,
        )
        .await;
        written.first().copied().unwrap_or(0)
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

async fn events<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    sender: &Sender<'_>,
    prepared: &[Prepared<'_>],
) -> Reply {
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(prepared.len());
    let mut messages = Vec::new();
    let mut queued_items = Vec::new();
    for (index, p) in prepared.iter().enumerate() {
        match &p.records {
            Mapped::Rejected(reason) => outcomes.push(Outcome::Rejected(reason.clone())),
            Mapped::Filtered(reason) => outcomes.push(Outcome::Filtered(reason.clone())),
            Mapped::Records(_) => {
                let message = sender.message(p.raw.to_owned(), index);
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
    let sent = sender.send(handler, &messages).await;
    for (index, outcome) in queued_items.into_iter().zip(sent) {
        outcomes[index] = outcome;
    }
    let dead_lettered = sender
        .dead_letter(
            &handler.dead_letters,
            Rejections::Events(prepared),
            &mut outcomes,
        )
        .await;
    let results: Vec<ItemResult<'_>> = prepared
        .iter()
        .zip(&outcomes)
        .enumerate()
        .map(|(index, (p, o))| ItemResult::new(index, p.message_id.as_deref(), None, o))
        .collect();
    answer(handler, sender, &results, &outcomes, dead_lettered)
}

async fn users<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    sender: &Sender<'_>,
    regulation: &Regulation<'_>,
) -> Reply {
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
        fit(
            regulation,
            sender,
            chunk,
            &mut chunks,
            &mut messages,
            &mut outcomes,
        );
    }
    let sent = sender.send(handler, &messages).await;
    for (chunk, outcome) in chunks.iter().zip(sent) {
        for &user in chunk {
            outcomes[user] = outcome.clone();
        }
    }
    let dead_lettered = sender
        .dead_letter(
            &handler.dead_letters,
            Rejections::Users(regulation),
            &mut outcomes,
        )
        .await;
    let results: Vec<ItemResult<'_>> = regulation
        .users
        .iter()
        .zip(&outcomes)
        .enumerate()
        .map(|(index, (u, o))| ItemResult::new(index, None, u.user_id.as_deref().ok(), o))
        .collect();
    answer(handler, sender, &results, &outcomes, dead_lettered)
}

/// Makes one message of the users `chunk` (indices into the regulation's users), halving it
/// until each part fits in an SQS message; a single user too large alone is rejected.
fn fit(
    regulation: &Regulation<'_>,
    sender: &Sender<'_>,
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
    let message = sender.message(body, first);
    let size = message.size();
    if size <= MAX_MESSAGE_BYTES {
        chunks.push(chunk.to_vec());
        messages.push(message);
    } else if let [only] = chunk {
        outcomes[*only] = too_large(size);
    } else {
        let (left, right) = chunk.split_at(chunk.len() / 2);
        fit(regulation, sender, left, chunks, messages, outcomes);
        fit(regulation, sender, right, chunks, messages, outcomes);
    }
}

/// One item's result: `messageId` for an event, `userId` for a regulation's user.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemResult<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

impl<'a> ItemResult<'a> {
    fn new(
        index: usize,
        message_id: Option<&'a str>,
        user_id: Option<&'a str>,
        outcome: &'a Outcome,
    ) -> Self {
        let reason: Option<&Reason> = outcome.reason();
        ItemResult {
            index,
            message_id,
            user_id,
            status: match outcome {
                Outcome::Delivered => STATUS_QUEUED,
                other => other.status().as_str(),
            },
            code: reason.map(|r| r.code.as_ref()),
            message: reason.map(|r| r.message.as_str()),
        }
    }
}

/// An item's status once it is on the events queue (docs/contracts.md §3).
pub const STATUS_QUEUED: &str = "queued";

/// The answer (202 / 400 / 503) and the counters; queued items are counted as delivered by
/// the queue function, not here.
fn answer<S, C, D>(
    handler: &Handler<S, C, D>,
    sender: &Sender<'_>,
    results: &[ItemResult<'_>],
    outcomes: &[Outcome],
    dead_lettered: usize,
) -> Reply {
    let destination = sender.destination;
    let StatusCounts {
        delivered: queued,
        filtered,
        rejected,
        retry,
    } = StatusCounts::of(outcomes);
    let Beyond {
        from,
        count: beyond,
    } = sender.beyond;
    let rejected = rejected + beyond;
    handler.count_outcomes(
        destination.as_str(),
        StatusCounts {
            delivered: 0,
            filtered,
            rejected,
            retry,
        },
        dead_lettered,
    );
    tracing::info!(
        destination = %destination,
        queued,
        filtered,
        rejected,
        retry,
        "webhook request queued"
    );
    let status = if retry > 0 {
        503
    } else if rejected > 0 && queued == 0 && filtered == 0 {
        400
    } else {
        202
    };
    let mut body = json!({"results": results, "queued": queued, "filtered": filtered,
                          "rejected": rejected, "retry": retry});
    if beyond > 0 {
        body["unprocessed"] = json!({
            "from": from, "count": beyond, "status": "rejected", "code": codes::TOO_MANY_ITEMS,
            "message": format!(
                "only the first {from} items of a body are processed (MAX_ITEMS_PER_BODY); items \
                 {from} to {} were neither queued nor dead-lettered: send them again in another \
                 request",
                from + beyond - 1
            ),
        });
    }
    Reply {
        status,
        body,
        retry_after: status == 503,
        allow_post: false,
    }
}

#[cfg(test)]
mod tests;
