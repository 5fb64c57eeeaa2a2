//! The key order of JSON text as RudderStack writes it in production: rudder-server decodes each
//! event into Go maps and encodes it again (its encoder sorts map keys bytewise) before the
//! transformer sees it, and JavaScript's `JSON.stringify` then writes an object's array-index
//! keys first, ascending, and the others in the order they were inserted, which is that sorted
//! order. So a nested value sent as JSON text has, at every depth, its index keys (`"2"`,
//! `"10"`) first in numeric order and then every other key in bytewise order, whatever order
//! the producer wrote (docs/contracts.md §4, "Values sent as JSON text").

use super::event::{Raw, object_members};
use crate::js::value::{Kind, kind};
use crate::json::reader::array_elements;
use crate::json::writer::{MAX_NESTING, WriteError, write_canonical, write_str};
use std::cmp::Ordering;

/// The largest array index JavaScript has (2^32 - 2).
const MAX_INDEX: u64 = 4_294_967_294;

/// The value of a key that is an array index in JavaScript: the canonical decimal text of an
/// integer from 0 to 2^32 - 2 (`"0"`, `"10"`; not `"01"`, `"-1"`, `"1.0"`).
pub fn index_key(key: &str) -> Option<u64> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    key.parse::<u64>().ok().filter(|n| *n <= MAX_INDEX)
}

/// The production order of two keys: index keys first, ascending; then bytewise.
pub fn key_cmp(a: &str, b: &str) -> Ordering {
    match (index_key(a), index_key(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.as_bytes().cmp(b.as_bytes()),
    }
}

/// Writes `raw` (validated JSON text) as `JSON.stringify` writes the value rudder-server hands
/// the transformer: canonical numbers and strings, no whitespace, a repeated key once (its last
/// value), and every object's keys in production order ([`key_cmp`]).
pub fn write_ordered(out: &mut String, raw: Raw<'_>) -> Result<(), WriteError> {
    write_ordered_at(out, raw, 1)
}

/// [`write_ordered`] for a value found at nesting level `depth` (1 for a value of its own).
pub fn write_ordered_at(out: &mut String, raw: Raw<'_>, depth: usize) -> Result<(), WriteError> {
    match kind(raw) {
        Kind::Object | Kind::Array if depth > MAX_NESTING => Err(WriteError::TooDeep),
        Kind::Object => {
            let members = object_members(raw).ok_or(WriteError::Malformed)?;
            let mut entries: Vec<_> = members.iter().collect();
            if !entries.is_sorted_by(|a, b| key_cmp(a.0, b.0) != Ordering::Greater) {
                entries.sort_by(|a, b| key_cmp(a.0, b.0));
            }
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, key);
                out.push(':');
                write_ordered_at(out, *value, depth + 1)?;
            }
            out.push('}');
            Ok(())
        }
        Kind::Array => {
            let items = array_elements(raw).ok_or(WriteError::Malformed)?;
            out.push('[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_ordered_at(out, item, depth + 1)?;
            }
            out.push(']');
            Ok(())
        }
        _ => write_canonical(out, raw.get()),
    }
}

