//! Batching, the per-account concurrency bound, retries and per-event outcomes: the one place
//! that joins transform output, the CleverTap client and the outcome rules (design.md §5).
//!
//! Records go in requests of at most 1000 (one event's records never straddle two); at most
//! `MAX_CONCURRENT_REQUESTS` requests of one account are in flight, across calls and
//! invocations, because CleverTap answers 429 beyond 15 per account; only failed records are
//! sent again, with capped exponential backoff and full jitter, while the retry budget and the
//! invocation deadline allow; a 400/413 splits the request until the bad record is alone. The
//! call always returns before `deadline - safety_margin`, even when CleverTap hangs.

mod backoff;
#[cfg(test)]
mod tests;

use crate::batch::{MAX_IDENTITIES_PER_DELETE, MAX_RECORDS_PER_UPLOAD, chunk_by_size};
use crate::clevertap::endpoint::{DELETE_PATH, UPLOAD_PATH};
use crate::clevertap::response::{Reading, read_reply};
use crate::clevertap::retry::{Failure, Verdict, classify, codes};
use crate::clevertap::transport::{ApiRequest, Transport, TransportError};
use crate::outcome::{Outcome, Reason};
use crate::settings::DestinationSettings;
use crate::transform::Record;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Default of `MAX_CONCURRENT_REQUESTS` (design.md §5).
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 5;
/// Default of `RETRY_BUDGET_SECONDS` (design.md §5).
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(20);
/// The least time kept free before the invocation deadline (design.md §5).
pub const MIN_SAFETY_MARGIN: Duration = Duration::from_secs(3);
/// First backoff step; doubled per attempt up to [`DEFAULT_BACKOFF_CAP`].
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Largest backoff step.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// At most one delete call per account at a time (design.md §6), within the shared bound.
const DELETES_IN_FLIGHT_PER_ACCOUNT: usize = 1;
/// Request latencies kept per call for the `UploadLatency` metric: an EMF metric holds at most
/// 100 values (crate::metrics), so more would be dropped there anyway.
pub const MAX_LATENCIES_KEPT: usize = 100;

/// Retry and concurrency settings (from the environment, design.md §7).
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
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            retry_budget: DEFAULT_RETRY_BUDGET,
            safety_margin: MIN_SAFETY_MARGIN,
            endpoint_override: None,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
        }
    }
}

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
    /// Time the call took.
    pub elapsed: Duration,
    /// Round trip of each request that got an answer or a transport error (from sending to the
    /// last byte read; the wait for the account's permit excluded), at most
    /// [`MAX_LATENCIES_KEPT`].
    pub latencies: Vec<Duration>,
}

impl DeliveryStats {
    fn record_latency(&mut self, latency: Duration) {
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

/// The bound of one CleverTap account, shared by every call and invocation of the container.
struct AccountGate {
    requests: Arc<Semaphore>,
    deletes: Arc<Semaphore>,
}

/// Delivers records; one per container, shared by all invocations.
pub struct Delivery<T> {
    transport: T,
    policy: DeliveryPolicy,
    gates: Mutex<HashMap<String, Arc<AccountGate>>>,
}

/// Which call a job makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Upload,
    Delete,
}

impl Call {
    const fn path(self) -> &'static str {
        match self {
            Call::Upload => UPLOAD_PATH,
            Call::Delete => DELETE_PATH,
        }
    }

    const fn body_prefix(self) -> &'static str {
        match self {
            Call::Upload => r#"{"d":["#,
            Call::Delete => r#"{"identity":["#,
        }
    }

    const fn max_items(self) -> usize {
        match self {
            Call::Upload => MAX_RECORDS_PER_UPLOAD,
            Call::Delete => MAX_IDENTITIES_PER_DELETE,
        }
    }
}

/// What became of one record (or identity).
#[derive(Debug, Clone)]
enum Fate {
    Accepted,
    Discarded,
    Rejected(Reason),
    Retry(Reason),
}

