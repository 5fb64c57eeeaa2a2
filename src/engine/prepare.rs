//! A body's items made ready for delivery, the same for every source: each transformed with its
//! destination's settings (`prepare`), the record slices of those that have records
//! (`record_slices`), and each event's outcome once the delivery answered for those
//! (`merge_outcomes`). Pure: no I/O.

use crate::codes;
use crate::input::Item;
use crate::outcome::Outcome;
use crate::settings::DestinationSettings;
use crate::transform::{Mapped, Record, transform_event};

/// One event of a body after the transform: its raw text (for dead-lettering), its messageId,
/// and its records, or why it is filtered or rejected.
#[derive(Debug)]
pub struct Prepared<'a> {
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
