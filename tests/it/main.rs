//! The integration test binary: one module per feature, shared helpers in `support`.

mod delivery;
mod smoke;
mod support;
