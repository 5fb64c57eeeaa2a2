//! rudder-clevertap: delivers RudderStack events to CleverTap from AWS Lambda.
//! `main.rs` wires these modules; everything testable lives here.

pub mod batch;
pub mod clevertap;
pub mod cli;
pub mod codes;
pub mod config;
pub mod credentials;
pub mod deadletter;
pub mod delivery;
pub mod entrypoints;
pub mod input;
pub mod lambda;
pub mod logs;
pub mod lru;
pub mod metrics;
pub mod outcome;
pub mod queue;
pub mod regulation;
pub mod settings;
pub mod sqs_batch;
pub mod transform;
pub mod visibility;

/// Builders of Lambda payloads for the unit tests: the integration tests' own file, so both
/// build payloads the same way.
#[cfg(test)]
#[path = "../tests/it/support/lambda_events.rs"]
pub(crate) mod lambda_events;
