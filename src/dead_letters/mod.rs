//! Dead-lettering rejected items, the one way for SQS and HTTP, events and regulations alike
//! (docs/contracts.md §3). An item is `rejected` only once the letter holding it is written;
//! otherwise it becomes `retry` with `dead_letter_failed`, so the source sends it again. Over
//! HTTP without any dead-letter queue (stated at start-up) a rejected item stays `rejected`: the
//! caller holds the answer.
//!
//! A group's rejected items (a message's or a request's events, a regulation's users, a body
//! decided as a whole) go into as many letters as SQS's size limit needs, never splitting an
//! item; an item too large for any letter alone gets a letter of its own, cut to fit and marked
//! (`DeadLetter::cut`): no retry could ever make it fit, so it is never retried for its size.
//! Every letter of an invocation goes in one send, which packs them into `SendMessageBatch`
//! calls.

pub mod letter;
pub mod rejections;

use crate::aws::sqs_batch::sqs_body;
use crate::codes;
use crate::outcome::{Outcome, Reason};
use crate::ports::DeadLetterSink;
use letter::{DeadLetter, DeadLetterError, MAX_BATCH_BYTES, Origin};

/// The length of `text` once made a body SQS accepts.
fn sent_len(text: &str) -> usize {
    sqs_body(text).text.len()
}
use rejections::Rejections;

/// One group whose rejected items are dead-lettered.
pub(crate) struct Group<'g, 'r, 'a> {
    /// The group's items as they came.
    pub items: Rejections<'r, 'a>,
    /// Copied to its letters' attributes.
    pub origin: Origin<'r>,
    /// One outcome per item; a rejected item whose letter is not written becomes a retry.
    pub outcomes: &'g mut [Outcome],
}

/// What becomes of rejected items when no dead-letter queue is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WithoutQueue {
    /// SQS: they are retried (`dead_letter_failed`), so the source queue's redrive policy keeps
    /// the message: nothing is lost.
    Retry,
    /// HTTP: they stay rejected; the caller has the answer.
    StayRejected,
}

/// One letter to write and the items it carries.
struct Planned {
    letter: DeadLetter,
    items: Vec<usize>,
}

/// Dead-letters the rejected items of every group and turns those whose letter was not written
/// into retries. Nothing is waited for past `deadline` minus `letter::STOP_BEFORE_DEADLINE`.
/// Returns, per group, how many items were dead-lettered.
pub(crate) async fn dead_letter<D: DeadLetterSink>(
    sink: &D,
    groups: &mut [Group<'_, '_, '_>],
    without_queue: WithoutQueue,
    deadline: tokio::time::Instant,
) -> Vec<usize> {
    let mut written = vec![0; groups.len()];
    if without_queue == WithoutQueue::StayRejected && !sink.configured() {
        return written;
    }
    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut holders: Vec<(usize, Vec<usize>)> = Vec::new();
    for (g, group) in groups.iter_mut().enumerate() {
        if group.items.len() != group.outcomes.len() {
            // A defect: the outcomes do not match the items. Never acked unwritten.
            tracing::error!(
                code = codes::DELIVERY_INCOMPLETE,
                items = group.items.len(),
                outcomes = group.outcomes.len(),
                "a group's outcomes do not match its items: its rejected items are retried"
            );
            mark_all_rejected(
                group.outcomes,
                Reason::new(
                    codes::DELIVERY_INCOMPLETE,
                    "the item's outcome could not be matched to it for its dead letter",
                ),
            );
            continue;
        }
        for planned in plan(group) {
            letters.push(planned.letter);
            holders.push((g, planned.items));
        }
    }
    if letters.is_empty() {
        return written;
    }
    let stop = deadline
        .checked_sub(letter::STOP_BEFORE_DEADLINE)
        .unwrap_or(deadline);
    let mut results = sink.send(&letters, stop).await.into_iter();
    for (letter, (g, items)) in letters.iter().zip(holders) {
        let group = &mut groups[g];
        match results.next().unwrap_or(Err(DeadLetterError::Unreported)) {
            Ok(()) => written[g] += items.len(),
            Err(e) => {
                log_failure(group, letter, items.len(), &e);
                for i in items {
                    fail(&mut group.outcomes[i], &e);
                }
            }
        }
    }
    written
}

/// The letters of one group: its rejected items in order, as many per letter as fit under
/// SQS's limit with the attributes. An item too large for any letter gets one of its own, cut.
fn plan(group: &mut Group<'_, '_, '_>) -> Vec<Planned> {
    let items = group.items;
    let budget = MAX_BATCH_BYTES.saturating_sub(DeadLetter::attributes_bound(group.origin));
    // Computed once: for a regulation each is a pass over its users.
    let (overhead, overhead_alone) = (items.overhead(), items.overhead_alone());
    let mut parts: Vec<(Vec<usize>, bool)> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut size = 0;
    for i in 0..group.outcomes.len() {
        if !matches!(group.outcomes[i], Outcome::Rejected(_)) {
            continue;
        }
        let item_len = sent_len(items.raw(i));
        let alone = item_len + overhead_alone;
        if alone > budget {
            tracing::warn!(
                code = "dead_letter_truncated",
                destination = group.origin.destination_id.unwrap_or(""),
                source_message_id = group.origin.source_message_id.unwrap_or(""),
                item = i,
                bytes = alone,
                "a rejected item is too large for any dead letter: its letter holds its start, marked truncated"
            );
            if !current.is_empty() {
                parts.push((std::mem::take(&mut current), false));
            }
            parts.push((vec![i], true));
            continue;
        }
        let cost = item_len + 1;
        if !current.is_empty() && size + cost > budget {
            parts.push((std::mem::take(&mut current), false));
        }
        if current.is_empty() {
            size = overhead;
        }
        current.push(i);
        size += cost;
    }
    if !current.is_empty() {
        parts.push((current, false));
    }
    let several = parts.len() > 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(n, (part, cut))| {
            let first = part
                .iter()
                .find_map(|&i| group.outcomes[i].reason())
                .cloned()
                .unwrap_or_else(|| Reason::new(codes::DELIVERY_INCOMPLETE, "no reason recorded"));
            let reason = Reason::first_of(first, part.len(), items.noun());
            let letter = if cut {
                DeadLetter::cut(items.body(&part), budget, &reason, group.origin)
            } else {
                DeadLetter::new(items.body(&part), &reason, group.origin)
            };
            Planned {
                letter: if several { letter.part(n + 1) } else { letter },
                items: part,
            }
        })
        .collect()
}

