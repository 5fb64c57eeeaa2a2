//! The one settle step of every source: a source's units are carried out (delivered together,
//! in order, or queued; together also while they are still being made, `settle_as_made`), each
//! unit's items get their outcomes, the rejected ones are
//! dead-lettered (`crate::dead_letters`: a rejected item whose letter is not written becomes a
//! retry), each unit is summed up again, and the counters are added to once per label. What is
//! left to the source is its answer.

use super::unit::{Settled, Unit, Work};
use super::{Engine, carry, enqueue, stream};
use crate::codes;
use crate::dead_letters::rejections::Rejections;
use crate::dead_letters::{self, Group, WithoutQueue};
use crate::outcome::{Outcome, Status, StatusCounts};
use crate::ports::{AnyEventQueue, Ports};
use tokio::time::Instant;

/// How a source's units are carried out.
#[derive(Clone, Copy)]
pub enum Carry<'q> {
    /// Delivered together: per destination, one upload per full request's worth of its
    /// units' records, the rest in one more (an SQS standard queue, a webhook request). Units
    /// still being made go through [`settle_as_made`] instead, which starts those uploads
    /// while the later units are made.
    Together,
    /// Delivered one unit at a time, in order per order key (an SQS FIFO queue).
    InOrder,
    /// Put on the events queue instead of delivered (the webhook's queue mode); `None` when no
    /// queue is configured: every item is then a retry.
    Enqueue(Option<&'q dyn AnyEventQueue>),
}

/// How the source answers for a unit, which decides what is dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// For the unit as a whole (an SQS message: acked, or retried with all its items). Only a
    /// unit that ends rejected is dead-lettered: one that comes back is judged again then.
    /// Without a dead-letter queue its rejected items are retried, so the queue's redrive
    /// policy keeps the message.
    PerUnit,
    /// Item by item (a webhook request): rejected items are dead-lettered whatever became of
    /// the others. Without a dead-letter queue they stay rejected: the caller has the answer.
    PerItem,
}

/// Settles the units: one [`Settled`] per unit, in order.
pub async fn settle<P: Ports>(
    engine: &Engine<P>,
    units: &[Unit<'_>],
    carry: Carry<'_>,
    answers: Answers,
    deadline: Instant,
) -> Vec<Settled> {
    let carried: Vec<Result<Vec<Outcome>, Outcome>> = match carry {
        Carry::Together => stream::together(engine, units, deadline)
            .await
            .1
            .into_iter()
            .map(Ok)
            .collect(),
        Carry::InOrder => carry::in_order(engine, units, deadline).await,
        Carry::Enqueue(queue) => enqueue::enqueue(queue, units, deadline)
            .await
            .into_iter()
            .map(Ok)
            .collect(),
    };
    finish(
        engine,
        units,
        carried,
        answers,
        matches!(carry, Carry::Enqueue(_)),
        deadline,
    )
    .await
}

/// [`settle`] with [`Carry::Together`] for units still being made: each is pulled from `units`
/// (making one runs its transform) while the uploads of the ones made before are already
/// under way (`super::stream`). The units, in their order, and one [`Settled`] per unit.
pub async fn settle_as_made<'a, P: Ports>(
    engine: &Engine<P>,
    units: impl IntoIterator<Item = Unit<'a>>,
    answers: Answers,
    deadline: Instant,
) -> (Vec<Unit<'a>>, Vec<Settled>) {
    let (units, carried) = stream::together(engine, units, deadline).await;
    let carried = carried.into_iter().map(Ok).collect();
    let settled = finish(engine, &units, carried, answers, false, deadline).await;
    (units, settled)
}

