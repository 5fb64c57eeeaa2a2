//! SQS batches (design.md §2, §3): each message decoded on its own, so one bad body never fails
//! the batch; the events of a standard queue's messages delivered together per destination; a
//! FIFO queue's messages one at a time, in order, stopping at the first that needs a retry.
//! A message ends as the worst of its events: delivered (acked), rejected (dead-lettered, then
//! acked) or retry (reported in `batchItemFailures`, never with an empty `itemIdentifier`).

use super::regulation::{Erasure, Target, erase_all, summarize};
use super::{
    Handler, HandlerError, Prepared, Upload, dead_letter_body, merge_outcomes, prepare,
    record_slices,
};
use crate::credentials::{CredentialsError, SettingsSource};
use crate::deadletter::{DeadLetter, DeadLetterSink};
use crate::input::{Body, split_body};
use crate::outcome::{Outcome, Reason, Status};
use crate::regulation::Regulation;
use crate::settings::{DestinationId, DestinationSettings};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::time::Instant;
use tracing::Instrument;

/// The message attribute that names the destination (design.md §2).
pub const DESTINATION_ATTRIBUTE: &str = "destinationId";
/// The system attribute that holds a FIFO message's group.
const MESSAGE_GROUP_ID: &str = "MessageGroupId";

/// Codes this module gives messages.
pub mod codes {
    /// Neither a `destinationId` attribute nor `DEFAULT_DESTINATION_ID`: fix the producer or the
    /// configuration; the message comes back until then.
    pub const NO_DESTINATION: &str = "no_destination";
    /// The `destinationId` attribute is not `[A-Za-z0-9_.-]{1,128}`.
    pub const INVALID_DESTINATION_ID: &str = "invalid_destination_id";
    /// A record of the batch is not an SQS message Lambda would send.
    pub const INVALID_SQS_RECORD: &str = "invalid_sqs_record";
    /// FIFO: an earlier message of the batch needs a retry, so this one was not sent.
    pub const FIFO_EARLIER_MESSAGE_FAILED: &str = "fifo_earlier_message_failed";
}

/// One message of the batch as far as it was understood. It owns what it needs, so the event's
/// text can go once every message is read.
pub(crate) struct Message {
    id: Option<String>,
    /// The record's `eventSourceARN` names a FIFO queue.
    pub(crate) fifo: bool,
    body: String,
    /// The `destinationId` attribute as it came (copied to a dead letter).
    destination_attr: Option<String>,
    group_id: Option<String>,
    destination: Result<DestinationId, Outcome>,
}

/// What is to become of a message before delivery.
enum Plan<'a> {
    /// Decided without delivery. `Rejected` dead-letters the body as it came.
    Decided(Outcome),
    /// Events to deliver to one destination.
    Events {
        destination: DestinationId,
        settings: Arc<DestinationSettings>,
        prepared: Vec<Prepared<'a>>,
    },
    /// A regulation: its users deleted in each target destination (design.md §6).
    Regulation {
        regulation: Regulation<'a>,
        targets: Vec<Target>,
    },
}

/// The end of a message: its outcome and, for a rejection, the dead letter's body.
struct Ended {
    outcome: Outcome,
    dead_letter_body: Option<String>,
    /// Events delivered, rejected, retried (a message decided as a whole counts as one).
    counts: [usize; 3],
}

/// The top of an SQS event, its records left as text.
#[derive(serde::Deserialize)]
struct RawBatch<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
}

/// What is read of a record that is not a valid SQS message, and of the first record to tell
/// an SQS batch from other services' records: read as loosely as [`super::Shape::detect`] does.
#[derive(Default)]
struct RecordProbe {
    message_id: Option<String>,
    event_source: Option<String>,
    event_source_arn: Option<String>,
}

impl RecordProbe {
    fn of(record: &RawValue) -> RecordProbe {
        let Ok(value) = serde_json::from_str::<Value>(record.get()) else {
            return RecordProbe::default();
        };
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        RecordProbe {
            message_id: text("messageId"),
            event_source: text("eventSource"),
            event_source_arn: text("eventSourceARN"),
        }
    }
}

fn is_fifo_arn(arn: Option<&str>) -> bool {
    arn.is_some_and(|arn| arn.ends_with(".fifo"))
}

