//! rudder-clevertap: delivers RudderStack events to CleverTap from AWS Lambda.
//! `main.rs` wires these modules; everything testable lives here. Layers, top down (each imports
//! only the ones below it; docs/architecture.md has the map): `lambda`, `cli` → `handler` →
//! `sources` → `engine` → `dead_letters`, `delivery`, `clevertap` → `ports` → `transform` →
//! `js`, `json`; the adapters (`aws`, `credentials`) implement `ports`.

pub mod aws;
pub mod batch;
pub mod clevertap;
pub mod cli;
pub mod codes;
pub mod config;
pub mod credentials;
pub mod dead_letters;
pub mod delivery;
pub mod engine;
pub mod handler;
pub mod input;
pub mod js;
pub mod json;
pub mod lambda;
pub mod lru;
pub mod metrics;
pub mod outcome;
pub mod ports;
pub mod queue;
pub mod regulation;
pub mod settings;
pub mod settings_template;
pub mod sources;
pub mod transform;
pub mod visibility;

#[cfg(test)]
mod handler_prop_tests;

/// Builders of Lambda payloads for the unit tests: the integration tests' own file, so both
/// build payloads the same way.
#[cfg(test)]
#[path = "../tests/it/support/lambda_events.rs"]
pub(crate) mod lambda_events;
