//! Visibility backoff per message (docs/contracts.md §3): before the batch is answered, each
//! message reported for a retry is told when to come back, from its outcome's code and its
//! receive count (`crate::visibility::Schedule`), instead of after the queue's fixed
//! visibility timeout. FIFO: a message listed behind its group's first failed message (blocked,
//! or delivered and listed to keep the order) comes back no later than that one. A message whose
//! change fails keeps the queue's own timeout: nothing is lost, a receive is spent sooner.
//! A FIFO regulation that deleted users in this receive and comes back whole for the rest
//! (`resume`) takes the short fixed timeout, whatever its code: it is making progress, and an
//! outage's wait (20-80 min) would hold its group for nothing. The decision is pure
//! (`decide`); `extend` applies it through the engine's visibility port, within the
//! invocation's deadline.

use super::decode::Message;
use crate::engine::{Engine, Settled};
use crate::outcome::Outcome;
use crate::ports::{AnyVisibility, Ports};
use crate::visibility::{Kind, Schedule, VisibilityChange, VisibilityError, kind_of};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::time::Instant;

/// Time kept free before the invocation deadline for the answer itself.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// One message's new visibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decision<'m> {
    /// The message's position in the batch.
    pub index: usize,
    pub queue_url: &'m str,
    pub kind: Kind,
    pub change: VisibilityChange,
}

/// The visibility of every message reported for a retry (`failed` and its outcome a retry)
/// that has a receipt; `progressed`: its FIFO regulation deleted users in this receive (the
/// short fixed timeout); `pick(low, high)` draws the timeout.
pub(super) fn decide<'m>(
    schedule: &Schedule,
    messages: &'m [Message],
    settled: &[Settled],
    failed: &[bool],
    progressed: &[bool],
    mut pick: impl FnMut(u64, u64) -> u64,
) -> Vec<Decision<'m>> {
    let mut decisions = Vec::new();
    // FIFO: the timeout of each group's first retried message; the later messages of its group
    // come back with it, never after it.
    let mut first_of_group: HashMap<Option<&str>, (Kind, u32)> = HashMap::new();
    for (index, ((message, s), &failed)) in messages.iter().zip(settled).zip(failed).enumerate() {
        let (true, Some(receipt)) = (failed, &message.receipt) else {
            continue;
        };
        let group = message.group_id.as_deref();
        let own = match &s.outcome {
            Outcome::Retry(reason) => {
                let kind = if message.fifo && progressed.get(index).copied().unwrap_or(false) {
                    Kind::Fixed
                } else {
                    kind_of(&reason.code)
                };
                let (low, high) = schedule.range(kind, message.receive_count);
                let seconds = pick(low, high).clamp(low, high);
                Some((kind, u32::try_from(seconds).unwrap_or(u32::MAX)))
            }
            _ => None,
        };
        let (kind, timeout_seconds) = match (message.fifo, first_of_group.get(&group), own) {
            (true, Some(&(kind, first)), Some((_, own))) => (kind, own.min(first)),
            (true, Some(&first), None) => first,
            (_, _, Some(own)) => {
                if message.fifo {
                    first_of_group.insert(group, own);
                }
                own
            }
            // Listed without a retry of its own and behind no retried message: the queue's own
            // timeout.
            (_, None, None) | (false, Some(_), None) => continue,
        };
        decisions.push(Decision {
            index,
            queue_url: &receipt.queue_url,
            kind,
            change: VisibilityChange {
                receipt_handle: receipt.handle.clone(),
                timeout_seconds,
            },
        });
    }
    decisions
}

