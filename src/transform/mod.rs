//! Pure mapping from one RudderStack event to CleverTap upload records, exactly as RudderStack's
//! own CleverTap destination (rudder-transformer) maps it, so a user moving from RudderStack's
//! cloud mode sees the same profiles and events. No I/O, no async.
//!
//! Fast on purpose: the event is read in one pass borrowing from the input (most of `context`
//! is skipped unread) and records are written straight into strings, with no JSON tree in
//! between (BENCHMARKS.md). Deliberate differences from the reference are listed in
//! [`codes`] and at the functions that make them.

mod alias;
mod date;
pub(crate) mod event;
mod identify;
mod ids;
pub mod json;
mod reader;
mod record;
mod track;
pub(crate) mod ts;
pub(crate) mod value;

use crate::outcome::Reason;
use crate::settings::MappingOptions;
use event::{Event, Field, ParseError, RawPairs};
use ids::Ids;
use json::WriteError;
pub use record::RecordBuf;
use std::borrow::Cow;

/// The stable codes of every rejection the transform gives, with what they mean.
pub mod codes {
    /// The text is not valid JSON.
    pub const INVALID_JSON: &str = "invalid_json";
    /// The JSON value is not an object.
    pub const NOT_AN_OBJECT: &str = "not_an_object";
    /// A value the mapping writes is nested deeper than `json::MAX_NESTING` levels.
    pub const TOO_DEEP: &str = "too_deep";
    /// `type` is absent, null or empty.
    pub const MISSING_TYPE: &str = "missing_type";
    /// `type` is not identify, track, page, screen or alias (in any letter case).
    pub const UNSUPPORTED_TYPE: &str = "unsupported_type";
    /// Neither a userId (or trait id) nor an anonymousId. Deliberate deviation: the reference
    /// sends a record without identity, which CleverTap refuses (code 523).
    pub const MISSING_IDS: &str = "missing_ids";
    /// userId, anonymousId or previousId is an object, array or boolean.
    pub const INVALID_ID: &str = "invalid_id";
    /// track/page/screen without a userId while the destination's `trackAnonymous` is off.
    pub const ANONYMOUS_NOT_ALLOWED: &str = "anonymous_not_allowed";
    /// A track event without `event`.
    pub const MISSING_EVENT_NAME: &str = "missing_event_name";
    /// A track event whose `event` is not a string.
    pub const INVALID_EVENT_NAME: &str = "invalid_event_name";
    /// Order Completed whose products are not a non-empty array of objects.
    pub const INVALID_PRODUCTS: &str = "invalid_products";
    /// `properties` is not an object.
    pub const INVALID_PROPERTIES: &str = "invalid_properties";
    /// `traits` or `context.traits` of an identify is not an object.
    pub const INVALID_TRAITS: &str = "invalid_traits";
    /// An alias without userId.
    pub const MISSING_USER_ID: &str = "missing_user_id";
    /// An alias without previousId.
    pub const MISSING_PREVIOUS_ID: &str = "missing_previous_id";
    /// An input line that is not UTF-8 (the `transform` command reads bytes).
    pub const INVALID_UTF8: &str = "invalid_utf8";
}

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

/// What a rejection is inside the transform.
pub(crate) type Rejection = Reason;

impl Reason {
    /// The rejection for a value that could not be written.
    pub(crate) fn from_write(e: WriteError) -> Reason {
        match e {
            WriteError::TooDeep => Reason::new(
                codes::TOO_DEEP,
                format!("a value is nested deeper than {} levels", json::MAX_NESTING),
            ),
            WriteError::Malformed => Reason::new(codes::INVALID_JSON, "a value is not valid JSON"),
        }
    }
}

/// The traits object of an identify, or a rejection when it is not an object.
fn traits_object<'e, 'a>(
    field: &'e Field<RawPairs<'a>>,
    name: &str,
) -> Result<Option<&'e RawPairs<'a>>, Reason> {
    match field {
        Field::Absent => Ok(None),
        Field::NotObject => Err(Reason::new(
            codes::INVALID_TRAITS,
            format!("{name} must be a JSON object"),
        )),
        Field::Object(p) => Ok(Some(p)),
    }
}

/// Transforms one event given as JSON text.
pub fn transform_event(event_json: &str, opts: MappingOptions) -> Transformed {
    let mut buf = RecordBuf::default();
    let t = transform_event_into(event_json, opts, &mut buf);
    Transformed {
        message_id: t.message_id.map(|m| Box::from(m.as_ref())),
        result: t
            .result
            .map(|_| buf.iter().map(Record::from_json).collect()),
    }
}

