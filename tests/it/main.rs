//! The integration test binary: one module per feature, shared helpers in `support`.

mod smoke;
mod support;
mod template;