/// Tells SQS when each retried message comes back, before the batch is answered; bounded by
/// the invocation deadline. Failures are logged and counted; the answer does not change.
pub(super) async fn extend<P: Ports>(
    handler: &Engine<P>,
    messages: &[Message],
    settled: &[Settled],
    failed: &[bool],
    progressed: &[bool],
    deadline: Instant,
) {
    let Some(port) = handler.visibility.as_deref() else {
        return;
    };
    let schedule = Schedule::from_config(&handler.config);
    let decisions = decide(
        &schedule,
        messages,
        settled,
        failed,
        progressed,
        |low, high| rand::random_range(low..=high),
    );
    if decisions.is_empty() {
        return;
    }
    let results = apply(port, &decisions, deadline).await;
    let mut extended = 0usize;
    for (decision, result) in decisions.iter().zip(results) {
        let Some(message) = messages.get(decision.index) else {
            continue;
        };
        let _span = message.span().entered();
        match result {
            Ok(()) => {
                extended += 1;
                handler.count(message.metric_label(), |c| c.visibility_extended += 1);
                tracing::debug!(
                    message_id = message.id.as_deref().unwrap_or(""),
                    receive_count = message.receive_count,
                    schedule = ?decision.kind,
                    visibility_seconds = decision.change.timeout_seconds,
                    "message visibility extended"
                );
            }
            Err(e) => {
                handler.count(message.metric_label(), |c| c.visibility_failed += 1);
                tracing::warn!(
                    message_id = message.id.as_deref().unwrap_or(""),
                    code = e.code(),
                    error = %e,
                    "visibility not changed: the message comes back after the queue's visibility timeout"
                );
            }
        }
    }
    if extended > 0 {
        tracing::info!(
            messages = extended,
            "retried messages come back later (visibility backoff)"
        );
    }
}

