//! Carrying out the plans. A standard queue's messages go together: one upload per destination
//! with the events of all its messages, and the regulations' deletes beside them. A FIFO queue's
//! messages go one at a time, in order; once a message needs a retry, nothing more of its
//! message group is sent, and the other groups go on.

use super::plan::Plan;
use crate::codes;
use crate::credentials::SettingsSource;
use crate::deadletter::DeadLetterSink;
use crate::entrypoints::handler::{CleverTapApi, Handler};
use crate::entrypoints::pipeline::{self, Prepared, Settled, merge_outcomes, record_slices};
use crate::entrypoints::regulation::{Erasure, erase_all, settle_regulation};
use crate::outcome::{Outcome, Status};
use crate::settings::{DestinationId, DestinationSettings};
use crate::transform::Record;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::time::Instant;
use tracing::Instrument;

/// The messages of one destination in a standard queue's batch.
struct DestinationGroup<'p> {
    destination: &'p DestinationId,
    settings: &'p Arc<DestinationSettings>,
    /// Indices of the plans whose events go to it.
    members: Vec<usize>,
}

/// Standard queue: one upload per destination with the events of all its messages.
pub(super) async fn deliver_grouped<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    plans: &[Plan<'_>],
    deadline: Instant,
) -> Vec<Settled> {
    let mut groups: Vec<DestinationGroup<'_>> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        if let Plan::Events {
            destination,
            settings,
            ..
        } = p
        {
            match groups.iter_mut().find(|g| g.destination == destination) {
                Some(group) => group.members.push(i),
                None => groups.push(DestinationGroup {
                    destination,
                    settings,
                    members: vec![i],
                }),
            }
        }
    }
    let uploads = groups.iter().map(|group| {
        let span = tracing::info_span!("upload", destination = group.destination.as_str());
        async move {
            let slices: Vec<&[Record]> = group
                .members
                .iter()
                .filter_map(|&i| prepared_of(&plans[i]))
                .flat_map(record_slices)
                .collect();
            handler
                .upload(group.destination, group.settings, &slices, deadline)
                .await
        }
        .instrument(span)
    });
    let (uploaded, erased) = tokio::join!(
        futures_util::future::join_all(uploads),
        erase_regulations(handler, plans, deadline)
    );

    let mut per_plan = erased;
    for (group, outcomes) in groups.iter().zip(uploaded) {
        let mut outcomes = outcomes.into_iter();
        for &i in &group.members {
            if let Some(prepared) = prepared_of(&plans[i]) {
                per_plan[i] = Some(merge_outcomes(prepared, &mut outcomes));
            }
        }
    }
    plans
        .iter()
        .zip(per_plan)
        .map(|(p, outcomes)| settle(p, outcomes.unwrap_or_default()))
        .collect()
}

/// FIFO queue: one message at a time, in order. A message that ends `retry` blocks the later
/// messages of its group (`groups[i]`, the `MessageGroupId`; messages without one are one group):
/// they are not sent and end `retry` too, so SQS hands the group back in order. Other groups go
/// on (docs/contracts.md §3, FIFO).
pub(super) async fn deliver_in_order<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    plans: &[Plan<'_>],
    groups: &[Option<&str>],
    deadline: Instant,
) -> Vec<Settled> {
    debug_assert_eq!(plans.len(), groups.len(), "one group per plan");
    let mut settled = Vec::with_capacity(plans.len());
    let mut blocked: HashSet<Option<&str>> = HashSet::new();
    for (p, group) in plans.iter().zip(groups) {
        if blocked.contains(group) {
            settled.push(Settled::decided(Outcome::retry(
                codes::FIFO_EARLIER_MESSAGE_FAILED,
                "an earlier message of this message group needs a retry; not sent, to keep the \
                 group's order",
            )));
            continue;
        }
        let outcomes = match p {
            Plan::Decided(_) => Vec::new(),
            Plan::Regulation { .. } => {
                erase_regulations(handler, std::slice::from_ref(p), deadline)
                    .await
                    .pop()
                    .flatten()
                    .unwrap_or_default()
            }
            Plan::Events {
                destination,
                settings,
                prepared,
            } => {
                let span = tracing::info_span!("upload", destination = destination.as_str());
                pipeline::deliver(handler, destination, settings, prepared, deadline)
                    .instrument(span)
                    .await
            }
        };
        let s = settle(p, outcomes);
        if s.outcome.status() == Status::Retry {
            blocked.insert(*group);
        }
        settled.push(s);
    }
    settled
}

/// FIFO queue, once dead letters are sent: every message after a `failed` one in the same group
/// (`groups[i]`) is failed too, even one already delivered, so that SQS hands the group back in
/// order. Messages of other groups keep their answer.
pub(super) fn fail_the_rest_of_each_group(groups: &[Option<&str>], failed: &mut [bool]) {
    debug_assert_eq!(groups.len(), failed.len(), "one group per message");
    let mut blocked: HashSet<Option<&str>> = HashSet::new();
    for (group, failed) in groups.iter().zip(failed.iter_mut()) {
        if blocked.contains(group) {
            *failed = true;
        } else if *failed {
            blocked.insert(*group);
        }
    }
}

fn prepared_of<'p, 'a>(plan: &'p Plan<'a>) -> Option<&'p [Prepared<'a>]> {
    match plan {
        Plan::Events { prepared, .. } => Some(prepared),
        Plan::Decided(_) | Plan::Regulation { .. } => None,
    }
}

/// Carries out the regulations among `plans` together (one delete call series per destination);
/// per plan, its users' outcomes (`None` for plans that are not regulations).
async fn erase_regulations<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    plans: &[Plan<'_>],
    deadline: Instant,
) -> Vec<Option<Vec<Outcome>>> {
    let mut members = Vec::new();
    let erasures: Vec<Erasure<'_, '_>> = plans
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Plan::Regulation {
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
    let mut per_plan: Vec<Option<Vec<Outcome>>> = plans.iter().map(|_| None).collect();
    if erasures.is_empty() {
        return per_plan;
    }
    let outcomes = erase_all(handler, &erasures, deadline).await;
    for (i, o) in members.into_iter().zip(outcomes) {
        per_plan[i] = Some(o);
    }
    per_plan
}

/// A message's end: the worst of its items' outcomes and, if rejected, its dead letter's body.
fn settle(plan: &Plan<'_>, outcomes: Vec<Outcome>) -> Settled {
    match plan {
        Plan::Decided(outcome) => Settled::decided(outcome.clone()),
        Plan::Regulation { regulation, .. } => settle_regulation(regulation, &outcomes),
        Plan::Events { prepared, .. } => Settled::events(prepared, &outcomes),
    }
}