/// Writes `raw` (validated JSON text) as `JSON.stringify(value)` would, wrapped in a JSON string:
/// what RudderStack sends for a nested property, its keys in production order (`order.rs`).
/// `scratch` is reused between calls.
pub fn write_stringified(
    out: &mut String,
    raw: Raw<'_>,
    scratch: &mut String,
) -> Result<(), WriteError> {
    scratch.clear();
    write_ordered(scratch, raw)?;
    write_str(out, scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn ordered(text: &str) -> String {
        let mut out = String::new();
        write_ordered(&mut out, Raw::parse(text).unwrap()).unwrap();
        out
    }

    #[test]
    fn index_keys_come_first_ascending_then_the_rest_bytewise_at_every_depth() {
        assert_eq!(
            ordered(r#"{"zeta":1,"alpha":{"y":2,"b":3},"10":"ten","Beta":4,"2":"two"}"#),
            r#"{"2":"two","10":"ten","Beta":4,"alpha":{"b":3,"y":2},"zeta":1}"#
        );
        assert_eq!(
            ordered(r#"[{"b":1,"a":[{"d":1,"c":2}]},3]"#),
            r#"[{"a":[{"c":2,"d":1}],"b":1},3]"#
        );
        // Not index keys: leading zeros, signs, fractions, past 2^32 - 2; "é" after "z" bytewise.
        assert_eq!(
            ordered(r#"{"é":1,"z":2,"01":3,"-1":4,"4294967295":5,"4294967294":6,"1.5":7}"#),
            r#"{"4294967294":6,"-1":4,"01":3,"1.5":7,"4294967295":5,"z":2,"é":1}"#
        );
    }

    #[test]
    fn a_repeated_key_is_written_once_with_its_last_value() {
        assert_eq!(ordered(r#"{"b":1,"a":2,"b":3}"#), r#"{"a":2,"b":3}"#);
    }

    #[test]
    fn nesting_past_the_limit_is_refused() {
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        let mut out = String::new();
        assert_eq!(
            write_ordered(&mut out, Raw::parse(&deep).unwrap()),
            Err(WriteError::TooDeep)
        );
    }

    /// Any JSON value, with keys drawn so that index keys, near-index keys and plain keys mix.
    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            "[0-9]{1,3}",
            "0[0-9]",
            "[a-zA-Z_é]{0,4}",
            Just("4294967295".to_owned())
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-1000i64..1000).prop_map(Value::from),
            "[a-z\"\\\\]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_keeps_its_content_and_gets_production_order_whatever_the_input_order(
            v in json_value(), seed in any::<u64>()
        ) {
            // The same value with every object's members in a shuffled order.
            fn shuffled(v: &Value, seed: u64, out: &mut String) {
                match v {
                    Value::Object(m) => {
                        let mut members: Vec<_> = m.iter().collect();
                        let n = members.len().max(1) as u64;
                        members.rotate_left((seed % n) as usize);
                        if seed % 2 == 1 { members.reverse(); }
                        out.push('{');
                        for (i, (k, v)) in members.into_iter().enumerate() {
                            if i > 0 { out.push(','); }
                            out.push_str(&serde_json::to_string(k).unwrap());
                            out.push(':');
                            shuffled(v, seed / 3 + 7, out);
                        }
                        out.push('}');
                    }
                    Value::Array(a) => {
                        out.push('[');
                        for (i, v) in a.iter().enumerate() {
                            if i > 0 { out.push(','); }
                            shuffled(v, seed / 5 + 1, out);
                        }
                        out.push(']');
                    }
                    other => out.push_str(&other.to_string()),
                }
            }
            let mut text = String::new();
            shuffled(&v, seed, &mut text);
            let written = ordered(&text);
            // The same value (serde_json without preserve_order compares maps as maps) ...
            let back: Value = serde_json::from_str(&written).unwrap();
            prop_assert_eq!(&back, &v);
            // ... with its keys in production order at every depth, read back in written order.
            let check = |text: &str| -> bool {
                fn walk(raw: Raw<'_>) -> bool {
                    match kind(raw) {
                        Kind::Object => {
                            let m = object_members(raw).unwrap();
                            let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_ref()).collect();
                            keys.is_sorted_by(|a, b| key_cmp(a, b) == Ordering::Less)
                                && m.iter().all(|(_, v)| walk(*v))
                        }
                        Kind::Array => array_elements(raw).unwrap().into_iter().all(walk),
                        _ => true,
                    }
                }
                walk(Raw::parse(text).unwrap())
            };
            prop_assert!(check(&written), "{}", written);
            // Writing the written text again changes nothing.
            prop_assert_eq!(ordered(&written), written);
        }
    }
}
