//! Everything that speaks CleverTap's HTTP API: hosts, the HTTP client, reading answers, and
//! the one place that decides what is retryable.

pub mod client;
pub mod endpoint;
pub mod response;
pub mod retry;
pub mod transport;
