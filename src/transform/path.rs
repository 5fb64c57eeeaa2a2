//! Dotted keys as paths, as the reference writes custom traits and Order Completed's extra
//! properties: its `extractCustomFields` stores each kept key with a path setter (set-value
//! 4.1.0 through @rudderstack/integrations-lib), so `{"address.city": "Pune"}` becomes
//! `address: {city: "Pune"}` (then sent as JSON text) instead of a key holding a dot.
//!
//! The setter's rules, followed here: the key is split on `.` (a backslash takes the next
//! character literally); a part whose `Number()` is an integer is an array index; walking the
//! path, a missing or non-object step becomes `{}` (a string or number in the way is replaced),
//! and a step followed by an index becomes `[]` unless it already is an array (an object in the
//! way is replaced); a string key on an array is a property `JSON.stringify` never writes; an
//! index past the end leaves holes (written `null`); an empty key is ignored; a `__proto__`,
//! `constructor` or `prototype` part makes the reference throw (the event is rejected here).
//! Objects built this way keep the reference's member order: index keys first, ascending, then
//! the order members were set in.

use super::event::{Raw, object_members};
use super::order::{index_key, key_cmp, write_ordered_at};
use super::record::{KEPT_NESTED, Members, Val};
use crate::js::value::{Kind, js_trim, kind};
use crate::json::reader::array_elements;
use crate::json::writer::{MAX_NESTING, WriteError, write_f64, write_str};
use std::borrow::Cow;

/// A value built by paths: objects and arrays the setter made or walked into, and the values
/// it stored, as they came.
#[derive(Debug, Clone)]
pub enum Node<'a> {
    Raw(Raw<'a>),
    /// Members in the order they were set (written index keys first).
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
    Array(Vec<Node<'a>>),
    /// An array element never set (`null` in JSON text), or a member not set yet.
    Hole,
}

/// Why a key cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// A part is `__proto__`, `constructor` or `prototype` (the reference throws).
    UnsafeKey(String),
    /// An array index of `MAX_ARRAY_INDEX` or more: the JSON text would be mostly `null`s.
    IndexTooLarge(String),
}

impl PathError {
    pub fn describe(&self, what: &str) -> String {
        match self {
            PathError::UnsafeKey(key) => format!(
                "{what} key {:?} holds a path part __proto__, constructor or prototype",
                shown(key)
            ),
            PathError::IndexTooLarge(key) => format!(
                "{what} key {:?} sets an array index of {MAX_ARRAY_INDEX} or more",
                shown(key)
            ),
        }
    }
}

fn shown(key: &str) -> String {
    key.chars().take(64).collect()
}

/// The first array index refused: the reference would write that many `null`s first.
pub const MAX_ARRAY_INDEX: usize = 10_000;

/// One part of a path.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Key(String),
    /// A part whose `Number()` is an integer.
    Index(f64),
}

impl Part {
    /// The property name JavaScript uses for the part (`String(n)` for an index).
    fn name(&self) -> Cow<'_, str> {
        match self {
            Part::Key(k) => Cow::Borrowed(k),
            Part::Index(n) => {
                let mut s = String::new();
                write_f64(&mut s, *n);
                Cow::Owned(s)
            }
        }
    }

    /// The array position the part names, if it is an array index at all.
    fn position(&self) -> Option<f64> {
        match self {
            Part::Index(n) if *n >= 0.0 && *n <= 4_294_967_294.0 => Some(*n),
            _ => None,
        }
    }
}

/// Whether `key` needs the path setter: it is empty (ignored), holds a dot or a backslash, or
/// could be read as an integer. Other keys are stored as they are.
pub fn is_path(key: &str) -> bool {
    if key.is_empty() {
        return true;
    }
    let word = key
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_' || *b == b'$');
    key.bytes().any(|b| b == b'.' || b == b'\\') || (!word && js_integer(key).is_some())
}

/// set-value's split: on `.`, a backslash taking the next character (JavaScript appends
/// `undefined` when there is none), a trailing empty part dropped.
fn split(key: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let push = |parts: &mut Vec<Part>, part: &str| {
        parts.push(match js_integer(part) {
            Some(n) => Part::Index(n),
            None => Part::Key(part.to_owned()),
        });
    };
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => part.push(next),
                None => part.push_str("undefined"),
            },
            '.' => {
                push(&mut parts, &part);
                part.clear();
            }
            c => part.push(c),
        }
    }
    if !part.is_empty() {
        push(&mut parts, &part);
    }
    parts
}

