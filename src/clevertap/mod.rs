//! Everything that speaks CleverTap's HTTP API.

pub mod endpoint;
pub mod transport;
