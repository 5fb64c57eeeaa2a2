//! Sync mode: a regulation larger than one request can delete still makes progress over the
//! sender's resends (docs/contracts.md §6). Per container, for the last [`REMEMBERED`]
//! regulations answered for a retry, which of their users were deleted, keyed by the SHA-256 of
//! the destination and the body: the same body sent again deletes only the others, and answers
//! the remembered ones delivered without a call. Deleted users stay deleted, so each user is in
//! the calls of one request (two when an answer was lost), and a regulation of 10,000 users
//! finishes within as many resends as its 100 calls need deadlines. A sync webhook runs as one
//! instance (its reserved concurrency), so its resends find what it remembers; another container
//! only deletes the head again, as before. Memory: at most [`REMEMBERED`] × the bound on users.

use crate::engine::erase::Target;
use crate::engine::{Answers, Carry, Engine, Settled, Unit, Work, settle};
use crate::lru::LruMap;
use crate::outcome::Outcome;
use crate::ports::Ports;
use crate::regulation::Regulation;
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use tokio::time::Instant;

/// Regulations remembered per container.
pub const REMEMBERED: usize = 64;

/// Which users of the regulations answered for a retry were deleted.
pub struct Progress {
    deleted: Mutex<LruMap<[u8; 32], Vec<bool>>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            deleted: Mutex::new(LruMap::new(REMEMBERED)),
        }
    }
}

impl Progress {
    fn key(destination: &str, body: &str) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(destination.as_bytes());
        hash.update(b"\n");
        hash.update(body.as_bytes());
        hash.finalize().into()
    }

    fn remembered(&self, key: &[u8; 32]) -> Option<Vec<bool>> {
        self.deleted.lock().ok()?.get(key).cloned()
    }

    fn remember(&self, key: [u8; 32], deleted: Vec<bool>, finished: bool) {
        let Ok(mut map) = self.deleted.lock() else {
            return;
        };
        if finished {
            map.remove(&key);
        } else {
            map.insert(key, deleted);
        }
    }
}

/// Settles a regulation unit of a sync request: only its users not remembered as deleted are
/// deleted; one outcome per user of the whole regulation.
pub(super) async fn settle_regulation<P: Ports>(
    engine: &Engine<P>,
    progress: &Progress,
    unit: &Unit<'_>,
    deadline: Instant,
) -> Option<Settled> {
    let Work::Regulation {
        regulation,
        targets,
    } = &unit.work
    else {
        return settle_whole(engine, unit, deadline).await;
    };
    let users = regulation.users.len();
    let key = Progress::key(unit.label, unit.body);
    let before = progress
        .remembered(&key)
        .filter(|d| d.len() == users && d.iter().any(|&x| x));
    let outcomes: Vec<Outcome> = match &before {
        None => settle_whole(engine, unit, deadline).await?.items,
        Some(done) => {
            let text = regulation.with_users(|u| !done.get(u).copied().unwrap_or(false));
            let Ok(rest) = Regulation::parse(&text) else {
                return settle_whole(engine, unit, deadline).await;
            };
            let rest_unit = Unit {
                work: Work::Regulation {
                    regulation: rest,
                    targets: targets
                        .iter()
                        .map(|t| Target {
                            destination: t.destination.clone(),
                            settings: t.settings.clone(),
                        })
                        .collect(),
                },
                body: &text,
                origin: unit.origin,
                label: unit.label,
                order_key: None,
                beyond: unit.beyond,
            };
            let settled = settle_whole(engine, &rest_unit, deadline).await?;
            let mut left = settled.items.into_iter();
            tracing::info!(
                destination = unit.label,
                remembered = done.iter().filter(|&&x| x).count(),
                "regulation sent again: users already deleted are not deleted again"
            );
            done.iter()
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
    };
    let deleted: Vec<bool> = outcomes.iter().map(|o| *o == Outcome::Delivered).collect();
    let finished = !outcomes
        .iter()
        .any(|o| o.status() == crate::outcome::Status::Retry);
    if finished || deleted.iter().any(|&x| x) {
        progress.remember(key, deleted, finished);
    }
    Some(Settled::users(&outcomes))
}

async fn settle_whole<P: Ports>(
    engine: &Engine<P>,
    unit: &Unit<'_>,
    deadline: Instant,
) -> Option<Settled> {
    settle(
        engine,
        std::slice::from_ref(unit),
        Carry::Together,
        Answers::PerItem,
        deadline,
    )
    .await
    .pop()
}
