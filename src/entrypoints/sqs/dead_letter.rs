//! Dead-lettering a batch's rejected messages, all in one send (`entrypoints::dead_letters`):
//! the letters carry only the rejected events (or users, or the body as it came), and the
//! routing and reason as attributes, so they can be redriven as they are. An event is acked as
//! rejected only once its letter is written; otherwise it is a retry (`dead_letter_failed`), and
//! so is its message, which SQS then delivers again. Without any dead-letter queue, too: the
//! source queue's redrive policy keeps the message.

use super::decode::Message;
use super::plan::Plan;
use crate::credentials::SettingsSource;
use crate::deadletter::{DeadLetterSink, Origin};
use crate::entrypoints::dead_letters::{self, Group, WithoutQueue};
use crate::entrypoints::handler::{CleverTapApi, Handler};
use crate::entrypoints::pipeline::{Rejections, Settled};
use crate::outcome::Status;

/// Dead-letters the rejected messages and sums up again those whose letters were not all
/// written; returns, per message, how many of its items were dead-lettered.
pub(super) async fn dead_letter<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    messages: &[Message],
    plans: &[Plan<'_>],
    settled: &mut [Settled],
) -> Vec<usize> {
    let mut members = Vec::new();
    let mut groups = Vec::new();
    for (i, ((m, p), s)) in messages
        .iter()
        .zip(plans)
        .zip(settled.iter_mut())
        .enumerate()
    {
        if s.outcome.status() != Status::Rejected {
            continue;
        }
        let items = match p {
            _ if s.whole => Rejections::Whole(&m.body),
            Plan::Events { prepared, .. } => Rejections::Events(prepared),
            Plan::Regulation { regulation, .. } => Rejections::Users(regulation),
            Plan::Decided(_) => Rejections::Whole(&m.body),
        };
        members.push(i);
        groups.push(Group {
            items,
            origin: Origin {
                destination_id: m.destination_attr.as_deref(),
                source_message_id: m.id.as_deref(),
                message_group_id: m.group_id.as_deref(),
            },
            outcomes: &mut s.items,
        });
    }
    let mut per_message = vec![0; messages.len()];
    if groups.is_empty() {
        return per_message;
    }
    let written =
        dead_letters::dead_letter(&handler.dead_letters, &mut groups, WithoutQueue::Retry).await;
    drop(groups);
    for (i, n) in members.into_iter().zip(written) {
        settled[i].refresh();
        per_message[i] = n;
    }
    per_message
}