/// The messages of an SQS batch, read from the event's JSON text in one pass without building a
/// `Value` tree; `None` when the text is not an SQS batch (`Records[0].eventSource` is not
/// `aws:sqs`, as [`super::Shape::detect`] has it).
pub(crate) fn read_batch(text: &str, default: Option<&DestinationId>) -> Option<Vec<Message>> {
    let records = serde_json::from_str::<RawBatch<'_>>(text).ok()?.records?;
    let first = RecordProbe::of(records.first()?);
    if first.event_source.as_deref() != Some("aws:sqs") {
        return None;
    }
    Some(records.iter().map(|r| decode(r, default)).collect())
}

/// Handles an SQS batch given as a value (the `invoke` command, tests): the same path as the
/// Lambda loop's text.
pub async fn handle<S: SettingsSource, U: Upload, D: DeadLetterSink>(
    handler: &Handler<S, U, D>,
    payload: Value,
    deadline: Instant,
) -> Result<SqsBatchResponse, HandlerError> {
    let text = payload.to_string();
    drop(payload);
    let default = handler.config.default_destination_id.as_ref();
    let messages = read_batch(&text, default).ok_or(HandlerError::UnknownEvent)?;
    drop(text);
    handle_messages(handler, messages, deadline).await
}

pub(crate) async fn handle_messages<S: SettingsSource, U: Upload, D: DeadLetterSink>(
    handler: &Handler<S, U, D>,
    messages: Vec<Message>,
    deadline: Instant,
) -> Result<SqsBatchResponse, HandlerError> {
    let fifo = messages.iter().any(|m| m.fifo);
    let bodies: Vec<Result<Body<'_>, Reason>> =
        messages.iter().map(|m| split_body(&m.body)).collect();
    let settings = fetch_settings(&handler.settings, &messages, &bodies).await;
    let plans: Vec<Plan<'_>> = messages
        .iter()
        .zip(bodies)
        .map(|(m, body)| plan(m, body, &settings))
        .collect();

    let ended = if fifo {
        deliver_in_order(handler, &plans, deadline).await
    } else {
        deliver_grouped(handler, &plans, deadline).await
    };

    let mut failed = dead_letter(handler, &messages, &ended).await;
    if fifo && let Some(first) = failed.iter().position(|f| *f) {
        // Everything after a failed message comes again, in order (design.md §3, FIFO).
        failed[first..].iter_mut().for_each(|f| *f = true);
    }

    let mut response = SqsBatchResponse::default();
    let mut unreportable = false;
    let mut counts = [0usize; 3];
    for ((message, end), failed) in messages.iter().zip(&ended).zip(&failed) {
        let _span = message.span().entered();
        counts[end.outcome.status() as usize] += 1;
        let dead_lettered = if end.outcome.status() == Status::Rejected && !*failed {
            end.counts[Status::Rejected as usize].max(1)
        } else {
            0
        };
        handler.count_outcomes(message.metric_label(), end.counts, dead_lettered);
        log_message(message, end, *failed);
        if *failed {
            match message.id.as_deref().filter(|id| !id.is_empty()) {
                Some(id) => response.add_failure(id),
                None => unreportable = true,
            }
        }
    }
    // The invocation's summary line (crate::lambda) has the counters; this adds the batch's shape.
    tracing::debug!(
        messages = messages.len(),
        fifo,
        delivered = counts[Status::Delivered as usize],
        rejected = counts[Status::Rejected as usize],
        retry = counts[Status::Retry as usize],
        batch_item_failures = response.batch_item_failures.len(),
        "sqs batch"
    );
    if unreportable {
        tracing::error!(
            code = "unreportable_failure",
            "{}",
            HandlerError::UnreportableFailure
        );
        return Err(HandlerError::UnreportableFailure);
    }
    Ok(response)
}

