//! Erasing a regulation's users (docs/contracts.md §6), for every source: the valid users of
//! one or many regulations are deleted per destination through the engine's `delete` (the
//! delivery keeps CleverTap's limits: at most 100 identities a call, one delete call per account
//! at a time), and every user ends with an outcome. A user is deleted only if it was deleted in
//! every destination the regulation names, so a user's outcome is the worst of its destinations'.

use super::Engine;
use crate::codes;
use crate::outcome::{Outcome, Reason};
use crate::ports::Ports;
use crate::regulation::Regulation;
use crate::settings::{DestinationId, DestinationSettings};
use std::sync::Arc;
use tokio::time::Instant;

/// A destination a regulation's users are deleted in: its settings, or why they cannot be had
/// (a retry: a destination whose settings are missing never judges a user).
pub struct Target {
    pub destination: DestinationId,
    pub settings: Result<Arc<DestinationSettings>, Reason>,
}

/// One regulation and the destinations it is carried out in.
pub(crate) struct Erasure<'r, 'a> {
    pub regulation: &'r Regulation<'a>,
    pub targets: &'r [Target],
}

/// A user to delete in a destination.
struct Member<'r> {
    /// Which erasure it belongs to.
    erasure: usize,
    /// Its index in the regulation's `users`.
    user: usize,
    identity: &'r str,
}

/// A destination and the users deleted there.
struct DestinationUsers<'r> {
    target: &'r Target,
    members: Vec<Member<'r>>,
}

/// Deletes the valid users of every erasure, one delivery call per destination for all of them,
/// the destinations at the same time. Returns, per erasure, one outcome per user (in order):
/// rejected for a user without a usable userId, else the worst of its destinations'.
pub(crate) async fn erase_all<P: Ports>(
    engine: &Engine<P>,
    erasures: &[Erasure<'_, '_>],
    deadline: Instant,
) -> Vec<Vec<Outcome>> {
    // Per destination, in order of first mention: its target and the users deleted there.
    let mut groups: Vec<DestinationUsers<'_>> = Vec::new();
    for (e, erasure) in erasures.iter().enumerate() {
        for target in erasure.targets {
            let members = erasure
                .regulation
                .identities()
                .map(|(user, identity)| Member {
                    erasure: e,
                    user,
                    identity,
                });
            match groups
                .iter_mut()
                .find(|g| g.target.destination == target.destination)
            {
                Some(group) => group.members.extend(members),
                None => groups.push(DestinationUsers {
                    target,
                    members: members.collect(),
                }),
            }
        }
    }
    let calls = groups.iter().map(|group| async move {
        let settings = match &group.target.settings {
            Ok(settings) => settings,
            Err(reason) => return vec![Outcome::Retry(reason.clone()); group.members.len()],
        };
        let identities: Vec<&str> = group.members.iter().map(|m| m.identity).collect();
        let mut outcomes = engine
            .delete(&group.target.destination, settings, &identities, deadline)
            .await;
        outcomes.resize(
            group.members.len(),
            Outcome::retry(
                codes::DELIVERY_INCOMPLETE,
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
    for (group, outcomes) in groups.iter().zip(results) {
        for (m, outcome) in group.members.iter().zip(outcomes) {
            if let Some((current, decided)) = per_user
                .get_mut(m.erasure)
                .and_then(|users| users.get_mut(m.user))
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
                        Outcome::retry(
                            codes::NO_DESTINATION,
                            "no destination to delete the user in",
                        )
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fakes;
    use crate::outcome::Status;

    fn regulation(text: &str) -> Regulation<'_> {
        Regulation::parse(text).unwrap()
    }

    fn target(h: &fakes::FakeHandler, id: &str) -> Target {
        let destination = DestinationId::parse(id).unwrap();
        Target {
            settings: Ok(h.settings_source.known[id].clone()),
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
        let deletes = h.clevertap.deletes();
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
        let deletes = h.clevertap.deletes();
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
        let s = crate::engine::Settled::users(&outcomes);
        assert_eq!(
            s.counts,
            crate::outcome::StatusCounts {
                delivered: 1,
                filtered: 0,
                rejected: 2,
                retry: 0
            }
        );
        let reason = s.outcome.reason().unwrap();
        assert_eq!(reason.code, "missing_user_id");
        assert!(reason.message.starts_with("2 users rejected"), "{reason:?}");
        assert_eq!(
            crate::dead_letters::rejections::Rejections::Users(&r).body(&[1, 2]),
            r#"{"regulationType":"suppress_with_delete","users":[{},{"userId":7}]}"#
        );
    }
}
