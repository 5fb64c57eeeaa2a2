//! HTTP requests (docs/contracts.md §2, §3): API Gateway HTTP API v2, Lambda Function URL and
//! API Gateway REST API v1 (`parts`), answered in the response shape of the request's kind.
//! The caller is authenticated (`auth`) before the body is looked at; then the body becomes one
//! unit for the engine (its events, or its regulation, for the authenticated destination),
//! delivered in sync mode or put on the events queue in queue mode (`state::Mode`, decided at
//! start-up), and answered item by item (`answer`). At most `MAX_ITEMS_PER_BODY` items of a
//! body are processed; every answer stays under `answer::MAX_ANSWER_BYTES` whatever the body
//! held.

mod answer;
mod auth;
mod parts;
mod progress;
mod state;

pub use answer::{MAX_ANSWER_BYTES, STATUS_QUEUED};
pub use parts::{DESTINATION_PARAMETER, Request};
pub(crate) use state::WebhookState;

use super::Shape;
use crate::codes;
use crate::dead_letters::letter::Origin;
use crate::engine::erase::Target;
use crate::engine::prepare::prepare;
use crate::engine::{Answers, Carry, Engine, Settled, Unit, Work, settle};
use crate::input::{Body, split_body_bounded};
use crate::ports::Ports;
use crate::regulation::Regulation;
use crate::settings::DestinationId;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body as ResponseBody;
use aws_lambda_events::http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use aws_lambda_events::http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};
use state::Mode;
use std::sync::Arc;
use tokio::time::Instant;
use tracing::Instrument;

/// `Retry-After` of a 503, in seconds: long enough for a throttled account or a restarted
/// CleverTap to recover, short against RudderStack's own retry window.
pub const RETRY_AFTER_SECONDS: u32 = 10;

/// An HTTP answer before it is put in the request kind's response shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: bool,
    pub allow_post: bool,
}

impl Reply {
    fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
        Reply {
            status,
            body: json!({"error": {"code": code, "message": message.into()}}),
            retry_after: status == 503,
            allow_post: status == 405,
        }
    }

    fn unauthorized() -> Reply {
        Reply::error(
            401,
            codes::UNAUTHORIZED,
            "missing or wrong bearer token for this destination",
        )
    }
}

/// Serves one request (or answers 400 for a payload of the right shape but wrong fields).
pub(crate) async fn handle<P: Ports>(
    engine: &Engine<P>,
    webhook: &WebhookState,
    shape: Shape,
    request: Result<Request, serde_json::Error>,
    deadline: Instant,
) -> Value {
    let (reply, span) = match request {
        Ok(request) => {
            let span = request_span(engine, &request);
            let reply = serve(engine, webhook, request, deadline)
                .instrument(span.clone())
                .await;
            (reply, span)
        }
        Err(e) => (
            Reply::error(
                400,
                codes::INVALID_REQUEST,
                format!("not a valid {} request: {e}", shape.as_str()),
            ),
            tracing::Span::none(),
        ),
    };
    span.in_scope(|| {
        tracing::info!(
            kind = shape.as_str(),
            status = reply.status,
            code = reply.body.pointer("/error/code").and_then(|c| c.as_str()),
            "http request"
        );
    });
    respond(shape, reply)
}

/// The span of one request's log lines: API Gateway's request id and the destination asked for
/// (or the default one).
fn request_span<P: Ports>(engine: &Engine<P>, request: &Request) -> tracing::Span {
    let destination = request
        .destination
        .as_deref()
        .filter(|d| !d.is_empty())
        .or(engine
            .config
            .default_destination_id
            .as_ref()
            .map(DestinationId::as_str))
        .unwrap_or(crate::metrics::NO_DESTINATION);
    tracing::info_span!(
        "request",
        request_id = request.request_id.as_deref().unwrap_or(""),
        destination = destination
    )
}

