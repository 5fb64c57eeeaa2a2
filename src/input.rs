//! How a body (SQS message, HTTP request, `transform` input) is split into events: one event,
//! a JSON array, `{"batch": [...]}`, or NDJSON (docs/contracts.md §1, §2). Items borrow their text from
//! the body; a bad item is kept with its reason rather than failing its neighbours, so every
//! event ends with a result. An object with a `regulationType` key is a regulation (docs/contracts.md §6),
//! never an event. A body may be split with a bound on its items (a webhook's
//! `MAX_ITEMS_PER_BODY`): the items past it are only counted, never kept, so a body of millions
//! of tiny items costs no more than the bound.

use crate::codes;
use crate::json::bounded::{bounded_array, bounded_seq, read_all};
use crate::outcome::Reason;
use crate::regulation::{REGULATION_TYPE_KEY, Regulation};
use memchr::memmem;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;
use std::sync::LazyLock;

/// One item of a body: its raw JSON text (or the raw text of a line that is not JSON), and the
/// reason it cannot be used, if any (`invalid_json`, `not_an_object`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    pub raw: &'a str,
    pub error: Option<Reason>,
}

impl<'a> Item<'a> {
    fn ok(raw: &'a str) -> Self {
        Item { raw, error: None }
    }

    fn of_value(raw: &'a RawValue) -> Self {
        let text = raw.get();
        if text.starts_with('{') {
            Item::ok(text)
        } else {
            Item {
                raw: text,
                error: Some(not_an_object()),
            }
        }
    }
}

fn not_an_object() -> Reason {
    Reason::new(codes::NOT_AN_OBJECT, "the item is not a JSON object")
}

/// What a body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// Events, in order; empty for an empty array or batch.
    Events(Vec<Item<'a>>),
    /// A user deletion request, whose shape is valid (a malformed one is an error of the body).
    Regulation(Regulation<'a>),
}

/// A body split with a bound on its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split<'a> {
    pub body: Body<'a>,
    /// How many items (events, or a regulation's users) past the bound were left unread.
    pub beyond: usize,
}

/// The top level of a body that is one JSON value.
enum Whole<'a> {
    /// An object; `batch` holds its `batch` member when that is an array.
    Object(Option<&'a RawValue>),
    /// An object with a `regulationType` key.
    Regulation,
    /// The first elements (up to the bound), and how many more there were.
    Array(Vec<&'a RawValue>, usize),
    Scalar,
}

/// Reads the top level, keeping at most `max` elements of an array.
struct WholeVisitor {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for WholeVisitor {
    type Value = Whole<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for WholeVisitor {
    type Value = Whole<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Whole::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Whole::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Whole::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Whole::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Whole::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Whole::Scalar)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let (items, beyond) = bounded_seq(seq, self.max)?;
        Ok(Whole::Array(items, beyond))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut batch = None;
        let mut regulation = false;
        while let Some(key) = map.next_key::<crate::transform::event::Key<'de>>()? {
            if key.0 == REGULATION_TYPE_KEY {
                regulation = true;
                map.next_value::<IgnoredAny>()?;
            } else if key.0 == "batch" {
                let value: &'de RawValue = map.next_value()?;
                batch = value.get().starts_with('[').then_some(value);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(if regulation {
            Whole::Regulation
        } else {
            Whole::Object(batch)
        })
    }
}

/// Splits a body. An error means the body as a whole is unusable (empty, not JSON or NDJSON at
/// all, or a malformed regulation); the reason's code says which (`empty_body`, `invalid_json`,
/// `invalid_regulation`, `unsupported_regulation_type`).
pub fn split_body(text: &str) -> Result<Body<'_>, Reason> {
    split_body_bounded(text, usize::MAX).map(|split| split.body)
}

/// The keys that send a one-line body to the full split, searched for as built once.
static REGULATION_KEY: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"regulationType\""));
static BATCH_KEY: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"batch\""));

/// Splits an SQS message's body. Most bodies are one event on one line: such a body (one line,
/// `{` to `}`, naming neither `regulationType` nor `batch`) is taken as one item without being
/// read here, since the transform reads it, strictly, right after; were it not JSON after all,
/// `pipeline::prepare` gives it the reason [`split_body`] gives. Anything else goes through
/// [`split_body`]. This saves one full pass over every message (BENCHMARKS.md, "Whole path").
pub fn split_message_body(text: &str) -> Result<Body<'_>, Reason> {
    split_message_body_bounded(text, usize::MAX).map(|split| split.body)
}

/// [`split_message_body`] keeping at most `max_items` items, the rest counted in `beyond`
/// (`MAX_ITEMS_PER_BODY` for SQS messages too: docs/contracts.md §2, limits).
pub fn split_message_body_bounded(text: &str, max_items: usize) -> Result<Split<'_>, Reason> {
    let trimmed = text.trim();
    let bytes = trimmed.as_bytes();
    let one_plain_event = trimmed.starts_with('{')
        && trimmed.ends_with('}')
        && memchr::memchr(b'\n', bytes).is_none()
        && REGULATION_KEY.find(bytes).is_none()
        && BATCH_KEY.find(bytes).is_none();
    if one_plain_event {
        return Ok(one(trimmed));
    }
    split_body_bounded(text, max_items)
}

