//! The integration test binary: one module per feature, shared helpers in `support`.

mod conformance;
mod smoke;
mod support;
mod transform_cli;