/// `Number(s)` when it is an integer and `s` is not blank (set-value's test for an index).
fn js_integer(s: &str) -> Option<f64> {
    let t = js_trim(s);
    if t.is_empty() {
        return None;
    }
    let radix = |prefix: &[&str], base: u32| -> Option<f64> {
        let digits = prefix.iter().find_map(|p| t.strip_prefix(p))?;
        if digits.is_empty() {
            return None;
        }
        digits.chars().try_fold(0f64, |acc, c| {
            c.to_digit(base)
                .map(|d| acc * f64::from(base) + f64::from(d))
        })
    };
    let n = if let Some(n) = radix(&["0x", "0X"], 16) {
        n
    } else if let Some(n) = radix(&["0o", "0O"], 8) {
        n
    } else if let Some(n) = radix(&["0b", "0B"], 2) {
        n
    } else {
        let body = t.strip_prefix(['+', '-']).unwrap_or(t);
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let exponent_ok = exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        });
        if !(digits(int) && digits(frac) && (!int.is_empty() || !frac.is_empty()) && exponent_ok) {
            return None;
        }
        t.parse::<f64>().ok()?
    };
    (n.is_finite() && n.trunc() == n).then_some(n)
}

/// Stores `value` under `key` read as a path into `members` (the payload being built). `leaf`
/// makes the member for a key that is not a path after all (one part).
pub fn set<'a>(
    members: &mut Members<'a>,
    key: &str,
    value: Raw<'a>,
    leaf: impl FnOnce(&str, Raw<'a>) -> Option<Val<'a>>,
) -> Result<(), PathError> {
    if key.is_empty() {
        return Ok(());
    }
    let parts = split(key);
    for part in &parts {
        if let Part::Key(k) = part
            && matches!(k.as_str(), "__proto__" | "constructor" | "prototype")
        {
            return Err(PathError::UnsafeKey(key.to_owned()));
        }
    }
    let Some((first, rest)) = parts.split_first() else {
        return Ok(());
    };
    let name = first.name().into_owned();
    let Some(next) = rest.first() else {
        if let Some(val) = leaf(&name, value) {
            members.insert(Cow::Owned(name), val);
        }
        return Ok(());
    };
    let mut node = match members.get_mut(&name) {
        Some(Val::Flat(raw) | Val::Nested(raw)) => Node::Raw(*raw),
        Some(Val::Tree(node, _)) => std::mem::replace(node.as_mut(), Node::Hole),
        _ => Node::Hole,
    };
    step_into(&mut node, next);
    let result = set_in(&mut node, rest, value, key);
    let nested = KEPT_NESTED.contains(&name.as_str());
    members.insert(Cow::Owned(name), Val::Tree(Box::new(node), nested));
    result
}

/// Makes `node` a container for `next`: an array for an index (kept if it is one), else an
/// object (an array is kept too, as JavaScript walks into it).
fn step_into<'a>(node: &mut Node<'a>, next: &Part) {
    let wants_array = matches!(next, Part::Index(_));
    let replacement = match node {
        Node::Array(_) => return,
        Node::Object(_) if !wants_array => return,
        Node::Raw(raw) => match kind(*raw) {
            Kind::Array => Node::Array(
                array_elements(*raw)
                    .unwrap_or_default()
                    .into_iter()
                    .map(Node::Raw)
                    .collect(),
            ),
            Kind::Object if !wants_array => {
                let members = object_members(*raw).unwrap_or_default();
                let mut entries: Vec<(Cow<'a, str>, Node<'a>)> = members
                    .iter()
                    .map(|(k, v)| (k.clone(), Node::Raw(*v)))
                    .collect();
                entries.sort_by(|a, b| key_cmp(&a.0, &b.0));
                Node::Object(entries)
            }
            _ if wants_array => Node::Array(Vec::new()),
            _ => Node::Object(Vec::new()),
        },
        _ if wants_array => Node::Array(Vec::new()),
        _ => Node::Object(Vec::new()),
    };
    *node = replacement;
}

/// Stores `value` at `parts` inside the container `node`.
fn set_in<'a>(
    node: &mut Node<'a>,
    parts: &[Part],
    value: Raw<'a>,
    key: &str,
) -> Result<(), PathError> {
    let Some((part, rest)) = parts.split_first() else {
        return Ok(());
    };
    let slot: &mut Node<'a> = match node {
        Node::Object(members) => {
            let name = part.name();
            match members.iter().position(|(k, _)| *k == name) {
                Some(i) => &mut members[i].1,
                None => {
                    members.push((Cow::Owned(name.into_owned()), Node::Hole));
                    let last = members.len() - 1;
                    &mut members[last].1
                }
            }
        }
        Node::Array(items) => {
            // A string key or a number that is no index: a property JSON text never shows.
            let Some(at) = part.position() else {
                return Ok(());
            };
            if at >= MAX_ARRAY_INDEX as f64 {
                return Err(PathError::IndexTooLarge(key.to_owned()));
            }
            let at = at as usize;
            if items.len() <= at {
                items.resize(at + 1, Node::Hole);
            }
            &mut items[at]
        }
        _ => return Ok(()),
    };
    match rest.first() {
        None => {
            *slot = Node::Raw(value);
            Ok(())
        }
        Some(next) => {
            step_into(slot, next);
            set_in(slot, rest, value, key)
        }
    }
}