/// A body marked as exactly one event (queue mode's messages, `bodyForm` = `event`,
/// `crate::queue`): one item, the whole text, never read as a batch, NDJSON or a regulation. An
/// item that is not one JSON object is rejected as any such item is.
pub fn one_event_body(text: &str) -> Result<Body<'_>, Reason> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Reason::new(codes::EMPTY_BODY, "the body is empty"));
    }
    Ok(Body::Events(vec![line_item(trimmed)]))
}

/// Splits a body, keeping at most `max_items` items (events, or a regulation's users); the rest
/// are counted in `beyond`, not read into items. NDJSON lines past the bound are not parsed, so
/// a body is `invalid_json` as a whole when none of the first `max_items` lines is JSON.
pub fn split_body_bounded(text: &str, max_items: usize) -> Result<Split<'_>, Reason> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Reason::new(codes::EMPTY_BODY, "the body is empty"));
    }
    let whole_error = match read_all(trimmed, WholeVisitor { max: max_items }) {
        Ok(Whole::Object(Some(batch))) => {
            let (items, beyond) =
                bounded_array(batch.get(), max_items).map_err(|e| invalid_json(&e))?;
            return Ok(events(items, beyond));
        }
        Ok(Whole::Object(None)) => return Ok(one(trimmed)),
        Ok(Whole::Regulation) => {
            return Regulation::parse_bounded(trimmed, max_items).map(|(regulation, beyond)| {
                Split {
                    body: Body::Regulation(regulation),
                    beyond,
                }
            });
        }
        Ok(Whole::Array(items, beyond)) => return Ok(events(items, beyond)),
        Ok(Whole::Scalar) => {
            return Ok(Split {
                body: Body::Events(vec![Item {
                    raw: trimmed,
                    error: Some(not_an_object()),
                }]),
                beyond: 0,
            });
        }
        Err(e) => e,
    };
    let mut lines = non_blank_lines(trimmed);
    let items: Vec<Item<'_>> = lines.by_ref().take(max_items).map(line_item).collect();
    let beyond = lines.count();
    let no_line_is_json = items.iter().all(|i| {
        i.error
            .as_ref()
            .is_some_and(|r| r.code == codes::INVALID_JSON)
    });
    if no_line_is_json {
        return Err(invalid_json(&whole_error));
    }
    Ok(Split {
        body: Body::Events(items),
        beyond,
    })
}

/// A body of these events.
fn events(items: Vec<&RawValue>, beyond: usize) -> Split<'_> {
    Split {
        body: Body::Events(items.into_iter().map(Item::of_value).collect()),
        beyond,
    }
}

/// A body that is one event.
fn one(text: &str) -> Split<'_> {
    Split {
        body: Body::Events(vec![Item::ok(text)]),
        beyond: 0,
    }
}

fn non_blank_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// NDJSON: one item per non-blank line, a line that is not JSON an `invalid_json` item.
pub fn split_lines(text: &str) -> Vec<Item<'_>> {
    non_blank_lines(text).map(line_item).collect()
}

/// One NDJSON line as an item.
pub fn line_item(line: &str) -> Item<'_> {
    match serde_json::from_str::<&RawValue>(line) {
        Ok(raw) => Item::of_value(raw),
        Err(e) => Item {
            raw: line,
            error: Some(invalid_json(&e)),
        },
    }
}

