//! A regulation larger than one invocation can delete still makes progress when it comes again
//! whole (docs/contracts.md §6, "Progress"): per container, for the last [`REMEMBERED`]
//! regulations retried, which of their users were deleted, keyed by a SHA-256 of what names
//! the regulation's delivery (the sync webhook: destination and body; a FIFO queue: destination,
//! message id and body, since a FIFO redelivery keeps its message id). The same regulation
//! coming again deletes only the others, and its remembered users are answered delivered
//! without a call. Deleted users stay deleted, so each user is in the calls of one delivery
//! (two when an answer was lost). One memory for every source: the engine's. Memory: at most
//! [`REMEMBERED`] × the bound on users of a body, one flag per user.

use super::erase::Target;
use super::{Unit, Work};
use crate::lru::LruMap;
use crate::outcome::{Outcome, Status};
use crate::regulation::Regulation;
use sha2::{Digest, Sha256};
use std::sync::Mutex;

/// Regulations remembered per container.
pub const REMEMBERED: usize = 64;

/// What names one regulation's deliveries: a SHA-256 of its parts.
pub type Key = [u8; 32];

/// Which users of the regulations retried were deleted.
pub struct Progress {
    deleted: Mutex<LruMap<Key, Vec<bool>>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            deleted: Mutex::new(LruMap::new(REMEMBERED)),
        }
    }
}

/// What is left of a regulation some of whose users this container remembers deleted.
pub struct Rest {
    done: Vec<bool>,
    /// The regulation with only the users left, as text.
    pub text: String,
}

impl Progress {
    /// The key of a regulation delivered as `parts` (each part's length goes in, so no two
    /// different lists of parts share a key).
    pub fn key(parts: &[&str]) -> Key {
        let mut hash = Sha256::new();
        for part in parts {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hash.finalize().into()
    }

    /// What is left of `regulation` under `key`, if this container remembers some of its users
    /// deleted (and the regulation still has as many users).
    pub fn rest(&self, key: &Key, regulation: &Regulation<'_>) -> Option<Rest> {
        let done = self.deleted.lock().ok()?.get(key).cloned()?;
        if done.len() != regulation.users.len() || !done.iter().any(|&x| x) {
            return None;
        }
        let text = regulation.with_users(|u| !done.get(u).copied().unwrap_or(false));
        Some(Rest { done, text })
    }

    /// Remembers which users of the regulation under `key` are deleted, from the outcomes of
    /// all its users; forgets it once none is left to retry.
    pub fn remember(&self, key: Key, outcomes: &[Outcome]) {
        let deleted: Vec<bool> = outcomes.iter().map(|o| *o == Outcome::Delivered).collect();
        let finished = !outcomes.iter().any(|o| o.status() == Status::Retry);
        let Ok(mut map) = self.deleted.lock() else {
            return;
        };
        if finished {
            map.remove(&key);
        } else if deleted.iter().any(|&x| x) {
            map.insert(key, deleted);
        }
    }
}

impl Rest {
    /// The unit deleting only the users left, in place of `unit` (a regulation); `None` when
    /// `unit` is not one or the rest does not read back (never expected).
    pub fn unit<'r>(&'r self, unit: &Unit<'r>) -> Option<Unit<'r>> {
        let Work::Regulation { targets, .. } = &unit.work else {
            return None;
        };
        let regulation = Regulation::parse(&self.text).ok()?;
        Some(Unit {
            work: Work::Regulation {
                regulation,
                targets: targets
                    .iter()
                    .map(|t| Target {
                        destination: t.destination.clone(),
                        settings: t.settings.clone(),
                    })
                    .collect(),
            },
            body: &self.text,
            origin: unit.origin,
            label: unit.label,
            order_key: unit.order_key,
            beyond: unit.beyond,
        })
    }

    /// How many users are remembered deleted.
    pub fn remembered(&self) -> usize {
        self.done.iter().filter(|&&x| x).count()
    }

    /// The outcomes of all the regulation's users, from those of the users left (in order):
    /// the remembered ones delivered.
    pub fn merge(&self, left: Vec<Outcome>) -> Vec<Outcome> {
        let mut left = left.into_iter();
        self.done
            .iter()
            .map(|&was| {
                if was {
                    Outcome::Delivered
                } else {
                    left.next().unwrap_or_else(|| {
                        Outcome::retry(
                            crate::codes::DELIVERY_INCOMPLETE,
                            "no outcome for this user",
                        )
                    })
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"regulationType":"suppress_with_delete","users":[{"userId":"a"},{"userId":"b"},{"userId":"c"}]}"#;

    #[test]
    fn a_regulation_retried_after_some_deletions_comes_back_as_its_rest_then_is_forgotten() {
        let progress = Progress::default();
        let regulation = Regulation::parse(BODY).unwrap();
        let key = Progress::key(&["dest-a", "m-1", BODY]);
        assert!(progress.rest(&key, &regulation).is_none());
        let retry = Outcome::retry("retry_budget_exhausted", "x");
        progress.remember(key, &[Outcome::Delivered, retry.clone(), retry.clone()]);
        let rest = progress.rest(&key, &regulation).expect("remembered");
        assert_eq!(rest.remembered(), 1);
        let users = Regulation::parse(&rest.text).unwrap().users;
        assert_eq!(users.len(), 2);
        assert_eq!(
            rest.merge(vec![Outcome::Delivered, retry.clone()]),
            [Outcome::Delivered, Outcome::Delivered, retry]
        );
        // Another message id, or another destination, is another regulation.
        assert!(
            progress
                .rest(&Progress::key(&["dest-a", "m-2", BODY]), &regulation)
                .is_none()
        );
        assert!(
            progress
                .rest(&Progress::key(&["dest-b", "m-1", BODY]), &regulation)
                .is_none()
        );
        assert_ne!(Progress::key(&["ab", "c"]), Progress::key(&["a", "bc"]));
        progress.remember(key, &vec![Outcome::Delivered; 3]);
        assert!(
            progress.rest(&key, &regulation).is_none(),
            "finished: forgotten"
        );
    }

    #[test]
    fn at_most_the_last_64_regulations_are_remembered() {
        let progress = Progress::default();
        let regulation = Regulation::parse(BODY).unwrap();
        let retry = Outcome::retry("retry_budget_exhausted", "x");
        let outcomes = [Outcome::Delivered, retry.clone(), retry];
        let id = |n: usize| n.to_string();
        for n in 0..=REMEMBERED {
            progress.remember(Progress::key(&["d", &id(n), BODY]), &outcomes);
        }
        assert!(
            progress
                .rest(&Progress::key(&["d", "0", BODY]), &regulation)
                .is_none()
        );
        let last = Progress::key(&["d", &id(REMEMBERED), BODY]);
        assert!(progress.rest(&last, &regulation).is_some());
    }
}