impl Fate {
    fn outcome(&self) -> Outcome {
        match self {
            Fate::Accepted | Fate::Discarded => Outcome::Delivered,
            Fate::Rejected(r) => Outcome::Rejected(r.clone()),
            Fate::Retry(r) => Outcome::Retry(r.clone()),
        }
    }
}

/// Items waiting to be sent, and why they are being sent again.
struct Batch {
    items: Vec<usize>,
    attempt: u32,
    last_failure: Option<Reason>,
}

/// Everything one delivery call shares between its requests.
struct Job<'a, T> {
    transport: &'a T,
    policy: &'a DeliveryPolicy,
    call: Call,
    settings: &'a DestinationSettings,
    base_url: &'a str,
    /// JSON text of every item (record, or quoted identity).
    items: &'a [&'a str],
    gate: Arc<AccountGate>,
    /// No retry starts after this.
    retry_until: Instant,
    /// Nothing is waited for after this: deadline minus the safety margin.
    hard_stop: Instant,
}

/// What one chunk of a job produced.
#[derive(Default)]
struct ChunkResult {
    fates: Vec<(usize, Fate)>,
    stats: DeliveryStats,
    credentials_rejected: bool,
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
    /// An event without records is delivered.
    pub async fn upload(
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
        let quoted: Vec<String> = identities
            .iter()
            .map(|id| serde_json::Value::from(*id).to_string())
            .collect();
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
                Arc::new(AccountGate {
                    requests: Arc::new(Semaphore::new(self.policy.max_concurrent_requests.max(1))),
                    deletes: Arc::new(Semaphore::new(DELETES_IN_FLIGHT_PER_ACCOUNT)),
                })
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
        let mut fates: Vec<Option<Fate>> = vec![None; texts.len()];
        for result in results {
            report.credentials_rejected |= result.credentials_rejected;
            add_stats(&mut report.stats, &result.stats);
            for (item, fate) in result.fates {
                fates[item] = Some(fate);
            }
        }
        for (item, fate) in fates.into_iter().enumerate() {
            // Every item is in exactly one chunk and every chunk gives every item a fate; a
            // missing one would be a bug, and is never reported as delivered.
            let fate = fate.unwrap_or_else(|| {
                Fate::Retry(Reason::new(
                    codes::RETRY_BUDGET_EXHAUSTED,
                    "the record was not sent",
                ))
            });
            match &fate {
                Fate::Accepted => report.stats.records_accepted += 1,
                Fate::Discarded => report.stats.records_discarded += 1,
                Fate::Rejected(_) => report.stats.records_rejected += 1,
                Fate::Retry(_) => report.stats.records_retry += 1,
            }
            let owner = owners[item];
            let current = std::mem::replace(&mut report.outcomes[owner], Outcome::Delivered);
            report.outcomes[owner] = current.worst(fate.outcome());
        }
        report.stats.elapsed = started.elapsed();
        tracing::debug!(
            account_id = %settings.account_id,
            call = ?call,
            requests = report.stats.requests,
            retries = report.stats.retries,
            throttled = report.stats.throttled,
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
    total.requests += part.requests;
    total.retries += part.retries;
    total.throttled += part.throttled;
    total.splits += part.splits;
    for &latency in &part.latencies {
        total.record_latency(latency);
    }
}

/// What one request ended in.
enum Sent {
    Reading(Reading),
    /// The hard stop came first (no permit, or no answer, in time).
    OutOfTime,
}

impl<T: Transport> Job<'_, T> {
    /// Delivers one request's items: resends what failed transiently, splits on 400/413, and
    /// gives every item a fate.
    async fn run_chunk(&self, items: Vec<usize>) -> ChunkResult {
        let mut result = ChunkResult::default();
        let mut work = vec![Batch {
            items,
            attempt: 0,
            last_failure: None,
        }];
        while let Some(batch) = work.pop() {
            if batch.items.is_empty() {
                continue;
            }
            if let Some(last) = &batch.last_failure {
                let wait = backoff::full_jitter(
                    self.policy.backoff_base,
                    self.policy.backoff_cap,
                    batch.attempt,
                );
                if Instant::now() + wait >= self.retry_until {
                    let reason = Reason::new(
                        last.code.clone(),
                        format!(
                            "{} (gave up after {} attempts: retry budget exhausted)",
                            last.message, batch.attempt
                        ),
                    );
                    give_all(&mut result, &batch.items, Fate::Retry(reason));
                    continue;
                }
                tokio::time::sleep(wait).await;
                result.stats.retries += 1;
            }
            if Instant::now() >= self.hard_stop {
                // On a resend, the failure that made us resend says more than the cut.
                let reason = match &batch.last_failure {
                    Some(last) => Reason::new(
                        last.code.clone(),
                        format!(
                            "{} (gave up after {} attempts: no time left before the invocation deadline)",
                            last.message, batch.attempt
                        ),
                    ),
                    None => Reason::new(
                        codes::RETRY_BUDGET_EXHAUSTED,
                        "no time was left before the invocation deadline to send the record",
                    ),
                };
                give_all(&mut result, &batch.items, Fate::Retry(reason));
                continue;
            }
            result.stats.requests += 1;
            let reading = match self.send(&batch.items, &mut result.stats).await {
                Sent::Reading(reading) => reading,
                Sent::OutOfTime => {
                    // On a resend, the failure that made us resend says more than the cut.
                    let reason = match &batch.last_failure {
                        Some(last) => Reason::new(
                            last.code.clone(),
                            format!(
                                "{} (the resend got no answer before the invocation deadline)",
                                last.message
                            ),
                        ),
                        None => Reason::new(
                            codes::TIMEOUT,
                            "CleverTap did not answer before the invocation deadline",
                        ),
                    };
                    give_all(&mut result, &batch.items, Fate::Retry(reason));
                    continue;
                }
            };
            match reading {
                Reading::Whole(failure) => {
                    self.whole_failure(&mut result, &mut work, batch, &failure);
                }
                Reading::PerRecord(per_item) => {
                    let mut again = Vec::new();
                    let mut again_reason = None;
                    for (&item, failure) in batch.items.iter().zip(per_item) {
                        let Some(failure) = failure else {
                            result.fates.push((item, Fate::Accepted));
                            continue;
                        };
                        match classify(&failure) {
                            Verdict::Discarded => result.fates.push((item, Fate::Discarded)),
                            Verdict::Reject(reason) | Verdict::Split(reason) => {
                                result.fates.push((item, Fate::Rejected(reason)));
                            }
                            Verdict::RetryNow { reason, throttled } => {
                                result.stats.throttled += u32::from(throttled);
                                again.push(item);
                                again_reason.get_or_insert(reason);
                            }
                            Verdict::RetryLater {
                                reason,
                                credentials,
                            } => {
                                result.credentials_rejected |= credentials;
                                result.fates.push((item, Fate::Retry(reason)));
                            }
                        }
                    }
                    if !again.is_empty() {
                        work.push(Batch {
                            items: again,
                            attempt: batch.attempt + 1,
                            last_failure: again_reason,
                        });
                    }
                }
            }
        }
        result
    }

    /// A failure of the whole request.
    fn whole_failure(
        &self,
        result: &mut ChunkResult,
        work: &mut Vec<Batch>,
        batch: Batch,
        failure: &Failure,
    ) {
        match classify(failure) {
            Verdict::Discarded => give_all(result, &batch.items, Fate::Discarded),
            Verdict::Reject(reason) => give_all(result, &batch.items, Fate::Rejected(reason)),
            Verdict::Split(reason) if batch.items.len() == 1 => {
                give_all(result, &batch.items, Fate::Rejected(reason));
            }
            Verdict::Split(_) => {
                result.stats.splits += 1;
                let mut first = batch.items;
                let second = first.split_off(first.len() / 2);
                // Pushed so that the first half is sent first; a split is not a retry, so the
                // halves go at once, without a backoff.
                for items in [second, first] {
                    work.push(Batch {
                        items,
                        attempt: batch.attempt,
                        last_failure: None,
                    });
                }
            }
            Verdict::RetryNow { reason, throttled } => {
                result.stats.throttled += u32::from(throttled);
                work.push(Batch {
                    items: batch.items,
                    attempt: batch.attempt + 1,
                    last_failure: Some(reason),
                });
            }
            Verdict::RetryLater {
                reason,
                credentials,
            } => {
                result.credentials_rejected |= credentials;
                give_all(result, &batch.items, Fate::Retry(reason));
            }
        }
    }

    /// Sends one request within the account's bound, and reads the answer; gives up at the
    /// hard stop, whether waiting for a permit or for CleverTap.
    async fn send(&self, items: &[usize], stats: &mut DeliveryStats) -> Sent {
        let body = self.body(items);
        let sent: Vec<&str> = items.iter().map(|&i| self.items[i]).collect();
        let request = ApiRequest {
            base_url: self.base_url,
            path: self.call.path(),
            account_id: &self.settings.account_id,
            passcode: &self.settings.passcode,
            body,
        };
        let exchange = async {
            let _delete_permit = match self.call {
                Call::Delete => Some(self.gate.deletes.acquire().await),
                Call::Upload => None,
            };
            let _permit = self.gate.requests.acquire().await;
            let sent_at = Instant::now();
            let answer = self.transport.post(request).await;
            (answer, sent_at.elapsed())
        };
        let answer = match tokio::time::timeout_at(self.hard_stop, exchange).await {
            Err(_elapsed) => return Sent::OutOfTime,
            Ok((answer, latency)) => {
                stats.record_latency(latency);
                answer
            }
        };
        let reading = match answer {
            Ok(reply) => read_reply(&reply, &sent),
            Err(TransportError::Timeout) => Reading::Whole(Failure::Timeout),
            Err(TransportError::Connect(detail)) => Reading::Whole(Failure::Unreachable { detail }),
            Err(TransportError::InvalidRequest(detail)) => {
                Reading::Whole(Failure::InvalidRequest { detail })
            }
        };
        if let Reading::Whole(failure) = &reading {
            tracing::warn!(
                account_id = %self.settings.account_id,
                path = self.call.path(),
                items = items.len(),
                code = %failure_code(failure),
                failure = %failure_kind(failure),
                "clevertap request failed"
            );
        }
        Sent::Reading(reading)
    }

    /// `{"d":[` + the records' JSON joined by `,` + `]}` (or the identities), without re-parsing.
    fn body(&self, items: &[usize]) -> Bytes {
        let prefix = self.call.body_prefix();
        let len = prefix.len()
            + 2
            + items
                .iter()
                .map(|&i| self.items[i].len() + 1)
                .sum::<usize>();
        let mut body = String::with_capacity(len);
        body.push_str(prefix);
        for (n, &i) in items.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(self.items[i]);
        }
        body.push_str("]}");
        Bytes::from(body)
    }
}

/// A short label of a failure for logs (no body text).
fn failure_kind(failure: &Failure) -> String {
    match failure {
        Failure::RecordCode { code, .. } => format!("record code {code}"),
        Failure::RecordUnconfirmed { .. } => "record unconfirmed".into(),
        Failure::Status { status, .. } => format!("http {status}"),
        Failure::Timeout => "timeout".into(),
        Failure::Unreachable { .. } => "unreachable".into(),
        Failure::BadResponse { .. } => "bad response".into(),
        Failure::InvalidRequest { .. } => "invalid request".into(),
    }
}

/// The stable code a failure is reported with (the reason code its verdict gives).
fn failure_code(failure: &Failure) -> std::borrow::Cow<'static, str> {
    match classify(failure) {
        Verdict::Discarded => "clevertap_discarded".into(),
        Verdict::Reject(reason)
        | Verdict::Split(reason)
        | Verdict::RetryNow { reason, .. }
        | Verdict::RetryLater { reason, .. } => reason.code,
    }
}

fn give_all(result: &mut ChunkResult, items: &[usize], fate: Fate) {
    result
        .fates
        .extend(items.iter().map(|&item| (item, fate.clone())));
}
