//! JSON as this crate reads and writes it, apart from serde_json where parity or measured speed
//! needs it (see each file's header): a strict one-pass reader over borrowed text, a writer that
//! matches JavaScript's `JSON.stringify`, and the escaping rules they share. Used by the
//! transform, the SQS envelope, the request format and regulations alike.

pub(crate) mod bounded;
pub(crate) mod escape;
pub mod reader;
pub mod writer;
