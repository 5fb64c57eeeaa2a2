//! One CleverTap account's gate, shared by every call and invocation of the container: the
//! circuit breaker (`breaker.rs`), the in-flight bound that adapts to 429s, and the one-delete-
//! at-a-time rule (docs/contracts.md §5).
//!
//! **Adaptive bound.** The semaphore holds `MAX_CONCURRENT_REQUESTS` permits; the bound in use
//! may be lower. A 429 halves the bound (at least 1), once per wave: the 429s of requests that
//! were sent under an older bound do not halve it again. Every [`SUCCESSES_PER_STEP`] answers
//! in a row without a 429 raise it by one, never above the maximum. Lowering takes free
//! permits out of the semaphore and, for the ones in use, keeps a debt that their release
//! pays; raising pays back debt first, then adds a permit.

use super::breaker::{Admission, Breaker, BreakerPolicy, Transition};
use crate::clevertap::request::Call;
use crate::clevertap::retry::Health;
use std::sync::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// At most one delete call per account at a time (docs/contracts.md §6), within the shared bound.
const DELETES_IN_FLIGHT_PER_ACCOUNT: usize = 1;
/// Answers without a 429 that raise the adaptive bound by one.
pub const SUCCESSES_PER_STEP: u32 = 10;

#[derive(Debug)]
struct LimitState {
    /// Requests allowed in flight now, 1 to `max`.
    bound: usize,
    /// Permits in use that are forgotten, not returned, when released.
    debt: usize,
    /// Changes each time the bound is lowered.
    epoch: u64,
    /// Answers without a 429 since the bound last changed.
    successes: u32,
}

/// The in-flight bound of one account, lowered on 429 and raised step by step.
#[derive(Debug)]
pub struct Limiter {
    semaphore: Semaphore,
    max: usize,
    state: Mutex<LimitState>,
}

impl Limiter {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Limiter {
            semaphore: Semaphore::new(max),
            max,
            state: Mutex::new(LimitState {
                bound: max,
                debt: 0,
                epoch: 0,
                successes: 0,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LimitState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The bound in use now.
    #[cfg(test)]
    pub fn bound(&self) -> usize {
        self.state().bound
    }

    /// Waits for a permit; with it, the epoch it was granted in. `None` only if the semaphore
    /// were closed, which it never is.
    async fn acquire(&self) -> Option<(SemaphorePermit<'_>, u64)> {
        let permit = self.semaphore.acquire().await.ok()?;
        let epoch = self.state().epoch;
        Some((permit, epoch))
    }

    /// Gives a permit back, or forgets it while the bound is lowered below the permits in use.
    fn release(&self, permit: SemaphorePermit<'_>) {
        let mut state = self.state();
        if state.debt > 0 {
            state.debt -= 1;
            permit.forget();
        } else {
            drop(state);
            drop(permit);
        }
    }

    /// A request sent in `epoch` got a 429: halves the bound unless that wave was already
    /// answered. Returns the new bound when it changed.
    pub fn throttled(&self, epoch: u64) -> Option<usize> {
        let mut state = self.state();
        if epoch != state.epoch || state.bound <= 1 {
            state.successes = 0;
            return None;
        }
        let lower = (state.bound / 2).max(1);
        let removed = state.bound - lower;
        let forgotten = self.semaphore.forget_permits(removed);
        state.debt += removed - forgotten;
        state.bound = lower;
        state.epoch += 1;
        state.successes = 0;
        Some(lower)
    }

    /// An answer without a 429: every [`SUCCESSES_PER_STEP`] of them raise the bound by one, up
    /// to the maximum. Returns the new bound when it changed.
    pub fn succeeded(&self) -> Option<usize> {
        let mut state = self.state();
        if state.bound >= self.max {
            return None;
        }
        state.successes += 1;
        if state.successes < SUCCESSES_PER_STEP {
            return None;
        }
        state.successes = 0;
        state.bound += 1;
        if state.debt > 0 {
            state.debt -= 1;
        } else {
            self.semaphore.add_permits(1);
        }
        Some(state.bound)
    }
}

/// The gate of one CleverTap account.
#[derive(Debug)]
pub struct AccountGate {
    account_id: String,
    limiter: Limiter,
    deletes: Semaphore,
    breaker: Breaker,
}

/// What the gate says to a request about to be sent.
pub enum Entry<'a> {
    /// Send, holding this ticket until the answer is read.
    Go(Ticket<'a>),
    /// The account's circuit is open until `until`: nothing is sent.
    Refused { until: Instant },
}

/// Permission to send one request: a permit of the account's bound (and of its delete lane),
/// and whether the request is the circuit's probe. Dropped without [`Ticket::settle`], a probe
/// counts as failed, so the circuit never waits for an answer that will not come.
pub struct Ticket<'a> {
    gate: &'a AccountGate,
    permit: Option<SemaphorePermit<'a>>,
    _delete: Option<SemaphorePermit<'a>>,
    epoch: u64,
    probe: bool,
    settled: bool,
}

impl AccountGate {
    pub fn new(account_id: &str, max_in_flight: usize, breaker: BreakerPolicy) -> Self {
        AccountGate {
            account_id: account_id.to_owned(),
            limiter: Limiter::new(max_in_flight),
            deletes: Semaphore::new(DELETES_IN_FLIGHT_PER_ACCOUNT),
            breaker: Breaker::new(breaker),
        }
    }

