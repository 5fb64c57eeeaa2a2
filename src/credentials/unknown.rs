//! Lookups for callers not yet authenticated (the webhook) of destinations the settings cache
//! holds nothing for: what they cost and where their answers are kept (docs/contracts.md, "What
//! an unauthenticated caller can learn or cause").
//!
//! Anyone can send `?destinationId=<anything>` with a bogus token. Such lookups must neither
//! push good settings out of the cache nor cost Secrets Manager calls without bound, so their
//! negative answers (no secret, an unusable one) live in this small cache of their own, and
//! the `GetSecretValue` calls they may make are drawn from a token bucket shared by the
//! container: [`UNKNOWN_LOOKUP_BURST`] at once, then [`UNKNOWN_LOOKUPS_PER_MINUTE`] a minute.

use super::CredentialsError;
use crate::lru::LruMap;
use crate::settings::DestinationId;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Destinations whose negative answer is remembered for unauthenticated lookups.
pub const UNKNOWN_CACHE_SIZE: usize = 100;
/// `GetSecretValue` calls per minute, in the long run, for destinations not cached.
pub const UNKNOWN_LOOKUPS_PER_MINUTE: u32 = 30;
/// How many of them may be made at once (the bucket's size).
pub const UNKNOWN_LOOKUP_BURST: u32 = 10;

/// A negative answer and when it was read.
struct Remembered {
    error: CredentialsError,
    read_at: Instant,
    expires: Instant,
}

/// The bucket the calls are drawn from.
struct Bucket {
    tokens: f64,
    filled_at: Instant,
}

pub(super) struct Unknown {
    remembered: Mutex<LruMap<DestinationId, Remembered>>,
    bucket: Mutex<Bucket>,
}

impl Default for Unknown {
    fn default() -> Self {
        Unknown {
            remembered: Mutex::new(LruMap::new(UNKNOWN_CACHE_SIZE)),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(UNKNOWN_LOOKUP_BURST),
                filled_at: Instant::now(),
            }),
        }
    }
}

impl Unknown {
    fn remembered(&self) -> MutexGuard<'_, LruMap<DestinationId, Remembered>> {
        self.remembered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The remembered answer of `destination` while it holds, with when it was read.
    pub(super) fn get(&self, destination: &DestinationId) -> Option<(CredentialsError, Instant)> {
        let mut remembered = self.remembered();
        let entry = remembered.get(destination)?;
        if Instant::now() < entry.expires {
            return Some((entry.error.clone(), entry.read_at));
        }
        remembered.remove(destination);
        None
    }

    /// Remembers a negative answer for `cache_for`.
    pub(super) fn remember(
        &self,
        destination: &DestinationId,
        error: CredentialsError,
        cache_for: Duration,
    ) {
        let now = Instant::now();
        self.remembered().insert(
            destination.clone(),
            Remembered {
                error,
                read_at: now,
                expires: now + cache_for,
            },
        );
    }

    /// Forgets `destination` (its settings were read successfully).
    pub(super) fn forget(&self, destination: &DestinationId) {
        self.remembered().remove(destination);
    }

    /// Takes one call from the bucket, if there is one.
    pub(super) fn try_spend(&self) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let per_second = f64::from(UNKNOWN_LOOKUPS_PER_MINUTE) / 60.0;
        let refill = now.duration_since(bucket.filled_at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refill).min(f64::from(UNKNOWN_LOOKUP_BURST));
        bucket.filled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DestinationId {
        DestinationId::parse(s).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_gives_the_burst_at_once_then_the_rate_per_minute() {
        let unknown = Unknown::default();
        let at_once = (0..100).filter(|_| unknown.try_spend()).count();
        assert_eq!(at_once, UNKNOWN_LOOKUP_BURST as usize);
        let mut in_a_minute = 0;
        for _ in 0..60 {
            tokio::time::advance(Duration::from_secs(1)).await;
            in_a_minute += (0..100).filter(|_| unknown.try_spend()).count();
        }
        assert_eq!(in_a_minute, UNKNOWN_LOOKUPS_PER_MINUTE as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn a_negative_answer_is_kept_for_its_time_and_the_cache_is_bounded() {
        let unknown = Unknown::default();
        let d = id("dest-x");
        unknown.remember(
            &d,
            CredentialsError::NotFound(d.clone()),
            Duration::from_secs(30),
        );
        assert!(unknown.get(&d).is_some());
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(unknown.get(&d).is_none());
        for n in 0..(UNKNOWN_CACHE_SIZE + 50) {
            let d = id(&format!("dest-{n}"));
            unknown.remember(
                &d,
                CredentialsError::NotFound(d.clone()),
                Duration::from_secs(3600),
            );
        }
        assert_eq!(unknown.remembered().len(), UNKNOWN_CACHE_SIZE);
    }
}
