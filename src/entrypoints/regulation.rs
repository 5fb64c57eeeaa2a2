//! Regulations in the handler (design.md §6), shared by SQS and HTTP: the valid users of one or
//! many regulations are deleted per destination through the delivery's `delete` (which keeps
//! CleverTap's limits: at most 100 identities a call, one delete call per account at a time), and
//! every user ends with an outcome. A user is deleted only if it was deleted in every destination
//! the regulation names, so a user's outcome is the worst of its destinations'.

use super::{Handler, Upload};
use crate::credentials::SettingsSource;
use crate::outcome::{Outcome, Reason, Status};
use crate::regulation::Regulation;
use crate::settings::{DestinationId, DestinationSettings};
use std::sync::Arc;
use tokio::time::Instant;

/// Code of a valid user that has no destination to be deleted in (never expected: every
/// regulation gets at least its message's destination).
const NO_DESTINATION: &str = "no_destination";
/// Code of a user the delivery gave no outcome (never expected).
const DELIVERY_INCOMPLETE: &str = "delivery_incomplete";

/// A destination a regulation's users are deleted in: its settings, or why they cannot be had
/// (a retry: a destination whose settings are missing never judges a user).
pub(crate) struct Target {
    pub destination: DestinationId,
    pub settings: Result<Arc<DestinationSettings>, Reason>,
}

/// One regulation and the destinations it is carried out in.
pub(crate) struct Erasure<'r, 'a> {
    pub regulation: &'r Regulation<'a>,
    pub targets: &'r [Target],
}

/// A user to delete in a destination: (erasure, user index, identity).
type Member<'r> = (usize, usize, &'r str);

