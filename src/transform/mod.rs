//! Pure mapping from one RudderStack event to CleverTap upload records, exactly as RudderStack's
//! own CleverTap destination (rudder-transformer) maps it. No I/O, no async.
//!
//! SKELETON: the public signatures below are the contract other modules build on; the bodies
//! are filled in by the transform work (issue 2).

use crate::outcome::Reason;
use crate::settings::MappingOptions;

/// One CleverTap upload record as compact JSON text (`{"type":"event",...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    json: Box<str>,
}

impl Record {
    /// Wraps JSON text the transform wrote. Callers outside the transform use this only in tests.
    pub fn from_json(json: impl Into<Box<str>>) -> Self {
        Record { json: json.into() }
    }

    /// The record as compact JSON text, ready to be placed in `{"d":[...]}`.
    pub fn as_str(&self) -> &str {
        &self.json
    }
}

/// The result of transforming one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transformed {
    /// The event's `messageId`, when it has a string one.
    pub message_id: Option<Box<str>>,
    /// The records in upload order (profile before its device token), or why the event is rejected.
    pub result: Result<Vec<Record>, Reason>,
}

/// Transforms one event given as JSON text.
pub fn transform_event(event_json: &str, opts: MappingOptions) -> Transformed {
    let _ = (event_json, opts);
    todo!("issue 2")
}
