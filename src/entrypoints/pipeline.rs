//! The event pipeline every entry point shares: a body's items are transformed, the records of
//! those that have any are uploaded, and each event gets its outcome back in input order; a
//! group's outcomes are summed up (`Settled`), and its rejected items are what its dead letters
//! carry (`Rejections`). SQS and HTTP differ only in how they group events into uploads and how
//! they answer.

use super::handler::{CleverTapApi, Handler};
use crate::codes;
use crate::credentials::SettingsSource;
use crate::deadletter::DeadLetterSink;
use crate::input::Item;
use crate::outcome::{Outcome, StatusCounts, Summary};
use crate::regulation::Regulation;
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
                    // An item taken unread (`input::split_message_body`) that is not JSON gets
                    // the reason a body that is not JSON gets.
                    Mapped::Rejected(reason) if reason.code == codes::INVALID_JSON => {
                        match crate::input::split_body(item.raw) {
                            Err(body_reason) => Mapped::Rejected(body_reason),
                            Ok(_) => Mapped::Rejected(reason),
                        }
                    }
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

/// What a group of items (a message's events, a regulation's users, or a body decided as a
/// whole) ended in: each item's outcome, and the worst of them with the counts. Dead-lettering
/// may still turn rejected items into retries (`entrypoints::dead_letters`); then
/// [`Settled::refresh`] sums them up again.
#[derive(Debug)]
pub(crate) struct Settled {
    pub outcome: Outcome,
    pub counts: StatusCounts,
    /// One outcome per item: the events or users in order, or the one body decided as a whole.
    pub items: Vec<Outcome>,
    /// The group was decided as a whole, before it could be split: its one item is the body.
    pub whole: bool,
    /// What the items are called in a reason ("events", "users").
    noun: &'static str,
}

impl Settled {
    /// A group decided as a whole, before delivery; a rejection dead-letters the body as it came.
    pub fn decided(outcome: Outcome) -> Settled {
        let mut s = Settled::of(vec![outcome], "events");
        s.whole = true;
        s
    }

    /// A body's events and their outcomes.
    pub fn events(prepared: &[Prepared<'_>], outcomes: &[Outcome]) -> Settled {
        debug_assert_eq!(prepared.len(), outcomes.len(), "one outcome per event");
        Settled::of(outcomes.to_vec(), "events")
    }

    /// A regulation's users and their outcomes.
    pub fn users(outcomes: &[Outcome]) -> Settled {
        Settled::of(outcomes.to_vec(), "users")
    }

    fn of(items: Vec<Outcome>, noun: &'static str) -> Settled {
        let Summary { outcome, counts } = Summary::of(&items, noun);
        Settled {
            outcome,
            counts,
            items,
            whole: false,
            noun,
        }
    }

    /// Sums the items up again, after dead-lettering changed some of them.
    pub fn refresh(&mut self) {
        let Summary { outcome, counts } = Summary::of(&self.items, self.noun);
        self.outcome = outcome;
        self.counts = counts;
    }
}

/// What a group's dead letters are made of: its items as they came. Each letter carries some of
/// the rejected ones (`entrypoints::dead_letters` splits them by SQS's size limit, never
/// mid-item), in a body that can be redriven as it is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rejections<'r, 'a> {
    /// A body's events: a letter holds one event as it came, or several as a JSON array (NDJSON
    /// when one of them is not JSON).
    Events(&'r [Prepared<'a>]),
    /// A regulation's users: a letter holds the regulation with only its users.
    Users(&'r Regulation<'a>),
    /// A body decided as a whole (one item): the letter holds it as it came.
    Whole(&'r str),
}

impl Rejections<'_, '_> {
    /// How many items the group has (one outcome each).
    pub fn len(&self) -> usize {
        match self {
            Rejections::Events(prepared) => prepared.len(),
            Rejections::Users(regulation) => regulation.users.len(),
            Rejections::Whole(_) => 1,
        }
    }

    /// What the items are called in a reason.
    pub fn noun(&self) -> &'static str {
        match self {
            Rejections::Users(_) => "users",
            Rejections::Events(_) | Rejections::Whole(_) => "events",
        }
    }

    /// The text of item `i` as it came.
    pub fn raw(&self, i: usize) -> &str {
        match self {
            Rejections::Events(prepared) => prepared[i].raw,
            Rejections::Users(regulation) => regulation.users[i].raw,
            Rejections::Whole(body) => body,
        }
    }

    /// An upper bound of the size of a body holding several items: this plus, per item, its
    /// length and a separator. For a regulation, a pass over its users: compute it once.
    pub fn overhead(&self) -> usize {
        match self {
            // "[" and "]"
            Rejections::Events(_) => 2,
            Rejections::Users(_) | Rejections::Whole(_) => self.overhead_alone(),
        }
    }

    /// The size of a body holding one item, less that item's length. For a regulation, a pass
    /// over its users: compute it once.
    pub fn overhead_alone(&self) -> usize {
        match self {
            Rejections::Users(regulation) => regulation.with_users(|_| false).len(),
            Rejections::Events(_) | Rejections::Whole(_) => 0,
        }
    }

    /// The body of a letter holding the items `items` (ascending).
    pub fn body(&self, items: &[usize]) -> String {
        match self {
            Rejections::Events(prepared) => {
                dead_letter_body(items.iter().map(|&i| prepared[i].raw))
            }
            Rejections::Users(regulation) => {
                regulation.with_users(|u| items.binary_search(&u).is_ok())
            }
            Rejections::Whole(body) => (*body).to_owned(),
        }
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
