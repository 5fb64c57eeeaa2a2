//! The RudderStack event as the mapping reads it, borrowed from the input text in one pass
//! (`reader.rs`). Only the fields the mapping reads are kept (as raw JSON slices); the rest, most
//! of `context` above all, is skipped without being built. Each part tolerates any JSON type (a
//! `context` that is a string is simply ignored), and a key given twice takes its last value, as
//! JavaScript's `JSON.parse` does.

pub use crate::json::reader::Raw;
use crate::json::reader::{Reader, SyntaxError};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// An object field that may be absent, null, not an object, or an object.
#[derive(Debug, Default)]
pub enum Field<T> {
    #[default]
    Absent,
    NotObject,
    Object(T),
}

impl<T> Field<T> {
    pub fn object(&self) -> Option<&T> {
        match self {
            Field::Object(t) => Some(t),
            _ => None,
        }
    }
}

/// An object's members in order of first appearance; a repeated key keeps its first position
/// and takes its last value (JavaScript object semantics).
#[derive(Debug)]
pub struct Pairs<'a, V> {
    entries: Vec<(Cow<'a, str>, V)>,
    index: Option<HashMap<Cow<'a, str>, usize>>,
    /// One bit per [`key_bit`] of every key held: a clear bit proves a key absent, so most
    /// lookups (and the duplicate check of every insert) skip the linear search.
    seen: u64,
}

/// A cheap 6-bit fingerprint of a key (length, first and last byte).
fn key_bit(key: &str) -> u64 {
    let b = key.as_bytes();
    let first = b.first().copied().unwrap_or(0) as usize;
    let last = b.last().copied().unwrap_or(0) as usize;
    1 << ((b.len() * 7 + first * 3 + last) % 64)
}

/// Above this many members a hash index replaces the linear key search.
const LINEAR_SEARCH_MAX: usize = 24;

impl<V> Default for Pairs<'_, V> {
    fn default() -> Self {
        Pairs {
            entries: Vec::new(),
            index: None,
            seen: 0,
        }
    }
}

impl<'a, V> Pairs<'a, V> {
    pub fn with_capacity(n: usize) -> Self {
        Pairs {
            entries: Vec::with_capacity(n),
            index: None,
            seen: 0,
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        if self.seen & key_bit(key) == 0 {
            return None;
        }
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|(k, _)| k == key),
        }
    }

    /// Sets `key` to `value`: replaces the value in place if the key exists, else appends.
    pub fn insert(&mut self, key: Cow<'a, str>, value: V) {
        if let Some(i) = self.position(&key) {
            if let Some(slot) = self.entries.get_mut(i) {
                slot.1 = value;
            }
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.entries.len());
        } else if self.entries.len() >= LINEAR_SEARCH_MAX {
            let mut index: HashMap<Cow<'a, str>, usize> = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            index.insert(key.clone(), self.entries.len());
            self.index = Some(index);
        }
        self.seen |= key_bit(&key);
        self.entries.push((key, value));
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.position(key)
            .and_then(|i| self.entries.get_mut(i))
            .map(|(_, v)| v)
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.position(key)
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Cow<'a, str>, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The members of a JSON object as raw values.
pub type RawPairs<'a> = Pairs<'a, Raw<'a>>;

/// The fields of an event the mapping reads.
#[derive(Debug, Default)]
pub struct Event<'a> {
    pub kind: Option<Raw<'a>>,
    pub message_id: Option<Raw<'a>>,
    pub user_id: Option<Raw<'a>>,
    pub anonymous_id: Option<Raw<'a>>,
    pub previous_id: Option<Raw<'a>>,
    pub event: Option<Raw<'a>>,
    pub name: Option<Raw<'a>>,
    pub timestamp: Option<Raw<'a>>,
    pub original_timestamp: Option<Raw<'a>>,
    pub properties: Field<RawPairs<'a>>,
    pub traits: Field<RawPairs<'a>>,
    pub context: Context<'a>,
    pub integrations: Integration<'a>,
}

/// `context.traits`, `context.os.name`, `context.device.token`, `context.consentManagement`;
/// nothing else of `context`.
#[derive(Debug, Default)]
pub struct Context<'a> {
    pub traits: Field<RawPairs<'a>>,
    pub os_name: Option<Raw<'a>>,
    pub device_token: Option<Raw<'a>>,
    pub consent: ConsentInfo<'a>,
}

