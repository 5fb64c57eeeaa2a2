//! A unit of work, as every source hands it to the engine: what it is (events for one
//! destination, a regulation for its targets, or a body decided before delivery), where its
//! dead letters point back to, and the key that orders it; and what it settled into.

use crate::dead_letters::letter::Origin;
use crate::dead_letters::rejections::Rejections;
use crate::engine::erase::Target;
use crate::engine::prepare::Prepared;
use crate::outcome::{Outcome, StatusCounts, Summary};
use crate::regulation::Regulation;
use crate::settings::{DestinationId, DestinationSettings};
use std::sync::Arc;

/// What is to become of one unit.
pub enum Work<'a> {
    /// Decided without delivery. `Rejected` dead-letters the body as it came.
    Decided(Outcome),
    /// Events to deliver to one destination.
    Events {
        destination: DestinationId,
        settings: Arc<DestinationSettings>,
        prepared: Vec<Prepared<'a>>,
    },
    /// A regulation: its users deleted in each target destination (docs/contracts.md §6).
    Regulation {
        regulation: Regulation<'a>,
        targets: Vec<Target>,
    },
}

/// One unit of a source's input: an SQS message, or a webhook request's body.
pub struct Unit<'a> {
    pub work: Work<'a>,
    /// The body as it came: what a unit decided as a whole is dead-lettered as.
    pub body: &'a str,
    /// Copied to its dead letters' attributes.
    pub origin: Origin<'a>,
    /// Whose counters it adds to (a destination id, or `metrics::NO_DESTINATION`).
    pub label: &'a str,
    /// Units with the same key keep their order when the engine carries them out in order
    /// (an SQS FIFO queue's `MessageGroupId`).
    pub order_key: Option<&'a str>,
    /// Items past `MAX_ITEMS_PER_BODY`: neither carried out nor dead-lettered; counted rejected.
    pub beyond: usize,
}

impl<'a> Unit<'a> {
    /// The prepared events, for a unit of events.
    pub fn prepared(&self) -> Option<&[Prepared<'a>]> {
        match &self.work {
            Work::Events { prepared, .. } => Some(prepared),
            Work::Decided(_) | Work::Regulation { .. } => None,
        }
    }

    /// What its dead letters are made of, once it settled as `settled`.
    pub(crate) fn rejections<'r>(&'r self, settled: &Settled) -> Rejections<'r, 'a> {
        match &self.work {
            _ if settled.whole => Rejections::Whole(self.body),
            Work::Events { prepared, .. } => Rejections::Events(prepared),
            Work::Regulation { regulation, .. } => Rejections::Users(regulation),
            Work::Decided(_) => Rejections::Whole(self.body),
        }
    }
}

/// What a group of items (a message's events, a regulation's users, or a body decided as a
/// whole) ended in: each item's outcome, and the worst of them with the counts. Dead-lettering
/// may still turn rejected items into retries (`crate::dead_letters`); then
/// [`Settled::refresh`] sums them up again.
#[derive(Debug)]
pub struct Settled {
    pub outcome: Outcome,
    pub counts: StatusCounts,
    /// One outcome per item: the events or users in order, or the one body decided as a whole.
    pub items: Vec<Outcome>,
    /// The group was decided as a whole, before it could be split: its one item is the body.
    pub whole: bool,
    /// How many of the items were dead-lettered.
    pub dead_lettered: usize,
    /// What the items are called in a reason ("events", "users").
    noun: &'static str,
}

impl Settled {
    /// A group decided as a whole, before delivery; a rejection dead-letters the body as it came.
    pub fn decided(outcome: Outcome) -> Settled {
        let mut s = Settled::of(vec![outcome], "events");
        s.whole = true;
        s
    }

    /// A body's events and their outcomes.
    pub fn events(prepared: &[Prepared<'_>], outcomes: &[Outcome]) -> Settled {
        debug_assert_eq!(prepared.len(), outcomes.len(), "one outcome per event");
        Settled::of(outcomes.to_vec(), "events")
    }

    /// A regulation's users and their outcomes.
    pub fn users(outcomes: &[Outcome]) -> Settled {
        Settled::of(outcomes.to_vec(), "users")
    }

    fn of(items: Vec<Outcome>, noun: &'static str) -> Settled {
        let Summary { outcome, counts } = Summary::of(&items, noun);
        Settled {
            outcome,
            counts,
            items,
            whole: false,
            dead_lettered: 0,
            noun,
        }
    }

    /// Sums the items up again, after dead-lettering changed some of them.
    pub fn refresh(&mut self) {
        let Summary { outcome, counts } = Summary::of(&self.items, self.noun);
        self.outcome = outcome;
        self.counts = counts;
    }
}