    #[cfg(test)]
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    #[cfg(test)]
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// A refusal of everything (`clevertap::retry::refused_whole`) found over several requests:
    /// one failure for the circuit. Returns the circuit's change of state, if any.
    pub fn count_failure(&self, health: crate::codes::Health) -> Option<Transition> {
        let transition = self.breaker.record(health, false, Instant::now());
        if let Some(t) = transition {
            self.log_transition(t);
        }
        transition
    }

    /// Waits until a request of `call` may be sent: an open circuit refuses at once; otherwise
    /// a permit of the account's bound (and the delete lane for deletes), then the breaker's
    /// word. While a probe is in flight, waits for its answer. The caller bounds the wait.
    pub async fn enter(&self, call: Call) -> Entry<'_> {
        let delete = match call {
            Call::Delete => match self.deletes.acquire().await {
                Ok(permit) => Some(permit),
                Err(_) => return self.refused_now(),
            },
            Call::Upload => None,
        };
        loop {
            let settled = self.breaker.notified();
            match self.breaker.peek(Instant::now()) {
                Admission::Refuse { until } => return Entry::Refused { until },
                Admission::Wait => {
                    settled.await;
                    continue;
                }
                Admission::Send | Admission::Probe => {}
            }
            let Some((permit, epoch)) = self.limiter.acquire().await else {
                return self.refused_now();
            };
            let settled = self.breaker.notified();
            match self.breaker.admit(Instant::now()) {
                admission @ (Admission::Send | Admission::Probe) => {
                    let probe = admission == Admission::Probe;
                    return Entry::Go(Ticket {
                        gate: self,
                        permit: Some(permit),
                        _delete: delete,
                        epoch,
                        probe,
                        settled: false,
                    });
                }
                Admission::Refuse { until } => {
                    self.limiter.release(permit);
                    return Entry::Refused { until };
                }
                Admission::Wait => {
                    self.limiter.release(permit);
                    settled.await;
                }
            }
        }
    }

    fn refused_now(&self) -> Entry<'_> {
        Entry::Refused {
            until: Instant::now(),
        }
    }

    /// Logs a change of the circuit's state.
    fn log_transition(&self, transition: Transition) {
        match transition {
            Transition::Opened => tracing::warn!(
                account_id = %self.account_id,
                circuit = "open",
                "clevertap circuit opened: requests to this account stop until a probe succeeds"
            ),
            Transition::Reopened => tracing::info!(
                account_id = %self.account_id,
                circuit = "open",
                "clevertap probe failed: circuit open again"
            ),
            Transition::Closed => tracing::warn!(
                account_id = %self.account_id,
                circuit = "closed",
                "clevertap answered again: circuit closed"
            ),
        }
    }
}

