//! rudder-clevertap: delivers RudderStack events to CleverTap from AWS Lambda.
//! `main.rs` wires these modules; everything testable lives here.

pub mod batch;
pub mod clevertap;
pub mod cli;
pub mod credentials;
pub mod delivery;
pub mod input;
pub mod metrics;
pub mod outcome;
pub mod settings;
pub mod transform;
