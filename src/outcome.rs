//! The three outcomes every event, user and message ends in, and how a group's outcome is
//! derived: the worst of its parts (retry > rejected > delivered, design.md §3).

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
    Rejected,
    Retry,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Delivered => "delivered",
            Status::Rejected => "rejected",
            Status::Retry => "retry",
        }
    }
}

impl Outcome {
    pub fn rejected(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Outcome::Rejected(Reason::new(code, message))
    }

    pub fn retry(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Outcome::Retry(Reason::new(code, message))
    }

    pub const fn status(&self) -> Status {
        match self {
            Outcome::Delivered => Status::Delivered,
            Outcome::Rejected(_) => Status::Rejected,
            Outcome::Retry(_) => Status::Retry,
        }
    }

    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Outcome::Delivered => None,
            Outcome::Rejected(r) | Outcome::Retry(r) => Some(r),
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
    fn on_a_tie_the_first_reason_is_kept() {
        let a = Outcome::rejected("a", "first");
        let b = Outcome::rejected("b", "second");
        assert_eq!(Outcome::worst_of([&a, &b]), a);
    }
}
