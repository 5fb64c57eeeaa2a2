//! Batching, the per-account concurrency bound, retries and per-event outcomes: the one place
//! that joins transform output, the CleverTap client and the outcome rules (docs/contracts.md §5).
//!
//! Records go in requests of at most 1000 (one event's records never straddle two); at most
//! `MAX_CONCURRENT_REQUESTS` requests of one account are in flight, across calls and
//! invocations, because CleverTap answers 429 beyond 15 per account; only failed records are
//! sent again, with capped exponential backoff and full jitter, while the retry budget and the
//! invocation deadline allow; a 400/413 splits the request until the bad record is alone. The
//! call always returns before `deadline - safety_margin`, even when CleverTap hangs.
//!
//! Each account's gate (`gate.rs`) also carries a circuit breaker (`breaker.rs`): after
//! consecutive outage-type failures nothing more is sent to the account, and its items are
//! answered `retry` (`clevertap_circuit_open`) at once, until a probe finds CleverTap back; and
//! its in-flight bound drops on a 429 and recovers step by step.

mod backoff;
mod breaker;
mod gate;
mod job;
pub mod report;
#[cfg(test)]
mod tests;

use crate::batch::chunk_by_size;
use crate::clevertap::request::{Call, quoted_identity};
use crate::codes;
use crate::config::{self, Config};
use crate::outcome::Outcome;
use crate::ports::{CleverTapApi, Transport};
use crate::settings::{Account, DestinationSettings};
use crate::transform::Record;
pub use breaker::{BreakerPolicy, PROBE_ITEMS};
use gate::AccountGate;
pub use gate::SUCCESSES_PER_STEP;
use job::{ItemOutcome, Job};
pub use report::{DeliveryReport, DeliveryStats, MAX_LATENCIES_KEPT};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Retry and concurrency settings (from the environment, docs/contracts.md §7).
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// `MAX_CONCURRENT_REQUESTS`: requests in flight per CleverTap account (0 is taken as 1).
    pub max_concurrent_requests: usize,
    /// `RETRY_BUDGET_SECONDS`.
    pub retry_budget: Duration,
    /// Time kept free before the invocation deadline (dead-lettering must still fit), at least 3 s.
    pub safety_margin: Duration,
    /// `CLEVERTAP_ENDPOINT` (tests only): replaces `https://<region host>`.
    pub endpoint_override: Option<String>,
    /// First backoff step (full jitter: the wait is uniform in `0..=step`).
    pub backoff_base: Duration,
    /// Largest backoff step.
    pub backoff_cap: Duration,
    /// When an account's circuit opens, and for how long.
    pub breaker: BreakerPolicy,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_concurrent_requests: config::DEFAULT_MAX_CONCURRENT_REQUESTS,
            retry_budget: config::DEFAULT_RETRY_BUDGET,
            safety_margin: config::SAFETY_MARGIN,
            endpoint_override: None,
            backoff_base: config::DEFAULT_BACKOFF_BASE,
            backoff_cap: config::DEFAULT_BACKOFF_CAP,
            breaker: BreakerPolicy::default(),
        }
    }
}

impl DeliveryPolicy {
    /// The policy the configuration asks for.
    pub fn from_config(config: &Config) -> Self {
        DeliveryPolicy {
            max_concurrent_requests: config.max_concurrent_requests,
            retry_budget: config.retry_budget,
            endpoint_override: config.clevertap_endpoint.clone(),
            breaker: BreakerPolicy {
                failure_threshold: config.circuit_failure_threshold,
                min_failing: config::CIRCUIT_MIN_FAILING,
                cooldown: config.circuit_cooldown,
                max_cooldown: config
                    .circuit_cooldown
                    .checked_mul(config::CIRCUIT_MAX_COOLDOWN_FACTOR)
                    .unwrap_or(config::MAX_CIRCUIT_COOLDOWN),
            },
            ..DeliveryPolicy::default()
        }
    }
}

/// The real CleverTap port.
impl<T: Transport> CleverTapApi for Delivery<T> {
    fn upload(
        &self,
        settings: &DestinationSettings,
        events: &[&[Record]],
        deadline: Instant,
    ) -> impl Future<Output = DeliveryReport> + Send {
        Delivery::upload(self, settings, events, deadline)
    }

