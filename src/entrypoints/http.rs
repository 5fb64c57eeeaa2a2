//! HTTP requests (design.md §2, §3): API Gateway HTTP API v2, Lambda Function URL and API Gateway
//! REST API v1, answered in the response shape of the request's kind. The caller is
//! authenticated with the destination's `webhookToken`, compared in constant time, before the
//! body is looked at; a 401 never says why, and means nothing was sent to CleverTap.

use super::{
    Handler, Prepared, Shape, Upload, dead_letter_body, merge_outcomes, prepare, record_slices,
};
use crate::credentials::{CredentialsError, SettingsSource};
use crate::deadletter::{DeadLetter, DeadLetterError, DeadLetterSink};
use crate::input::{Body, split_body};
use crate::outcome::{Outcome, Status};
use crate::settings::{DestinationId, DestinationSettings};
use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body as ResponseBody;
use aws_lambda_events::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use aws_lambda_events::http::{HeaderMap, HeaderValue, Method};
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::time::Instant;
use tracing::Instrument;

/// The query parameter that names the destination (design.md §2).
pub const DESTINATION_PARAMETER: &str = "destinationId";
/// `Retry-After` of a 503, in seconds: long enough for a throttled account or a restarted
/// CleverTap to recover, short against RudderStack's own retry window.
pub const RETRY_AFTER_SECONDS: u32 = 10;

/// Codes of request-level answers (`{"error": {"code", "message"}}`).
pub mod codes {
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    pub const INVALID_BASE64: &str = "invalid_base64";
    pub const INVALID_UTF8: &str = "invalid_utf8";
    pub const NO_DESTINATION: &str = "no_destination";
    pub const INVALID_DESTINATION_ID: &str = "invalid_destination_id";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const SECRETS_UNAVAILABLE: &str = "secrets_unavailable";
    /// A regulation names a destination other than the authenticated one (403, design.md §2).
    pub const DESTINATION_NOT_ALLOWED: &str = "destination_not_allowed";
}

/// The parts of a request this function reads, whatever its kind.
struct Request {
    method: Method,
    headers: HeaderMap,
    destination: Option<String>,
    body: Option<String>,
    base64: bool,
    request_id: Option<String>,
}

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