/// Reads one record on its own; a record that is not an SQS message is a retry of that message.
fn decode(record: &RawValue, default: Option<&DestinationId>) -> Message {
    match serde_json::from_str::<SqsMessage>(record.get()) {
        Ok(m) => {
            let attr = m.message_attributes.get(DESTINATION_ATTRIBUTE);
            let destination_attr = attr.and_then(|a| a.string_value.clone());
            let destination = match (attr, &destination_attr) {
                (Some(_), Some(value)) => DestinationId::parse(value).map_err(|e| {
                    Outcome::rejected(
                        codes::INVALID_DESTINATION_ID,
                        format!("message attribute {DESTINATION_ATTRIBUTE}: {e}"),
                    )
                }),
                (Some(_), None) => Err(Outcome::rejected(
                    codes::INVALID_DESTINATION_ID,
                    format!("message attribute {DESTINATION_ATTRIBUTE} must be a String"),
                )),
                (None, _) => default.cloned().ok_or_else(|| {
                    Outcome::retry(
                        codes::NO_DESTINATION,
                        format!(
                            "no {DESTINATION_ATTRIBUTE} message attribute and no DEFAULT_DESTINATION_ID"
                        ),
                    )
                }),
            };
            Message {
                id: m.message_id,
                fifo: is_fifo_arn(m.event_source_arn.as_deref()),
                group_id: m.attributes.get(MESSAGE_GROUP_ID).cloned(),
                body: m.body.unwrap_or_default(),
                destination_attr,
                destination,
            }
        }
        Err(e) => {
            let probe = RecordProbe::of(record);
            Message {
                id: probe.message_id,
                fifo: is_fifo_arn(probe.event_source_arn.as_deref()),
                body: String::new(),
                destination_attr: None,
                group_id: None,
                destination: Err(Outcome::retry(
                    codes::INVALID_SQS_RECORD,
                    format!("not an SQS message record: {e}"),
                )),
            }
        }
    }
}

impl Message {
    /// The destination for metrics: its id, or `-` when it has none.
    fn metric_label(&self) -> &str {
        self.destination
            .as_ref()
            .map_or(crate::metrics::NO_DESTINATION, DestinationId::as_str)
    }

    /// The span of this message's log lines: its message id and destination id.
    fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "message",
            message_id = self.id.as_deref().unwrap_or(""),
            destination = self.metric_label()
        )
    }
}

type SettingsMap = HashMap<DestinationId, Result<Arc<DestinationSettings>, CredentialsError>>;

/// Fetches each destination's settings once, all at the same time: the messages' own, or the
/// ones a regulation names in place of its message's.
async fn fetch_settings<S: SettingsSource>(
    source: &S,
    messages: &[Message],
    bodies: &[Result<Body<'_>, Reason>],
) -> SettingsMap {
    let mut wanted: Vec<&DestinationId> = Vec::new();
    for (m, body) in messages.iter().zip(bodies) {
        let named = match body {
            Ok(Body::Regulation(r)) if !r.destination_ids.is_empty() => &r.destination_ids[..],
            _ => m
                .destination
                .as_ref()
                .map(std::slice::from_ref)
                .unwrap_or(&[]),
        };
        for d in named {
            if !wanted.contains(&d) {
                wanted.push(d);
            }
        }
    }
    let fetched = futures_util::future::join_all(wanted.iter().map(|d| source.settings(d))).await;
    wanted.into_iter().cloned().zip(fetched).collect()
}

fn plan<'a>(
    message: &'a Message,
    body: Result<Body<'a>, Reason>,
    settings: &SettingsMap,
) -> Plan<'a> {
    let items = match body {
        Ok(Body::Regulation(regulation)) => return plan_regulation(message, regulation, settings),
        Ok(Body::Events(items)) => Ok(items),
        Err(reason) => Err(reason),
    };
    let destination = match &message.destination {
        Ok(d) => d,
        Err(outcome) => return Plan::Decided(outcome.clone()),
    };
    // Never judge events of a destination whose settings cannot be had: retry, never dead-letter.
    let settings = match settings.get(destination) {
        Some(Ok(s)) => Arc::clone(s),
        Some(Err(e)) => return Plan::Decided(Outcome::Retry(e.reason())),
        None => {
            return Plan::Decided(Outcome::retry(
                "secrets_unavailable",
                "destination settings were not fetched",
            ));
        }
    };
    match items {
        Err(reason) => Plan::Decided(Outcome::Rejected(reason)),
        Ok(items) => Plan::Events {
            destination: destination.clone(),
            prepared: prepare(items, settings.mapping),
            settings,
        },
    }
}

