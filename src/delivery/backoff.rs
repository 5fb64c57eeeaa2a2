//! Capped exponential backoff with full jitter: the wait before attempt `n` is uniform in
//! `0..=min(cap, base * 2^(n-1))`, so many clients throttled at once spread out instead of
//! coming back together (CleverTap answers 429 beyond 15 concurrent requests per account).

use std::time::Duration;

/// The wait before resend number `attempt` (1 for the first resend).
pub fn full_jitter(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let step = step(base, cap, attempt);
    let nanos = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::random_range(0..=nanos))
}

/// `min(cap, base * 2^(attempt-1))`, without overflow.
fn step(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    base.checked_mul(1u32 << doublings).unwrap_or(cap).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(2);

    #[test]
    fn the_step_doubles_per_attempt_up_to_the_cap() {
        assert_eq!(step(BASE, CAP, 1), Duration::from_millis(100));
        assert_eq!(step(BASE, CAP, 2), Duration::from_millis(200));
        assert_eq!(step(BASE, CAP, 4), Duration::from_millis(800));
        assert_eq!(step(BASE, CAP, 6), CAP);
        assert_eq!(step(BASE, CAP, u32::MAX), CAP);
    }

    #[test]
    fn every_wait_lies_between_zero_and_the_step() {
        for attempt in 1..10 {
            for _ in 0..50 {
                let wait = full_jitter(BASE, CAP, attempt);
                assert!(wait <= step(BASE, CAP, attempt), "{attempt}: {wait:?}");
            }
        }
        assert_eq!(full_jitter(Duration::ZERO, CAP, 3), Duration::ZERO);
    }
}
