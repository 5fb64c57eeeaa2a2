//! Pure mapping from one RudderStack event to CleverTap upload records, exactly as RudderStack's
//! own CleverTap destination (rudder-transformer) maps it, so a user moving from RudderStack's
//! cloud mode sees the same profiles and events. No I/O, no async.
//!
//! Every event ends one of three ways ([`Mapped`]): its records; filtered, dropped on purpose
//! as RudderStack drops it before its transformer (an `integrations` object that turns
//! CleverTap off, denied consent, a message type CleverTap does not take, the destination's
//! event allow or deny list); or rejected, a bad event. Between the filters and the mapping,
//! dynamic settings are resolved for the event (`dynamic.rs`), as the reference does.
//!
//! Fast on purpose: the event is read in one pass borrowing from the input (most of `context`
//! is skipped unread) and records are written straight into strings, with no JSON tree in
//! between (BENCHMARKS.md). Deliberate differences from the reference are listed in
//! [`codes`] and at the functions that make them.

mod alias;
pub mod dynamic;
pub(crate) mod event;
mod filter;
mod identify;
mod ids;
mod order;
mod path;
mod record;
mod track;

use crate::js::value;
use crate::json::writer::WriteError;
use crate::outcome::Reason;
use crate::settings::{Account, DestinationSettings, Filters, MappingOptions, NO_FILTERS};
use event::{Event, Field, ParseError, RawPairs};
use ids::Ids;
pub use record::RecordBuf;
use std::borrow::Cow;
use std::sync::Arc;

pub use crate::codes;

/// One CleverTap upload record as compact JSON text (`{"type":"event",...}`), and the account
/// it goes to when dynamic config sent its event to another one than the settings' own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    json: Box<str>,
    account: Option<Arc<Account>>,
}

impl Record {
    /// Wraps JSON text the transform wrote. Callers outside the transform use this only in tests.
    pub fn from_json(json: impl Into<Box<str>>) -> Self {
        Record {
            json: json.into(),
            account: None,
        }
    }

    /// The record, going to `account` instead of the settings' own.
    pub fn with_account(mut self, account: Option<Arc<Account>>) -> Self {
        self.account = account;
        self
    }

    /// The account the record goes to, when it is not the settings' own (dynamic config).
    pub fn account(&self) -> Option<&Account> {
        self.account.as_deref()
    }

    /// The record as compact JSON text, ready to be placed in `{"d":[...]}`.
    pub fn as_str(&self) -> &str {
        &self.json
    }
}

/// How one event ends: records to send, filtered (dropped on purpose, not an error), or
/// rejected (a bad event). `T` is what the records are: a `Vec<Record>`, or a count of records
/// appended to a [`RecordBuf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped<T> {
    /// The records, in upload order (profile before its device token).
    Records(T),
    /// Dropped on purpose: why (a code of [`codes`] such as `consent_denied`, and a message).
    Filtered(Reason),
    /// Not a usable event: why.
    Rejected(Reason),
}

impl<T> Mapped<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Mapped<U> {
        match self {
            Mapped::Records(t) => Mapped::Records(f(t)),
            Mapped::Filtered(r) => Mapped::Filtered(r),
            Mapped::Rejected(r) => Mapped::Rejected(r),
        }
    }

    /// The records, unless filtered or rejected.
    pub fn records(&self) -> Option<&T> {
        match self {
            Mapped::Records(t) => Some(t),
            _ => None,
        }
    }

    pub fn into_records(self) -> Option<T> {
        match self {
            Mapped::Records(t) => Some(t),
            _ => None,
        }
    }

    /// Why the event is filtered or rejected.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Mapped::Records(_) => None,
            Mapped::Filtered(r) | Mapped::Rejected(r) => Some(r),
        }
    }

    pub fn is_filtered(&self) -> bool {
        matches!(self, Mapped::Filtered(_))
    }

    pub fn is_rejected(&self) -> bool {
        matches!(self, Mapped::Rejected(_))
    }

    /// `"ok"`, `"filtered"` or `"rejected"`, as the `transform` command reports it.
    pub fn status(&self) -> &'static str {
        match self {
            Mapped::Records(_) => "ok",
            Mapped::Filtered(_) => "filtered",
            Mapped::Rejected(_) => "rejected",
        }
    }
}

/// What the transform reads from a destination's settings: the mapping options and the
/// filters. A cheap view (a copy of two booleans and a reference), from a
/// [`DestinationSettings`], or from [`MappingOptions`] alone (then nothing but the message types
/// RudderStack never sends to CleverTap is filtered).
#[derive(Debug, Clone, Copy)]
pub struct TransformOptions<'s> {
    pub mapping: MappingOptions,
    pub filters: &'s Filters,
    /// The settings, when some of them are dynamic (`dynamic.rs`): resolved per event.
    pub dynamic: Option<&'s DestinationSettings>,
}

impl From<MappingOptions> for TransformOptions<'static> {
    fn from(mapping: MappingOptions) -> Self {
        TransformOptions {
            mapping,
            filters: &NO_FILTERS,
            dynamic: None,
        }
    }
}

