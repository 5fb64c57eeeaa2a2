//! One delivery call's work on the wire: a chunk of items is sent within the account's bound,
//! the answer read, and every item given an outcome. Failures where CleverTap took nothing are
//! resent with backoff while the retry budget lasts, and a 400/413 splits the request until the
//! bad item is alone, unless both halves of the whole request are refused whole too: that is
//! a refusal of everything (`clevertap::retry::refused_whole`), retried and counted for the
//! circuit, never dead-lettered. The halving of a request of N records sends at most
//! max(N, 3) requests (one for N = 1), the first included ([`halving_limit`]); what it has not
//! narrowed down by then is retried (`clevertap::retry::halving_stopped`), never dead-lettered
//! (docs/contracts.md §5). An item CleverTap may already hold (an answer that does not account for
//! it, no answer in time) is sent once more, alone in its request, and never a third time in
//! one invocation: a storm of unclear answers cannot multiply copies at CleverTap. What each
//! failure means is decided in `clevertap::retry`, not here.
//!
//! Every request passes the account's gate first: an open circuit answers its items `retry`
//! (`clevertap_circuit_open`) without a request; the circuit's probe carries at most
//! [`PROBE_ITEMS`] items, the rest going once its answer is in.

use super::breaker::{PROBE_ITEMS, Transition};
use super::gate::{AccountGate, Entry, Ticket};
use super::{DeliveryPolicy, DeliveryStats, backoff};
use crate::clevertap::request::{self, Call};
use crate::clevertap::response::{Reading, read_reply};
use crate::clevertap::retry::{
    Failure, Health, Verdict, classify, halving_stopped, probe_refused, refused_whole,
};
use crate::clevertap::transport::{ApiRequest, TransportError};
use crate::codes;
use crate::outcome::{Outcome, Reason};
use crate::ports::Transport;
use crate::settings::DestinationSettings;
use std::sync::Arc;
use tokio::time::Instant;

/// What became of one item (record, or identity), by its index in the call.
#[derive(Debug, Clone)]
pub(super) struct ItemOutcome {
    pub item: usize,
    pub outcome: Outcome,
}

/// The most items of one chunk sent again alone after an unclear answer; more are left for the
/// next delivery of their messages rather than sent one request each.
pub const MAX_RESENT_ALONE: usize = 100;
/// Room allowed for an answer beyond the request's own size, per item sent: an
/// `unprocessed[]` entry echoes its record and adds CleverTap's text and code.
const REPLY_BYTES_PER_ITEM: usize = 1024;
/// Room allowed for an answer beyond the request's own size.
const REPLY_BYTES_BASE: usize = 64 * 1024;

/// Items waiting to be sent, and why they are being sent again.
struct Batch {
    items: Vec<usize>,
    attempt: u32,
    last_failure: Option<Reason>,
    level: Level,
    /// For one half of a refused request: the split it came from, shared with its sibling.
    pair: Option<u32>,
    /// For one half: the refusal of the part it came from.
    parent: Option<Reason>,
    /// For one half: that refusal was a 400, so once the sibling is taken this half is known to
    /// hold it (a 413 may come from the sum of sizes: not inferred).
    inferable: bool,
    /// Its sibling was taken: it holds its parent's 400, so it is split without being sent
    /// whole (a single record is still sent alone before it is rejected).
    known_bad: bool,
    /// Sent as the circuit's probe: a refusal of its one record says nothing of that record
    /// (the circuit opened on failures; whatever answers may refuse everything), so it is
    /// retried, never rejected.
    probe: bool,
}

impl Batch {
    /// A first send of `items`, a part of its own (not a half).
    fn new(items: Vec<usize>, attempt: u32) -> Self {
        Batch {
            items,
            attempt,
            last_failure: None,
            level: Level::Whole,
            pair: None,
            parent: None,
            inferable: false,
            known_bad: false,
            probe: false,
        }
    }

    /// The same part sent again after `reason`.
    fn again(&self, items: Vec<usize>, reason: Option<Reason>) -> Self {
        Batch {
            items,
            attempt: self.attempt + 1,
            last_failure: reason,
            level: self.level,
            pair: self.pair,
            parent: self.parent.clone(),
            inferable: self.inferable,
            known_bad: false,
            probe: false,
        }
    }
}