pub async fn handle<S: SettingsSource, U: Upload, D: DeadLetterSink>(
    handler: &Handler<S, U, D>,
    shape: Shape,
    payload: Value,
    deadline: Instant,
) -> Value {
    let (reply, span) = match decode(shape, payload) {
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
fn request_span<S, U, D>(handler: &Handler<S, U, D>, request: &Request) -> tracing::Span {
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

fn decode(shape: Shape, payload: Value) -> Result<Request, serde_json::Error> {
    Ok(match shape {
        Shape::RestApiV1 => {
            let r: ApiGatewayProxyRequest = serde_json::from_value(payload)?;
            Request {
                method: r.http_method,
                destination: r
                    .query_string_parameters
                    .first(DESTINATION_PARAMETER)
                    .map(str::to_owned),
                headers: r.headers,
                body: r.body,
                base64: r.is_base64_encoded,
                request_id: r.request_context.request_id,
            }
        }
        _ => {
            let r: ApiGatewayV2httpRequest = serde_json::from_value(payload)?;
            Request {
                method: r.request_context.http.method,
                destination: r
                    .query_string_parameters
                    .first(DESTINATION_PARAMETER)
                    .map(str::to_owned),
                headers: r.headers,
                body: r.body,
                base64: r.is_base64_encoded,
                request_id: r.request_context.request_id,
            }
        }
    })
}

async fn serve<S: SettingsSource, U: Upload, D: DeadLetterSink>(
    handler: &Handler<S, U, D>,
    request: Request,
    deadline: Instant,
) -> Reply {
    if request.method != Method::POST {
        return Reply::error(405, codes::METHOD_NOT_ALLOWED, "only POST is accepted");
    }
    let max = handler.config.max_body_bytes;
    let raw_len = request.body.as_deref().map_or(0, str::len);
    // A base64 text of n bytes decodes to at most 3n/4 bytes.
    let bound = if request.base64 {
        raw_len / 4 * 3
    } else {
        raw_len
    };
    if bound > max.saturating_add(3) || (!request.base64 && raw_len > max) {
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

    let settings = match authenticate(handler, &request.headers, &destination).await {
        Ok(settings) => settings,
        Err(reply) => return reply,
    };

    let text = match body_text(&request) {
        Ok(text) => text,
        Err(reply) => return reply,
    };
    if text.len() > max {
        return too_large(max);
    }
    let items = match split_body(&text) {
        Ok(Body::Events(items)) => items,
        Ok(Body::Regulation(r)) => {
            let request_id = request.request_id.as_deref();
            return regulation::serve(handler, &destination, &settings, request_id, &r, deadline)
                .await;
        }
        Err(reason) => return Reply::error(400, &reason.code, reason.message),
    };
    let prepared = prepare(items, settings.mapping);
    let outcomes = deliver(handler, &destination, &settings, &prepared, deadline).await;
    let dead_lettered = dead_letter(
        handler,
        &destination,
        request.request_id.as_deref(),
        &prepared,
        &outcomes,
    )
    .await;
    let mut counts = [0; 3];
    for o in &outcomes {
        counts[o.status() as usize] += 1;
    }
    handler.count_outcomes(destination.as_str(), counts, dead_lettered);
    results(&prepared, &outcomes)
}

/// The destination's settings if the caller holds its webhook token. Every failure looks the
/// same to the caller, except Secrets Manager being down (a retry, not a verdict).
async fn authenticate<S: SettingsSource, U, D>(
    handler: &Handler<S, U, D>,
    headers: &HeaderMap,
    destination: &DestinationId,
) -> Result<std::sync::Arc<DestinationSettings>, Reply> {
    let Some(token) = bearer_token(headers) else {
        return Err(Reply::unauthorized());
    };
    let settings = match handler.settings.settings(destination).await {
        Ok(s) => s,
        Err(e @ CredentialsError::Unavailable { .. }) => {
            tracing::warn!(destination = %destination, code = e.code(), error = %e, "settings unavailable");
            // The caller is not authenticated yet: the detail stays in the log.
            return Err(Reply::error(
                503,
                codes::SECRETS_UNAVAILABLE,
                "destination settings are unavailable for now; retry later",
            ));
        }
        Err(e) => {
            tracing::warn!(destination = %destination, code = %e.reason().code, "webhook refused: no usable settings");
            return Err(Reply::unauthorized());
        }
    };
    let expected = match &settings.webhook_token {
        Some(t) => t,
        None => {
            tracing::warn!(destination = %destination, code = codes::UNAUTHORIZED, "webhook refused: destination has no webhookToken");
            return Err(Reply::unauthorized());
        }
    };
    if bool::from(token.as_bytes().ct_eq(expected.expose().as_bytes())) {
        Ok(settings)
    } else {
        tracing::warn!(destination = %destination, code = codes::UNAUTHORIZED, "webhook refused: wrong token");
        Err(Reply::unauthorized())
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn body_text(request: &Request) -> Result<std::borrow::Cow<'_, str>, Reply> {
    let body = request.body.as_deref().unwrap_or("");
    if !request.base64 {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|e| {
            Reply::error(
                400,
                codes::INVALID_BASE64,
                format!("body is not valid base64: {e}"),
            )
        })?;
    String::from_utf8(bytes)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| Reply::error(400, codes::INVALID_UTF8, "body is not UTF-8 text"))
}

fn too_large(max: usize) -> Reply {
    Reply::error(
        413,
        codes::BODY_TOO_LARGE,
        format!("body is larger than MAX_BODY_BYTES ({max} bytes)"),
    )
}

async fn deliver<S: SettingsSource, U: Upload, D>(
    handler: &Handler<S, U, D>,
    destination: &DestinationId,
    settings: &DestinationSettings,
    prepared: &[Prepared<'_>],
    deadline: Instant,
) -> Vec<Outcome> {
    let slices: Vec<_> = record_slices(prepared).collect();
    let delivered = if slices.is_empty() {
        Vec::new()
    } else {
        let report = handler.delivery.upload(settings, &slices, deadline).await;
        if report.credentials_rejected {
            handler.settings.invalidate(destination);
        }
        handler.count_delivery(destination.as_str(), &report);
        report.outcomes
    };
    merge_outcomes(prepared, &mut delivered.into_iter())
}

async fn dead_letter<S, U, D: DeadLetterSink>(
    handler: &Handler<S, U, D>,
    destination: &DestinationId,
    request_id: Option<&str>,
    prepared: &[Prepared<'_>],
    outcomes: &[Outcome],
) -> usize {
    let rejected: Vec<(&Prepared<'_>, &Outcome)> = prepared
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| o.status() == Status::Rejected)
        .collect();
    let Some(reason) = rejected.first().and_then(|(_, o)| o.reason()) else {
        return 0;
    };
    let message = if rejected.len() > 1 {
        format!(
            "{} events rejected; the first: {}",
            rejected.len(),
            reason.message
        )
    } else {
        reason.message.clone()
    };
    let letter = DeadLetter::new(
        dead_letter_body(rejected.iter().map(|(p, _)| p.raw)),
        Some(destination.as_str()),
        &reason.code,
        &message,
        request_id,
        None,
    );
    send_dead_letter(handler, destination, &letter, rejected.len(), "events").await
}

/// Sends a request's one dead letter, carrying `items` rejected items; returns how many were
/// dead-lettered. A failed send is logged: the caller already has every item's result.
pub(super) async fn send_dead_letter<S, U, D: DeadLetterSink>(
    handler: &Handler<S, U, D>,
    destination: &DestinationId,
    letter: &DeadLetter,
    items: usize,
    what: &str,
) -> usize {
    let mut sent = 0;
    for result in handler
        .dead_letters
        .send(std::slice::from_ref(letter))
        .await
    {
        match result {
            Ok(()) => sent += items,
            Err(DeadLetterError::NotConfigured) => {}
            Err(e) => tracing::error!(
                destination = %destination,
                code = e.code(),
                error = %e,
                "rejected webhook {what} could not be dead-lettered (the caller was told)"
            ),
        }
    }
    sent
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventResult<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// One result per event (`messageId`), and the status from the outcomes.
fn results(prepared: &[Prepared<'_>], outcomes: &[Outcome]) -> Reply {
    let results: Vec<EventResult<'_>> = prepared
        .iter()
        .zip(outcomes)
        .enumerate()
        .map(|(index, (p, o))| EventResult {
            index,
            message_id: p.message_id.as_deref(),
            status: o.status().as_str(),
            code: o.reason().map(|r| r.code.as_ref()),
            message: o.reason().map(|r| r.message.as_str()),
        })
        .collect();
    results_reply(&results, outcomes)
}

/// The answer to a processed request (design.md §3): every item's result and the counts; 200
/// when nothing needs a retry, 400 when every item was rejected, 503 when any needs a retry.
pub(super) fn results_reply<R: Serialize>(results: &[R], outcomes: &[Outcome]) -> Reply {
    let mut counts = [0usize; 3];
    for o in outcomes {
        counts[o.status() as usize] += 1;
    }
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

mod regulation;
#[cfg(test)]
mod tests;
