//! Sync mode: a regulation larger than one request can delete still makes progress over the
//! sender's resends (docs/contracts.md §6). The engine's memory (`engine::progress`) is keyed
//! here by the destination and the body: the same body sent again deletes only the users not
//! remembered deleted, and answers the remembered ones delivered without a call. A sync webhook
//! runs as one instance (its reserved concurrency), so its resends find what it remembers;
//! another container only deletes the head again, as before.

use crate::engine::progress::Progress;
use crate::engine::{Answers, Carry, Engine, Settled, Unit, Work, settle};
use crate::ports::Ports;
use tokio::time::Instant;

/// Settles a regulation unit of a sync request: only its users not remembered as deleted are
/// deleted; one outcome per user of the whole regulation.
pub(super) async fn settle_regulation<P: Ports>(
    engine: &Engine<P>,
    unit: &Unit<'_>,
    deadline: Instant,
) -> Option<Settled> {
    let Work::Regulation { regulation, .. } = &unit.work else {
        return settle_whole(engine, unit, deadline).await;
    };
    let key = Progress::key(&[unit.label, unit.body]);
    let rest = engine.progress.rest(&key, regulation);
    let outcomes = match rest.as_ref().and_then(|r| Some((r, r.unit(unit)?))) {
        None => settle_whole(engine, unit, deadline).await?.items,
        Some((rest, rest_unit)) => {
            let settled = settle_whole(engine, &rest_unit, deadline).await?;
            tracing::info!(
                destination = unit.label,
                remembered = rest.remembered(),
                "regulation sent again: users already deleted are not deleted again"
            );
            rest.merge(settled.items)
        }
    };
    engine.progress.remember(key, &outcomes);
    Some(Settled::users(&outcomes))
}

async fn settle_whole<P: Ports>(
    engine: &Engine<P>,
    unit: &Unit<'_>,
    deadline: Instant,
) -> Option<Settled> {
    settle(
        engine,
        std::slice::from_ref(unit),
        Carry::Together,
        Answers::PerItem,
        deadline,
    )
    .await
    .pop()
}