/// The most requests the halving of one request of `records` records sends, the first
/// included: max(N, 3) for N ≥ 2, one for a single record. Three for two records is the least
/// that tells a refusal of everything (the request and both halves refused) from one bad record.
pub const fn halving_limit(records: usize) -> usize {
    if records <= 1 {
        1
    } else if records < 3 {
        3
    } else {
        records
    }
}

/// The halving's request count against its limit, and the splits made so far.
struct Halving {
    limit: usize,
    /// First sends of the chunk's parts (the request itself, its halves, a probe's rest);
    /// resends after a passing failure and the second sends of unclear items are not counted.
    sent: usize,
    splits: u32,
}

impl Halving {
    fn room(&self) -> usize {
        self.limit.saturating_sub(self.sent)
    }
}

/// Where a batch sits in the halving of a refused request. When both halves of a refused
/// request are refused whole too, no more halving: the halves of the whole request make a
/// refusal of everything; the halves of a part, several bad records (both retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The chunk's request (or what is left of it).
    Whole,
    /// One half of the whole request.
    Half,
    /// A half of a part.
    Deeper,
}

/// Everything one delivery call shares between its requests.
pub(super) struct Job<'a, T> {
    pub transport: &'a T,
    pub policy: &'a DeliveryPolicy,
    pub call: Call,
    pub settings: &'a DestinationSettings,
    pub base_url: &'a str,
    /// JSON text of every item (record, or quoted identity).
    pub items: &'a [&'a str],
    pub gate: Arc<AccountGate>,
    /// No retry starts after this.
    pub retry_until: Instant,
    /// Nothing is waited for after this: deadline minus the safety margin.
    pub hard_stop: Instant,
}

/// What one chunk of a job produced.
#[derive(Default)]
pub(super) struct ChunkResult {
    pub outcomes: Vec<ItemOutcome>,
    pub stats: DeliveryStats,
    pub credentials_rejected: bool,
}

impl ChunkResult {
    fn accepted(&mut self, item: usize) {
        self.stats.records_accepted += 1;
        self.give(item, Outcome::Delivered);
    }

    fn discarded(&mut self, item: usize) {
        self.stats.records_discarded += 1;
        self.give(item, Outcome::Delivered);
    }

    fn give(&mut self, item: usize, outcome: Outcome) {
        self.outcomes.push(ItemOutcome { item, outcome });
    }

    fn give_all(&mut self, items: &[usize], outcome: Outcome) {
        self.outcomes.extend(items.iter().map(|&item| ItemOutcome {
            item,
            outcome: outcome.clone(),
        }));
    }

    fn absorb(&mut self, other: ChunkResult) {
        self.outcomes.extend(other.outcomes);
        super::add_stats(&mut self.stats, &other.stats);
        self.credentials_rejected |= other.credentials_rejected;
    }
}

/// Items CleverTap may already hold, to be sent once more, alone.
#[derive(Default)]
struct Unclear {
    items: Vec<usize>,
    reason: Option<Reason>,
}

impl Unclear {
    fn add(&mut self, items: &[usize], reason: Reason) {
        self.items.extend_from_slice(items);
        self.reason.get_or_insert(reason);
    }
}

/// `reason`, saying the item was left for the next delivery of its message.
fn left_for_later(reason: &Reason, why: &str) -> Outcome {
    Outcome::retry(
        reason.code.clone(),
        format!("{} ({why}; left for the next delivery)", reason.message),
    )
}

/// What one request ended in.
enum Sent {
    Reading(Reading),
    /// The hard stop came first (no answer in time).
    OutOfTime,
}

/// Whether a request may go.
enum Admitted<'a> {
    Go(Ticket<'a>),
    /// The account's circuit is open until `until`: nothing sent.
    Refused {
        until: Instant,
    },
    /// The hard stop came while waiting for a permit.
    OutOfTime,
}

/// The outcome of items whose request got no answer (or no permit) before the hard stop. On a
/// resend, the failure that made us resend says more than the cut.
fn no_answer(last: Option<&Reason>) -> Outcome {
    let reason = match last {
        Some(last) => Reason::new(
            last.code.clone(),
            format!(
                "{} (the resend got no answer before the invocation deadline)",
                last.message
            ),
        ),
        None => Reason::new(
            codes::CLEVERTAP_TIMEOUT,
            "CleverTap did not answer before the invocation deadline",
        ),
    };
    Outcome::Retry(reason)
}

