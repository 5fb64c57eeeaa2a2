//! A regulation on a FIFO queue makes progress (docs/contracts.md §6): a new message for what
//! is left would break its group's order, so the regulation comes back whole, and the container
//! remembers which of its users were deleted (`engine::progress`, keyed by destination, message
//! id and body: a FIFO redelivery keeps its message id). A redelivery to the same container
//! deletes only the rest; the remembered users are answered delivered without a call. Another
//! container deletes the head again, as before, and remembers in turn. A retried regulation
//! that deleted users in this receive comes back soon (`backoff`), not after an outage's wait.

use super::decode::Message;
use crate::engine::progress::{Key, Progress, Rest};
use crate::engine::{Engine, Settled, Unit, Work};
use crate::outcome::Outcome;
use crate::ports::Ports;

/// What this container remembers of each FIFO message's regulation.
pub(super) struct Resumed {
    keys: Vec<Option<Key>>,
    rests: Vec<Option<Rest>>,
}

impl Resumed {
    /// The key and remembered rest of each FIFO message's regulation; nothing elsewhere.
    pub(super) fn find<P: Ports>(
        engine: &Engine<P>,
        messages: &[Message],
        units: &[Unit<'_>],
    ) -> Resumed {
        let keys: Vec<Option<Key>> = messages
            .iter()
            .zip(units)
            .map(|(m, unit)| match (&unit.work, m.fifo, m.id.as_deref()) {
                (Work::Regulation { .. }, true, Some(id)) => {
                    Some(Progress::key(&[unit.label, id, unit.body]))
                }
                _ => None,
            })
            .collect();
        let rests = keys
            .iter()
            .zip(units)
            .map(|(key, unit)| match (key, &unit.work) {
                (Some(key), Work::Regulation { regulation, .. }) => {
                    engine.progress.rest(key, regulation)
                }
                _ => None,
            })
            .collect();
        Resumed { keys, rests }
    }

    /// The units to settle: a remembered regulation's rest in place of the whole.
    pub(super) fn units<'r>(&'r self, units: Vec<Unit<'r>>) -> Vec<Unit<'r>> {
        units
            .into_iter()
            .enumerate()
            .map(|(i, unit)| {
                match self
                    .rests
                    .get(i)
                    .and_then(Option::as_ref)
                    .and_then(|r| r.unit(&unit))
                {
                    Some(rest) => {
                        tracing::info!(
                            message_id = unit.origin.source_message_id.unwrap_or(""),
                            remembered = self.rests[i].as_ref().map_or(0, Rest::remembered),
                            "FIFO regulation received again: users already deleted are not \
                             deleted again"
                        );
                        rest
                    }
                    None => unit,
                }
            })
            .collect()
    }

    /// Each settled rest made whole again (the remembered users delivered), what is deleted
    /// remembered; and per message whether its regulation deleted users in this receive.
    pub(super) fn settle<P: Ports>(
        &self,
        engine: &Engine<P>,
        settled: &mut [Settled],
        settled_units: &[Unit<'_>],
    ) -> Vec<bool> {
        let mut progressed = vec![false; settled.len()];
        for (i, s) in settled.iter_mut().enumerate() {
            let (Some(Some(key)), Some(Work::Regulation { regulation, .. })) =
                (self.keys.get(i), settled_units.get(i).map(|u| &u.work))
            else {
                continue;
            };
            if s.whole || s.items.len() != regulation.users.len() {
                continue;
            }
            progressed[i] = s.items.contains(&Outcome::Delivered);
            if let Some(rest) = self.rests.get(i).and_then(Option::as_ref) {
                let dead_lettered = s.dead_lettered;
                *s = Settled::users(&rest.merge(std::mem::take(&mut s.items)));
                s.dead_lettered = dead_lettered;
            }
            engine.progress.remember(*key, &s.items);
        }
        progressed
    }
}