impl Ticket<'_> {
    /// Whether this request is the circuit's probe: it must carry at most
    /// [`super::breaker::PROBE_ITEMS`] items.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Takes in what the answer said about CleverTap: feeds the breaker and the adaptive
    /// bound, then releases the permits. Returns the circuit's change of state, if any.
    pub fn settle(mut self, health: Health) -> Option<Transition> {
        self.settled = true;
        let gate = self.gate;
        let transition = gate.breaker.record(health, self.probe, Instant::now());
        if let Some(t) = transition {
            gate.log_transition(t);
        }
        match health {
            Health::Throttled => {
                if let Some(bound) = gate.limiter.throttled(self.epoch) {
                    tracing::info!(
                        account_id = %gate.account_id,
                        bound,
                        "clevertap answered 429: in-flight bound lowered"
                    );
                }
            }
            Health::Answered => {
                if let Some(bound) = gate.limiter.succeeded() {
                    tracing::debug!(account_id = %gate.account_id, bound, "in-flight bound raised");
                }
            }
            Health::Down | Health::Unknown => {}
        }
        transition
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            // The probe got no answer (the invocation's deadline came first).
            if let Some(t) = self
                .gate
                .breaker
                .record(Health::Unknown, true, Instant::now())
            {
                self.gate.log_transition(t);
            }
        }
        if let Some(permit) = self.permit.take() {
            self.gate.limiter.release(permit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn paused<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(f)
    }

    fn gate(max: usize) -> AccountGate {
        AccountGate::new(
            "ACC",
            max,
            BreakerPolicy {
                failure_threshold: 2,
                min_failing: std::time::Duration::ZERO,
                cooldown: Duration::from_secs(10),
                max_cooldown: Duration::from_secs(100),
            },
        )
    }

    async fn ticket(gate: &AccountGate) -> Ticket<'_> {
        match tokio::time::timeout(Duration::from_secs(1), gate.enter(Call::Upload)).await {
            Ok(Entry::Go(ticket)) => ticket,
            Ok(Entry::Refused { .. }) => panic!("refused"),
            Err(_) => panic!("no permit within 1 s"),
        }
    }

    /// How many more tickets the gate hands out right now.
    async fn free(gate: &AccountGate) -> usize {
        let mut held = Vec::new();
        while let Ok(Entry::Go(t)) =
            tokio::time::timeout(Duration::from_millis(1), gate.enter(Call::Upload)).await
        {
            held.push(t);
        }
        held.len()
    }

    #[test]
    fn a_429_halves_the_bound_once_per_wave_and_never_below_one() {
        let l = Limiter::new(8);
        assert_eq!(l.bound(), 8);
        assert_eq!(l.throttled(0), Some(4));
        // More 429s of requests sent under the old bound: the same wave.
        assert_eq!(l.throttled(0), None);
        assert_eq!(l.bound(), 4);
        assert_eq!(l.throttled(1), Some(2));
        assert_eq!(l.throttled(2), Some(1));
        assert_eq!(l.throttled(3), None);
        assert_eq!(l.bound(), 1);
    }

    #[test]
    fn the_bound_recovers_one_step_per_run_of_successes_up_to_the_maximum() {
        let l = Limiter::new(3);
        assert_eq!(l.throttled(0), Some(1));
        for _ in 1..SUCCESSES_PER_STEP {
            assert_eq!(l.succeeded(), None);
        }
        assert_eq!(l.succeeded(), Some(2));
        // A 429 in the middle of a run starts the count again.
        for _ in 1..SUCCESSES_PER_STEP {
            l.succeeded();
        }
        assert_eq!(l.throttled(0), None, "an old wave: no halving");
        for _ in 1..SUCCESSES_PER_STEP {
            assert_eq!(l.succeeded(), None);
        }
        assert_eq!(l.succeeded(), Some(3));
        for _ in 0..10 * SUCCESSES_PER_STEP {
            assert_eq!(l.succeeded(), None, "never above the maximum");
        }
        assert_eq!(l.bound(), 3);
    }

    #[test]
    fn permits_in_flight_follow_the_bound_down_and_up() {
        paused(async {
            let g = gate(4);
            let mut held = Vec::new();
            for _ in 0..4 {
                held.push(ticket(&g).await);
            }
            assert_eq!(free(&g).await, 0);
            // All four in flight when the 429 comes: the bound drops to 2 as they come back.
            let first = held.pop().unwrap();
            assert_eq!(first.settle(Health::Throttled), None);
            assert_eq!(g.limiter().bound(), 2);
            // Three in flight now, over the bound: the next release is kept back...
            held.pop();
            assert_eq!(free(&g).await, 0);
            // ...and from then on the bound holds: 1 in flight + 1 free, then 2 free.
            held.pop();
            assert_eq!(free(&g).await, 1);
            held.pop();
            assert_eq!(free(&g).await, 2);
            // Successes raise it one step at a time, up to the maximum.
            for _ in 0..SUCCESSES_PER_STEP {
                ticket(&g).await.settle(Health::Answered);
            }
            assert_eq!(g.limiter().bound(), 3);
            assert_eq!(free(&g).await, 3);
            for _ in 0..5 * SUCCESSES_PER_STEP {
                ticket(&g).await.settle(Health::Answered);
            }
            assert_eq!(g.limiter().bound(), 4);
            assert_eq!(free(&g).await, 4);
        });
    }

    #[test]
    fn an_open_circuit_refuses_at_once_even_while_every_permit_is_busy() {
        paused(async {
            let g = gate(1);
            let busy = ticket(&g).await;
            assert_eq!(
                g.breaker().record(Health::Down, false, Instant::now()),
                None
            );
            assert_eq!(
                g.breaker().record(Health::Down, false, Instant::now()),
                Some(Transition::Opened)
            );
            let started = Instant::now();
            let entry = g.enter(Call::Delete).await;
            assert!(matches!(entry, Entry::Refused { .. }));
            assert_eq!(
                started.elapsed(),
                Duration::ZERO,
                "no wait for the busy permit"
            );
            drop(busy);
        });
    }

    #[test]
    fn a_probe_without_an_answer_reopens_the_circuit_and_frees_its_permit() {
        paused(async {
            let g = gate(1);
            for _ in 0..2 {
                ticket(&g).await.settle(Health::Down);
            }
            assert!(g.breaker().is_open());
            tokio::time::sleep(Duration::from_secs(13)).await;
            let probe = ticket(&g).await;
            assert!(probe.is_probe());
            // A second request waits for the probe's answer...
            let waiting = tokio::time::timeout(Duration::from_secs(1), g.enter(Call::Upload)).await;
            assert!(waiting.is_err(), "no second request while the probe is out");
            // ...which never comes (dropped at the deadline): open again, permit back.
            drop(probe);
            assert!(matches!(g.enter(Call::Upload).await, Entry::Refused { .. }));
            assert_eq!(g.limiter().bound(), 1);
            assert_eq!(g.limiter().semaphore.available_permits(), 1);
        });
    }
}
