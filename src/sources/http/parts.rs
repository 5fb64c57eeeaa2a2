//! The parts of an HTTP request this function reads, whatever its kind (API Gateway HTTP API
//! v2, Function URL, REST API v1), decoded straight from the payload text; and the body as text.

use super::{Reply, codes};
use crate::sources::Shape;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::http::{HeaderMap, Method};
use base64::Engine;
use std::borrow::Cow;

/// The query parameter that names the destination (docs/contracts.md §2).
pub const DESTINATION_PARAMETER: &str = "destinationId";

/// One HTTP request, in the terms this function needs.
pub struct Request {
    pub(super) method: Method,
    pub(super) headers: HeaderMap,
    /// The `destinationId` query parameter.
    pub(super) destination: Option<String>,
    pub(super) body: Option<String>,
    pub(super) base64: bool,
    pub(super) request_id: Option<String>,
}

impl Request {
    /// Reads a request of the kind `shape` from the payload text.
    pub(crate) fn decode(shape: Shape, text: &str) -> Result<Request, serde_json::Error> {
        Ok(match shape {
            Shape::RestApiV1 => {
                let r: ApiGatewayProxyRequest = serde_json::from_str(text)?;
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
            Shape::HttpApiV2 | Shape::FunctionUrl | Shape::Sqs => {
                let r: ApiGatewayV2httpRequest = serde_json::from_str(text)?;
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

    /// The most bytes the body can hold once decoded: a base64 text of n bytes decodes to at
    /// most 3n/4.
    pub(super) fn body_bound(&self) -> usize {
        let raw_len = self.body.as_deref().map_or(0, str::len);
        if self.base64 {
            raw_len / 4 * 3
        } else {
            raw_len
        }
    }

    /// The body as text, base64-decoded when it came encoded.
    pub(super) fn body_text(&self) -> Result<Cow<'_, str>, Reply> {
        let body = self.body.as_deref().unwrap_or("");
        if !self.base64 {
            return Ok(Cow::Borrowed(body));
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
            .map(Cow::Owned)
            .map_err(|_| Reply::error(400, codes::INVALID_UTF8, "body is not UTF-8 text"))
    }
}
