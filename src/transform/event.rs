//! The RudderStack event as the mapping reads it, borrowed from the input text in one pass.
//! Only the fields the mapping reads are kept (as raw JSON slices); the rest, most of `context`
//! above all, is skipped without being built. Each part tolerates any JSON type (a `context`
//! that is a string is simply ignored), and a key given twice takes its last value, as
//! JavaScript's `JSON.parse` does.

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// A raw JSON value borrowed from the input.
pub type Raw<'a> = &'a RawValue;

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
}

/// Above this many members a hash index replaces the linear key search.
const LINEAR_SEARCH_MAX: usize = 24;

impl<V> Default for Pairs<'_, V> {
    fn default() -> Self {
        Pairs {
            entries: Vec::new(),
            index: None,
        }
    }
}

impl<'a, V> Pairs<'a, V> {
    pub fn with_capacity(n: usize) -> Self {
        Pairs {
            entries: Vec::with_capacity(n),
            index: None,
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
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
        self.entries.push((key, value));
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
    pub properties: Field<RawPairs<'a>>,
    pub traits: Field<RawPairs<'a>>,
    pub context: Context<'a>,
    pub integrations: Integration<'a>,
}

/// `context.traits`, `context.os.name`, `context.device.token`; nothing else of `context`.
#[derive(Debug, Default)]
pub struct Context<'a> {
    pub traits: Field<RawPairs<'a>>,
    pub os_name: Option<Raw<'a>>,
    pub device_token: Option<Raw<'a>>,
}

/// `integrations.clevertap` (any of its canonical spellings): the device token settings.
#[derive(Debug, Default)]
pub struct Integration<'a> {
    pub device_token_type: Option<Raw<'a>>,
    pub chrome_keys: Option<Raw<'a>>,
}

/// An object key, borrowed when it has no escapes.
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

/// Implements the non-object visits of a lenient visitor: every other JSON type gives `$other`.
macro_rules! other_types {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($other)
        }
    };
}

struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Field<RawPairs<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_types!(Field::NotObject);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Pairs::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Key(key)) = map.next_key()? {
            let value: Raw<'de> = map.next_value()?;
            pairs.insert(key, value);
        }
        Ok(Field::Object(pairs))
    }
}

impl<'de> Deserialize<'de> for Field<RawPairs<'de>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PairsVisitor)
    }
}

/// `{"name": ...}` of `context.os`, or `{"token": ...}` of `context.device`: one member kept.
#[derive(Default)]
struct OneMember<'a>(Option<Raw<'a>>);

struct OneMemberVisitor(&'static str);

impl<'de> Visitor<'de> for OneMemberVisitor {
    type Value = OneMember<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_types!(OneMember(None));
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(Key(key)) = map.next_key()? {
            if key == self.0 {
                found = Some(map.next_value::<Raw<'de>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(OneMember(found))
    }
}

struct OneMemberSeed(&'static str);

impl<'de> de::DeserializeSeed<'de> for OneMemberSeed {
    type Value = OneMember<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(OneMemberVisitor(self.0))
    }
}

struct ContextVisitor;

impl<'de> Visitor<'de> for ContextVisitor {
    type Value = Context<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_types!(Context::default());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ctx = Context::default();
        while let Some(Key(key)) = map.next_key()? {
            match key.as_ref() {
                "traits" => ctx.traits = map.next_value()?,
                "os" => ctx.os_name = map.next_value_seed(OneMemberSeed("name"))?.0,
                "device" => ctx.device_token = map.next_value_seed(OneMemberSeed("token"))?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ctx)
    }
}

impl<'de> Deserialize<'de> for Context<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ContextVisitor)
    }
}

/// The spellings RudderStack accepts for this destination in `integrations`.
const INTEGRATION_NAMES: [&str; 4] = ["clevertap", "CleverTap", "CLEVERTAP", "Clevertap"];

struct IntegrationsVisitor;

impl<'de> Visitor<'de> for IntegrationsVisitor {
    type Value = Integration<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_types!(Integration::default());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = Integration::default();
        while let Some(Key(key)) = map.next_key()? {
            if INTEGRATION_NAMES.contains(&key.as_ref()) {
                if let Field::Object(pairs) = map.next_value::<Field<RawPairs<'de>>>()? {
                    found.device_token_type = pairs.get("deviceTokenType").copied();
                    found.chrome_keys = pairs.get("chromeKeys").copied();
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

impl<'de> Deserialize<'de> for Integration<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntegrationsVisitor)
    }
}

/// The event text was JSON but not an object.
#[derive(Debug)]
pub struct NotAnObject;

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Result<Event<'de>, NotAnObject>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(NotAnObject))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(NotAnObject))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(NotAnObject))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(NotAnObject))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(NotAnObject))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(NotAnObject))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(NotAnObject))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ev = Event::default();
        while let Some(Key(key)) = map.next_key()? {
            match key.as_ref() {
                "type" => ev.kind = Some(map.next_value()?),
                "messageId" => ev.message_id = Some(map.next_value()?),
                "userId" => ev.user_id = Some(map.next_value()?),
                "anonymousId" => ev.anonymous_id = Some(map.next_value()?),
                "previousId" => ev.previous_id = Some(map.next_value()?),
                "event" => ev.event = Some(map.next_value()?),
                "name" => ev.name = Some(map.next_value()?),
                "properties" => ev.properties = map.next_value()?,
                "traits" => ev.traits = map.next_value()?,
                "context" => ev.context = map.next_value()?,
                "integrations" => ev.integrations = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Ok(ev))
    }
}

/// Why event text could not be read.
#[derive(Debug)]
pub enum ParseError {
    Json(serde_json::Error),
    NotAnObject,
}

/// Reads an event from JSON text (one value, nothing after it but whitespace).
pub fn parse(text: &str) -> Result<Event<'_>, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let ev = de.deserialize_any(EventVisitor).map_err(ParseError::Json)?;
    de.end().map_err(ParseError::Json)?;
    ev.map_err(|NotAnObject| ParseError::NotAnObject)
}

/// Reads the members of a raw JSON object (for `overrideFields`); anything else gives none.
pub fn object_members(raw: Raw<'_>) -> Option<RawPairs<'_>> {
    match serde_json::from_str::<Field<RawPairs<'_>>>(raw.get()) {
        Ok(Field::Object(pairs)) => Some(pairs),
        _ => None,
    }
}

/// Reads the elements of a raw JSON array; anything else gives none.
pub fn array_elements(raw: Raw<'_>) -> Option<Vec<Raw<'_>>> {
    if !raw.get().starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<Raw<'_>>>(raw.get()).ok()
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
