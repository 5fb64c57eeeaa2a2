//! Writing one CleverTap record straight into a string: the values the mapping picked, each
//! written the way the reference's JSON would carry it, with no intermediate JSON tree.

use super::event::{Pairs, Raw, RawPairs, object_members};
use super::order::write_stringified;
use crate::js::ts::Ts;
use crate::js::value::{Kind, kind};
use crate::json::reader::array_elements;
use crate::json::writer::{MAX_NESTING, WriteError, write_canonical, write_number_text, write_str};
use std::borrow::Cow;

/// A value placed in `profileData`, `evtData` or a record.
#[derive(Debug, Clone)]
pub enum Val<'a> {
    /// A property as the reference's `convertObjectAndArrayToString` leaves it: primitives as
    /// given, objects and arrays as their `JSON.stringify` text.
    Flat(Raw<'a>),
    /// A value sent as nested JSON (`category-unsubscribe`, `overrideFields`, `Items`, `keys`).
    Nested(Raw<'a>),
    /// Text the mapping built (`Name` from first and last name, `Gender`, event names).
    Text(Cow<'a, str>),
    /// Valid JSON text the mapping found inside a string (`Items` given as JSON text), sent as
    /// nested JSON.
    Json(Cow<'a, str>),
    /// An object or array built from dotted keys (`path.rs`): sent as JSON text, or as nested
    /// JSON when the flag says so (the [`KEPT_NESTED`] members).
    Tree(Box<super::path::Node<'a>>, bool),
}

impl Val<'_> {
    fn is_null(&self) -> bool {
        match self {
            Val::Flat(r) | Val::Nested(r) => kind(*r) == Kind::Null,
            Val::Text(_) | Val::Tree(..) => false,
            Val::Json(t) => t.trim() == "null",
        }
    }
}

/// Members CleverTap takes as objects, so the reference never turns them into JSON text
/// (`stringifyExcludeList` of its `convertObjectAndArrayToString`).
pub const KEPT_NESTED: [&str; 2] = ["category-unsubscribe", "category-resubscribe"];

/// The member key a JavaScript assignment (`payload[key] = value`, `Object.assign`) never creates:
/// it sets the object's prototype instead, so the member never reaches the JSON sent.
pub const PROTO: &str = "__proto__";

/// One member of `evtData` as the reference's `convertObjectAndArrayToString` passes it on:
/// objects and arrays as JSON text except [`KEPT_NESTED`], everything else as given, and
/// nothing for `__proto__`.
pub fn converted<'a>(key: &str, raw: Raw<'a>) -> Option<Val<'a>> {
    if key.len() == 20 && KEPT_NESTED.contains(&key) {
        Some(Val::Nested(raw))
    } else if key == PROTO {
        None
    } else {
        Some(Val::Flat(raw))
    }
}

/// The members of an object being built.
pub type Members<'a> = Pairs<'a, Val<'a>>;

/// The records of one or more events, written one after another into one reused string:
/// no allocation per record once the buffers have grown (BENCHMARKS.md).
#[derive(Debug, Default)]
pub struct RecordBuf {
    text: String,
    /// End offset in `text` of each record, in order.
    ends: Vec<usize>,
    /// Reused for stringified nested values.
    scratch: String,
}

impl RecordBuf {
    /// Forgets every record, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// How many records the buffer holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The records as compact JSON texts, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| self.text.get(a..b).unwrap_or_default())
    }

    /// Records and total bytes, for undoing a partly written event.
    pub(crate) fn mark(&self) -> (usize, usize) {
        (self.ends.len(), self.text.len())
    }

    /// Drops everything written after `mark`.
    pub(crate) fn rollback(&mut self, (records, bytes): (usize, usize)) {
        self.ends.truncate(records);
        self.text.truncate(bytes);
    }

    pub(crate) fn reserve(&mut self, bytes: usize) {
        self.text.reserve(bytes);
    }
}