fn invalid_json(e: &serde_json::Error) -> Reason {
    Reason::new(codes::INVALID_JSON, format!("not valid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<Item<'_>> {
        match split_body(text).unwrap() {
            Body::Events(items) => items,
            Body::Regulation(r) => panic!("not events: {r:?}"),
        }
    }

    fn codes_of<'x>(items: &'x [Item<'_>]) -> Vec<Option<&'x str>> {
        items
            .iter()
            .map(|i| i.error.as_ref().map(|r| r.code.as_ref()))
            .collect()
    }

    #[test]
    fn a_single_object_is_one_event() {
        let items = events("  {\"type\":\"track\",\n \"event\":\"x\"}\n");
        assert_eq!(
            items,
            vec![Item::ok("{\"type\":\"track\",\n \"event\":\"x\"}")]
        );
    }

    #[test]
    fn an_array_gives_one_item_per_element_and_non_objects_are_marked() {
        let items = events(r#"[{"a":1}, 2, {"b":[1]}]"#);
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].raw, r#"{"a":1}"#);
        assert_eq!(codes_of(&items), vec![None, Some("not_an_object"), None]);
    }

    #[test]
    fn a_batch_object_gives_its_elements() {
        let items = events(r#"{"batch": [{"a":1},{"b":2}], "sentAt": "x"}"#);
        assert_eq!(
            items.iter().map(|i| i.raw).collect::<Vec<_>>(),
            vec![r#"{"a":1}"#, r#"{"b":2}"#]
        );
        assert!(events("[]").is_empty());
        assert!(events(r#"{"batch":[]}"#).is_empty());
    }

    #[test]
    fn ndjson_gives_one_item_per_line_and_a_bad_line_is_kept_with_invalid_json() {
        let items = events("{\"a\":1}\n\n{oops\r\n[1]\n{\"b\":2}\n");
        assert_eq!(
            codes_of(&items),
            vec![None, Some("invalid_json"), Some("not_an_object"), None]
        );
        assert_eq!(items[1].raw, "{oops");
    }

    #[test]
    fn an_empty_body_and_a_body_that_is_not_json_at_all_are_errors() {
        assert_eq!(split_body(" \n\t").unwrap_err().code, "empty_body");
        assert_eq!(split_body("hello").unwrap_err().code, "invalid_json");
        assert_eq!(
            split_body("{\n\"a\": 1,\n").unwrap_err().code,
            "invalid_json"
        );
    }

    #[test]
    fn an_object_with_a_regulation_type_is_a_regulation_never_an_event() {
        let body = r#"{"regulationType":"suppress_with_delete","users":[{"userId":"u-1"}],"batch":[{"a":1}]}"#;
        match split_body(body).unwrap() {
            Body::Regulation(r) => assert_eq!(r.identities().collect::<Vec<_>>(), [(0, "u-1")]),
            other => panic!("not a regulation: {other:?}"),
        }
        let e = split_body(r#"{"regulationType":"suppress","users":[]}"#).unwrap_err();
        assert_eq!(e.code, "unsupported_regulation_type");
        let e = split_body(r#"{"regulationType":"suppress_with_delete"}"#).unwrap_err();
        assert_eq!(e.code, "invalid_regulation");
        // Nested, the key does not make a regulation.
        assert_eq!(
            events(r#"{"type":"track","properties":{"regulationType":"x"}}"#).len(),
            1
        );
    }

    #[test]
    fn a_bound_keeps_the_first_items_of_every_form_and_counts_the_rest() {
        let array = format!("[{}]", vec!["{}"; 25].join(","));
        let batch = format!(r#"{{"batch":{array},"sentAt":"x"}}"#);
        let ndjson = format!("{}\n\n", vec!["{}"; 25].join("\n"));
        for body in [&array, &batch, &ndjson] {
            let split = split_body_bounded(body, 10).unwrap();
            match split.body {
                Body::Events(items) => assert_eq!(items.len(), 10, "{body}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(split.beyond, 15, "{body}");
        }
        let split = split_body_bounded(&array, 25).unwrap();
        assert_eq!(split.beyond, 0);
        let split = split_body_bounded(r#"{"a":1}"#, 1).unwrap();
        assert_eq!(
            (split.body, split.beyond),
            (Body::Events(vec![Item::ok(r#"{"a":1}"#)]), 0)
        );
        // The items past the bound must still be JSON: the body is read to its end.
        assert_eq!(
            split_body_bounded("[{},{},{]", 1).unwrap_err().code,
            "invalid_json"
        );
    }

    #[test]
    fn a_bound_keeps_the_first_users_of_a_regulation() {
        let users = [r#"{"userId":"u"}"#; 7].join(",");
        let body = format!(r#"{{"regulationType":"suppress_with_delete","users":[{users}]}}"#);
        let split = split_body_bounded(&body, 3).unwrap();
        match split.body {
            Body::Regulation(r) => assert_eq!(r.users.len(), 3),
            other => panic!("{other:?}"),
        }
        assert_eq!(split.beyond, 4);
    }

    #[test]
    fn a_one_line_plain_event_of_a_message_is_taken_whole_and_anything_else_is_split() {
        let one = "  {\"type\":\"track\",\"event\":\"x\"} ";
        match split_message_body(one).unwrap() {
            Body::Events(items) => assert_eq!(items, vec![Item::ok(one.trim())]),
            other => panic!("{other:?}"),
        }
        // Two lines, a batch, a regulation: read as split_body reads them.
        for body in [
            "{\"a\":1}\n{\"b\":2}",
            r#"{"batch":[{"a":1},{"b":2}]}"#,
            r#"{"regulationType":"suppress_with_delete","users":[]}"#,
            "[{\"a\":1}]",
        ] {
            assert_eq!(split_message_body(body), split_body(body), "{body}");
        }
    }

    #[test]
    fn a_scalar_body_is_one_item_that_is_not_an_object() {
        assert_eq!(codes_of(&events("42")), vec![Some("not_an_object")]);
    }

    #[test]
    fn nesting_ten_thousand_levels_deep_is_split_without_overflowing_the_stack() {
        let deep = format!("{{\"p\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        let items = events(&deep);
        assert_eq!(codes_of(&items), vec![None]);
    }
}