/// A regulation goes to the destinations its body names, else to its message's; a destination
/// whose settings cannot be had gives its users a retry.
fn plan_regulation<'a>(
    message: &Message,
    regulation: Regulation<'a>,
    settings: &SettingsMap,
) -> Plan<'a> {
    let destinations = if regulation.destination_ids.is_empty() {
        match &message.destination {
            Ok(d) => vec![d.clone()],
            Err(outcome) => return Plan::Decided(outcome.clone()),
        }
    } else {
        regulation.destination_ids.clone()
    };
    let targets = destinations
        .into_iter()
        .map(|destination| {
            let settings = match settings.get(&destination) {
                Some(Ok(s)) => Ok(Arc::clone(s)),
                Some(Err(e)) => Err(e.reason()),
                None => Err(Reason::new(
                    "secrets_unavailable",
                    "destination settings were not fetched",
                )),
            };
            Target {
                destination,
                settings,
            }
        })
        .collect();
    Plan::Regulation {
        regulation,
        targets,
    }
}

/// Carries out the regulations among `plans` together (one delete call series per destination);
/// per plan, its users' outcomes (`None` for plans that are not regulations).
async fn erase_regulations<S: SettingsSource, U: Upload, D>(
    handler: &Handler<S, U, D>,
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

/// Standard queue: one upload per destination with the events of all its messages.
async fn deliver_grouped<S: SettingsSource, U: Upload, D>(
    handler: &Handler<S, U, D>,
    plans: &[Plan<'_>],
    deadline: Instant,
) -> Vec<Ended> {
    let mut groups: Vec<(&DestinationId, &Arc<DestinationSettings>, Vec<usize>)> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        if let Plan::Events {
            destination,
            settings,
            ..
        } = p
        {
            match groups.iter_mut().find(|(d, _, _)| *d == destination) {
                Some((_, _, members)) => members.push(i),
                None => groups.push((destination, settings, vec![i])),
            }
        }
    }
    let uploads = groups.iter().map(|(destination, settings, members)| {
        let span = tracing::info_span!("upload", destination = destination.as_str());
        async move {
            let slices: Vec<_> = members
                .iter()
                .flat_map(|&i| match &plans[i] {
                    Plan::Events { prepared, .. } => record_slices(prepared).collect(),
                    Plan::Decided(_) | Plan::Regulation { .. } => Vec::new(),
                })
                .collect();
            if slices.is_empty() {
                return Vec::new();
            }
            let report = handler.delivery.upload(settings, &slices, deadline).await;
            if report.credentials_rejected {
                handler.settings.invalidate(destination);
            }
            handler.count_delivery(destination.as_str(), &report);
            tracing::debug!(stats = ?report.stats, "delivered");
            report.outcomes
        }
        .instrument(span)
    });
    let (reports, erased) = tokio::join!(
        futures_util::future::join_all(uploads),
        erase_regulations(handler, plans, deadline)
    );

    let mut per_message = erased;
    for ((_, _, members), outcomes) in groups.iter().zip(reports) {
        let mut outcomes = outcomes.into_iter();
        for &i in members {
            if let Plan::Events { prepared, .. } = &plans[i] {
                per_message[i] = Some(merge_outcomes(prepared, &mut outcomes));
            }
        }
    }
    plans
        .iter()
        .zip(per_message)
        .map(|(p, outcomes)| end(p, outcomes.unwrap_or_default()))
        .collect()
}

/// FIFO queue: one message at a time, in order; after a retry nothing more is sent.
async fn deliver_in_order<S: SettingsSource, U: Upload, D>(
    handler: &Handler<S, U, D>,
    plans: &[Plan<'_>],
    deadline: Instant,
) -> Vec<Ended> {
    let mut ended = Vec::with_capacity(plans.len());
    let mut blocked = false;
    for p in plans {
        if blocked {
            ended.push(Ended {
                outcome: Outcome::retry(
                    codes::FIFO_EARLIER_MESSAGE_FAILED,
                    "an earlier message of this FIFO batch needs a retry; not sent, to keep the order",
                ),
                dead_letter_body: None,
                counts: [0, 0, 1],
            });
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
                let slices: Vec<_> = record_slices(prepared).collect();
                let mut delivered = if slices.is_empty() {
                    Vec::new()
                } else {
                    let span = tracing::info_span!("upload", destination = destination.as_str());
                    let report = handler
                        .delivery
                        .upload(settings, &slices, deadline)
                        .instrument(span)
                        .await;
                    if report.credentials_rejected {
                        handler.settings.invalidate(destination);
                    }
                    handler.count_delivery(destination.as_str(), &report);
                    report.outcomes
                }
                .into_iter();
                merge_outcomes(prepared, &mut delivered)
            }
        };
        let e = end(p, outcomes);
        blocked = e.outcome.status() == Status::Retry;
        ended.push(e);
    }
    ended
}

/// A message's outcome (the worst of its events') and, if rejected, its dead letter's body.
fn end(plan: &Plan<'_>, outcomes: Vec<Outcome>) -> Ended {
    match plan {
        Plan::Decided(outcome) => {
            let mut counts = [0; 3];
            counts[outcome.status() as usize] = 1;
            Ended {
                outcome: outcome.clone(),
                dead_letter_body: None,
                counts,
            }
        }
        Plan::Regulation { regulation, .. } => {
            let summary = summarize(regulation, &outcomes);
            Ended {
                outcome: summary.outcome,
                dead_letter_body: summary.dead_letter_body,
                counts: summary.counts,
            }
        }
        Plan::Events { prepared, .. } => {
            let outcome = Outcome::worst_of(&outcomes);
            let dead_letter_body = (outcome.status() == Status::Rejected).then(|| {
                dead_letter_body(
                    prepared
                        .iter()
                        .zip(&outcomes)
                        .filter(|(_, o)| o.status() == Status::Rejected)
                        .map(|(p, _)| p.raw),
                )
            });
            let mut counts = [0; 3];
            for o in &outcomes {
                counts[o.status() as usize] += 1;
            }
            let rejected = counts[Status::Rejected as usize];
            let outcome = match outcome {
                Outcome::Rejected(reason) if rejected > 1 => Outcome::Rejected(Reason::new(
                    reason.code,
                    format!("{rejected} events rejected; the first: {}", reason.message),
                )),
                other => other,
            };
            Ended {
                outcome,
                dead_letter_body,
                counts,
            }
        }
    }
}

/// Dead-letters the rejected messages; returns, per message, whether it must be reported in
/// `batchItemFailures` (a retry, or a rejection whose dead letter could not be sent).
async fn dead_letter<S, U, D: DeadLetterSink>(
    handler: &Handler<S, U, D>,
    messages: &[Message],
    ended: &[Ended],
) -> Vec<bool> {
    let mut failed: Vec<bool> = ended
        .iter()
        .map(|e| e.outcome.status() == Status::Retry)
        .collect();
    let mut letters = Vec::new();
    let mut senders = Vec::new();
    for (i, (m, e)) in messages.iter().zip(ended).enumerate() {
        if let Outcome::Rejected(reason) = &e.outcome {
            let body = e.dead_letter_body.clone().unwrap_or_else(|| m.body.clone());
            letters.push(DeadLetter::new(
                body,
                m.destination_attr.as_deref(),
                &reason.code,
                &reason.message,
                m.id.as_deref(),
                m.group_id.as_deref(),
            ));
            senders.push(i);
        }
    }
    if letters.is_empty() {
        return failed;
    }
    let results = handler.dead_letters.send(&letters).await;
    for (n, &i) in senders.iter().enumerate() {
        match results.get(n) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                let _span = messages[i].span().entered();
                tracing::error!(
                    message_id = messages[i].id.as_deref().unwrap_or(""),
                    code = e.code(),
                    error = %e,
                    "dead letter not sent: the message is reported for a retry"
                );
                failed[i] = true;
            }
            None => failed[i] = true,
        }
    }
    failed
}

fn log_message(message: &Message, end: &Ended, failed: bool) {
    let id = message.id.as_deref().unwrap_or("");
    if id.is_empty() {
        tracing::error!(
            code = "missing_message_id",
            status = end.outcome.status().as_str(),
            "an SQS message has no messageId: it cannot be reported on its own"
        );
    }
    let destination = match &message.destination {
        Ok(d) => d.as_str(),
        Err(_) => message.destination_attr.as_deref().unwrap_or(""),
    };
    match end.outcome.reason() {
        None => tracing::debug!(
            message_id = id,
            destination,
            status = "delivered",
            "message"
        ),
        Some(reason) => tracing::info!(
            message_id = id,
            destination,
            status = end.outcome.status().as_str(),
            code = %reason.code,
            reason = %reason.message,
            batch_item_failure = failed,
            "message"
        ),
    }
}

#[cfg(test)]
mod regulation_tests;
#[cfg(test)]
mod tests;