/// Builds one record's JSON text at the end of a [`RecordBuf`].
pub struct RecordWriter<'b> {
    buf: &'b mut RecordBuf,
}

impl<'b> RecordWriter<'b> {
    pub fn new(buf: &'b mut RecordBuf) -> Self {
        buf.text.push('{');
        RecordWriter { buf }
    }

    /// `"key":` for one of this crate's own key names (ASCII without quotes or backslashes,
    /// so it is written as is).
    fn key(&mut self, key: &'static str) {
        let out = &mut self.buf.text;
        if !out.ends_with('{') {
            out.push(',');
        }
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
    }

    /// `"key":"text"`.
    pub fn text(&mut self, key: &'static str, text: &str) {
        self.key(key);
        write_str(&mut self.buf.text, text);
    }

    /// `"key":value` for a string or number value (identity, objectId, token id).
    pub fn id(&mut self, key: &'static str, raw: Raw<'_>) -> Result<(), WriteError> {
        self.key(key);
        write_scalar(&mut self.buf.text, raw)
    }

    /// `"key":{members}`, leaving out null members when `drop_nulls`.
    pub fn members(
        &mut self,
        key: &'static str,
        members: &Members<'_>,
        drop_nulls: bool,
    ) -> Result<(), WriteError> {
        self.key(key);
        self.buf.text.push('{');
        let mut first = true;
        for (k, v) in members.iter() {
            if drop_nulls && v.is_null() {
                continue;
            }
            if !first {
                self.buf.text.push(',');
            }
            first = false;
            write_member_key(&mut self.buf.text, k);
            self.buf.text.push(':');
            self.value(v)?;
        }
        self.buf.text.push('}');
        Ok(())
    }

    /// `"key":{members}` for an input object whose members all pass on as [`converted`] gives
    /// them (`evtData` of a plain track, page or screen): no copy into [`Members`] first.
    pub fn converted_members(
        &mut self,
        key: &'static str,
        members: &RawPairs<'_>,
    ) -> Result<(), WriteError> {
        self.key(key);
        self.buf.text.push('{');
        let mut first = true;
        for (k, v) in members.iter() {
            let Some(val) = converted(k, *v) else {
                continue;
            };
            if !first {
                self.buf.text.push(',');
            }
            first = false;
            write_member_key(&mut self.buf.text, k);
            self.buf.text.push(':');
            self.value(&val)?;
        }
        self.buf.text.push('}');
        Ok(())
    }

    /// `"key":value` for a nested JSON value without its nulls, empty objects and empty arrays at
    /// any depth (an object or array left empty by that goes too), as the reference's
    /// `removeUndefinedNullValuesAndEmptyObjectArray` leaves it; nothing when nothing is left.
    pub fn pruned(&mut self, key: &'static str, raw: Raw<'_>) -> Result<(), WriteError> {
        let mark = self.buf.text.len();
        self.key(key);
        if !write_pruned(&mut self.buf.text, raw, 0)? {
            self.buf.text.truncate(mark);
        }
        Ok(())
    }

    /// `"ts":...` when there is one.
    pub fn ts(&mut self, ts: Option<Ts<'_>>) {
        match ts {
            None => {}
            Some(Ts::Number(raw)) => {
                self.key("ts");
                write_number_text(&mut self.buf.text, raw.get());
            }
            Some(Ts::Value(n)) => {
                self.key("ts");
                crate::json::writer::write_f64(&mut self.buf.text, n);
            }
            Some(Ts::Kept(raw)) => {
                // Nested too deep to write: no ts, as for any value that is no time.
                let mut text = String::new();
                if write_canonical(&mut text, raw.get()).is_ok() {
                    self.key("ts");
                    self.buf.text.push_str(&text);
                }
            }
        }
    }

    /// Starts a nested object member: `"key":{`. Close it with [`RecordWriter::close`].
    pub fn open(&mut self, key: &'static str) {
        self.key(key);
        self.buf.text.push('{');
    }

    pub fn close(&mut self) {
        self.buf.text.push('}');
    }

