//! What one delivery call reports back: an outcome per event and what happened on the way (the
//! counters behind the metrics). A leaf of its own, so the ports can name it without importing
//! the delivery engine.

use crate::outcome::Outcome;
use std::time::Duration;

/// Request latencies kept per call for the `UploadLatency` metric: an EMF metric holds at most
/// 100 values (crate::metrics), so more would be dropped there anyway.
pub const MAX_LATENCIES_KEPT: usize = 100;

/// Counters of one delivery call, for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// HTTP requests sent (first sends, resends and split halves).
    pub requests: u32,
    /// Requests that resent records after a transient failure.
    pub retries: u32,
    /// 429 answers.
    pub throttled: u32,
    /// Requests split in halves after a 400/413.
    pub splits: u32,
    /// Records CleverTap accepted.
    pub records_accepted: u32,
    /// Records CleverTap discarded by the account's own rule (528), counted as delivered.
    pub records_discarded: u32,
    /// Records rejected.
    pub records_rejected: u32,
    /// Records left for the source to retry.
    pub records_retry: u32,
    /// Requests not sent because the account's circuit was open.
    pub circuit_refused: u32,
    /// Times this call's answers opened the account's circuit (closed → open).
    pub circuit_opened: u32,
    /// Times this call's answers closed it again.
    pub circuit_closed: u32,
    /// Probes this call sent while the circuit was open.
    pub probes: u32,
    /// Time the call took.
    pub elapsed: Duration,
    /// Round trip of each request that got an answer or a transport error (from sending to the
    /// last byte read; the wait for the account's permit excluded), at most
    /// [`MAX_LATENCIES_KEPT`].
    pub latencies: Vec<Duration>,
}

impl DeliveryStats {
    pub(super) fn record_latency(&mut self, latency: Duration) {
        if self.latencies.len() < MAX_LATENCIES_KEPT {
            self.latencies.push(latency);
        }
    }
}

/// The outcome of every event given, in order, and what happened on the way.
#[derive(Debug, Clone, Default)]
pub struct DeliveryReport {
    pub outcomes: Vec<Outcome>,
    /// CleverTap answered 401/403: the caller drops the cached settings.
    pub credentials_rejected: bool,
    pub stats: DeliveryStats,
}
