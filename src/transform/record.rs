//! Writing one CleverTap record straight into a string: the values the mapping picked, each
//! written the way the reference's JSON would carry it, with no intermediate JSON tree.

use super::event::{Pairs, Raw};
use super::json::{WriteError, write_canonical, write_number_text, write_str, write_stringified};
use super::ts::Ts;
use super::value::{Kind, kind};
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
}

impl Val<'_> {
    fn is_null(&self) -> bool {
        match self {
            Val::Flat(r) | Val::Nested(r) => kind(r) == Kind::Null,
            Val::Text(_) => false,
        }
    }
}

/// The members of an object being built.
pub type Members<'a> = Pairs<'a, Val<'a>>;

/// Builds one record's JSON text.
pub struct RecordWriter<'s> {
    pub out: String,
    scratch: &'s mut String,
}

impl<'s> RecordWriter<'s> {
    pub fn new(capacity: usize, scratch: &'s mut String) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push('{');
        RecordWriter { out, scratch }
    }

    fn key(&mut self, key: &str) {
        if !self.out.ends_with('{') {
            self.out.push(',');
        }
        write_str(&mut self.out, key);
        self.out.push(':');
    }

    /// `"key":"text"`.
    pub fn text(&mut self, key: &str, text: &str) {
        self.key(key);
        write_str(&mut self.out, text);
    }

    /// `"key":value` for a string or number value (identity, objectId, token id).
    pub fn id(&mut self, key: &str, raw: Raw<'_>) -> Result<(), WriteError> {
        self.key(key);
        write_scalar(&mut self.out, raw)
    }

    /// `"key":{members}`, leaving out null members when `drop_nulls`.
    pub fn members(
        &mut self,
        key: &str,
        members: &Members<'_>,
        drop_nulls: bool,
    ) -> Result<(), WriteError> {
        self.key(key);
        self.out.push('{');
        let mut first = true;
        for (k, v) in members.iter() {
            if drop_nulls && v.is_null() {
                continue;
            }
            if !first {
                self.out.push(',');
            }
            first = false;
            write_str(&mut self.out, k);
            self.out.push(':');
            self.value(v)?;
        }
        self.out.push('}');
        Ok(())
    }

    /// `"key":value` for a nested JSON value written as is.
    pub fn nested(&mut self, key: &str, raw: Raw<'_>) -> Result<(), WriteError> {
        self.key(key);
        write_canonical(&mut self.out, raw.get())
    }

    /// `"ts":...` when there is one.
    pub fn ts(&mut self, ts: Option<Ts<'_>>) {
        match ts {
            None => {}
            Some(Ts::Number(raw)) => {
                self.key("ts");
                write_number_text(&mut self.out, raw.get());
            }
            Some(Ts::Value(n)) => {
                self.key("ts");
                super::json::write_f64(&mut self.out, n);
            }
        }
    }

    /// Starts a nested object member: `"key":{`. Close it with [`RecordWriter::close`].
    pub fn open(&mut self, key: &str) {
        self.key(key);
        self.out.push('{');
    }

    pub fn close(&mut self) {
        self.out.push('}');
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }

    fn value(&mut self, v: &Val<'_>) -> Result<(), WriteError> {
        match v {
            Val::Text(t) => {
                write_str(&mut self.out, t);
                Ok(())
            }
            Val::Nested(raw) => write_canonical(&mut self.out, raw.get()),
            Val::Flat(raw) => match kind(raw) {
                Kind::Array | Kind::Object => {
                    write_stringified(&mut self.out, raw.get(), self.scratch)
                }
                _ => write_scalar(&mut self.out, raw),
            },
        }
    }
}

/// Writes a scalar raw value canonically (a string literal, a number as JavaScript writes it).
fn write_scalar(out: &mut String, raw: Raw<'_>) -> Result<(), WriteError> {
    match kind(raw) {
        Kind::Number => {
            write_number_text(out, raw.get());
            Ok(())
        }
        _ => write_canonical(out, raw.get()),
    }
}