/// The reason of items not sent because the account's circuit is open until `until`; `last`
/// is the failure that had them resent, if any.
fn circuit_open(until: Instant, last: Option<&Reason>) -> Reason {
    let wait = until.saturating_duration_since(Instant::now());
    let mut message = format!(
        "CleverTap kept failing for this account, so the circuit is open and nothing was sent; \
         next probe in {:.1} s",
        wait.as_secs_f64()
    );
    if let Some(last) = last {
        message.push_str(&format!(" (last failure: {})", last.code));
    }
    Reason::new(codes::CLEVERTAP_CIRCUIT_OPEN, message)
}

/// Counts a change of the circuit's state.
fn count_transition(stats: &mut DeliveryStats, transition: Option<Transition>) {
    match transition {
        Some(Transition::Opened) => stats.circuit_opened += 1,
        Some(Transition::Closed) => stats.circuit_closed += 1,
        Some(Transition::Reopened) | None => {}
    }
}

impl<T: Transport> Job<'_, T> {
    /// Delivers one request's items: resends what failed transiently, splits on 400/413, and
    /// gives every item a fate.
    pub(super) async fn run_chunk(&self, items: Vec<usize>) -> ChunkResult {
        let mut result = ChunkResult::default();
        let mut unclear = Unclear::default();
        let mut halving = Halving {
            limit: halving_limit(items.len()),
            sent: 0,
            splits: 0,
        };
        let mut work = vec![Batch::new(items, 0)];
        // A half refused whole, waiting for its sibling's answer.
        let mut parked: Option<(Batch, Failure)> = None;
        loop {
            let Some(batch) = work.pop() else {
                // The sibling ended without being refused whole: the parked half is halved on.
                match parked.take() {
                    Some((batch, failure)) => {
                        self.whole_failure(
                            &mut result,
                            &mut work,
                            &mut unclear,
                            batch,
                            &failure,
                            &mut halving,
                        );
                        continue;
                    }
                    None => break,
                }
            };
            if batch.items.is_empty() {
                continue;
            }
            if batch.known_bad
                && batch.items.len() > 1
                && let Some(reason) = batch.parent.clone()
            {
                // Its sibling was taken: this half holds its parent's 400, no need to send it.
                self.split(&mut result, &mut work, batch, &reason, true, &mut halving);
                continue;
            }
            let first_send = batch.last_failure.is_none();
            if first_send && halving.room() == 0 {
                stopped(&mut result, &batch, &halving);
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
                    result.give_all(&batch.items, Outcome::Retry(reason));
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
                result.give_all(&batch.items, Outcome::Retry(reason));
                continue;
            }
            let ticket = match self.admit().await {
                Admitted::Go(ticket) => ticket,
                Admitted::Refused { until } => {
                    result.stats.circuit_refused += 1;
                    let reason = circuit_open(until, batch.last_failure.as_ref());
                    result.give_all(&batch.items, Outcome::Retry(reason));
                    continue;
                }
                Admitted::OutOfTime => {
                    result.give_all(&batch.items, no_answer(batch.last_failure.as_ref()));
                    continue;
                }
            };
            let mut batch = batch;
            batch.probe = ticket.is_probe();
            if ticket.is_probe() && batch.items.len() > PROBE_ITEMS {
                // The probe goes alone and small; the rest follows once its answer is in.
                let rest = batch.items.split_off(PROBE_ITEMS);
                // The probe's answer says nothing of the whole half: no inference from it.
                batch.inferable = false;
                let mut rest = Batch::new(rest, batch.attempt);
                rest.parent = batch.parent.clone();
                work.push(rest);
            }
            result.stats.requests += 1;
            if first_send {
                halving.sent += 1;
            }
            let reading = match self.send(&batch.items, ticket, &mut result.stats).await {
                Sent::Reading(reading) => reading,
                Sent::OutOfTime => {
                    result.give_all(&batch.items, no_answer(batch.last_failure.as_ref()));
                    continue;
                }
            };
            match reading {
                Reading::Whole(failure) => {
                    let verdict = classify(&failure);
                    if let (Some(pair), Verdict::Split(reason)) = (batch.pair, &verdict) {
                        match parked.take() {
                            Some((sibling, _)) if sibling.pair == Some(pair) => {
                                self.both_refused(&mut result, sibling, batch, reason);
                            }
                            other => {
                                if let Some((earlier, earlier_failure)) = other {
                                    self.whole_failure(
                                        &mut result,
                                        &mut work,
                                        &mut unclear,
                                        earlier,
                                        &earlier_failure,
                                        &mut halving,
                                    );
                                }
                                parked = Some((batch, failure));
                            }
                        }
                        continue;
                    }
                    self.whole_failure(
                        &mut result,
                        &mut work,
                        &mut unclear,
                        batch,
                        &failure,
                        &mut halving,
                    );
                }
                Reading::PerRecord(per_item) => {
                    if batch.inferable {
                        // Taken: its unsent sibling holds the parent's 400.
                        if let Some(sibling) = work.iter_mut().find(|b| {
                            b.pair == batch.pair && b.inferable && b.last_failure.is_none()
                        }) {
                            sibling.known_bad = true;
                        }
                    }
                    let mut again = Vec::new();
                    let mut again_reason = None;
                    for (&item, failure) in batch.items.iter().zip(per_item) {
                        let Some(failure) = failure else {
                            result.accepted(item);
                            continue;
                        };
                        match act(&mut result, classify(&failure), &[item], false) {
                            Then::Done | Then::Split => {}
                            Then::Again(reason) => {
                                again.push(item);
                                again_reason.get_or_insert(reason);
                            }
                            Then::Unclear(reason) => unclear.add(&[item], reason),
                        }
                    }
                    if !again.is_empty() {
                        work.push(batch.again(again, again_reason));
                    }
                }
            }
        }
        self.resend_alone(&mut result, unclear).await;
        result
    }

    /// Sends each unclear item once more, alone in its request (all at once, within the
    /// account's bound), after one backoff step; whatever the answer, it is the item's last
    /// send in this invocation.
    async fn resend_alone(&self, result: &mut ChunkResult, unclear: Unclear) {
        let Unclear {
            items,
            reason: Some(reason),
        } = unclear
        else {
            return;
        };
        if items.len() > MAX_RESENT_ALONE {
            let why = format!(
                "{} records CleverTap may already hold are too many to send again one by one",
                items.len()
            );
            result.give_all(&items, left_for_later(&reason, &why));
            return;
        }
        let wait = backoff::full_jitter(self.policy.backoff_base, self.policy.backoff_cap, 1);
        if Instant::now() + wait >= self.retry_until {
            result.give_all(&items, left_for_later(&reason, "retry budget exhausted"));
            return;
        }
        tokio::time::sleep(wait).await;
        let sends =
            futures_util::future::join_all(items.iter().map(|&item| self.send_last(item, &reason)))
                .await;
        for sent in sends {
            result.absorb(sent);
        }
    }

    /// The last send of one item: an answer about one record is never ambiguous, and any
    /// failure now is a retry for the next delivery.
    async fn send_last(&self, item: usize, reason: &Reason) -> ChunkResult {
        let mut result = ChunkResult::default();
        if Instant::now() >= self.hard_stop {
            result.give(
                item,
                left_for_later(reason, "no time left before the deadline"),
            );
            return result;
        }
        let ticket = match self.admit().await {
            Admitted::Go(ticket) => ticket,
            Admitted::Refused { until } => {
                result.stats.circuit_refused += 1;
                result.give(item, Outcome::Retry(circuit_open(until, Some(reason))));
                return result;
            }
            Admitted::OutOfTime => {
                result.give(
                    item,
                    left_for_later(reason, "no time left before the deadline"),
                );
                return result;
            }
        };
        result.stats.requests += 1;
        result.stats.retries += 1;
        let failure = match self.send(&[item], ticket, &mut result.stats).await {
            Sent::OutOfTime => {
                result.give(
                    item,
                    left_for_later(reason, "the resend got no answer in time"),
                );
                return result;
            }
            Sent::Reading(Reading::PerRecord(per_item)) => per_item.into_iter().next().flatten(),
            Sent::Reading(Reading::Whole(failure)) => Some(failure),
        };
        let Some(failure) = failure else {
            result.accepted(item);
            return result;
        };
        act(&mut result, classify(&failure), &[item], true);
        result
    }

    /// A failure of the whole request.
    fn whole_failure(
        &self,
        result: &mut ChunkResult,
        work: &mut Vec<Batch>,
        unclear: &mut Unclear,
        batch: Batch,
        failure: &Failure,
        halving: &mut Halving,
    ) {
        let verdict = match classify(failure) {
            Verdict::Split(reason) if batch.probe && batch.items.len() == 1 => {
                probe_refused(&reason)
            }
            verdict => verdict,
        };
        let reason = verdict.reason().cloned();
        match (act(result, verdict, &batch.items, false), reason) {
            (Then::Done, _) => {}
            (Then::Split, Some(reason)) => {
                let inferable = matches!(failure, Failure::Status { status: 400, .. });
                self.split(result, work, batch, &reason, inferable, halving);
            }
            (Then::Split, None) => stopped(result, &batch, halving),
            (Then::Again(reason), _) => work.push(batch.again(batch.items.clone(), Some(reason))),
            (Then::Unclear(reason), _) => unclear.add(&batch.items, reason),
        }
    }

    /// Halves a part refused whole (`reason`; `inferable`: a 400), within the halving's limit:
    /// the request itself needs room for both halves, to tell a refusal of everything from a
    /// bad record; a deeper part, room for one (the other waits for its turn, and is retried if
    /// the limit comes first). Without room, its records are retried.
    fn split(
        &self,
        result: &mut ChunkResult,
        work: &mut Vec<Batch>,
        batch: Batch,
        reason: &Reason,
        inferable: bool,
        halving: &mut Halving,
    ) {
        let needed = if batch.level == Level::Whole { 2 } else { 1 };
        if halving.room() < needed {
            let mut batch = batch;
            batch.parent = Some(reason.clone());
            stopped(result, &batch, halving);
            return;
        }
        result.stats.splits += 1;
        let mut first = batch.items;
        let second = first.split_off(first.len() / 2);
        let level = match batch.level {
            Level::Whole => Level::Half,
            Level::Half | Level::Deeper => Level::Deeper,
        };
        halving.splits += 1;
        // Pushed so that the first half is sent first; a split is not a retry, so the halves
        // go without a backoff.
        for items in [second, first] {
            work.push(Batch {
                items,
                attempt: batch.attempt,
                last_failure: None,
                level,
                pair: Some(halving.splits),
                parent: Some(reason.clone()),
                inferable,
                known_bad: false,
                probe: false,
            });
        }
    }

    /// Both halves of a refused request refused whole too: no more halving. Every record of
    /// both is retried under `refused_whole`'s code; for the halves of the whole request (a
    /// refusal of everything) the account's circuit counts one failure.
    fn both_refused(&self, result: &mut ChunkResult, first: Batch, second: Batch, reason: &Reason) {
        let everything = first.level == Level::Half;
        let mut items = first.items;
        items.extend(second.items);
        let verdict = refused_whole(reason, items.len(), everything);
        let health = verdict.health();
        tracing::warn!(
            account_id = %self.settings.account_id,
            path = self.call.path(),
            items = items.len(),
            everything,
            code = crate::codes::CLEVERTAP_REFUSED_WHOLE,
            "a request and both its halves were refused whole: retried, not dead-lettered"
        );
        act(result, verdict, &items, false);
        if everything {
            count_transition(&mut result.stats, self.gate.count_failure(health));
        }
    }

    /// Waits, until the hard stop at most, for the account's gate to let a request go.
    async fn admit(&self) -> Admitted<'_> {
        match tokio::time::timeout_at(self.hard_stop, self.gate.enter(self.call)).await {
            Err(_elapsed) => Admitted::OutOfTime,
            Ok(Entry::Go(ticket)) => Admitted::Go(ticket),
            Ok(Entry::Refused { until }) => Admitted::Refused { until },
        }
    }

    /// Sends one request with the gate's `ticket` and reads the answer; gives up at the hard
    /// stop. What the answer says about CleverTap goes back to the gate.
    async fn send(&self, items: &[usize], ticket: Ticket<'_>, stats: &mut DeliveryStats) -> Sent {
        let sent: Vec<&str> = items.iter().map(|&i| self.items[i]).collect();
        let body = request::body(self.call, sent.iter().copied());
        let request = ApiRequest {
            base_url: self.base_url,
            path: self.call.path(),
            account_id: &self.settings.account_id,
            passcode: &self.settings.passcode,
            max_reply_bytes: body.len() + items.len() * REPLY_BYTES_PER_ITEM + REPLY_BYTES_BASE,
            body,
        };
        if ticket.is_probe() {
            stats.probes += 1;
        }
        let exchange = async {
            let sent_at = Instant::now();
            let answer = self.transport.post(request).await;
            (answer, sent_at.elapsed())
        };
        let answer = match tokio::time::timeout_at(self.hard_stop, exchange).await {
            // The ticket goes with it: a probe without an answer counts as failed.
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
        let health = match &reading {
            Reading::Whole(failure) => classify(failure).request_health(ticket.is_probe()),
            Reading::PerRecord(_) => Health::Answered,
        };
        count_transition(stats, ticket.settle(health));
        match &reading {
            Reading::Whole(failure) => {
                tracing::warn!(
                    account_id = %self.settings.account_id,
                    path = self.call.path(),
                    items = items.len(),
                    code = %failure_code(failure),
                    failure = %failure_kind(failure),
                    "clevertap request failed"
                );
                if let Some(text) = failure.clevertap_text() {
                    tracing::debug!(clevertap_says = %text, "clevertap request failed");
                }
            }
            Reading::PerRecord(per_item) => {
                for (n, failure) in per_item.iter().enumerate() {
                    if let Some(text) = failure.as_ref().and_then(Failure::clevertap_text) {
                        tracing::debug!(record = n + 1, clevertap_says = %text, "clevertap record failed");
                    }
                }
            }
        }
        Sent::Reading(reading)
    }
}

