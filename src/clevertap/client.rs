//! The real [`Transport`]: one reqwest client (rustls, pooled keep-alive connections, connect
//! and request timeouts), built once per container and shared by every invocation, since a
//! TLS handshake per request would cost more than the request itself.
//!
//! It follows no redirect (docs/contracts.md §5): reqwest drops `Authorization` on a redirect to
//! another host but not `X-CleverTap-Passcode`, and a 301/302 would turn the upload into a GET.
//! A 3xx is answered as it came and classified `clevertap_unexpected_status`.

use crate::clevertap::request::{HEADER_ACCOUNT_ID, HEADER_PASSCODE};
use crate::clevertap::transport::{ApiRequest, HttpReply, TransportError};
use crate::ports::Transport;
use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use std::time::Duration;

/// How long an idle pooled connection is kept for the next invocation of a warm container.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Timeouts of every CleverTap request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// TCP + TLS connect.
    pub connect: Duration,
    /// The whole request, from sending to the last byte of the answer.
    pub request: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(15),
        }
    }
}

/// The HTTP client could not be built (e.g. no TLS backend).
#[derive(Debug, thiserror::Error)]
#[error("could not build the CleverTap HTTP client")]
pub struct ClientBuildError(#[source] reqwest::Error);

/// CleverTap over HTTPS. Cheap to share: clone it or put it behind an `Arc`.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    pub fn new(timeouts: HttpTimeouts) -> Result<Self, ClientBuildError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            // The passcode goes to the allowlisted host and nowhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rudder-clevertap/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientBuildError)?;
        Ok(HttpTransport { client })
    }
}

fn header_value(value: &str, what: &str, sensitive: bool) -> Result<HeaderValue, TransportError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        TransportError::InvalidRequest(format!("the {what} is not a valid HTTP header value"))
    })?;
    header.set_sensitive(sensitive);
    Ok(header)
}

fn transport_error(e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        TransportError::Timeout
    } else {
        // reqwest's text names the URL (base URL and path, no secret) and the cause.
        TransportError::Connect(e.to_string())
    }
}

impl Transport for HttpTransport {
    async fn post(&self, request: ApiRequest<'_>) -> Result<HttpReply, TransportError> {
        let account = header_value(request.account_id, "account id", false)?;
        let passcode = header_value(request.passcode.expose(), "passcode", true)?;
        let url = format!("{}{}", request.base_url, request.path);
        let mut response = self
            .client
            .post(url)
            .header(HEADER_ACCOUNT_ID, account)
            // Marked sensitive, so it never shows in debug output.
            .header(HEADER_PASSCODE, passcode)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(request.body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        // An answer past the limit is cut there and reads as a bad response (CleverTap may
        // hold the records: they are sent again alone).
        let max = request.max_reply_bytes;
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            let room = max.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= max {
                break;
            }
        }
        Ok(HttpReply {
            status,
            body: Bytes::from(body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;

    #[tokio::test]
    async fn a_passcode_that_is_not_a_header_value_is_an_error_without_the_value() {
        let t = HttpTransport::new(HttpTimeouts::default()).unwrap();
        let passcode = Secret::new("bad\nsecret-value");
        let err = t
            .post(ApiRequest {
                base_url: "http://127.0.0.1:9",
                path: crate::clevertap::endpoint::UPLOAD_PATH,
                account_id: "A",
                passcode: &passcode,
                body: Bytes::from_static(b"{}"),
                max_reply_bytes: 1024,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::InvalidRequest(_)));
        assert!(!err.to_string().contains("secret-value"), "{err}");
    }
}
