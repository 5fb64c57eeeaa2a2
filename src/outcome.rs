//! The outcomes every event, user and message ends in, and how a group's outcome is derived:
//! the worst of its parts (retry > rejected > filtered > delivered, docs/contracts.md §3).

use serde::Serialize;
use std::borrow::Cow;

/// Why an item was rejected or needs a retry: a stable snake_case code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: Cow<'static, str>,
    pub message: String,
}

impl Reason {
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Reason {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// What became of one event (or one user of a regulation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// CleverTap accepted every record (or discarded it by the account's own rule, code 528).
    Delivered,
    /// Dropped on purpose, as RudderStack drops it before its CleverTap destination (a message
    /// type CleverTap does not take, consent denied, the event filter): not sent, not an error,
    /// never dead-lettered nor retried.
    Filtered(Reason),
    /// The item itself is bad; retrying cannot help. Dead-lettered.
    Rejected(Reason),
    /// Transient or configuration trouble; the source should try again.
    Retry(Reason),
}

/// The kind of an outcome without its reason, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Delivered,
    Filtered,
    Rejected,
    Retry,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Delivered => "delivered",
            Status::Filtered => "filtered",
            Status::Rejected => "rejected",
            Status::Retry => "retry",
        }
    }
}

impl Outcome {
    pub fn filtered(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Outcome::Filtered(Reason::new(code, message))
    }

    pub fn rejected(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Outcome::Rejected(Reason::new(code, message))
    }

    pub fn retry(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Outcome::Retry(Reason::new(code, message))
    }

    pub const fn status(&self) -> Status {
        match self {
            Outcome::Delivered => Status::Delivered,
            Outcome::Filtered(_) => Status::Filtered,
            Outcome::Rejected(_) => Status::Rejected,
            Outcome::Retry(_) => Status::Retry,
        }
    }

    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Outcome::Delivered => None,
            Outcome::Filtered(r) | Outcome::Rejected(r) | Outcome::Retry(r) => Some(r),
        }
    }

    /// The worse of two outcomes; on a tie the first one (and its reason) is kept.
    pub fn worst(self, other: Outcome) -> Outcome {
        if other.status() > self.status() {
            other
        } else {
            self
        }
    }

    /// The worst of many outcomes; `Delivered` for none.
    pub fn worst_of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Outcome {
        outcomes
            .into_iter()
            .fold(Outcome::Delivered, |acc, o| acc.worst(o.clone()))
    }
}

/// How many items ended in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub delivered: usize,
    pub filtered: usize,
    pub rejected: usize,
    pub retry: usize,
}

impl StatusCounts {
    /// One item of `status`.
    pub fn one(status: Status) -> Self {
        let mut counts = StatusCounts::default();
        counts.add(status);
        counts
    }

    /// The counts of `outcomes`.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Self {
        let mut counts = StatusCounts::default();
        for o in outcomes {
            counts.add(o.status());
        }
        counts
    }

    pub fn add(&mut self, status: Status) {
        match status {
            Status::Delivered => self.delivered += 1,
            Status::Filtered => self.filtered += 1,
            Status::Rejected => self.rejected += 1,
            Status::Retry => self.retry += 1,
        }
    }

    pub const fn get(&self, status: Status) -> usize {
        match status {
            Status::Delivered => self.delivered,
            Status::Filtered => self.filtered,
            Status::Rejected => self.rejected,
            Status::Retry => self.retry,
        }
    }
}

/// What a group of items (a message's events, a regulation's users) came to as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The worst of the items' outcomes; a rejection of several items says how many.
    pub outcome: Outcome,
    pub counts: StatusCounts,
}

impl Summary {
    /// The summary of `outcomes`, whose items are called `items` in messages ("events", "users").
    pub fn of(outcomes: &[Outcome], items: &str) -> Summary {
        let counts = StatusCounts::of(outcomes);
        let outcome = match Outcome::worst_of(outcomes) {
            Outcome::Rejected(first) => {
                Outcome::Rejected(Reason::first_of(first, counts.rejected, items))
            }
            other => other,
        };
        Summary { outcome, counts }
    }

    /// A group decided as a whole: one item of that outcome.
    pub fn single(outcome: Outcome) -> Summary {
        Summary {
            counts: StatusCounts::one(outcome.status()),
            outcome,
        }
    }
}

impl Reason {
    /// The reason given for `count` rejected `items` whose first was rejected for `first`: the
    /// first reason itself, or "N items rejected; the first: ..." for several.
    pub fn first_of(first: Reason, count: usize, items: &str) -> Reason {
        if count > 1 {
            Reason::new(
                first.code,
                format!("{count} {items} rejected; the first: {}", first.message),
            )
        } else {
            first
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_is_worse_than_rejected_which_is_worse_than_delivered() {
        let d = Outcome::Delivered;
        let rj = Outcome::rejected("bad", "bad event");
        let rt = Outcome::retry("down", "CleverTap down");
        assert_eq!(d.clone().worst(rj.clone()), rj);
        assert_eq!(rj.clone().worst(rt.clone()), rt);
        assert_eq!(rt.clone().worst(d.clone()), rt);
        assert_eq!(Outcome::worst_of([&d, &rj, &d]), rj);
        assert_eq!(Outcome::worst_of([]), Outcome::Delivered);
    }

    #[test]
    fn filtered_is_worse_than_delivered_and_better_than_rejected() {
        let f = Outcome::filtered("filtered_message_type", "group");
        assert_eq!(Outcome::Delivered.worst(f.clone()), f);
        let rj = Outcome::rejected("bad", "bad event");
        assert_eq!(f.clone().worst(rj.clone()), rj);
        assert_eq!(StatusCounts::of([&f, &Outcome::Delivered]).filtered, 1);
    }

    #[test]
    fn on_a_tie_the_first_reason_is_kept() {
        let a = Outcome::rejected("a", "first");
        let b = Outcome::rejected("b", "second");
        assert_eq!(Outcome::worst_of([&a, &b]), a);
    }

    #[test]
    fn a_summary_counts_each_status_and_says_how_many_were_rejected() {
        let outcomes = [
            Outcome::Delivered,
            Outcome::rejected("bad", "first bad"),
            Outcome::rejected("worse", "second bad"),
        ];
        let s = Summary::of(&outcomes, "events");
        assert_eq!(
            s.counts,
            StatusCounts {
                delivered: 1,
                filtered: 0,
                rejected: 2,
                retry: 0
            }
        );
        assert_eq!(
            s.outcome,
            Outcome::rejected("bad", "2 events rejected; the first: first bad")
        );
        let one = Summary::of(&outcomes[..2], "users");
        assert_eq!(one.outcome, Outcome::rejected("bad", "first bad"));
        assert_eq!(Summary::single(Outcome::Delivered).counts.delivered, 1);
    }
}