/// The halving reached its limit before `batch` was narrowed down: its records are retried
/// under `clevertap_refused_whole`, never dead-lettered, not counted for the circuit.
fn stopped(result: &mut ChunkResult, batch: &Batch, halving: &Halving) {
    let verdict = halving_stopped(batch.parent.as_ref(), batch.items.len(), halving.limit);
    tracing::warn!(
        items = batch.items.len(),
        limit = halving.limit,
        code = codes::CLEVERTAP_REFUSED_WHOLE,
        "the halving of a refused request stopped at its request limit: retried, not dead-lettered"
    );
    act(result, verdict, &batch.items, false);
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
    classify(failure)
        .reason()
        .map_or("clevertap_discarded".into(), |r| r.code.clone())
}
/// What is left to do with items once their verdict is acted on.
enum Then {
    /// Each item has its outcome.
    Done,
    /// Send them again after a backoff step (CleverTap took none of them).
    Again(Reason),
    /// CleverTap may hold them: send each once more, alone.
    Unclear(Reason),
    /// Several records refused together: send each half on its own.
    Split,
}

/// Acts on `classify`'s verdict for `items` (one record, or a whole request): the one place a
/// verdict becomes outcomes and counters. On an item's last send (`last_send`), a verdict that
/// would send it again leaves it for the next delivery instead; a split of one record rejects it.
fn act(result: &mut ChunkResult, verdict: Verdict, items: &[usize], last_send: bool) -> Then {
    match verdict {
        Verdict::Discarded => {
            for &item in items {
                result.discarded(item);
            }
            Then::Done
        }
        Verdict::Split(_) if items.len() > 1 => Then::Split,
        Verdict::Reject(reason) | Verdict::Split(reason) => {
            result.give_all(items, Outcome::Rejected(reason));
            Then::Done
        }
        Verdict::RetryNow { reason, throttled } => {
            result.stats.throttled += u32::from(throttled);
            if last_send {
                result.give_all(items, left_for_later(&reason, "sent twice"));
                Then::Done
            } else {
                Then::Again(reason)
            }
        }
        Verdict::Unclear(reason) if last_send => {
            result.give_all(items, left_for_later(&reason, "sent twice"));
            Then::Done
        }
        Verdict::Unclear(reason) => Then::Unclear(reason),
        Verdict::RetryLater {
            reason,
            credentials,
        } => {
            result.credentials_rejected |= credentials;
            result.give_all(items, Outcome::Retry(reason));
            Then::Done
        }
    }
}
