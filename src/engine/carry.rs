//! Delivering units in order (`in_order`): one unit at a time; once a unit needs a retry,
//! nothing more of its order key is sent, and the other keys go on; and the regulations' deletes
//! (`erase_regulations`), which delivering together (`super::stream`) runs too. Each unit gets
//! one outcome per item.

use super::Engine;
use super::erase::{Erasure, erase_all};
use super::prepare::{Prepared, merge_outcomes, record_slices};
use super::unit::{Unit, Work};
use crate::codes;
use crate::outcome::{Outcome, Status};
use crate::ports::Ports;
use crate::settings::{DestinationId, DestinationSettings};
use crate::transform::Record;
use std::borrow::Borrow;
use std::collections::HashMap;
use tokio::time::Instant;
use tracing::Instrument;

/// In order: the units of one order key (an SQS FIFO `MessageGroupId`; units without one are one
/// group) one at a time, the keys at the same time, so a slow or failing group never holds
/// back another. A unit that ends `retry` blocks the later units of its key: they are not sent
/// and end `retry` too (`Err`, decided as a whole), so the source hands the group back in
/// order (docs/contracts.md §3, FIFO).
pub(super) async fn in_order<P: Ports>(
    engine: &Engine<P>,
    units: &[Unit<'_>],
    deadline: Instant,
) -> Vec<Result<Vec<Outcome>, Outcome>> {
    let mut keys: HashMap<Option<&str>, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let g = *keys.entry(u.order_key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    let runs = groups
        .iter()
        .map(|members| one_group(engine, units, members, deadline));
    let mut carried: Vec<Option<Result<Vec<Outcome>, Outcome>>> =
        units.iter().map(|_| None).collect();
    for (members, outcomes) in groups
        .iter()
        .zip(futures_util::future::join_all(runs).await)
    {
        for (&i, outcome) in members.iter().zip(outcomes) {
            carried[i] = Some(outcome);
        }
    }
    carried
        .into_iter()
        .map(|c| {
            c.unwrap_or_else(|| {
                Err(Outcome::retry(
                    codes::DELIVERY_INCOMPLETE,
                    "delivery reported no outcome for this message",
                ))
            })
        })
        .collect()
}

/// The units `members` of one order key, one at a time; after the first that needs a retry,
/// the rest are not sent.
async fn one_group<P: Ports>(
    engine: &Engine<P>,
    units: &[Unit<'_>],
    members: &[usize],
    deadline: Instant,
) -> Vec<Result<Vec<Outcome>, Outcome>> {
    let mut carried = Vec::with_capacity(members.len());
    let mut blocked = false;
    for u in members.iter().map(|&i| &units[i]) {
        if blocked {
            carried.push(Err(Outcome::retry(
                codes::FIFO_EARLIER_MESSAGE_FAILED,
                "an earlier message of this message group needs a retry; not sent, to keep the \
                 group's order",
            )));
            continue;
        }
        let outcomes = match &u.work {
            Work::Decided(outcome) => {
                blocked = outcome.status() == Status::Retry;
                carried.push(Ok(Vec::new()));
                continue;
            }
            Work::Regulation { .. } => erase_regulations(engine, std::slice::from_ref(u), deadline)
                .await
                .pop()
                .flatten()
                .unwrap_or_default(),
            Work::Events {
                destination,
                settings,
                prepared,
            } => {
                let span = tracing::info_span!("upload", destination = destination.as_str());
                deliver(engine, destination, settings, prepared, deadline)
                    .instrument(span)
                    .await
            }
        };
        blocked = outcomes.iter().any(|o| o.status() == Status::Retry);
        carried.push(Ok(outcomes));
    }
    carried
}

/// Uploads the prepared events of one destination and gives each its outcome.
pub(super) async fn deliver<P: Ports>(
    engine: &Engine<P>,
    destination: &DestinationId,
    settings: &DestinationSettings,
    prepared: &[Prepared<'_>],
    deadline: Instant,
) -> Vec<Outcome> {
    let slices: Vec<&[Record]> = record_slices(prepared).collect();
    let delivered = engine
        .upload(destination, settings, &slices, deadline)
        .await;
    merge_outcomes(prepared, &mut delivered.into_iter())
}

/// Carries out the regulations among `units` together (one delete call series per destination);
/// per unit, its users' outcomes (`None` for units that are not regulations).
pub(super) async fn erase_regulations<'a, P: Ports>(
    engine: &Engine<P>,
    units: &[impl Borrow<Unit<'a>>],
    deadline: Instant,
) -> Vec<Option<Vec<Outcome>>> {
    let mut members = Vec::new();
    let erasures: Vec<Erasure<'_, '_>> = units
        .iter()
        .enumerate()
        .filter_map(|(i, u)| match &u.borrow().work {
            Work::Regulation {
                regulation,
                targets,
            } => {
                members.push(i);
                Some(Erasure {
                    regulation,
                    targets,
                })
            }
            _ => None,
        })
        .collect();
    let mut per_plan: Vec<Option<Vec<Outcome>>> = units.iter().map(|_| None).collect();
    if erasures.is_empty() {
        return per_plan;
    }
    let outcomes = erase_all(engine, &erasures, deadline).await;
    for (i, o) in members.into_iter().zip(outcomes) {
        per_plan[i] = Some(o);
    }
    per_plan
}
