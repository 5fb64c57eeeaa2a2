//! One CleverTap account's circuit breaker, shared by its uploads and deletes across every call
//! and invocation of the container (docs/contracts.md §5, "Circuit breaker").
//!
//! - **Closed**: requests go. Consecutive whole-request failures that say CleverTap is down
//!   (5xx, timeouts, lost connections: `clevertap::retry::Health::Down`) are counted; any
//!   answer from CleverTap resets the count. At the threshold the circuit opens, once the
//!   failures span [`CIRCUIT_MIN_FAILING`](crate::config::CIRCUIT_MIN_FAILING): a blip that
//!   fails a few concurrent requests at once is left to the call's own resends.
//! - **Open**: nothing is sent; the caller answers its items `retry` with
//!   `clevertap_circuit_open` at once. After a jittered cooldown the next request becomes the
//!   probe.
//! - **Probing** (half-open): one small request is in flight; the others wait for its answer.
//!   An answer closes the circuit; a failure opens it again for a cooldown doubled per failed
//!   probe, up to a cap.
//!
//! 400/413, 401/403, 429 and per-record codes are answers: they never open the circuit.

use crate::clevertap::retry::Health;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::Instant;

/// Most items a probe carries: the smallest request that tells whether CleverTap is back.
pub const PROBE_ITEMS: usize = 1;
/// A cooldown is jittered uniformly within ±[`COOLDOWN_JITTER_PERCENT`] of its step, so the
/// containers of a deployment do not probe together.
pub const COOLDOWN_JITTER_PERCENT: u32 = 20;

/// When the circuit opens and how long it stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive outage-type failures that open the circuit (at least 1).
    pub failure_threshold: u32,
    /// How long the failures must have lasted, from the first of them, to open it.
    pub min_failing: Duration,
    /// Cooldown before the first probe.
    pub cooldown: Duration,
    /// Longest cooldown, after failed probes.
    pub max_cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: crate::config::DEFAULT_CIRCUIT_FAILURE_THRESHOLD,
            min_failing: crate::config::CIRCUIT_MIN_FAILING,
            cooldown: crate::config::DEFAULT_CIRCUIT_COOLDOWN,
            max_cooldown: crate::config::DEFAULT_CIRCUIT_COOLDOWN
                * crate::config::CIRCUIT_MAX_COOLDOWN_FACTOR,
        }
    }
}

impl BreakerPolicy {
    /// The cooldown step after `failed_probes` failed probes: doubled per failure, capped.
    pub fn step(&self, failed_probes: u32) -> Duration {
        let doublings = failed_probes.min(31);
        self.cooldown
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_cooldown)
            .min(self.max_cooldown.max(self.cooldown))
    }

    /// The step, jittered within ±20 %.
    fn jittered(&self, failed_probes: u32) -> Duration {
        let step = self.step(failed_probes);
        let low = 100 - COOLDOWN_JITTER_PERCENT;
        let high = 100 + COOLDOWN_JITTER_PERCENT;
        step.checked_mul(rand::random_range(low..=high))
            .map_or(step, |d| d / 100)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `since`: when the first of the `failures` came.
    Closed {
        failures: u32,
        since: Instant,
    },
    Open {
        until: Instant,
        failed_probes: u32,
    },
    Probing {
        failed_probes: u32,
    },
}

/// What the breaker says to a request about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The circuit is closed: send.
    Send,
    /// Send at most [`PROBE_ITEMS`] items: the answer decides whether the circuit closes.
    Probe,
    /// The circuit is open until `until`: do not send.
    Refuse { until: Instant },
    /// A probe is in flight: wait for its answer ([`Breaker::notified`]), then ask again.
    Wait,
}

/// A change of the circuit's state, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Closed → open: the threshold was reached.
    Opened,
    /// A probe failed: open again, for a longer cooldown.
    Reopened,
    /// CleverTap answered: closed.
    Closed,
}