    fn delete(
        &self,
        settings: &DestinationSettings,
        identities: &[&str],
        deadline: Instant,
    ) -> impl Future<Output = DeliveryReport> + Send {
        Delivery::delete(self, settings, identities, deadline)
    }
}

/// Delivers records; one per container, shared by all invocations.
pub struct Delivery<T> {
    transport: T,
    policy: DeliveryPolicy,
    gates: Mutex<HashMap<String, Arc<AccountGate>>>,
}

impl<T: Transport> Delivery<T> {
    pub fn new(transport: T, policy: DeliveryPolicy) -> Self {
        Delivery {
            transport,
            policy,
            gates: Mutex::new(HashMap::new()),
        }
    }

    pub fn policy(&self) -> &DeliveryPolicy {
        &self.policy
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Uploads the records of `events` (each event's records, in order) to the destination's
    /// account and returns one outcome per event, answered before `deadline` minus the margin.
    /// An event without records is delivered. Events that dynamic config sends to another
    /// account ([`Record::account`]) go in requests of their own account, the accounts at once.
    pub async fn upload(
        &self,
        settings: &DestinationSettings,
        events: &[&[Record]],
        deadline: Instant,
    ) -> DeliveryReport {
        fn account<'r>(event: &[&'r [Record]], i: usize) -> Option<&'r Account> {
            event
                .get(i)
                .and_then(|e| e.first())
                .and_then(Record::account)
        }
        if (0..events.len()).all(|i| account(events, i).is_none()) {
            return self.upload_to(settings, events, deadline).await;
        }
        let started = Instant::now();
        let mut groups: Vec<(Option<&Account>, Vec<usize>)> = Vec::new();
        for i in 0..events.len() {
            let a = account(events, i);
            match groups.iter_mut().find(|(g, _)| *g == a) {
                Some((_, members)) => members.push(i),
                None => groups.push((a, vec![i])),
            }
        }
        let targets: Vec<DestinationSettings> = groups
            .iter()
            .map(|(a, _)| a.map_or_else(|| settings.clone(), |a| settings.for_account(a)))
            .collect();
        let reports = futures_util::future::join_all(groups.iter().zip(&targets).map(
            |((_, members), target)| async move {
                let of_group: Vec<&[Record]> = members.iter().map(|&i| events[i]).collect();
                self.upload_to(target, &of_group, deadline).await
            },
        ))
        .await;
        let mut report = DeliveryReport {
            outcomes: vec![Outcome::Delivered; events.len()],
            ..DeliveryReport::default()
        };
        for ((_, members), part) in groups.iter().zip(reports) {
            report.credentials_rejected |= part.credentials_rejected;
            add_stats(&mut report.stats, &part.stats);
            for (&i, outcome) in members.iter().zip(part.outcomes) {
                report.outcomes[i] = outcome;
            }
        }
        report.stats.elapsed = started.elapsed();
        report
    }

    /// [`Delivery::upload`] to the one account of `settings`.
    async fn upload_to(
        &self,
        settings: &DestinationSettings,
        events: &[&[Record]],
        deadline: Instant,
    ) -> DeliveryReport {
        let mut texts = Vec::with_capacity(events.iter().map(|e| e.len()).sum());
        let mut owners = Vec::with_capacity(texts.capacity());
        for (event, records) in events.iter().enumerate() {
            for record in records.iter() {
                texts.push(record.as_str());
                owners.push(event);
            }
        }
        let sizes: Vec<usize> = events.iter().map(|e| e.len()).collect();
        self.run(Call::Upload, settings, &texts, &owners, &sizes, deadline)
            .await
    }

    /// Deletes the profiles of `identities` (`POST /1/delete/profiles.json`, at most 100 a
    /// call, one delete call per account at a time, within the account's shared bound) and
    /// returns one outcome per identity.
    pub async fn delete(
        &self,
        settings: &DestinationSettings,
        identities: &[&str],
        deadline: Instant,
    ) -> DeliveryReport {
        let quoted: Vec<String> = identities.iter().map(|id| quoted_identity(id)).collect();
        let texts: Vec<&str> = quoted.iter().map(String::as_str).collect();
        let owners: Vec<usize> = (0..identities.len()).collect();
        let sizes = vec![1; identities.len()];
        self.run(Call::Delete, settings, &texts, &owners, &sizes, deadline)
            .await
    }

    fn gate(&self, account_id: &str) -> Arc<AccountGate> {
        let mut gates = self
            .gates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        gates
            .entry(account_id.to_owned())
            .or_insert_with(|| {
                Arc::new(AccountGate::new(
                    account_id,
                    self.policy.max_concurrent_requests,
                    self.policy.breaker.clone(),
                ))
            })
            .clone()
    }

    /// Sends `texts` (owned by `owners[i]`, `sizes[e]` items per owner) and derives one outcome
    /// per owner.
    async fn run(
        &self,
        call: Call,
        settings: &DestinationSettings,
        texts: &[&str],
        owners: &[usize],
        sizes: &[usize],
        deadline: Instant,
    ) -> DeliveryReport {
        let started = Instant::now();
        let hard_stop = deadline
            .checked_sub(self.policy.safety_margin)
            .unwrap_or(started);
        let retry_until = (started + self.policy.retry_budget).min(hard_stop);
        let base_url = match &self.policy.endpoint_override {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => settings.region.base_url(),
        };
        let job = Job {
            transport: &self.transport,
            policy: &self.policy,
            call,
            settings,
            base_url: &base_url,
            items: texts,
            gate: self.gate(&settings.account_id),
            retry_until,
            hard_stop,
        };
        // Item ranges of the requests: consecutive owners, never splitting one.
        let mut offsets = Vec::with_capacity(sizes.len() + 1);
        offsets.push(0);
        for size in sizes {
            offsets.push(offsets.last().copied().unwrap_or(0) + size);
        }
        let chunks = chunk_by_size(sizes.iter().copied(), call.max_items());
        let results = futures_util::future::join_all(chunks.into_iter().map(|owners_range| {
            job.run_chunk((offsets[owners_range.start]..offsets[owners_range.end]).collect())
        }))
        .await;

        let mut report = DeliveryReport {
            outcomes: vec![Outcome::Delivered; sizes.len()],
            ..DeliveryReport::default()
        };
        let mut per_item: Vec<Option<Outcome>> = vec![None; texts.len()];
        for result in results {
            report.credentials_rejected |= result.credentials_rejected;
            add_stats(&mut report.stats, &result.stats);
            for ItemOutcome { item, outcome } in result.outcomes {
                per_item[item] = Some(outcome);
            }
        }
        for (item, outcome) in per_item.into_iter().enumerate() {
            // Every item is in exactly one chunk and every chunk gives every item an outcome; a
            // missing one would be a bug, and is never reported as delivered.
            let outcome = outcome.unwrap_or_else(|| {
                Outcome::retry(codes::RETRY_BUDGET_EXHAUSTED, "the record was not sent")
            });
            match &outcome {
                Outcome::Delivered | Outcome::Filtered(_) => {}
                Outcome::Rejected(_) => report.stats.records_rejected += 1,
                Outcome::Retry(_) => report.stats.records_retry += 1,
            }
            let owner = owners[item];
            let current = std::mem::replace(&mut report.outcomes[owner], Outcome::Delivered);
            report.outcomes[owner] = current.worst(outcome);
        }
        report.stats.elapsed = started.elapsed();
        tracing::debug!(
            account_id = %settings.account_id,
            call = ?call,
            requests = report.stats.requests,
            retries = report.stats.retries,
            throttled = report.stats.throttled,
            circuit_refused = report.stats.circuit_refused,
            probes = report.stats.probes,
            accepted = report.stats.records_accepted,
            discarded = report.stats.records_discarded,
            rejected = report.stats.records_rejected,
            retry = report.stats.records_retry,
            elapsed_ms = report.stats.elapsed.as_millis() as u64,
            "clevertap delivery finished"
        );
        report
    }
}

fn add_stats(total: &mut DeliveryStats, part: &DeliveryStats) {
    total.records_accepted += part.records_accepted;
    total.records_discarded += part.records_discarded;
    total.requests += part.requests;
    total.retries += part.retries;
    total.throttled += part.throttled;
    total.splits += part.splits;
    total.circuit_refused += part.circuit_refused;
    total.circuit_opened += part.circuit_opened;
    total.circuit_closed += part.circuit_closed;
    total.probes += part.probes;
    for &latency in &part.latencies {
        total.record_latency(latency);
    }
}