/// `context.consentManagement`: the user's consent as the source recorded it (rudder-server's
/// `ConsentManagementInfo`), kept raw and read only when the destination has consent settings.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsentInfo<'a> {
    pub denied_consent_ids: Option<Raw<'a>>,
    pub provider: Option<Raw<'a>>,
    pub resolution_strategy: Option<Raw<'a>>,
}

fn consent_info<'a>(r: &mut Reader<'a>) -> Result<ConsentInfo<'a>, SyntaxError> {
    let mut info = ConsentInfo::default();
    if r.peek() != Some(b'{') {
        return r.value().map(|_| info);
    }
    r.members(|r, key| {
        let value = r.value()?;
        match key.as_ref() {
            "deniedConsentIds" => info.denied_consent_ids = Some(value),
            "provider" => info.provider = Some(value),
            "resolutionStrategy" => info.resolution_strategy = Some(value),
            _ => {}
        }
        Ok(())
    })?;
    Ok(info)
}

/// The event's `integrations` object: `integrations.clevertap` under each of its canonical
/// spellings, in the reference's order of lookup (`DestCanonicalNames`), the device token
/// settings read only when a token is sent; and what rudder-server's routing reads
/// (`processor/integrations`): whether the value is an object at all, its `All` flag and the
/// member named exactly `CleverTap` (the destination's display name).
#[derive(Debug, Default)]
pub struct Integration<'a> {
    pub by_spelling: [Option<Raw<'a>>; 4],
    /// `integrations` is present and not an object (null included).
    pub not_object: bool,
    /// `integrations.All`.
    pub all: Option<Raw<'a>>,
    /// `integrations.CleverTap`.
    pub display_name: Option<Raw<'a>>,
}

impl<'a> Integration<'a> {
    /// The first truthy value, as the reference's `getIntegrationsObj` picks it.
    pub fn clevertap(&self) -> Option<Raw<'a>> {
        self.by_spelling
            .iter()
            .copied()
            .find(|r| crate::js::value::truthy(*r))
            .flatten()
    }
}

/// An object key, borrowed when it has no escapes (used by `input.rs` with serde_json).
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An object member the mapping reads as an object: absent when null, `NotObject` for any
/// other type (read as serde_json would read a typed value).
fn pairs<'a>(r: &mut Reader<'a>) -> Result<Field<RawPairs<'a>>, SyntaxError> {
    match r.peek() {
        Some(b'{') => {
            let mut pairs = Pairs::with_capacity(8);
            r.members(|r, key| {
                pairs.insert(key, r.value()?);
                Ok(())
            })?;
            Ok(Field::Object(pairs))
        }
        Some(b'n') => r.value().map(|_| Field::Absent),
        _ => r.typed_value().map(|_| Field::NotObject),
    }
}

/// `{"name": ...}` of `context.os`, or `{"token": ...}` of `context.device`: one member kept.
fn one_member<'a>(r: &mut Reader<'a>, name: &str) -> Result<Option<Raw<'a>>, SyntaxError> {
    if r.peek() != Some(b'{') {
        return r.typed_value().map(|_| None);
    }
    let mut found = None;
    r.members(|r, key| {
        let value = r.value()?;
        if key == name {
            found = Some(value);
        }
        Ok(())
    })?;
    Ok(found)
}

fn context<'a>(r: &mut Reader<'a>) -> Result<Context<'a>, SyntaxError> {
    let mut ctx = Context::default();
    if r.peek() != Some(b'{') {
        return r.typed_value().map(|_| ctx);
    }
    r.members(|r, key| {
        match key.as_ref() {
            "traits" => ctx.traits = pairs(r)?,
            "os" => ctx.os_name = one_member(r, "name")?,
            "device" => ctx.device_token = one_member(r, "token")?,
            "consentManagement" => ctx.consent = consent_info(r)?,
            _ => {
                r.value()?;
            }
        }
        Ok(())
    })?;
    Ok(ctx)
}

/// The spellings RudderStack accepts for this destination in `integrations`, in its order.
const INTEGRATION_NAMES: [&str; 4] = ["clevertap", "Clevertap", "CleverTap", "CLEVERTAP"];

fn integrations<'a>(r: &mut Reader<'a>) -> Result<Integration<'a>, SyntaxError> {
    let mut found = Integration::default();
    if r.peek() != Some(b'{') {
        found.not_object = true;
        return r.typed_value().map(|_| found);
    }
    r.members(|r, key| {
        let value = r.value()?;
        match key.as_ref() {
            "All" => found.all = Some(value),
            "CleverTap" => found.display_name = Some(value),
            _ => {}
        }
        if let Some(i) = INTEGRATION_NAMES.iter().position(|n| *n == key.as_ref())
            && let Some(slot) = found.by_spelling.get_mut(i)
        {
            *slot = Some(value);
        }
        Ok(())
    })?;
    Ok(found)
}