/// One account's circuit.
#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: Mutex<State>,
    /// Woken when a probe's answer settles the circuit.
    settled: Notify,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        Breaker {
            policy,
            state: Mutex::new(State::Closed {
                failures: 0,
                since: Instant::now(),
            }),
            settled: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A future woken when the probe in flight settles. Take it before [`Breaker::admit`] or
    /// [`Breaker::peek`] answers [`Admission::Wait`], so the wake-up cannot be missed.
    pub fn notified(&self) -> Notified<'_> {
        self.settled.notified()
    }

    /// What a request would be told now, without becoming the probe: lets a caller refuse at
    /// once instead of first waiting for a permit.
    pub fn peek(&self, now: Instant) -> Admission {
        match *self.state() {
            State::Closed { .. } => Admission::Send,
            State::Open { until, .. } if now < until => Admission::Refuse { until },
            State::Open { .. } => Admission::Probe,
            State::Probing { .. } => Admission::Wait,
        }
    }

    /// Admits a request about to be sent; after the cooldown, the first one becomes the probe.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Admission::Send,
            State::Open { until, .. } if now < until => Admission::Refuse { until },
            State::Open { failed_probes, .. } => {
                *state = State::Probing { failed_probes };
                Admission::Probe
            }
            State::Probing { .. } => Admission::Wait,
        }
    }

    /// Takes in what a request's answer says about CleverTap; `probe` tells whether it was the
    /// probe. Returns the change of state, if any.
    pub fn record(&self, health: Health, probe: bool, now: Instant) -> Option<Transition> {
        let mut state = self.state();
        let (next, transition) = match (*state, health) {
            (_, Health::Unknown) if !probe => return None,
            (State::Closed { failures, since }, Health::Down) => {
                let since = if failures == 0 { now } else { since };
                let failures = failures.saturating_add(1);
                if failures >= self.policy.failure_threshold.max(1)
                    && now.saturating_duration_since(since) >= self.policy.min_failing
                {
                    (
                        State::Open {
                            until: now + self.policy.jittered(0),
                            failed_probes: 0,
                        },
                        Some(Transition::Opened),
                    )
                } else {
                    (State::Closed { failures, since }, None)
                }
            }
            // The probe failed, or never reached CleverTap: open again, for longer.
            (State::Probing { failed_probes }, Health::Down | Health::Unknown) if probe => {
                let failed_probes = failed_probes.saturating_add(1);
                (
                    State::Open {
                        until: now + self.policy.jittered(failed_probes),
                        failed_probes,
                    },
                    Some(Transition::Reopened),
                )
            }
            // A request sent before the circuit opened, failing late: the circuit already knows.
            (State::Open { .. } | State::Probing { .. }, Health::Down | Health::Unknown) => {
                return None;
            }
            (State::Closed { .. }, Health::Unknown) => return None,
            // CleverTap answered: it is up.
            (State::Closed { .. }, Health::Answered | Health::Throttled) => (
                State::Closed {
                    failures: 0,
                    since: now,
                },
                None,
            ),
            (State::Open { .. } | State::Probing { .. }, Health::Answered | Health::Throttled) => (
                State::Closed {
                    failures: 0,
                    since: now,
                },
                Some(Transition::Closed),
            ),
        };
        let was_probing = matches!(*state, State::Probing { .. });
        *state = next;
        drop(state);
        if was_probing && !matches!(next, State::Probing { .. }) {
            self.settled.notify_waiters();
        }
        transition
    }

    /// Whether the circuit is open (or probing) now.
    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        !matches!(*self.state(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            failure_threshold: 3,
            min_failing: Duration::ZERO,
            cooldown: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(60),
        }
    }

    fn paused<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Opens `breaker` with `threshold` failures; returns when it will let a probe through.
    fn open(breaker: &Breaker, threshold: u32) -> Instant {
        let now = Instant::now();
        let mut transitions = Vec::new();
        for _ in 0..threshold {
            assert_eq!(breaker.admit(now), Admission::Send);
            transitions.push(breaker.record(Health::Down, false, now));
        }
        assert_eq!(transitions.last(), Some(&Some(Transition::Opened)));
        match breaker.admit(now) {
            Admission::Refuse { until } => until,
            other => panic!("expected the circuit open, got {other:?}"),
        }
    }

    #[test]
    fn the_cooldown_doubles_per_failed_probe_up_to_its_cap() {
        let p = policy();
        assert_eq!(p.step(0), Duration::from_secs(10));
        assert_eq!(p.step(1), Duration::from_secs(20));
        assert_eq!(p.step(2), Duration::from_secs(40));
        assert_eq!(p.step(3), Duration::from_secs(60));
        assert_eq!(p.step(u32::MAX), Duration::from_secs(60));
        for _ in 0..100 {
            let j = p.jittered(0);
            assert!(
                j >= Duration::from_secs(8) && j <= Duration::from_secs(12),
                "{j:?}"
            );
        }
    }

    #[test]
    fn it_opens_only_after_the_threshold_of_consecutive_outage_failures() {
        paused(async {
            let b = Breaker::new(policy());
            let now = Instant::now();
            assert_eq!(b.record(Health::Down, false, now), None);
            assert_eq!(b.record(Health::Down, false, now), None);
            // An answer in between resets the count.
            assert_eq!(b.record(Health::Answered, false, now), None);
            assert_eq!(b.record(Health::Down, false, now), None);
            assert_eq!(b.record(Health::Down, false, now), None);
            assert!(!b.is_open());
            assert_eq!(b.record(Health::Down, false, now), Some(Transition::Opened));
            assert!(b.is_open());
            assert!(matches!(b.admit(now), Admission::Refuse { .. }));
        });
    }

    #[test]
    fn answers_that_blame_the_request_never_open_it() {
        paused(async {
            let b = Breaker::new(policy());
            let now = Instant::now();
            for _ in 0..100 {
                // 400/413, 401/403, per-record codes, 429: CleverTap answered.
                assert_eq!(b.record(Health::Answered, false, now), None);
                assert_eq!(b.record(Health::Throttled, false, now), None);
                assert_eq!(b.record(Health::Unknown, false, now), None);
            }
            assert!(!b.is_open());
            assert_eq!(b.admit(now), Admission::Send);
        });
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_and_the_others_wait_for_its_answer() {
        paused(async {
            let b = Breaker::new(policy());
            let until = open(&b, 3);
            let waited = until - Instant::now();
            assert!(
                waited >= Duration::from_secs(8) && waited <= Duration::from_secs(12),
                "{waited:?}"
            );
            tokio::time::sleep_until(until - Duration::from_millis(1)).await;
            assert!(matches!(b.admit(Instant::now()), Admission::Refuse { .. }));
            tokio::time::sleep_until(until).await;
            assert_eq!(b.peek(Instant::now()), Admission::Probe);
            assert_eq!(b.admit(Instant::now()), Admission::Probe);
            // Only one probe: the next request waits for its answer.
            assert_eq!(b.admit(Instant::now()), Admission::Wait);
            assert_eq!(b.peek(Instant::now()), Admission::Wait);
            let woken = b.notified();
            assert_eq!(
                b.record(Health::Answered, true, Instant::now()),
                Some(Transition::Closed)
            );
            // The waiter is woken and finds the circuit closed.
            tokio::time::timeout(Duration::from_millis(1), woken)
                .await
                .expect("the waiter is woken by the probe's answer");
            assert_eq!(b.admit(Instant::now()), Admission::Send);
            assert!(!b.is_open());
        });
    }

    #[test]
    fn a_failed_probe_opens_it_again_for_twice_as_long_and_a_lost_one_counts_as_failed() {
        paused(async {
            let b = Breaker::new(policy());
            let until = open(&b, 3);
            tokio::time::sleep_until(until).await;
            assert_eq!(b.admit(Instant::now()), Admission::Probe);
            let woken = b.notified();
            assert_eq!(
                b.record(Health::Down, true, Instant::now()),
                Some(Transition::Reopened)
            );
            tokio::time::timeout(Duration::from_millis(1), woken)
                .await
                .expect("waiters are woken by a failed probe too");
            let Admission::Refuse { until } = b.admit(Instant::now()) else {
                panic!("open again");
            };
            let waited = until - Instant::now();
            assert!(
                waited >= Duration::from_secs(16) && waited <= Duration::from_secs(24),
                "{waited:?}"
            );
            // The next probe never reaches CleverTap (abandoned): open again, longer still.
            tokio::time::sleep_until(until).await;
            assert_eq!(b.admit(Instant::now()), Admission::Probe);
            assert_eq!(
                b.record(Health::Unknown, true, Instant::now()),
                Some(Transition::Reopened)
            );
            let Admission::Refuse { until } = b.admit(Instant::now()) else {
                panic!("open again");
            };
            assert!(until - Instant::now() >= Duration::from_secs(32));
        });
    }

    #[test]
    fn a_late_answer_from_before_the_opening_closes_it_and_a_late_failure_changes_nothing() {
        paused(async {
            let b = Breaker::new(policy());
            open(&b, 3);
            assert_eq!(b.record(Health::Down, false, Instant::now()), None);
            assert!(b.is_open());
            assert_eq!(
                b.record(Health::Throttled, false, Instant::now()),
                Some(Transition::Closed)
            );
            assert_eq!(b.admit(Instant::now()), Admission::Send);
        });
    }

    #[test]
    fn failures_of_a_short_blip_do_not_open_it_however_many() {
        paused(async {
            let b = Breaker::new(BreakerPolicy {
                min_failing: Duration::from_secs(10),
                ..policy()
            });
            // Ten requests in flight fail at once, then their resends a few seconds later.
            for _ in 0..10 {
                assert_eq!(b.record(Health::Down, false, Instant::now()), None);
            }
            tokio::time::sleep(Duration::from_secs(9)).await;
            assert_eq!(b.record(Health::Down, false, Instant::now()), None);
            assert!(!b.is_open());
            // CleverTap answers: the streak ends, and the span starts again with the next one.
            assert_eq!(b.record(Health::Answered, false, Instant::now()), None);
            tokio::time::sleep(Duration::from_secs(5)).await;
            for _ in 0..3 {
                assert_eq!(b.record(Health::Down, false, Instant::now()), None);
            }
            // Failing for 10 s without an answer: open.
            tokio::time::sleep(Duration::from_secs(10)).await;
            assert_eq!(
                b.record(Health::Down, false, Instant::now()),
                Some(Transition::Opened)
            );
        });
    }

    #[test]
    fn a_threshold_of_one_opens_on_the_first_failure() {
        paused(async {
            let b = Breaker::new(BreakerPolicy {
                failure_threshold: 1,
                ..policy()
            });
            assert_eq!(
                b.record(Health::Down, false, Instant::now()),
                Some(Transition::Opened)
            );
        });
    }
}
