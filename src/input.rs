//! How a body (SQS message, HTTP request, `transform` input) is split into events: one event,
//! a JSON array, `{"batch": [...]}`, or NDJSON (design.md §1, §2).
//!
//! SKELETON: signatures are the contract; the bodies are filled in by the transform work (issue 2).

use crate::outcome::Reason;

/// One item of a body: its raw JSON text (or the raw text of a line that is not JSON), and the
/// reason it cannot be used, if any (`invalid_json`, `not_an_object`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    pub raw: &'a str,
    pub error: Option<Reason>,
}

/// What a body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// Events, in order; empty for an empty array or batch.
    Events(Vec<Item<'a>>),
}

/// Splits a body. An error means the body as a whole is unusable (empty, or not JSON or NDJSON
/// at all); the reason's code says which (`empty_body`, `invalid_json`).
pub fn split_body(text: &str) -> Result<Body<'_>, Reason> {
    let _ = text;
    todo!("issue 2")
}
