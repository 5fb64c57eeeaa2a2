//! Delivering units together (a standard queue's batch, a webhook request) while they are still
//! being made, so that the CPU of the transform and the wait for CleverTap overlap: units are
//! pulled one at a time from their source's iterator (making one runs the transform), and as
//! soon as a destination's pending units fill one upload request (the delivery's own limit,
//! `Call::Upload`), they are moved into an upload that starts at once, while the next units are
//! still being made. Between units the uploads in flight are polled and the runtime gets a turn
//! (`give_way`), so that requests leave and answers are read meanwhile on a current-thread
//! runtime. At the end each destination's rest is uploaded and the regulations are erased
//! beside it; the units come back in their original order with one outcome per item.

use super::Engine;
use super::carry::erase_regulations;
use super::prepare::{merge_outcomes, record_slices};
use super::unit::{Unit, Work};
use crate::clevertap::request::Call;
use crate::outcome::Outcome;
use crate::ports::Ports;
use crate::settings::{DestinationId, DestinationSettings};
use crate::transform::Record;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::borrow::Borrow;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use tokio::time::Instant;
use tracing::Instrument;

/// While uploads are in flight, they are polled (and the runtime gets a turn) at least once
/// every this many units made, besides after each upload handed over.
const UNITS_PER_TURN: usize = 100;

/// A destination's units made but not handed to an upload yet.
struct Pending<U> {
    destination: DestinationId,
    settings: Arc<DestinationSettings>,
    /// Each unit with its index in the source's order.
    units: Vec<(usize, U)>,
    /// Their records.
    records: usize,
}

/// A unit back from its upload (or from the erasure), with its index and its items' outcomes.
type Carried<U> = (usize, U, Vec<Outcome>);

/// Together: one upload per destination per full request's worth of its units' records, the
/// first ones started while `units` is still being pulled, and the rest of each destination at
/// the end, beside the regulations' deletes. The units in their original order, each with one
/// outcome per item (none for a unit decided before delivery).
///
/// A destination's pending units are handed over before the unit that would take their records
/// past one request's limit, and as soon as they reach it; so each upload holds at most one
/// request's worth, unless one unit alone holds more.
pub(super) async fn together<'a, P, U>(
    engine: &Engine<P>,
    units: impl IntoIterator<Item = U>,
    deadline: Instant,
) -> (Vec<U>, Vec<Vec<Outcome>>)
where
    P: Ports,
    U: Borrow<Unit<'a>>,
{
    let limit = Call::Upload.max_items();
    let mut pending: Vec<Pending<U>> = Vec::new();
    // Units without events to upload (decided, regulations), with their indices.
    let mut kept: Vec<U> = Vec::new();
    let mut kept_at: Vec<usize> = Vec::new();
    let mut uploads = FuturesUnordered::new();
    let units = units.into_iter();
    // Sized once (an SQS batch's iterator knows its length): no regrowth copying every unit
    // carried so far (cpu2).
    let mut done: Vec<Carried<U>> = Vec::with_capacity(units.size_hint().0);
    let mut made = 0;
    for (i, unit) in units.enumerate() {
        made = i + 1;
        let (at, records) = match &unit.borrow().work {
            Work::Events {
                destination,
                settings,
                prepared,
            } => {
                let records = record_slices(prepared).map(<[Record]>::len).sum::<usize>();
                let at = match pending.iter().position(|p| p.destination == *destination) {
                    Some(at) => at,
                    None => {
                        pending.push(Pending {
                            destination: destination.clone(),
                            settings: Arc::clone(settings),
                            units: Vec::new(),
                            records: 0,
                        });
                        pending.len() - 1
                    }
                };
                (at, records)
            }
            Work::Decided(_) | Work::Regulation { .. } => {
                kept.push(unit);
                kept_at.push(i);
                continue;
            }
        };
        let p = &mut pending[at];
        let mut handed = false;
        if p.records > 0 && p.records + records > limit {
            uploads.push(upload(engine, p, deadline));
            handed = true;
        }
        p.units.push((i, unit));
        p.records += records;
        if p.records >= limit {
            uploads.push(upload(engine, p, deadline));
            handed = true;
        }
        if !uploads.is_empty() && (handed || made % UNITS_PER_TURN == 0) {
            give_way(&mut uploads, &mut done).await;
        }
    }
    for p in &mut pending {
        if !p.units.is_empty() {
            uploads.push(upload(engine, p, deadline));
        }
    }
    let drain = async {
        while let Some(carried) = uploads.next().await {
            done.extend(carried);
        }
    };
    let ((), erased) = tokio::join!(drain, erase_regulations(engine, &kept, deadline));

    // Back in the source's order: every unit made is either kept or in exactly one upload.
    let mut slots: Vec<Option<(U, Vec<Outcome>)>> = (0..made).map(|_| None).collect();
    for (i, unit, outcomes) in done {
        slots[i] = Some((unit, outcomes));
    }
    for ((i, unit), erased) in kept_at.into_iter().zip(kept).zip(erased) {
        slots[i] = Some((unit, erased.unwrap_or_default()));
    }
    debug_assert!(slots.iter().all(Option::is_some), "every unit comes back");
    let mut back = (Vec::with_capacity(made), Vec::with_capacity(made));
    for (unit, outcomes) in slots.into_iter().flatten() {
        back.0.push(unit);
        back.1.push(outcomes);
    }
    back
}

/// Moves a destination's pending units into an upload of their records, which gives each unit
/// its items' outcomes and hands it back.
fn upload<'e, 'a, P: Ports, U: Borrow<Unit<'a>>>(
    engine: &'e Engine<P>,
    pending: &mut Pending<U>,
    deadline: Instant,
) -> impl Future<Output = Vec<Carried<U>>> + use<'e, 'a, P, U> {
    let chunk = std::mem::take(&mut pending.units);
    pending.records = 0;
    let destination = pending.destination.clone();
    let settings = Arc::clone(&pending.settings);
    let span = tracing::info_span!("upload", destination = destination.as_str());
    async move {
        let slices: Vec<&[Record]> = chunk
            .iter()
            .filter_map(|(_, u)| u.borrow().prepared())
            .flat_map(record_slices)
            .collect();
        let delivered = engine
            .upload(&destination, &settings, &slices, deadline)
            .await;
        drop(slices);
        let mut delivered = delivered.into_iter();
        chunk
            .into_iter()
            .map(|(i, u)| {
                let outcomes = u
                    .borrow()
                    .prepared()
                    .map(|prepared| merge_outcomes(prepared, &mut delivered))
                    .unwrap_or_default();
                (i, u, outcomes)
            })
            .collect()
    }
    .instrument(span)
}

/// Polls the uploads in flight once, keeping the units of those that are done, then lets the
/// runtime run its other tasks and its I/O driver (the connections, the timers), so that
/// requests leave and answers arrive while the units are being made.
async fn give_way<U, F>(uploads: &mut FuturesUnordered<F>, done: &mut Vec<Carried<U>>)
where
    F: Future<Output = Vec<Carried<U>>>,
{
    poll_fn(|cx| {
        while let Poll::Ready(Some(carried)) = uploads.poll_next_unpin(cx) {
            done.extend(carried);
        }
        Poll::Ready(())
    })
    .await;
    tokio::task::yield_now().await;
}
