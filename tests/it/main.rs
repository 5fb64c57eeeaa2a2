//! The integration test binary: one module per feature, shared helpers in `support`.

mod conformance;
mod credentials;
mod delivery;
mod delivery_logs;
mod smoke;
mod support;
mod transform_cli;