/// What [`transform_event_into`] gives for one event; its records are in the [`RecordBuf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended<'e> {
    /// The event's `messageId`, when it has a string one.
    pub message_id: Option<Cow<'e, str>>,
    /// How many records were appended (profile before its device token), or why the event is
    /// rejected (then nothing was appended).
    pub result: Result<usize, Reason>,
}

/// Transforms one event, appending its records to `buf`: the same mapping as
/// [`transform_event`] without an allocation per record once `buf` has grown (callers reuse one
/// buffer for many events and `clear` it as they go).
pub fn transform_event_into<'e>(
    event_json: &'e str,
    opts: MappingOptions,
    buf: &mut RecordBuf,
) -> Appended<'e> {
    let ev = match event::parse(event_json) {
        Ok(ev) => ev,
        Err(e) => {
            return Appended {
                message_id: None,
                result: Err(parse_rejection(&e)),
            };
        }
    };
    let message_id = ev.message_id.and_then(value::as_str);
    let mark = buf.mark();
    buf.reserve(event_json.len());
    let result = match map_event(&ev, opts, buf) {
        Ok(()) => Ok(buf.len() - mark.0),
        Err(reason) => {
            buf.rollback(mark);
            Err(reason)
        }
    };
    Appended { message_id, result }
}

/// The rejection for event text that could not be read.
pub(crate) fn parse_rejection(e: &ParseError) -> Reason {
    match e {
        ParseError::NotAnObject => {
            Reason::new(codes::NOT_AN_OBJECT, "the event is not a JSON object")
        }
        ParseError::Json(e) => Reason::new(
            codes::INVALID_JSON,
            format!("the event is not valid JSON: {e}"),
        ),
    }
}

fn map_event(ev: &Event<'_>, opts: MappingOptions, buf: &mut RecordBuf) -> Result<(), Reason> {
    let call = event_type(ev)?;
    let ids = Ids::of(ev)?;
    if ids.user.is_none() && ids.anonymous.is_none() {
        return Err(Reason::new(
            codes::MISSING_IDS,
            "the event has neither userId nor anonymousId",
        ));
    }
    match call {
        Type::Identify => identify::identify(ev, &ids, opts, buf),
        Type::Alias => alias::alias(ev, buf),
        Type::Track => track::event(ev, &ids, opts, track::Call::Track, buf),
        Type::Page => track::event(ev, &ids, opts, track::Call::Page, buf),
        Type::Screen => track::event(ev, &ids, opts, track::Call::Screen, buf),
    }
}

#[derive(Clone, Copy)]
enum Type {
    Identify,
    Track,
    Page,
    Screen,
    Alias,
}

/// The event type, case-insensitive.
fn event_type(ev: &Event<'_>) -> Result<Type, Reason> {
    let Some(raw) = ev.kind.filter(|r| value::truthy(Some(*r))) else {
        return Err(Reason::new(codes::MISSING_TYPE, "the event has no type"));
    };
    let Some(name) = value::as_str(raw) else {
        return Err(Reason::new(
            codes::UNSUPPORTED_TYPE,
            "the event type must be a string",
        ));
    };
    const TYPES: [(&str, Type); 5] = [
        ("identify", Type::Identify),
        ("track", Type::Track),
        ("page", Type::Page),
        ("screen", Type::Screen),
        ("alias", Type::Alias),
    ];
    Ok(
        match TYPES.iter().find(|(t, _)| value::js_lower_eq(&name, t)) {
            Some((_, call)) => *call,
            None => {
                let shown: String = name.chars().take(64).collect();
                return Err(Reason::new(
                    codes::UNSUPPORTED_TYPE,
                    format!(
                        "event type {shown:?} is not supported: expected identify, track, page, screen or alias"
                    ),
                ));
            }
        },
    )
}

/// The body of an upload request, `{"d":[record,...]}`, built by concatenating the records'
/// JSON text (no re-parsing). Used by the `transform` command and the Lambda alike.
pub fn upload_body<'a>(records: impl IntoIterator<Item = &'a Record>) -> Vec<u8> {
    let mut body = Vec::with_capacity(1024);
    body.extend_from_slice(b"{\"d\":[");
    for (i, r) in records.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(r.as_str().as_bytes());
    }
    body.extend_from_slice(b"]}");
    body
}

#[cfg(test)]
mod tests;