    /// Closes the record.
    pub fn finish(self) {
        self.buf.text.push('}');
        self.buf.ends.push(self.buf.text.len());
    }

    fn value(&mut self, v: &Val<'_>) -> Result<(), WriteError> {
        match v {
            Val::Text(t) => {
                write_str(&mut self.buf.text, t);
                Ok(())
            }
            Val::Nested(raw) => write_canonical(&mut self.buf.text, raw.get()),
            Val::Json(text) => write_canonical(&mut self.buf.text, text),
            Val::Tree(node, true) => super::path::write_node(&mut self.buf.text, node),
            Val::Tree(node, false) => {
                self.buf.scratch.clear();
                super::path::write_node(&mut self.buf.scratch, node)?;
                write_str(&mut self.buf.text, &self.buf.scratch);
                Ok(())
            }
            Val::Flat(raw) => match kind(*raw) {
                Kind::Array | Kind::Object => {
                    write_stringified(&mut self.buf.text, *raw, &mut self.buf.scratch)
                }
                _ => write_scalar(&mut self.buf.text, *raw),
            },
        }
    }
}

/// Writes `raw` canonically without nulls, empty objects and empty arrays (see
/// [`RecordWriter::pruned`]); false, with `out` as it was, when nothing is left. Recursion is
/// bounded by [`MAX_NESTING`].
fn write_pruned(out: &mut String, raw: Raw<'_>, depth: usize) -> Result<bool, WriteError> {
    let (open, close) = match kind(raw) {
        Kind::Null => return Ok(false),
        Kind::Object => ('{', '}'),
        Kind::Array => ('[', ']'),
        _ => return write_canonical(out, raw.get()).map(|()| true),
    };
    if depth >= MAX_NESTING {
        return Err(WriteError::TooDeep);
    }
    let start = out.len();
    out.push(open);
    let mut written = 0usize;
    let mut result = Ok(());
    if open == '{' {
        let Some(members) = object_members(raw) else {
            return Err(WriteError::Malformed);
        };
        for (k, v) in members.iter() {
            let mark = out.len();
            if written > 0 {
                out.push(',');
            }
            write_str(out, k);
            out.push(':');
            match write_pruned(out, *v, depth + 1) {
                Ok(true) => written += 1,
                Ok(false) => out.truncate(mark),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    } else {
        let Some(items) = array_elements(raw) else {
            return Err(WriteError::Malformed);
        };
        for v in items {
            let mark = out.len();
            if written > 0 {
                out.push(',');
            }
            match write_pruned(out, v, depth + 1) {
                Ok(true) => written += 1,
                Ok(false) => out.truncate(mark),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    if let Err(e) = result {
        out.truncate(start);
        return Err(e);
    }
    if written == 0 {
        out.truncate(start);
        return Ok(false);
    }
    out.push(close);
    Ok(true)
}

/// Writes a scalar raw value canonically (a string literal, a number as JavaScript writes it).
fn write_scalar(out: &mut String, raw: Raw<'_>) -> Result<(), WriteError> {
    match kind(raw) {
        Kind::Number => {
            write_number_text(out, raw.get());
            Ok(())
        }
        // A validated string literal without escapes is already canonical.
        Kind::String if !raw.get().contains('\\') => {
            out.push_str(raw.get());
            Ok(())
        }
        _ => write_canonical(out, raw.get()),
    }
}

/// Writes a member key. A borrowed key is either one of this crate's constants or a key the
/// reader found without escapes in validated JSON, so it holds no quote, backslash or control
/// character and is copied as is; an owned (decoded) key is escaped. (Takes the `Cow` itself:
/// which variant it is carries the information.)
#[allow(clippy::ptr_arg)]
fn write_member_key(out: &mut String, key: &Cow<'_, str>) {
    match key {
        Cow::Borrowed(k) => {
            debug_assert!(!k.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
            out.push('"');
            out.push_str(k);
            out.push('"');
        }
        Cow::Owned(k) => write_str(out, k),
    }
}