impl<'s> From<&'s DestinationSettings> for TransformOptions<'s> {
    fn from(settings: &'s DestinationSettings) -> Self {
        TransformOptions {
            mapping: settings.mapping,
            filters: &settings.filters,
            dynamic: settings.dynamic.is_some().then_some(settings),
        }
    }
}

/// The result of transforming one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transformed {
    /// The event's `messageId`, when it has a string one.
    pub message_id: Option<Box<str>>,
    /// The records in upload order (profile before its device token), or why the event is
    /// filtered or rejected.
    pub result: Mapped<Vec<Record>>,
}

/// What a rejection is inside the transform.
pub(crate) type Rejection = Reason;

impl Reason {
    /// The rejection for a value that could not be written.
    pub(crate) fn from_write(e: WriteError) -> Reason {
        match e {
            WriteError::TooDeep => Reason::new(
                codes::TOO_DEEP,
                format!(
                    "a value is nested deeper than {} levels",
                    crate::json::writer::MAX_NESTING
                ),
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

/// Transforms one event given as JSON text, for a destination's settings (`&DestinationSettings`,
/// a [`TransformOptions`], or [`MappingOptions`] alone).
pub fn transform_event<'s>(event_json: &str, opts: impl Into<TransformOptions<'s>>) -> Transformed {
    let mut buf = RecordBuf::default();
    let t = transform_event_into(event_json, opts, &mut buf);
    let account = t.account.map(Arc::new);
    Transformed {
        message_id: t.message_id.map(|m| Box::from(m.as_ref())),
        result: t.result.map(|_| {
            buf.iter()
                .map(|json| Record::from_json(json).with_account(account.clone()))
                .collect()
        }),
    }
}

/// What [`transform_event_into`] gives for one event; its records are in the [`RecordBuf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended<'e> {
    /// The event's `messageId`, when it has a string one.
    pub message_id: Option<Cow<'e, str>>,
    /// How many records were appended (profile before its device token), or why the event is
    /// filtered or rejected (then nothing was appended).
    pub result: Mapped<usize>,
    /// The account the records go to when dynamic config chose another one than the
    /// settings' own.
    pub account: Option<Account>,
}

/// Transforms one event, appending its records to `buf`: the same mapping as
/// [`transform_event`] without an allocation per record once `buf` has grown (callers reuse one
/// buffer for many events and `clear` it as they go). The event is read once; filtering looks
/// at what that read kept, and costs nothing for a destination without consent or event filter
/// settings beyond a look at the event type.
pub fn transform_event_into<'e, 's>(
    event_json: &'e str,
    opts: impl Into<TransformOptions<'s>>,
    buf: &mut RecordBuf,
) -> Appended<'e> {
    let opts = opts.into();
    let ev = match event::parse(event_json) {
        Ok(ev) => ev,
        Err(e) => {
            return Appended {
                message_id: None,
                result: Mapped::Rejected(parse_rejection(&e)),
                account: None,
            };
        }
    };
    let message_id = ev.message_id.and_then(value::as_str);
    let done = |result, account| Appended {
        message_id: message_id.clone(),
        result,
        account,
    };
    if let Some(reason) = filter::filtered(&ev, opts.filters) {
        return done(Mapped::Filtered(reason), None);
    }
    // Dynamic config, as the reference applies it after rudder-server's filters and before the
    // mapping: the settings resolved for this event, the fields they took removed from it.
    let resolved = match opts.dynamic.map(|s| dynamic::resolve(event_json, s)) {
        None => None,
        Some(Ok(resolved)) => Some(resolved),
        Some(Err(reason)) => return done(Mapped::Rejected(reason), None),
    };
    let mapping = resolved.as_ref().map_or(opts.mapping, |r| r.mapping);
    let mark = buf.mark();
    buf.reserve(event_json.len());
    let mapped = match resolved.as_ref().and_then(|r| r.text.as_deref()) {
        None => map_event(&ev, mapping, buf),
        Some(text) => match event::parse(text) {
            Ok(rest) => map_event(&rest, mapping, buf),
            Err(e) => Err(parse_rejection(&e)),
        },
    };
    match mapped {
        Ok(()) => done(
            Mapped::Records(buf.len() - mark.0),
            resolved.and_then(|r| r.account),
        ),
        Err(reason) => {
            buf.rollback(mark);
            done(Mapped::Rejected(reason), None)
        }
    }
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
        Type::Alias => alias::alias(ev, opts, buf),
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
    // rudder-server refuses a blank type (status 400) before its filter.
    if name.trim().is_empty() {
        return Err(Reason::new(codes::MISSING_TYPE, "the event type is blank"));
    }
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
    crate::clevertap::request::write_body(
        crate::clevertap::request::Call::Upload,
        records.into_iter().map(Record::as_str),
        &mut body,
    );
    body
}

/// The `ts` of a record that has none of its own when `eventTimestampAsTs` is on: the event's
/// `timestamp`, else its `originalTimestamp`, read as any `ts` is.
pub(crate) fn event_ts<'a>(
    opts: crate::settings::MappingOptions,
    ev: &Event<'a>,
) -> Option<crate::js::ts::Ts<'a>> {
    if !opts.event_timestamp_as_ts {
        return None;
    }
    crate::js::ts::ts(ev.timestamp).or_else(|| crate::js::ts::ts(ev.original_timestamp))
}

#[cfg(test)]
mod tests;
