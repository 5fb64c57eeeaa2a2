//! The event pipeline every entry point shares: a body's items are transformed, the records of
//! those that have any are uploaded, and each event gets its outcome back in input order;
//! rejected events are gathered into a dead letter's body. SQS and HTTP differ only in how they
//! group events into uploads and how they answer.

use super::handler::{CleverTapApi, Handler};
use crate::codes;
use crate::credentials::SettingsSource;
use crate::deadletter::DeadLetterSink;
use crate::input::Item;
use crate::outcome::{Outcome, Reason, StatusCounts, Summary};
use crate::settings::{DestinationId, DestinationSettings};
use crate::transform::{Mapped, Record, transform_event};
use tokio::time::Instant;

/// One event of a body after the transform: its raw text (for dead-lettering), its messageId,
/// and its records, or why it is filtered or rejected.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub raw: &'a str,
    pub message_id: Option<Box<str>>,
    pub records: Mapped<Vec<Record>>,
}

/// Transforms the items of a body with the destination's settings (mapping options, consent
/// and event filters); items that could not be read are rejected as they are.
pub(crate) fn prepare<'a>(
    items: Vec<Item<'a>>,
    settings: &DestinationSettings,
) -> Vec<Prepared<'a>> {
    items
        .into_iter()
        .map(|item| match item.error {
            Some(reason) => Prepared {
                raw: item.raw,
                message_id: None,
                records: Mapped::Rejected(reason),
            },
            None => {
                let t = transform_event(item.raw, settings);
                let records = match t.result {
                    Mapped::Rejected(reason) => {
                        Mapped::Rejected(crate::regulation::explain_rejection(item.raw, reason))
                    }
                    other => other,
                };
                Prepared {
                    raw: item.raw,
                    message_id: t.message_id,
                    records,
                }
            }
        })
        .collect()
}

/// The record slices of the prepared events that have records, in order.
pub(crate) fn record_slices<'p>(
    prepared: &'p [Prepared<'_>],
) -> impl Iterator<Item = &'p [Record]> {
    prepared.iter().filter_map(|p| match &p.records {
        Mapped::Records(records) if !records.is_empty() => Some(records.as_slice()),
        _ => None,
    })
}

/// The outcome of each prepared event, given the delivery outcomes of those that had records
/// (in order). Events without records are delivered: there is nothing to send.
pub(crate) fn merge_outcomes(
    prepared: &[Prepared<'_>],
    delivered: &mut impl Iterator<Item = Outcome>,
) -> Vec<Outcome> {
    prepared
        .iter()
        .map(|p| match &p.records {
            Mapped::Rejected(reason) => Outcome::Rejected(reason.clone()),
            Mapped::Filtered(reason) => Outcome::Filtered(reason.clone()),
            Mapped::Records(records) if records.is_empty() => Outcome::Delivered,
            Mapped::Records(_) => delivered.next().unwrap_or_else(|| {
                Outcome::retry(
                    codes::DELIVERY_INCOMPLETE,
                    "delivery reported no outcome for this event",
                )
            }),
        })
        .collect()
}

/// Uploads the prepared events of one destination and gives each its outcome.
pub(crate) async fn deliver<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    destination: &DestinationId,
    settings: &DestinationSettings,
    prepared: &[Prepared<'_>],
    deadline: Instant,
) -> Vec<Outcome> {
    let slices: Vec<&[Record]> = record_slices(prepared).collect();
    let delivered = handler
        .upload(destination, settings, &slices, deadline)
        .await;
    merge_outcomes(prepared, &mut delivered.into_iter())
}

/// What a group of items (a message's events, a regulation's users) ended in: the worst of
/// their outcomes and, when rejected, the body of its dead letter (the rejected items only).
#[derive(Debug)]
pub(crate) struct Settled {
    pub outcome: Outcome,
    pub counts: StatusCounts,
    pub dead_letter_body: Option<String>,
}

impl Settled {
    /// A group decided as a whole, before delivery; a rejection dead-letters the body as it came.
    pub fn decided(outcome: Outcome) -> Settled {
        let Summary { outcome, counts } = Summary::single(outcome);
        Settled {
            outcome,
            counts,
            dead_letter_body: None,
        }
    }

    /// A body's events and their outcomes.
    pub fn events(prepared: &[Prepared<'_>], outcomes: &[Outcome]) -> Settled {
        let Summary { outcome, counts } = Summary::of(outcomes, "events");
        let dead_letter_body = match outcome {
            Outcome::Rejected(_) => Rejections::of_events(prepared, outcomes).map(|r| r.body),
            _ => None,
        };
        Settled {
            outcome,
            counts,
            dead_letter_body,
        }
    }
}

/// The rejected items of a group, ready for a dead letter.
#[derive(Debug)]
pub(crate) struct Rejections {
    /// The rejected items only, redrivable as they are.
    pub body: String,
    /// The first rejection's reason; for several, it says how many.
    pub reason: Reason,
    pub count: usize,
}

impl Rejections {
    /// The rejected events among `prepared`, if any.
    pub fn of_events(prepared: &[Prepared<'_>], outcomes: &[Outcome]) -> Option<Rejections> {
        let rejected: Vec<(&Prepared<'_>, &Reason)> = prepared
            .iter()
            .zip(outcomes)
            .filter_map(|(p, o)| match o {
                Outcome::Rejected(reason) => Some((p, reason)),
                _ => None,
            })
            .collect();
        let (_, first) = rejected.first()?;
        Some(Rejections {
            reason: Reason::first_of((*first).clone(), rejected.len(), "events"),
            count: rejected.len(),
            body: dead_letter_body(rejected.iter().map(|(p, _)| p.raw)),
        })
    }
}

/// The dead-letter body for rejected events: one event as it came, a JSON array of several, or
/// NDJSON when some of them are not JSON at all (so each still arrives as it came).
pub(crate) fn dead_letter_body<'a>(raws: impl IntoIterator<Item = &'a str>) -> String {
    let raws: Vec<&str> = raws.into_iter().collect();
    match raws.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        many => {
            let all_json = many
                .iter()
                .all(|r| serde_json::from_str::<&serde_json::value::RawValue>(r).is_ok());
            if all_json {
                let mut body =
                    String::with_capacity(many.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
                body.push('[');
                for (i, raw) in many.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(raw.trim());
                }
                body.push(']');
                body
            } else {
                many.join("\n")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rejected_event_is_dead_lettered_as_it_came() {
        assert_eq!(dead_letter_body([r#"{"a":1}"#]), r#"{"a":1}"#);
        assert_eq!(dead_letter_body(["not json"]), "not json");
    }

    #[test]
    fn several_rejected_events_become_a_json_array() {
        assert_eq!(
            dead_letter_body([r#"{"a":1}"#, r#" {"b":2}"#]),
            r#"[{"a":1},{"b":2}]"#
        );
    }

    #[test]
    fn several_rejected_lines_with_one_not_json_stay_ndjson() {
        assert_eq!(
            dead_letter_body([r#"{"a":1}"#, "{oops"]),
            "{\"a\":1}\n{oops"
        );
    }
}
