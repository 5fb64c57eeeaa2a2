//! The engine every source runs on: the container's configuration and ports, built once, and the
//! one way a source's units of work are settled (`settle`): delivered or erased (or, in the
//! webhook's queue mode, queued), rejected items dead-lettered, unwritten letters turned into
//! retries, each unit summed up and counted. Sources (`crate::sources`) only decode their input
//! into units and turn settled units into their answer; nothing here knows SQS records or HTTP.

mod carry;
mod enqueue;
pub mod erase;
pub mod prepare;
pub mod progress;
pub mod settle;
mod stream;
pub mod unit;

#[cfg(test)]
pub(crate) mod fakes;

pub use enqueue::MAX_USERS_PER_MESSAGE;
pub use settle::{Answers, Carry, settle, settle_as_made};
pub use unit::{Settled, Unit, Work};

use crate::config::Config;
use crate::delivery::DeliveryReport;
use crate::metrics::{DestinationCounters, InvocationMetrics};
use crate::outcome::{Outcome, StatusCounts};
use crate::ports::{AnyVisibility, CleverTapApi, Ports, SettingsSource};
use crate::settings::{DestinationId, DestinationSettings};
use crate::transform::Record;
use std::sync::Mutex;
use tokio::time::Instant;

/// Everything one container shares across invocations: configuration and ports, built once.
pub struct Engine<P: Ports> {
    pub config: Config,
    /// Where destination settings come from (Secrets Manager, cached).
    pub settings_source: P::Settings,
    /// CleverTap's API, behind the delivery engine.
    pub clevertap: P::CleverTap,
    pub dead_letters: P::DeadLetters,
    /// Where retried SQS messages are told when to come back (visibility backoff); `None`
    /// leaves them to the queue's own visibility timeout.
    pub visibility: Option<Box<dyn AnyVisibility>>,
    /// Which users of the regulations retried were deleted (sync webhook, FIFO queues).
    pub progress: progress::Progress,
    /// Counters of the invocation in progress (Lambda runs one at a time per container).
    metrics: Mutex<InvocationMetrics>,
}

impl<P: Ports> Engine<P> {
    pub fn new(
        config: Config,
        settings_source: P::Settings,
        clevertap: P::CleverTap,
        dead_letters: P::DeadLetters,
    ) -> Self {
        Engine {
            config,
            settings_source,
            clevertap,
            dead_letters,
            visibility: None,
            progress: progress::Progress::default(),
            metrics: Mutex::new(InvocationMetrics::default()),
        }
    }

    /// Adds to one destination's counters (`-` where no destination is known).
    pub(crate) fn count(&self, destination: &str, add: impl FnOnce(&mut DestinationCounters)) {
        let mut metrics = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        add(metrics.destination(destination));
    }

    /// Counts items' outcomes, and how many of them were dead-lettered.
    pub(crate) fn count_outcomes(
        &self,
        destination: &str,
        counts: StatusCounts,
        dead_lettered: usize,
    ) {
        self.count(destination, |c| {
            c.delivered += counts.delivered as u64;
            c.filtered += counts.filtered as u64;
            c.rejected += counts.rejected as u64;
            c.retried += counts.retry as u64;
            c.dead_lettered += dead_lettered as u64;
        });
    }

    /// The counters gathered since the last call, with the settings source's cache misses, for
    /// the invocation's summary line and EMF documents.
    pub fn take_metrics(&self) -> InvocationMetrics {
        for miss in self.settings_source.take_cache_misses() {
            let label = miss
                .destination
                .as_ref()
                .map_or(crate::metrics::NO_DESTINATION, DestinationId::as_str);
            self.count(label, |c| {
                c.secrets_cache_miss += miss.count;
                c.secrets_stale += miss.stale;
            });
        }
        std::mem::take(&mut *self.metrics.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Uploads the events' records to a destination: drops its cached settings when CleverTap
    /// refuses them (401/403) and counts the requests. One outcome per event, in order; none
    /// for no events.
    pub(crate) async fn upload(
        &self,
        destination: &DestinationId,
        settings: &DestinationSettings,
        events: &[&[Record]],
        deadline: Instant,
    ) -> Vec<Outcome> {
        if events.is_empty() {
            return Vec::new();
        }
        let report = self.clevertap.upload(settings, events, deadline).await;
        self.settle_call(destination, &report);
        report.outcomes
    }

    /// Deletes profiles in a destination, with the same bookkeeping as [`Engine::upload`].
    pub(crate) async fn delete(
        &self,
        destination: &DestinationId,
        settings: &DestinationSettings,
        identities: &[&str],
        deadline: Instant,
    ) -> Vec<Outcome> {
        if identities.is_empty() {
            return Vec::new();
        }
        let report = self.clevertap.delete(settings, identities, deadline).await;
        self.settle_call(destination, &report);
        report.outcomes
    }

    fn settle_call(&self, destination: &DestinationId, report: &DeliveryReport) {
        if report.credentials_rejected {
            self.settings_source.invalidate(destination);
        }
        let stats = &report.stats;
        self.count(destination.as_str(), |c| {
            c.upload_requests += u64::from(stats.requests);
            c.retries += u64::from(stats.retries);
            c.throttled += u64::from(stats.throttled);
            c.circuit_opened += u64::from(stats.circuit_opened);
            c.circuit_closed += u64::from(stats.circuit_closed);
            c.circuit_refused += u64::from(stats.circuit_refused);
            for &latency in &stats.latencies {
                c.record_latency(latency);
            }
        });
        tracing::debug!(destination = %destination, stats = ?report.stats, "clevertap call");
    }
}
