//! The integration test binary: one module per feature, shared helpers in `support`.

mod lambda;
mod smoke;
mod support;
