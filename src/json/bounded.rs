//! Reading a JSON array without keeping more than a bound of its elements: the rest are read
//! (so the text is still checked whole) and counted, never kept. What bounds the memory of a
//! webhook body, an SQS message body and a regulation's users (`MAX_ITEMS_PER_BODY`).

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// The first `max` elements of a sequence, and how many more it has (read, not kept).
pub(crate) fn bounded_seq<'de, A: SeqAccess<'de>>(
    mut seq: A,
    max: usize,
) -> Result<(Vec<&'de RawValue>, usize), A::Error> {
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(16).min(max));
    while items.len() < max {
        match seq.next_element::<&'de RawValue>()? {
            Some(item) => items.push(item),
            None => return Ok((items, 0)),
        }
    }
    let mut beyond = 0;
    while seq.next_element::<IgnoredAny>()?.is_some() {
        beyond += 1;
    }
    Ok((items, beyond))
}

/// Reads a JSON array, keeping at most `max` elements.
struct BoundedArray {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for BoundedArray {
    type Value = (Vec<&'de RawValue>, usize);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BoundedArray {
    type Value = (Vec<&'de RawValue>, usize);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        bounded_seq(seq, self.max)
    }
}

/// The elements of the JSON array `text`, at most `max` of them, and how many more it has.
pub(crate) fn bounded_array(
    text: &str,
    max: usize,
) -> Result<(Vec<&RawValue>, usize), serde_json::Error> {
    read_all(text, BoundedArray { max })
}

/// `seed` over the whole of `text` (nothing but whitespace may follow the value).
pub(crate) fn read_all<'de, T: DeserializeSeed<'de>>(
    text: &'de str,
    seed: T,
) -> Result<T::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}