/// Writes `node` as `JSON.stringify` writes it: objects built here index keys first then in
/// the order their members were set, values that came as they are in production order.
pub fn write_node(out: &mut String, node: &Node<'_>) -> Result<(), WriteError> {
    write_at(out, node, 1)
}

fn write_at(out: &mut String, node: &Node<'_>, depth: usize) -> Result<(), WriteError> {
    match node {
        Node::Raw(raw) => write_ordered_at(out, *raw, depth),
        Node::Hole => {
            out.push_str("null");
            Ok(())
        }
        _ if depth > MAX_NESTING => Err(WriteError::TooDeep),
        Node::Object(members) => {
            let mut entries: Vec<&(Cow<'_, str>, Node<'_>)> = members
                .iter()
                .filter(|(_, v)| !matches!(v, Node::Hole))
                .collect();
            // Index keys first, ascending; the rest keep their order (a stable sort).
            entries.sort_by_key(|(k, _)| index_key(k).unwrap_or(u64::MAX));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_at(out, v, depth + 1)?;
            }
            out.push('}');
            Ok(())
        }
        Node::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_at(out, v, depth + 1)?;
            }
            out.push(']');
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The payload's members after setting `pairs` in order, each as JSON text
    /// (`JSON.stringify` of an object or array; a stored value as it came).
    fn built(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let raws: Vec<Raw<'_>> = pairs.iter().map(|(_, v)| Raw::parse(v).unwrap()).collect();
        let mut members = Members::default();
        for ((k, _), raw) in pairs.iter().zip(raws) {
            set(&mut members, k, raw, |_, r| Some(Val::Flat(r))).unwrap();
        }
        members
            .iter()
            .map(|(k, v)| {
                let mut s = String::new();
                match v {
                    Val::Tree(node, _) => write_node(&mut s, node).unwrap(),
                    Val::Flat(raw) => s.push_str(raw.get()),
                    other => panic!("{other:?}"),
                }
                (k.to_string(), s)
            })
            .collect()
    }

    fn one(pairs: &[(&str, &str)]) -> String {
        let got = built(pairs);
        assert_eq!(got.len(), 1, "{got:?}");
        got[0].1.clone()
    }

    #[test]
    fn dotted_keys_build_objects_and_merge_into_an_existing_one() {
        assert_eq!(
            one(&[("address.city", "\"Pune\""), ("address.zip", "\"411001\"")]),
            r#"{"city":"Pune","zip":"411001"}"#
        );
        // Merged after the members the object came with (those in production order).
        assert_eq!(
            one(&[
                ("prefs", r#"{"z":1,"channel":"sms"}"#),
                ("prefs.lang", "\"en\"")
            ]),
            r#"{"channel":"sms","z":1,"lang":"en"}"#
        );
        assert_eq!(
            one(&[("a.b.c", "1"), ("a.b.d", "2"), ("a.e", "3")]),
            r#"{"b":{"c":1,"d":2},"e":3}"#
        );
    }

    #[test]
    fn integer_parts_make_arrays_with_holes_and_replace_an_object_in_the_way() {
        assert_eq!(
            one(&[("tags.0", "\"vip\""), ("tags.1", "\"beta\"")]),
            r#"["vip","beta"]"#
        );
        assert_eq!(one(&[("tags.2", "\"x\"")]), r#"[null,null,"x"]"#);
        // Number() reads " 1 ", "0x1" and "1e0" as the integer 1.
        assert_eq!(one(&[("t. 1 ", "1"), ("t.0x0", "0")]), r#"[0,1]"#);
        // An object in the way of an index is replaced by an array.
        assert_eq!(one(&[("t.k", "1"), ("t.0", "2")]), r#"[2]"#);
        // An existing array is walked into; a string key on it is never written.
        assert_eq!(
            one(&[("t", "[5,6]"), ("t.3", "7"), ("t.x", "8")]),
            r#"[5,6,null,7]"#
        );
        // A negative number is no index: a property JSON text never shows.
        assert_eq!(one(&[("t.0", "1"), ("t.-1", "2")]), r#"[1]"#);
        // Index keys of an object come first.
        assert_eq!(
            one(&[("o.b", "1"), ("o.x.y", "2"), ("o.x.0", "3")]),
            r#"{"b":1,"x":[3]}"#
        );
    }

    #[test]
    fn a_string_or_number_in_the_way_is_replaced_by_an_object() {
        // set-value: `if (!isObject(obj[key])) obj[key] = {}`.
        assert_eq!(one(&[("a", "\"str\""), ("a.b", "1")]), r#"{"b":1}"#);
        assert_eq!(one(&[("a", "7"), ("a.b.c", "1")]), r#"{"b":{"c":1}}"#);
        assert_eq!(one(&[("a", "null"), ("a.b", "1")]), r#"{"b":1}"#);
        // A plain key written later replaces the object whole.
        assert_eq!(
            built(&[("a.b", "1"), ("a", "2")]),
            [("a".into(), "2".into())]
        );
    }

    #[test]
    fn escapes_empty_parts_and_empty_keys_follow_the_setter() {
        assert_eq!(built(&[("a\\.b", "1")]), [("a.b".into(), "1".into())]);
        assert_eq!(built(&[("", "1")]), []);
        assert_eq!(one(&[("a..b", "1")]), r#"{"":{"b":1}}"#);
        assert_eq!(built(&[("a.", "1")]), [("a".into(), "1".into())]);
        assert_eq!(built(&[("007", "1")]), [("7".into(), "1".into())]);
        assert_eq!(built(&[("a\\", "1")]), [("aundefined".into(), "1".into())]);
    }

    #[test]
    fn unsafe_parts_and_huge_indices_are_errors() {
        let raw = Raw::parse("1").unwrap();
        let mut m = Members::default();
        for key in ["a.__proto__", "constructor.x", "a.prototype.b"] {
            assert!(matches!(
                set(&mut m, key, raw, |_, r| Some(Val::Flat(r))),
                Err(PathError::UnsafeKey(_))
            ));
        }
        assert!(matches!(
            set(&mut m, "t.10000", raw, |_, r| Some(Val::Flat(r))),
            Err(PathError::IndexTooLarge(_))
        ));
        assert!(set(&mut m, "t.9999", raw, |_, r| Some(Val::Flat(r))).is_ok());
    }

    /// A model of set-value over serde_json values (objects in insertion order are not needed
    /// to check content: serde_json's map is sorted), for the property below.
    fn model(pairs: &[(String, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::Value;
        let mut root = Value::Object(Default::default());
        for (key, value) in pairs {
            let parts = split(key);
            if key.is_empty() || parts.is_empty() {
                continue;
            }
            let mut obj = &mut root;
            for (i, part) in parts.iter().enumerate() {
                let next = parts.get(i + 1);
                let slot: &mut Value = match obj {
                    Value::Object(m) => m.entry(part.name().into_owned()).or_insert(Value::Null),
                    Value::Array(a) => match part.position() {
                        Some(at) => {
                            let at = at as usize;
                            if a.len() <= at {
                                a.resize(at + 1, Value::Null);
                            }
                            &mut a[at]
                        }
                        None => break,
                    },
                    _ => unreachable!(),
                };
                match next {
                    None => *slot = value.clone(),
                    Some(Part::Index(_)) if !slot.is_array() => *slot = Value::Array(vec![]),
                    Some(_) if !slot.is_object() && !slot.is_array() => {
                        *slot = Value::Object(Default::default())
                    }
                    _ => {}
                }
                obj = slot;
            }
        }
        match root {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    proptest! {
        #[test]
        fn any_keys_build_what_the_setter_builds(
            pairs in prop::collection::vec(
                ("[ab]{1,2}(\\.([ab]|[0-3]|x)){0,3}", prop_oneof![
                    Just(serde_json::json!(1)),
                    Just(serde_json::json!("s")),
                    Just(serde_json::json!({"a": 1})),
                    Just(serde_json::json!([1, 2])),
                ]),
                0..8,
            )
        ) {
            let texts: Vec<String> = pairs.iter().map(|(_, v)| v.to_string()).collect();
            let raws: Vec<Raw<'_>> = texts.iter().map(|t| Raw::parse(t).unwrap()).collect();
            let mut members = Members::default();
            for ((k, _), raw) in pairs.iter().zip(raws) {
                set(&mut members, k, raw, |_, r| Some(Val::Flat(r))).unwrap();
            }
            let expected = model(&pairs);
            prop_assert_eq!(members.len(), expected.len());
            for (k, v) in members.iter() {
                let mut s = String::new();
                match v {
                    Val::Tree(node, _) => write_node(&mut s, node).unwrap(),
                    Val::Flat(raw) => s.push_str(raw.get()),
                    other => panic!("{other:?}"),
                }
                let got: serde_json::Value = serde_json::from_str(&s).unwrap();
                prop_assert_eq!(Some(&got), expected.get(k.as_ref()), "{}", k);
            }
        }
    }
}
