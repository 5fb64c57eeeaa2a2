//! The integration test binary: one module per feature, shared helpers in `support`.

mod lambda;
mod lambda_invoke;
mod smoke;
mod support;
