//! Batching, the per-account concurrency bound, retries and per-event outcomes: the one place
//! that joins transform output, the CleverTap client and the outcome rules (design.md §5).
//!
//! SKELETON: signatures are the contract; the delivery work (issue 3) fills in the bodies.

use crate::clevertap::transport::Transport;
use crate::outcome::Outcome;
use crate::settings::DestinationSettings;
use crate::transform::Record;
use std::time::Duration;
use tokio::time::Instant;

/// Retry and concurrency settings (from the environment, design.md §7).
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// `MAX_CONCURRENT_REQUESTS`: requests in flight per CleverTap account.
    pub max_concurrent_requests: usize,
    /// `RETRY_BUDGET_SECONDS`.
    pub retry_budget: Duration,
    /// Time kept free before the invocation deadline (dead-lettering must still fit), at least 3 s.
    pub safety_margin: Duration,
    /// `CLEVERTAP_ENDPOINT` (tests only): replaces `https://<region host>`.
    pub endpoint_override: Option<String>,
}

/// Counters of one delivery call, for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub requests: u32,
    pub retries: u32,
    pub throttled: u32,
}

/// The outcome of every event given, in order, and what happened on the way.
#[derive(Debug, Clone, Default)]
pub struct DeliveryReport {
    pub outcomes: Vec<Outcome>,
    /// CleverTap answered 401/403: the caller drops the cached settings.
    pub credentials_rejected: bool,
    pub stats: DeliveryStats,
}

/// Delivers records; one per container, shared by all invocations.
pub struct Delivery<T> {
    transport: T,
    policy: DeliveryPolicy,
}

impl<T: Transport> Delivery<T> {
    pub fn new(transport: T, policy: DeliveryPolicy) -> Self {
        Delivery { transport, policy }
    }

    /// Uploads the records of `events` (each event's records, in order) to the destination's
    /// account and returns one outcome per event, answered before `deadline` minus the margin.
    pub async fn upload(
        &self,
        settings: &DestinationSettings,
        events: &[&[Record]],
        deadline: Instant,
    ) -> DeliveryReport {
        let _ = (&self.transport, &self.policy, settings, events, deadline);
        todo!("issue 3")
    }
}