async fn serve<P: Ports>(
    engine: &Engine<P>,
    webhook: &WebhookState,
    request: Request,
    deadline: Instant,
) -> Reply {
    if request.method != Method::POST {
        return Reply::error(405, codes::METHOD_NOT_ALLOWED, "only POST is accepted");
    }
    let max = engine.config.max_body_bytes;
    let raw_len = request.body.as_deref().map_or(0, str::len);
    if request.body_bound() > max.saturating_add(3) || (!request.base64 && raw_len > max) {
        return too_large(max);
    }

    let destination = match request
        .destination
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(DestinationId::parse)
    {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            return Reply::error(
                400,
                codes::INVALID_DESTINATION_ID,
                format!("query parameter {DESTINATION_PARAMETER}: {e}"),
            );
        }
        None => match &engine.config.default_destination_id {
            Some(d) => d.clone(),
            None => {
                return Reply::error(
                    400,
                    codes::NO_DESTINATION,
                    format!(
                        "no {DESTINATION_PARAMETER} query parameter and no DEFAULT_DESTINATION_ID"
                    ),
                );
            }
        },
    };

    let settings = match auth::authenticate(
        &engine.settings_source,
        &webhook.token_refresh,
        &request.headers,
        &destination,
        engine.config.webhook_allows(&destination),
    )
    .await
    {
        Ok(settings) => settings,
        Err(reply) => return reply,
    };

    let text = match request.body_text() {
        Ok(text) => text,
        Err(reply) => return reply,
    };
    if text.len() > max {
        return too_large(max);
    }
    let max_items = engine.config.max_items_per_body;
    let split = match split_body_bounded(&text, max_items) {
        Ok(split) => split,
        Err(reason) => return Reply::error(400, &reason.code, reason.message),
    };
    let unprocessed = answer::Unprocessed {
        from: max_items,
        count: split.beyond,
    };
    if split.beyond > 0 {
        tracing::warn!(
            destination = %destination,
            code = codes::TOO_MANY_ITEMS,
            processed = max_items,
            beyond = split.beyond,
            "body has more items than MAX_ITEMS_PER_BODY: the rest are answered too_many_items, \
             neither sent nor dead-lettered"
        );
    }
    let work = match split.body {
        Body::Events(items) => Work::Events {
            prepared: prepare(items, &settings),
            destination: destination.clone(),
            settings,
        },
        Body::Regulation(regulation) => {
            if let Some(refused) = refuse_other_destinations(&regulation, &destination) {
                return refused;
            }
            Work::Regulation {
                regulation,
                targets: vec![Target {
                    destination: destination.clone(),
                    settings: Ok(Arc::clone(&settings)),
                }],
            }
        }
    };
    let (carry, taken) = match &webhook.mode {
        Mode::Sync => (Carry::Together, answer::Taken::Delivered),
        Mode::Queue(queue) => (Carry::Enqueue(queue.as_deref()), answer::Taken::Queued),
    };
    // Rejected items are dead-lettered whatever became of the others (`Answers::PerItem`); one
    // whose letter is not written is answered retry (dead_letter_failed), so the caller sends
    // it again.
    let unit = Unit {
        work,
        body: &text,
        origin: Origin {
            destination_id: Some(destination.as_str()),
            source_message_id: request.request_id.as_deref(),
            message_group_id: None,
        },
        label: destination.as_str(),
        order_key: None,
        beyond: unprocessed.count,
    };
    let settled = match (&webhook.mode, &unit.work) {
        (Mode::Sync, Work::Regulation { .. }) => {
            progress::settle_regulation(engine, &unit, deadline).await
        }
        _ => settle(
            engine,
            std::slice::from_ref(&unit),
            carry,
            Answers::PerItem,
            deadline,
        )
        .await
        .pop(),
    };
    results(&unit, settled.as_ref(), taken, unprocessed)
}

/// The 403 of a regulation naming a destination other than the authenticated one (sync and
/// queue mode alike); `None` when it names none or only that one. The bearer token
/// authenticates one destination, so one destination's token can never delete another's users.
fn refuse_other_destinations(
    regulation: &Regulation<'_>,
    destination: &DestinationId,
) -> Option<Reply> {
    let other = regulation
        .destination_ids
        .iter()
        .find(|d| *d != destination)?;
    tracing::warn!(
        destination = %destination,
        code = codes::DESTINATION_NOT_ALLOWED,
        named = %other,
        "regulation refused: it names another destination"
    );
    Some(Reply::error(
        403,
        codes::DESTINATION_NOT_ALLOWED,
        format!(
            "destinationIds names {other}: over HTTP a regulation may only name the \
             authenticated destination ({destination})"
        ),
    ))
}

/// 403 for a destination outside `WEBHOOK_DESTINATION_IDS`, before any secret is read.
fn too_large(max: usize) -> Reply {
    Reply::error(
        413,
        codes::BODY_TOO_LARGE,
        format!("body is larger than MAX_BODY_BYTES ({max} bytes)"),
    )
}

/// One result per item (an event's `messageId`, a user's `userId`), and the status from the
/// outcomes, logged with the counts.
fn results(
    unit: &Unit<'_>,
    settled: Option<&Settled>,
    taken: answer::Taken,
    unprocessed: answer::Unprocessed,
) -> Reply {
    let outcomes = settled.map_or(&[][..], |s| &s.items[..]);
    let (id_key, noun, items): (_, _, Vec<answer::Item<'_>>) = match &unit.work {
        Work::Regulation { regulation, .. } => (
            "userId",
            "users",
            regulation
                .users
                .iter()
                .zip(outcomes)
                .map(|(user, outcome)| answer::Item {
                    id: user.user_id.as_deref().ok(),
                    outcome,
                })
                .collect(),
        ),
        Work::Events { prepared, .. } => (
            "messageId",
            "items",
            prepared
                .iter()
                .zip(outcomes)
                .map(|(p, outcome)| answer::Item {
                    id: p.message_id.as_deref(),
                    outcome,
                })
                .collect(),
        ),
        Work::Decided(_) => ("messageId", "items", Vec::new()),
    };
    let reply = answer::reply(taken, id_key, noun, &items, unprocessed);
    if let Some(s) = settled {
        tracing::info!(
            destination = unit.label,
            items = s.items.len() + unprocessed.count,
            taken = s.counts.delivered,
            filtered = s.counts.filtered,
            rejected = s.counts.rejected + unprocessed.count,
            retry = s.counts.retry,
            queued = taken == answer::Taken::Queued,
            "webhook request settled"
        );
    }
    reply
}

/// Puts a reply in the response shape of the request's kind.
pub fn respond(shape: Shape, reply: Reply) -> Value {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if reply.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    if reply.allow_post {
        headers.insert(ALLOW, HeaderValue::from_static("POST"));
    }
    let body = Some(ResponseBody::Text(reply.body.to_string()));
    let encoded = match shape {
        Shape::RestApiV1 => {
            let mut r = ApiGatewayProxyResponse::default();
            r.status_code = i64::from(reply.status);
            r.headers = headers;
            r.body = body;
            serde_json::to_value(r)
        }
        _ => {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = i64::from(reply.status);
            r.headers = headers;
            r.body = body;
            serde_json::to_value(r)
        }
    };
    encoded.unwrap_or_else(|_| {
        json!({"statusCode": 500, "headers": {"content-type": "application/json"},
               "body": r#"{"error":{"code":"response_encoding_failed","message":"could not encode the response"}}"#})
    })
}

#[cfg(test)]
mod queue_mode_tests;
#[cfg(test)]
mod regulation_tests;
#[cfg(test)]
mod tests;
