//! A regulation over HTTP (design.md §2, §6). The bearer token authenticates one destination, so
//! a regulation may only name that one in `destinationIds` (else 403 and nothing is deleted):
//! one destination's token can never delete another's users. The answer lists every user, with
//! the same statuses as events: 200 when nothing needs a retry, 400 when every user was
//! rejected, 503 (with `Retry-After`) when any user needs a retry.

use super::{Reply, codes};
use crate::credentials::SettingsSource;
use crate::deadletter::{DeadLetter, DeadLetterError, DeadLetterSink};
use crate::entrypoints::regulation::{Erasure, Summary, Target, erase_all, summarize};
use crate::entrypoints::{Handler, Upload};
use crate::outcome::{Outcome, Status};
use crate::regulation::Regulation;
use crate::settings::{DestinationId, DestinationSettings};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use tokio::time::Instant;

/// Deletes the regulation's users in the authenticated destination and answers per user.
pub(super) async fn serve<S: SettingsSource, U: Upload, D: DeadLetterSink>(
    handler: &Handler<S, U, D>,
    destination: &DestinationId,
    settings: &Arc<DestinationSettings>,
    request_id: Option<&str>,
    regulation: &Regulation<'_>,
    deadline: Instant,
) -> Reply {
    if let Some(other) = regulation
        .destination_ids
        .iter()
        .find(|d| *d != destination)
    {
        tracing::warn!(
            destination = %destination,
            named = %other,
            "regulation refused: it names another destination"
        );
        return Reply::error(
            403,
            codes::DESTINATION_NOT_ALLOWED,
            format!(
                "destinationIds names {other}: over HTTP a regulation may only name the \
                 authenticated destination ({destination})"
            ),
        );
    }
    let targets = [Target {
        destination: destination.clone(),
        settings: Ok(Arc::clone(settings)),
    }];
    let erasure = Erasure {
        regulation,
        targets: &targets,
    };
    let outcomes = erase_all(handler, std::slice::from_ref(&erasure), deadline)
        .await
        .pop()
        .unwrap_or_default();
    let summary = summarize(regulation, &outcomes);
    let dead_lettered = dead_letter(handler, destination, request_id, &summary).await;
    handler.count_outcomes(destination.as_str(), summary.counts, dead_lettered);
    tracing::info!(
        destination = %destination,
        users = outcomes.len(),
        delivered = summary.counts[Status::Delivered as usize],
        rejected = summary.counts[Status::Rejected as usize],
        retry = summary.counts[Status::Retry as usize],
        "regulation"
    );
    results(regulation, &outcomes)
}

/// Dead-letters the rejected users (the regulation with only them); returns how many were sent.
async fn dead_letter<S, U, D: DeadLetterSink>(
    handler: &Handler<S, U, D>,
    destination: &DestinationId,
    request_id: Option<&str>,
    summary: &Summary,
) -> usize {
    let (Outcome::Rejected(reason), Some(body)) = (&summary.outcome, &summary.dead_letter_body)
    else {
        return 0;
    };
    let letter = DeadLetter::new(
        body.clone(),
        Some(destination.as_str()),
        &reason.code,
        &reason.message,
        request_id,
        None,
    );
    let mut sent = 0;
    for result in handler
        .dead_letters
        .send(std::slice::from_ref(&letter))
        .await
    {
        match result {
            Ok(()) => sent += summary.counts[Status::Rejected as usize],
            Err(DeadLetterError::NotConfigured) => {}
            Err(e) => tracing::error!(
                destination = %destination,
                code = e.code(),
                error = %e,
                "rejected regulation users could not be dead-lettered (the caller was told)"
            ),
        }
    }
    sent
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserResult<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// One result per user (`userId` in place of `messageId`), and the status from the counts.
fn results(regulation: &Regulation<'_>, outcomes: &[Outcome]) -> Reply {
    let mut counts = [0usize; 3];
    let results: Vec<UserResult<'_>> = regulation
        .users
        .iter()
        .zip(outcomes)
        .enumerate()
        .map(|(index, (user, o))| {
            counts[o.status() as usize] += 1;
            UserResult {
                index,
                user_id: user.user_id.as_deref().ok(),
                status: o.status().as_str(),
                code: o.reason().map(|r| r.code.as_ref()),
                message: o.reason().map(|r| r.message.as_str()),
            }
        })
        .collect();
    let [delivered, rejected, retry] = counts;
    let status = if retry > 0 {
        503
    } else if rejected > 0 && delivered == 0 {
        400
    } else {
        200
    };
    Reply {
        status,
        body: json!({"results": results, "delivered": delivered, "rejected": rejected, "retry": retry}),
        retry_after: status == 503,
        allow_post: false,
    }
}