/// Sends the changes, one series per queue, all at once; one result per decision, in order.
async fn apply(
    port: &dyn AnyVisibility,
    decisions: &[Decision<'_>],
    deadline: Instant,
) -> Vec<Result<(), VisibilityError>> {
    let mut by_queue: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (n, d) in decisions.iter().enumerate() {
        by_queue.entry(d.queue_url).or_default().push(n);
    }
    let queues: Vec<(&str, Vec<usize>, Vec<VisibilityChange>)> = by_queue
        .into_iter()
        .map(|(url, members)| {
            let changes = members
                .iter()
                .filter_map(|&n| decisions.get(n).map(|d| d.change.clone()))
                .collect();
            (url, members, changes)
        })
        .collect();
    let mut results: Vec<Result<(), VisibilityError>> = decisions
        .iter()
        .map(|_| Err(VisibilityError::OutOfTime))
        .collect();
    let until = deadline
        .checked_sub(DEADLINE_MARGIN)
        .unwrap_or_else(Instant::now);
    if Instant::now() >= until {
        return results;
    }
    let calls = futures_util::future::join_all(
        queues
            .iter()
            .map(|(url, _, changes)| port.change(url, changes)),
    );
    let Ok(answers) = tokio::time::timeout_at(until, calls).await else {
        return results;
    };
    for ((_, members, _), answer) in queues.iter().zip(answers) {
        for (&n, result) in members.iter().zip(answer) {
            if let Some(slot) = results.get_mut(n) {
                *slot = result;
            }
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;
    use crate::engine::fakes::{self, FakeCleverTap, FakeVisibility};
    use crate::lambda_events::{QUEUE_ARN, sqs_message, sqs_record};
    use serde_json::{Value, json};

    const TRACK: &str = r#"{"type":"track","event":"Viewed","userId":"u-1"}"#;

    fn received(mut record: Value, count: u32) -> Value {
        record["attributes"]["ApproximateReceiveCount"] = json!(count.to_string());
        record
    }

    /// The timeout a change gave the message of receipt `handle`.
    fn timeout_of(changes: &[(String, VisibilityChange)], handle: &str) -> u32 {
        changes
            .iter()
            .find(|(_, c)| c.receipt_handle == handle)
            .map(|(_, c)| c.timeout_seconds)
            .unwrap_or_else(|| panic!("no change for {handle}: {changes:?}"))
    }

    /// A handler whose uploads to ACC-B fail with 503s, with a recording visibility port.
    fn handler(visibility: &FakeVisibility) -> fakes::FakeHandler {
        let mut h = fakes::handler().with_visibility(visibility.clone());
        h.clevertap = FakeCleverTap::answering(|account, _| {
            if account == "ACC-B" {
                Outcome::retry(codes::CLEVERTAP_UNAVAILABLE, "HTTP 503")
            } else {
                Outcome::Delivered
            }
        });
        h
    }

    #[tokio::test]
    async fn each_retried_message_gets_the_timeout_of_its_code_and_receive_count() {
        let visibility = FakeVisibility::default();
        let h = handler(&visibility);
        let failures = fakes::run_sqs(
            &h,
            vec![
                sqs_message("m-ok", TRACK, "dest-a"),
                received(sqs_message("m-down-1", TRACK, "dest-b"), 1),
                received(sqs_message("m-down-3", TRACK, "dest-b"), 3),
                received(sqs_message("m-down-9", TRACK, "dest-b"), 9),
                received(sqs_record(QUEUE_ARN, "m-nowhere", TRACK, None), 4),
                sqs_message("m-bad", "not json", "dest-a"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(failures, ["m-down-1", "m-down-3", "m-down-9", "m-nowhere"]);
        let changes = visibility.changes();
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/events";
        assert!(changes.iter().all(|(queue, _)| queue == url), "{changes:?}");
        let timeout = |handle: &str| timeout_of(&changes, handle);
        // Defaults: base 1200 s, cap 4800 s, drawn from the step's upper quarter.
        assert!((900..=1200).contains(&timeout("rh-m-down-1")));
        assert!((3600..=4800).contains(&timeout("rh-m-down-3")));
        assert!((3600..=4800).contains(&timeout("rh-m-down-9")));
        // A configuration error: the short fixed timeout, whatever the receive count.
        assert_eq!(timeout("rh-m-nowhere"), 60);
        // Delivered and dead-lettered messages are left alone.
        assert_eq!(changes.len(), 4);
        let metrics = h.take_metrics();
        assert_eq!(metrics.per_destination["dest-b"].visibility_extended, 3);
        assert_eq!(metrics.per_destination["-"].visibility_extended, 1);
        assert_eq!(metrics.totals().visibility_failed, 0);
    }

    #[tokio::test]
    async fn a_failed_visibility_change_leaves_the_message_to_the_queues_own_timeout() {
        let visibility = FakeVisibility::broken();
        let h = handler(&visibility);
        let failures = fakes::run_sqs(
            &h,
            vec![
                sqs_message("m-ok", TRACK, "dest-a"),
                sqs_message("m-down", TRACK, "dest-b"),
            ],
        )
        .await
        .unwrap();
        // Still reported for a retry, so SQS keeps it and brings it back after the queue's
        // visibility timeout: nothing is lost.
        assert_eq!(failures, ["m-down"]);
        assert_eq!(visibility.attempts(), 1);
        assert!(visibility.changes().is_empty());
        let metrics = h.take_metrics();
        assert_eq!(metrics.per_destination["dest-b"].visibility_failed, 1);
        assert_eq!(metrics.per_destination["dest-b"].visibility_extended, 0);
        assert_eq!(metrics.per_destination["dest-b"].retried, 1);
    }

    #[tokio::test]
    async fn with_no_time_left_nothing_is_changed_and_the_answer_stands() {
        let visibility = FakeVisibility::default();
        let h = handler(&visibility);
        let batch = crate::lambda_events::sqs_batch(vec![sqs_message("m-down", TRACK, "dest-b")]);
        let answer = h
            .handle(
                fakes::payload(&batch),
                Instant::now() + Duration::from_millis(100),
            )
            .await
            .answer
            .unwrap();
        assert_eq!(answer["batchItemFailures"][0]["itemIdentifier"], "m-down");
        assert_eq!(visibility.attempts(), 0);
        assert_eq!(h.take_metrics().totals().visibility_failed, 1);
    }

    #[tokio::test]
    async fn a_message_never_sent_because_the_deadline_came_comes_back_soon() {
        let visibility = FakeVisibility::default();
        let mut h = fakes::handler().with_visibility(visibility.clone());
        // What delivery answers for records whose turn came after its hard stop
        // (tests/it/delivery.rs, a_deadline_already_inside_the_margin_sends_nothing).
        h.clevertap = FakeCleverTap::answering(|account, _| {
            if account == "ACC-B" {
                Outcome::retry(codes::RETRY_BUDGET_EXHAUSTED, "no time was left")
            } else {
                Outcome::Delivered
            }
        });
        let failures = fakes::run_sqs(
            &h,
            vec![
                sqs_message("m-ok", TRACK, "dest-a"),
                sqs_message("m-first", TRACK, "dest-b"),
                received(sqs_message("m-ninth", TRACK, "dest-b"), 9),
            ],
        )
        .await
        .unwrap();
        assert_eq!(failures, ["m-first", "m-ninth"]);
        let changes = visibility.changes();
        // The short fixed timeout, not the outage backoff (15-80 min), whatever the receive
        // count: the records were never tried, nothing says CleverTap is down.
        assert_eq!(timeout_of(&changes, "rh-m-first"), 60, "{changes:?}");
        assert_eq!(timeout_of(&changes, "rh-m-ninth"), 60, "{changes:?}");
    }

    #[test]
    fn messages_without_a_receipt_are_skipped_and_the_draw_stays_in_its_range() {
        let mut no_handle = sqs_message("m-2", TRACK, "dest-b");
        no_handle["receiptHandle"] = json!(null);
        let texts: Vec<String> = [sqs_message("m-1", TRACK, "dest-b"), no_handle]
            .iter()
            .map(|r| r.to_string())
            .collect();
        let records = texts
            .iter()
            .map(|t| super::super::SqsRecord::from_text(t).unwrap())
            .collect();
        let messages = super::super::decode_batch(records, None);
        let retry = || Settled::decided(Outcome::retry(codes::CLEVERTAP_TIMEOUT, "x"));
        let settled = vec![retry(), retry()];
        let schedule = Schedule {
            base: 10,
            cap: 40,
            fixed: 5,
        };
        let decisions = decide(
            &schedule,
            &messages,
            &settled,
            &[true, true],
            &[],
            |_, _| 1000,
        );
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].index, 0);
        assert_eq!(decisions[0].kind, Kind::Backoff);
        assert_eq!(
            decisions[0].change.timeout_seconds, 10,
            "clamped to the step"
        );
        let none = decide(
            &schedule,
            &messages,
            &settled,
            &[false, false],
            &[],
            |l, _| l,
        );
        assert!(none.is_empty(), "not reported: not changed");
    }

    #[tokio::test]
    async fn a_fifo_groups_later_messages_come_back_no_later_than_its_first_failure() {
        use crate::lambda_events::{FIFO_ARN, sqs_record_in_group};
        let visibility = FakeVisibility::default();
        let h = handler(&visibility);
        // g-1: a configuration error (no secret for dest-x) blocks a delivered and a pending
        // message behind it; g-2: an outage, whose blocked message gets no longer than it.
        let failures = fakes::run_sqs(
            &h,
            vec![
                sqs_record_in_group(FIFO_ARN, "m-1", TRACK, Some("dest-x"), Some("g-1")),
                sqs_record_in_group(FIFO_ARN, "m-2", TRACK, Some("dest-a"), Some("g-1")),
                sqs_record_in_group(FIFO_ARN, "m-3", TRACK, Some("dest-b"), Some("g-2")),
                received(
                    sqs_record_in_group(FIFO_ARN, "m-4", TRACK, Some("dest-a"), Some("g-2")),
                    9,
                ),
            ],
        )
        .await
        .unwrap();
        assert_eq!(failures, ["m-1", "m-2", "m-3", "m-4"]);
        let changes = visibility.changes();
        let timeout = |handle: &str| timeout_of(&changes, handle);
        assert_eq!(
            timeout("rh-m-1"),
            60,
            "a configuration error: the short fixed timeout"
        );
        assert_eq!(
            timeout("rh-m-2"),
            60,
            "behind it, not after the queue's own timeout"
        );
        assert!((900..=1200).contains(&timeout("rh-m-3")));
        assert!(timeout("rh-m-4") <= timeout("rh-m-3"), "{changes:?}");
    }
}