/// A rejected item whose letter was not written: a retry, saying why and what it was rejected
/// for.
fn fail(outcome: &mut Outcome, e: &DeadLetterError) {
    if let Outcome::Rejected(reason) = outcome {
        *outcome = Outcome::retry(
            codes::DEAD_LETTER_FAILED,
            format!(
                "rejected ({}) but its dead letter was not written ({}): {e}",
                reason.code,
                e.code()
            ),
        );
    }
}

fn mark_all_rejected(outcomes: &mut [Outcome], reason: Reason) {
    for o in outcomes.iter_mut() {
        if matches!(o, Outcome::Rejected(_)) {
            *o = Outcome::Retry(reason.clone());
        }
    }
}

fn log_failure(group: &Group<'_, '_, '_>, letter: &DeadLetter, items: usize, e: &DeadLetterError) {
    let destination = group.origin.destination_id.unwrap_or("");
    let source = group.origin.source_message_id.unwrap_or("");
    if matches!(e, DeadLetterError::NotConfigured) {
        tracing::warn!(
            code = e.code(),
            destination,
            source_message_id = source,
            items,
            "no dead-letter queue: the rejected items are retried (dead_letter_failed)"
        );
    } else {
        tracing::error!(
            code = e.code(),
            destination,
            source_message_id = source,
            rejection_code = %letter.rejection_code,
            bytes = letter.size(),
            items,
            error = %e,
            "dead letter not written: its items are retried (dead_letter_failed)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fakes::FakeDeadLetters;
    use crate::engine::prepare::Prepared;
    use crate::outcome::Status;
    use crate::regulation::Regulation;

    fn events(raws: &[&'static str]) -> Vec<Prepared<'static>> {
        raws.iter()
            .map(|raw| Prepared {
                raw,
                message_id: None,
                records: crate::transform::Mapped::Records(Vec::new()),
            })
            .collect()
    }

    fn far() -> tokio::time::Instant {
        tokio::time::Instant::now() + std::time::Duration::from_secs(60)
    }

    fn origin() -> Origin<'static> {
        Origin {
            destination_id: Some("dest-a"),
            source_message_id: Some("m-1"),
            message_group_id: None,
        }
    }

    fn rejected(n: usize) -> Vec<Outcome> {
        (0..n)
            .map(|i| Outcome::rejected("unsupported_type", format!("event {i}")))
            .collect()
    }

    fn padded(id: usize, size: usize) -> &'static str {
        Box::leak(
            format!(
                r#"{{"type":"purchase","messageId":"g-{id}","pad":"{}"}}"#,
                "x".repeat(size)
            )
            .into_boxed_str(),
        )
    }

    #[tokio::test]
    async fn rejected_events_over_the_sqs_limit_go_in_several_letters_never_mid_event() {
        let raws: Vec<&'static str> = (0..5).map(|i| padded(i, 100 * 1024)).collect();
        let prepared = events(&raws);
        let mut outcomes = rejected(5);
        outcomes[2] = Outcome::Delivered;
        let sink = FakeDeadLetters::default();
        let written = dead_letter(
            &sink,
            &mut [Group {
                items: Rejections::Events(&prepared),
                origin: origin(),
                outcomes: &mut outcomes,
            }],
            WithoutQueue::Retry,
            far(),
        )
        .await;
        assert_eq!(written, [4]);
        let letters = sink.sent();
        assert_eq!(letters.len(), 2, "two events per letter");
        let mut carried = Vec::new();
        for (n, l) in letters.iter().enumerate() {
            assert!(l.size() <= MAX_BATCH_BYTES, "{}", l.size());
            assert_eq!(l.part, Some(n + 1));
            assert!(
                l.rejection_message
                    .starts_with("2 events rejected; the first: event")
            );
            let body: Vec<serde_json::Value> = serde_json::from_str(&l.body).unwrap();
            carried.extend(
                body.iter()
                    .map(|e| e["messageId"].as_str().unwrap().to_owned()),
            );
        }
        assert_eq!(carried, ["g-0", "g-1", "g-3", "g-4"]);
        assert_eq!(outcomes[2], Outcome::Delivered);
        assert!(outcomes.iter().all(|o| o.status() != Status::Retry));
    }

    #[tokio::test]
    async fn a_group_that_fits_one_letter_gets_one_letter_without_a_part() {
        let prepared = events(&[r#"{"a":1}"#, r#"{"b":2}"#]);
        let mut outcomes = rejected(2);
        let sink = FakeDeadLetters::default();
        dead_letter(
            &sink,
            &mut [Group {
                items: Rejections::Events(&prepared),
                origin: origin(),
                outcomes: &mut outcomes,
            }],
            WithoutQueue::Retry,
            far(),
        )
        .await;
        let letters = sink.sent();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].body, r#"[{"a":1},{"b":2}]"#);
        assert_eq!(letters[0].part, None);
    }

    #[tokio::test]
    async fn an_event_too_large_for_any_letter_gets_its_start_in_a_marked_letter_and_stays_rejected()
     {
        use sha2::{Digest, Sha256};
        let raws = [padded(0, 300 * 1024), padded(1, 10)];
        let prepared = events(&raws);
        let mut outcomes = rejected(2);
        let sink = FakeDeadLetters::default();
        let written = dead_letter(
            &sink,
            &mut [Group {
                items: Rejections::Events(&prepared),
                origin: origin(),
                outcomes: &mut outcomes,
            }],
            WithoutQueue::Retry,
            far(),
        )
        .await;
        assert_eq!(written, [2]);
        assert!(outcomes.iter().all(|o| o.status() == Status::Rejected));
        let letters = sink.sent();
        assert_eq!(letters.len(), 2);
        let cut = &letters[0];
        assert!(cut.size() <= MAX_BATCH_BYTES, "{}", cut.size());
        assert!(raws[0].starts_with(&cut.body));
        assert!(cut.body.len() > 250 * 1024, "{}", cut.body.len());
        let attributes: std::collections::HashMap<_, _> = cut.attributes().collect();
        assert_eq!(attributes["truncated"], "true");
        assert_eq!(attributes["originalSize"], raws[0].len().to_string());
        let sha: String = Sha256::digest(raws[0].as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(attributes["sha256"], sha);
        assert_eq!(letters[1].body, raws[1]);
        assert_eq!(letters[1].truncated, None);
        assert_eq!(
            (cut.part, letters[1].part),
            (Some(1), Some(2)),
            "distinct FIFO ids"
        );
    }

    #[tokio::test]
    async fn a_body_sqs_refuses_is_re_escaped_when_json_and_replaced_and_marked_otherwise() {
        let prepared = events(&["{\"a\":\"\u{FFFF}\"}", "garbage\u{1}line"]);
        for (i, expected, changed) in [
            (0, r#"{"a":"\uFFFF"}"#, false),
            (1, "garbage\u{FFFD}line", true),
        ] {
            let mut outcomes = rejected(2);
            outcomes[1 - i] = Outcome::Delivered;
            let sink = FakeDeadLetters::default();
            dead_letter(
                &sink,
                &mut [Group {
                    items: Rejections::Events(&prepared),
                    origin: origin(),
                    outcomes: &mut outcomes,
                }],
                WithoutQueue::Retry,
                far(),
            )
            .await;
            let l = &sink.sent()[0];
            assert_eq!(l.body, expected);
            assert_eq!(l.body_changed, changed);
            assert_eq!(
                l.attributes()
                    .any(|(n, v)| n == "bodyChanged" && v == "true"),
                changed
            );
        }
    }

    #[tokio::test]
    async fn only_the_items_of_a_refused_letter_become_dead_letter_failed() {
        let a = events(&[r#"{"a":1}"#]);
        let b = events(&[r#"{"b":1}"#, r#"{"b":2}"#]);
        let (mut oa, mut ob) = (rejected(1), rejected(2));
        let sink = FakeDeadLetters::refusing(|l| l.source_message_id.as_deref() == Some("m-b"));
        let written = dead_letter(
            &sink,
            &mut [
                Group {
                    items: Rejections::Events(&a),
                    origin: origin(),
                    outcomes: &mut oa,
                },
                Group {
                    items: Rejections::Events(&b),
                    origin: Origin {
                        source_message_id: Some("m-b"),
                        ..origin()
                    },
                    outcomes: &mut ob,
                },
            ],
            WithoutQueue::Retry,
            far(),
        )
        .await;
        assert_eq!(written, [1, 0]);
        assert_eq!(oa[0].status(), Status::Rejected);
        for o in &ob {
            assert_eq!(o.reason().unwrap().code, "dead_letter_failed");
            assert!(o.reason().unwrap().message.contains("dead_letter_refused"));
        }
    }

    #[tokio::test]
    async fn without_a_queue_sqs_items_are_retried_and_http_items_stay_rejected() {
        let prepared = events(&[r#"{"a":1}"#]);
        let none: Option<FakeDeadLetters> = None;
        let mut outcomes = rejected(1);
        async fn run(
            sink: &Option<FakeDeadLetters>,
            prepared: &[Prepared<'_>],
            outcomes: &mut [Outcome],
            without: WithoutQueue,
        ) -> usize {
            let group = Group {
                items: Rejections::Events(prepared),
                origin: origin(),
                outcomes,
            };
            dead_letter(sink, &mut [group], without, far()).await[0]
        }
        let written = run(&none, &prepared, &mut outcomes, WithoutQueue::StayRejected).await;
        assert_eq!((written, outcomes[0].status()), (0, Status::Rejected));
        let written = run(&none, &prepared, &mut outcomes, WithoutQueue::Retry).await;
        assert_eq!(written, 0);
        let reason = outcomes[0].reason().unwrap();
        assert_eq!(reason.code, "dead_letter_failed");
        assert!(
            reason.message.contains("DEAD_LETTER_QUEUE_URL"),
            "{reason:?}"
        );
    }

    #[tokio::test]
    async fn a_regulation_split_keeps_its_members_in_every_letter() {
        let users: Vec<String> = (0..4)
            .map(|i| format!(r#"{{"name":"{i}{}"}}"#, "y".repeat(100 * 1024)))
            .collect();
        let text = format!(
            r#"{{"regulationType":"suppress_with_delete","destinationIds":["dest-a"],"users":[{}]}}"#,
            users.join(",")
        );
        let regulation = Regulation::parse(&text).unwrap();
        let mut outcomes: Vec<Outcome> = regulation
            .users
            .iter()
            .map(|u| Outcome::Rejected(u.user_id.clone().unwrap_err()))
            .collect();
        let sink = FakeDeadLetters::default();
        let written = dead_letter(
            &sink,
            &mut [Group {
                items: Rejections::Users(&regulation),
                origin: origin(),
                outcomes: &mut outcomes,
            }],
            WithoutQueue::Retry,
            far(),
        )
        .await;
        assert_eq!(written, [4]);
        let letters = sink.sent();
        assert_eq!(letters.len(), 2);
        let mut names = Vec::new();
        for l in &letters {
            assert!(l.size() <= MAX_BATCH_BYTES);
            assert!(l.rejection_message.starts_with("2 users rejected"));
            let r = Regulation::parse(&l.body).unwrap();
            assert_eq!(r.destination_ids.len(), 1);
            names.extend(r.users.iter().map(|u| u.raw[9..10].to_owned()));
        }
        assert_eq!(names, ["0", "1", "2", "3"]);
    }

    #[tokio::test]
    async fn the_rejection_message_is_the_reason_as_given() {
        // CleverTap's own text is whatever clevertap::retry put in the reason: a letter adds
        // nothing of its own.
        let prepared = events(&[r#"{"a":1}"#]);
        let mut outcomes = vec![Outcome::rejected(
            "clevertap_record_rejected",
            "CleverTap rejected the record (code 509)",
        )];
        let sink = FakeDeadLetters::default();
        dead_letter(
            &sink,
            &mut [Group {
                items: Rejections::Events(&prepared),
                origin: origin(),
                outcomes: &mut outcomes,
            }],
            WithoutQueue::Retry,
            far(),
        )
        .await;
        let l = &sink.sent()[0];
        assert_eq!(l.rejection_code, "clevertap_record_rejected");
        assert_eq!(
            l.rejection_message,
            "CleverTap rejected the record (code 509)"
        );
    }
}