/// Why event text could not be read.
#[derive(Debug)]
pub enum ParseError {
    Json(SyntaxError),
    NotAnObject,
}

/// Reads an event from JSON text (one value, nothing after it but whitespace).
pub fn parse(text: &str) -> Result<Event<'_>, ParseError> {
    let mut r = Reader::new(text);
    let ev = if r.peek() == Some(b'{') {
        let mut ev = Event::default();
        r.members(|r, key| {
            match key.as_ref() {
                "type" => ev.kind = Some(r.value()?),
                "messageId" => ev.message_id = Some(r.value()?),
                "userId" => ev.user_id = Some(r.value()?),
                "anonymousId" => ev.anonymous_id = Some(r.value()?),
                "previousId" => ev.previous_id = Some(r.value()?),
                "event" => ev.event = Some(r.value()?),
                "name" => ev.name = Some(r.value()?),
                "timestamp" => ev.timestamp = Some(r.value()?),
                "originalTimestamp" => ev.original_timestamp = Some(r.value()?),
                "properties" => ev.properties = pairs(r)?,
                "traits" => ev.traits = pairs(r)?,
                "context" => ev.context = context(r)?,
                "integrations" => ev.integrations = integrations(r)?,
                _ => {
                    r.value()?;
                }
            }
            Ok(())
        })
        .map_err(ParseError::Json)?;
        Ok(ev)
    } else {
        r.typed_value().map_err(ParseError::Json)?;
        Err(ParseError::NotAnObject)
    };
    r.end().map_err(ParseError::Json)?;
    ev
}

/// Reads the members of a raw JSON object (for `overrideFields`); anything else gives none.
pub fn object_members(raw: Raw<'_>) -> Option<RawPairs<'_>> {
    let mut r = Reader::new(raw.get());
    match pairs(&mut r) {
        Ok(Field::Object(pairs)) => Some(pairs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_keeps_its_first_position_and_takes_its_last_value() {
        let ev = parse(r#"{"traits":{"a":1,"b":2,"a":3},"type":"x","type":"identify"}"#).unwrap();
        let traits = ev.traits.object().unwrap();
        let got: Vec<(&str, &str)> = traits.iter().map(|(k, v)| (k.as_ref(), v.get())).collect();
        assert_eq!(got, vec![("a", "3"), ("b", "2")]);
        assert_eq!(ev.kind.unwrap().get(), "\"identify\"");
    }

    #[test]
    fn a_context_of_the_wrong_type_is_ignored_and_the_rest_is_skipped() {
        let ev = parse(r#"{"context":"oops","type":"track"}"#).unwrap();
        assert!(ev.context.traits.object().is_none());
        let ev = parse(
            r#"{"context":{"page":{"x":[1,{"y":2}]},"os":{"name":"iOS","version":"17"},"device":{"token":"t"},"traits":{"k":"v"}}}"#,
        )
        .unwrap();
        assert_eq!(ev.context.os_name.unwrap().get(), "\"iOS\"");
        assert_eq!(ev.context.device_token.unwrap().get(), "\"t\"");
        assert_eq!(ev.context.traits.object().unwrap().len(), 1);
    }

    #[test]
    fn many_members_switch_to_a_hash_index_and_still_deduplicate() {
        let mut pairs: Pairs<'_, u32> = Pairs::default();
        for i in 0..100 {
            pairs.insert(Cow::Owned(format!("k{i}")), i);
        }
        pairs.insert(Cow::Borrowed("k3"), 1000);
        assert_eq!(pairs.len(), 100);
        assert_eq!(pairs.get("k3"), Some(&1000));
        assert_eq!(pairs.get("k99"), Some(&99));
    }

    #[test]
    fn non_objects_and_broken_text_are_told_apart() {
        assert!(matches!(parse("[1,2]"), Err(ParseError::NotAnObject)));
        assert!(matches!(parse("\"x\""), Err(ParseError::NotAnObject)));
        assert!(matches!(parse("{\"a\":"), Err(ParseError::Json(_))));
        assert!(matches!(parse("{} {}"), Err(ParseError::Json(_))));
    }
}
