//! The integration test binary: one module per feature, shared helpers in `support`.

mod conformance;
mod credentials;
mod dead_letters;
mod deletion;
mod delivery;
mod delivery_logs;
mod docs;
mod edge;
mod lambda;
mod lambda_e2e;
mod lambda_invoke;
mod lambda_outcomes;
mod layers;
mod local_routes;
mod msrv;
mod observability;
mod outage;
mod parity;
mod smoke;
mod support;
mod template;
mod transform_cli;
mod webhook;