/// Deletes the valid users of every erasure, one delivery call per destination for all of them,
/// the destinations at the same time. Returns, per erasure, one outcome per user (in order):
/// rejected for a user without a usable userId, else the worst of its destinations'.
pub(crate) async fn erase_all<S: SettingsSource, U: Upload, D>(
    handler: &Handler<S, U, D>,
    erasures: &[Erasure<'_, '_>],
    deadline: Instant,
) -> Vec<Vec<Outcome>> {
    // Per destination, in order of first mention: its target and the users deleted there.
    let mut groups: Vec<(&Target, Vec<Member<'_>>)> = Vec::new();
    for (e, erasure) in erasures.iter().enumerate() {
        for target in erasure.targets {
            let members = erasure.regulation.identities().map(|(u, id)| (e, u, id));
            match groups
                .iter_mut()
                .find(|(t, _)| t.destination == target.destination)
            {
                Some((_, existing)) => existing.extend(members),
                None => groups.push((target, members.collect())),
            }
        }
    }
    let calls = groups.iter().map(|(target, members)| async move {
        if members.is_empty() {
            return Vec::new();
        }
        let settings = match &target.settings {
            Ok(settings) => settings,
            Err(reason) => return vec![Outcome::Retry(reason.clone()); members.len()],
        };
        let identities: Vec<&str> = members.iter().map(|(_, _, id)| *id).collect();
        let report = handler
            .delivery
            .delete(settings, &identities, deadline)
            .await;
        if report.credentials_rejected {
            handler.settings.invalidate(&target.destination);
        }
        handler.count_delivery(target.destination.as_str(), &report);
        tracing::debug!(
            destination = %target.destination,
            users = identities.len(),
            stats = ?report.stats,
            "profiles deleted"
        );
        let mut outcomes = report.outcomes;
        outcomes.resize(
            members.len(),
            Outcome::retry(
                DELIVERY_INCOMPLETE,
                "delivery reported no outcome for this user",
            ),
        );
        outcomes
    });
    let results = futures_util::future::join_all(calls).await;

    let mut per_user: Vec<Vec<(Outcome, bool)>> = erasures
        .iter()
        .map(|e| {
            e.regulation
                .users
                .iter()
                .map(|u| match &u.user_id {
                    Err(reason) => (Outcome::Rejected(reason.clone()), true),
                    Ok(_) => (Outcome::Delivered, false),
                })
                .collect()
        })
        .collect();
    for ((_, members), outcomes) in groups.iter().zip(results) {
        for (&(e, u, _), outcome) in members.iter().zip(outcomes) {
            if let Some((current, decided)) = per_user.get_mut(e).and_then(|users| users.get_mut(u))
            {
                *current = std::mem::replace(current, Outcome::Delivered).worst(outcome);
                *decided = true;
            }
        }
    }
    per_user
        .into_iter()
        .map(|users| {
            users
                .into_iter()
                .map(|(outcome, decided)| {
                    if decided {
                        outcome
                    } else {
                        Outcome::retry(NO_DESTINATION, "no destination to delete the user in")
                    }
                })
                .collect()
        })
        .collect()
}

/// What a regulation came to as a whole.
pub(crate) struct Summary {
    /// The worst of its users' (a rejection of several users says how many).
    pub outcome: Outcome,
    /// When rejected: the regulation with only its rejected users (design.md §3, dead letters).
    pub dead_letter_body: Option<String>,
    /// Users delivered, rejected, retried.
    pub counts: [usize; 3],
}

pub(crate) fn summarize(regulation: &Regulation<'_>, outcomes: &[Outcome]) -> Summary {
    let mut counts = [0usize; 3];
    for o in outcomes {
        counts[o.status() as usize] += 1;
    }
    let worst = Outcome::worst_of(outcomes);
    let dead_letter_body = (worst.status() == Status::Rejected).then(|| {
        regulation.with_users(|i| {
            outcomes
                .get(i)
                .is_some_and(|o| o.status() == Status::Rejected)
        })
    });
    let rejected = counts[Status::Rejected as usize];
    let outcome = match worst {
        Outcome::Rejected(reason) if rejected > 1 => Outcome::Rejected(Reason::new(
            reason.code,
            format!("{rejected} users rejected; the first: {}", reason.message),
        )),
        other => other,
    };
    Summary {
        outcome,
        dead_letter_body,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entrypoints::fakes;

    fn regulation(text: &str) -> Regulation<'_> {
        Regulation::parse(text).unwrap()
    }

    fn target(h: &fakes::FakeHandler, id: &str) -> Target {
        let destination = DestinationId::parse(id).unwrap();
        Target {
            settings: Ok(h.settings.known[id].clone()),
            destination,
        }
    }

    #[tokio::test]
    async fn a_user_is_deleted_only_if_deleted_in_every_destination() {
        let h = fakes::handler_deleting(|account, id| {
            if account == "ACC-B" && id == "u-2" {
                Outcome::retry("clevertap_unavailable", "503")
            } else {
                Outcome::Delivered
            }
        });
        let r = regulation(
            r#"{"regulationType":"suppress_with_delete","users":[{"userId":"u-1"},{"userId":"u-2"},{}]}"#,
        );
        let targets = [target(&h, "dest-a"), target(&h, "dest-b")];
        let outcomes = erase_all(
            &h,
            &[Erasure {
                regulation: &r,
                targets: &targets,
            }],
            fakes::deadline(),
        )
        .await
        .remove(0);
        let statuses: Vec<Status> = outcomes.iter().map(Outcome::status).collect();
        assert_eq!(
            statuses,
            [Status::Delivered, Status::Retry, Status::Rejected]
        );
        let deletes = h.delivery.deletes();
        assert_eq!(deletes.len(), 2);
        assert!(deletes.iter().all(|d| d.identities == ["u-1", "u-2"]));
    }

    #[tokio::test]
    async fn regulations_of_one_destination_share_its_delete_call_and_a_missing_secret_retries() {
        let h = fakes::handler();
        let r1 =
            regulation(r#"{"regulationType":"suppress_with_delete","users":[{"userId":"a"}]}"#);
        let r2 =
            regulation(r#"{"regulationType":"suppress_with_delete","users":[{"userId":"b"}]}"#);
        let a = [target(&h, "dest-a")];
        let missing = [
            target(&h, "dest-a"),
            Target {
                destination: DestinationId::parse("dest-x").unwrap(),
                settings: Err(Reason::new("secret_not_found", "no secret")),
            },
        ];
        let outcomes = erase_all(
            &h,
            &[
                Erasure {
                    regulation: &r1,
                    targets: &a,
                },
                Erasure {
                    regulation: &r2,
                    targets: &missing,
                },
            ],
            fakes::deadline(),
        )
        .await;
        assert_eq!(outcomes[0], [Outcome::Delivered]);
        assert_eq!(outcomes[1][0].reason().unwrap().code, "secret_not_found");
        let deletes = h.delivery.deletes();
        assert_eq!(deletes.len(), 1, "{deletes:?}");
        assert_eq!(deletes[0].identities, ["a", "b"]);
    }

    #[test]
    fn a_rejected_regulation_dead_letters_only_its_rejected_users_and_counts_them() {
        let r = regulation(
            r#"{"regulationType":"suppress_with_delete","users":[{"userId":"a"},{},{"userId":7}]}"#,
        );
        let outcomes = [
            Outcome::Delivered,
            Outcome::rejected("missing_user_id", "users[1] has no userId"),
            Outcome::rejected("invalid_user_id", "users[2].userId must be a string"),
        ];
        let s = summarize(&r, &outcomes);
        assert_eq!(s.counts, [1, 2, 0]);
        let reason = s.outcome.reason().unwrap();
        assert_eq!(reason.code, "missing_user_id");
        assert!(reason.message.starts_with("2 users rejected"), "{reason:?}");
        assert_eq!(
            s.dead_letter_body.unwrap(),
            r#"{"regulationType":"suppress_with_delete","users":[{},{"userId":7}]}"#
        );
    }
}