/// Everything after the units are carried out: each unit summed up, the rejected ones
/// dead-lettered, the counters added to.
async fn finish<P: Ports>(
    engine: &Engine<P>,
    units: &[Unit<'_>],
    carried: Vec<Result<Vec<Outcome>, Outcome>>,
    answers: Answers,
    queued: bool,
    deadline: Instant,
) -> Vec<Settled> {
    let mut settled: Vec<Settled> = units
        .iter()
        .zip(carried)
        .map(|(unit, carried)| match (carried, &unit.work) {
            (Err(outcome), _) => Settled::decided(outcome),
            (Ok(_), Work::Decided(outcome)) => Settled::decided(outcome.clone()),
            (Ok(outcomes), Work::Regulation { .. }) => Settled::users(&outcomes),
            (Ok(outcomes), Work::Events { prepared, .. }) => Settled::events(prepared, &outcomes),
        })
        .collect();
    dead_letter(engine, units, &mut settled, answers, deadline).await;
    count(engine, units, &settled, queued);
    settled
}

/// Dead-letters the rejected units, all in one send, and sums up again those whose letters were
/// not all written.
async fn dead_letter<P: Ports>(
    engine: &Engine<P>,
    units: &[Unit<'_>],
    settled: &mut [Settled],
    answers: Answers,
    deadline: Instant,
) {
    let without_queue = match answers {
        Answers::PerUnit => WithoutQueue::Retry,
        Answers::PerItem => WithoutQueue::StayRejected,
    };
    // A unit answered as a whole, with items past the bound, that will not come back: those
    // items are rejected `too_many_items`, in one letter holding the body as it came (cut to
    // fit when it must be), so that they too are dead-lettered.
    let mut beyond_units = Vec::new();
    let mut beyond_outcomes: Vec<[Outcome; 1]> = Vec::new();
    if answers == Answers::PerUnit {
        for (i, unit) in units.iter().enumerate() {
            if unit.beyond > 0 && !settled[i].is_retry() {
                beyond_units.push(i);
                beyond_outcomes.push([Outcome::rejected(
                    codes::TOO_MANY_ITEMS,
                    format!(
                        "{} items past MAX_ITEMS_PER_BODY were not read; the letter holds the \
                         whole body",
                        unit.beyond
                    ),
                )]);
            }
        }
    }
    let mut members = Vec::new();
    let mut groups = Vec::new();
    for (i, (unit, s)) in units.iter().zip(settled.iter_mut()).enumerate() {
        let wanted = match answers {
            Answers::PerUnit => s.outcome.status() == Status::Rejected,
            Answers::PerItem => s.counts.rejected > 0,
        };
        if !wanted {
            continue;
        }
        members.push(i);
        groups.push(Group {
            items: unit.rejections(s),
            origin: unit.origin,
            outcomes: &mut s.items,
        });
    }
    for (&i, outcomes) in beyond_units.iter().zip(beyond_outcomes.iter_mut()) {
        groups.push(Group {
            items: Rejections::Whole(units[i].body),
            origin: units[i].origin,
            outcomes,
        });
    }
    if groups.is_empty() {
        return;
    }
    let written =
        dead_letters::dead_letter(&engine.dead_letters, &mut groups, without_queue, deadline).await;
    drop(groups);
    for (i, n) in members.into_iter().zip(written) {
        settled[i].refresh();
        settled[i].dead_lettered = n;
    }
    // A letter of the items past the bound not written: the message comes back.
    for (i, [outcome]) in beyond_units.into_iter().zip(beyond_outcomes) {
        if outcome.status() == Status::Retry {
            settled[i].items.push(outcome);
            settled[i].refresh();
        }
    }
}

/// Adds each unit's counts to its label's counters, once per label. Queued items are counted
/// as delivered by the queue function that delivers them, not here.
fn count<P: Ports>(engine: &Engine<P>, units: &[Unit<'_>], settled: &[Settled], queued: bool) {
    let mut per_label: Vec<(&str, StatusCounts, usize)> = Vec::new();
    for (unit, s) in units.iter().zip(settled) {
        let at = match per_label
            .iter()
            .position(|(label, ..)| *label == unit.label)
        {
            Some(at) => at,
            None => {
                per_label.push((unit.label, StatusCounts::default(), 0));
                per_label.len() - 1
            }
        };
        let (_, counts, dead_lettered) = &mut per_label[at];
        counts.add_all(&s.counts);
        counts.rejected += unit.beyond;
        if queued {
            counts.delivered = 0;
        }
        *dead_lettered += s.dead_lettered;
    }
    for (label, counts, dead_lettered) in per_label {
        engine.count_outcomes(label, counts, dead_lettered);
    }
}

impl Settled {
    /// Whether the unit needs the source to send it again.
    pub fn is_retry(&self) -> bool {
        self.outcome.status() == Status::Retry
    }
}
