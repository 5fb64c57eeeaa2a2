//! The one seam between delivery logic and the network: a CleverTap POST and its raw reply.
//! The real implementation is reqwest; tests and `invoke --dry-run` use others.

use crate::settings::Secret;
use bytes::Bytes;

/// One POST to CleverTap.
#[derive(Debug, Clone)]
pub struct ApiRequest<'a> {
    /// Base URL (`https://<region host>`, or `CLEVERTAP_ENDPOINT` in tests), without a trailing slash.
    pub base_url: &'a str,
    /// `endpoint::UPLOAD_PATH` or `endpoint::DELETE_PATH`.
    pub path: &'static str,
    pub account_id: &'a str,
    pub passcode: &'a Secret,
    /// JSON body: `{"d":[...]}` or `{"identity":[...]}`.
    pub body: Bytes,
    /// The most answer bytes read: enough for CleverTap to list every record sent, echoed.
    pub max_reply_bytes: usize,
}

/// CleverTap's raw answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: Bytes,
}

/// The request never got an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("CleverTap request timed out")]
    Timeout,
    #[error("could not reach CleverTap: {0}")]
    Connect(String),
    /// The request could not be built (e.g. an account id or passcode that is not a valid
    /// HTTP header value). The message never holds the value.
    #[error("invalid CleverTap request: {0}")]
    InvalidRequest(String),
}
