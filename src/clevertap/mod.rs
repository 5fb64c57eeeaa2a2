//! Everything that speaks CleverTap's HTTP API: hosts, the request format, the HTTP client,
//! reading answers, and the one place that decides what is retryable.

pub mod client;
pub mod endpoint;
pub mod request;
pub mod response;
pub mod retry;
pub mod transport;
