//! HTTP requests (docs/contracts.md §2, §3): API Gateway HTTP API v2, Lambda Function URL and
//! API Gateway REST API v1 (`request`), answered in the response shape of the request's kind.
//! The caller is authenticated (`auth`) before the body is looked at; then the body's events go
//! through the shared pipeline, or its regulation is carried out (`regulation`). At most
//! `MAX_ITEMS_PER_BODY` items of a body are processed; the answer (`answer`) stays under
//! `answer::MAX_ANSWER_BYTES` whatever the body held.

mod answer;
mod auth;
mod regulation;
mod request;

pub use request::{DESTINATION_PARAMETER, Request};

use super::Shape;
use super::dead_letters::{self, Group, WithoutQueue};
use super::handler::{CleverTapApi, Handler};
use super::pipeline::{self, Prepared, Rejections, prepare};
use crate::codes;
use crate::credentials::SettingsSource;
use crate::deadletter::{DeadLetterSink, Origin};
use crate::input::{Body, split_body_bounded};
use crate::outcome::{Outcome, StatusCounts};
use crate::settings::DestinationId;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body as ResponseBody;
use aws_lambda_events::http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use aws_lambda_events::http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};
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
pub(crate) async fn handle<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    shape: Shape,
    request: Result<Request, serde_json::Error>,
    deadline: Instant,
) -> Value {
    let (reply, span) = match request {
        Ok(request) => {
            let span = request_span(handler, &request);
            let reply = serve(handler, request, deadline)
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
fn request_span<S, C, D>(handler: &Handler<S, C, D>, request: &Request) -> tracing::Span {
    let destination = request
        .destination
        .as_deref()
        .filter(|d| !d.is_empty())
        .or(handler
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

async fn serve<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    request: Request,
    deadline: Instant,
) -> Reply {
    if request.method != Method::POST {
        return Reply::error(405, codes::METHOD_NOT_ALLOWED, "only POST is accepted");
    }
    let max = handler.config.max_body_bytes;
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
        None => match &handler.config.default_destination_id {
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

    let settings =
        match auth::authenticate(&handler.settings_source, &request.headers, &destination).await {
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
    let max_items = handler.config.max_items_per_body;
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
    let items = match split.body {
        Body::Events(items) => items,
        Body::Regulation(r) => {
            let request_id = request.request_id.as_deref();
            return regulation::serve(
                handler,
                &destination,
                &settings,
                request_id,
                &r,
                unprocessed,
                deadline,
            )
            .await;
        }
    };
    let prepared = prepare(items, &settings);
    let mut outcomes =
        pipeline::deliver(handler, &destination, &settings, &prepared, deadline).await;
    // Rejected events are dead-lettered whatever became of the others; one whose letter is not
    // written is answered retry (dead_letter_failed), so the caller sends it again.
    let dead_lettered = dead_letters::dead_letter(
        &handler.dead_letters,
        &mut [Group {
            items: Rejections::Events(&prepared),
            origin: origin(&destination, &request),
            outcomes: &mut outcomes,
        }],
        WithoutQueue::StayRejected,
    )
    .await;
    let mut counts = StatusCounts::of(&outcomes);
    counts.rejected += unprocessed.count;
    handler.count_outcomes(destination.as_str(), counts, dead_lettered[0]);
    results(&prepared, &outcomes, unprocessed)
}

/// A request's dead letters carry the authenticated destination and the request id.
fn origin<'r>(destination: &'r DestinationId, request: &'r Request) -> Origin<'r> {
    Origin {
        destination_id: Some(destination.as_str()),
        source_message_id: request.request_id.as_deref(),
        message_group_id: None,
    }
}

fn too_large(max: usize) -> Reply {
    Reply::error(
        413,
        codes::BODY_TOO_LARGE,
        format!("body is larger than MAX_BODY_BYTES ({max} bytes)"),
    )
}

/// One result per event (`messageId`), and the status from the outcomes.
fn results(
    prepared: &[Prepared<'_>],
    outcomes: &[Outcome],
    unprocessed: answer::Unprocessed,
) -> Reply {
    let items: Vec<answer::Item<'_>> = prepared
        .iter()
        .zip(outcomes)
        .map(|(p, outcome)| answer::Item {
            id: p.message_id.as_deref(),
            outcome,
        })
        .collect();
    answer::reply("messageId", "items", &items, unprocessed)
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
mod tests;
