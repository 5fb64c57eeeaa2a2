//! User deletion requests, RudderStack's "regulations" (docs/contracts.md §6):
//! `{"regulationType": "suppress_with_delete", "destinationIds": [...], "users": [{"userId": ...}]}`.
//!
//! A regulation is told from an event by its `regulationType` key (an event never has one), and
//! read here once, without a tree: a malformed regulation (a wrong type, `users` not an array,
//! `destinationIds` not an array of valid ids) is rejected as a whole with a clear code, while a
//! bad user is rejected alone so that the others are still deleted. The text of every user is
//! kept, so a dead letter can carry the regulation with only its rejected users.

use crate::codes;
use crate::json::writer::write_str;
use crate::outcome::Reason;
use crate::settings::DestinationId;
use crate::transform::event::Key;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// The key that makes an object a regulation (never an event).
pub const REGULATION_TYPE_KEY: &str = "regulationType";
/// The one regulation type this destination supports: delete the users' profiles.
pub const SUPPRESS_WITH_DELETE: &str = "suppress_with_delete";
/// Longest piece of a caller's text quoted back in a message.
const MAX_QUOTED_CHARS: usize = 64;

/// One user of a regulation: its JSON text, and its `userId` or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User<'a> {
    pub raw: &'a str,
    pub user_id: Result<String, Reason>,
}

/// A `suppress_with_delete` regulation whose shape is valid; its users may still be bad one by
/// one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regulation<'a> {
    /// `destinationIds`, without duplicates, in order; empty when absent, null or `[]` (then the
    /// message's own destination is meant).
    pub destination_ids: Vec<DestinationId>,
    pub users: Vec<User<'a>>,
    /// The top-level members as they came, for the dead letter.
    members: Vec<(Cow<'a, str>, &'a str)>,
}

impl<'a> Regulation<'a> {
    /// Reads a regulation from the JSON text of one object that has a `regulationType` key.
    pub fn parse(text: &'a str) -> Result<Self, Reason> {
        Regulation::parse_bounded(text, usize::MAX).map(|(regulation, _)| regulation)
    }

    /// [`Regulation::parse`], keeping at most `max_users` users; also how many more there were
    /// (counted, not read: a webhook's `MAX_ITEMS_PER_BODY`).
    pub fn parse_bounded(text: &'a str, max_users: usize) -> Result<(Self, usize), Reason> {
        let Members(members) = serde_json::from_str::<Members<'a>>(text).map_err(|e| {
            Reason::new(
                codes::INVALID_REGULATION,
                format!("the regulation is not a valid JSON object: {e}"),
            )
        })?;
        let member = |name: &str| {
            members
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
        };

        let kind = member(REGULATION_TYPE_KEY)
            .and_then(|raw| serde_json::from_str::<String>(raw).ok())
            .ok_or_else(|| {
                invalid(format!(
                    "{REGULATION_TYPE_KEY} must be a string (\"{SUPPRESS_WITH_DELETE}\")"
                ))
            })?;
        if kind != SUPPRESS_WITH_DELETE {
            return Err(Reason::new(
                codes::UNSUPPORTED_REGULATION_TYPE,
                format!(
                    "{REGULATION_TYPE_KEY} \"{}\" is not supported; only \"{SUPPRESS_WITH_DELETE}\" is",
                    quoted(&kind)
                ),
            ));
        }

        let users = match member("users") {
            None => {
                return Err(invalid(
                    "users is missing: expected an array of users".into(),
                ));
            }
            Some(raw) => crate::json::bounded::bounded_array(raw, max_users)
                .map_err(|_| invalid("users must be an array of users".into()))?,
        };
        let (users, beyond) = users;
        let users = users
            .into_iter()
            .enumerate()
            .map(|(i, raw)| User {
                raw: raw.get(),
                user_id: user_id(i, raw),
            })
            .collect();

        let destination_ids = match member("destinationIds") {
            None => Vec::new(),
            Some("null") => Vec::new(),
            Some(raw) => destination_ids(raw)?,
        };

        Ok((
            Regulation {
                destination_ids,
                users,
                members,
            },
            beyond,
        ))
    }

    /// The users that have a usable `userId`: (index in `users`, userId), in order.
    pub fn identities(&self) -> impl Iterator<Item = (usize, &str)> {
        self.users
            .iter()
            .enumerate()
            .filter_map(|(i, u)| u.user_id.as_deref().ok().map(|id| (i, id)))
    }

    /// The regulation as it came, with only the users for which `keep(index)` holds: the body of
    /// a dead letter, redrivable as it is.
    pub fn with_users(&self, keep: impl Fn(usize) -> bool) -> String {
        self.with_users_in(0..self.users.len(), keep)
    }

    /// [`Regulation::with_users`] among the users of `range` only, without looking at the
    /// others: a regulation of many users cut into parts costs each part its own users.
    pub fn with_users_in(
        &self,
        range: std::ops::Range<usize>,
        keep: impl Fn(usize) -> bool,
    ) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        for (n, (key, value)) in self.members.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            write_str(&mut out, key);
            out.push(':');
            if key == "users" {
                out.push('[');
                let end = range.end.min(self.users.len());
                let start = range.start.min(end);
                let kept = self.users[start..end]
                    .iter()
                    .enumerate()
                    .map(|(i, user)| (start + i, user))
                    .filter(|(i, _)| keep(*i));
                for (m, (_, user)) in kept.enumerate() {
                    if m > 0 {
                        out.push(',');
                    }
                    out.push_str(user.raw);
                }
                out.push(']');
            } else {
                out.push_str(value);
            }
        }
        out.push('}');
        out
    }
}

/// Whether one item of an array, a batch or NDJSON is a regulation (which must be a whole body).
/// Cheap for events: only an item that mentions the key is read.
pub fn is_regulation_item(raw: &str) -> bool {
    raw.contains("\"regulationType\"")
        && serde_json::from_str::<Members<'_>>(raw)
            .is_ok_and(|Members(m)| m.iter().any(|(k, _)| k == REGULATION_TYPE_KEY))
}

/// The rejection of a regulation found inside an array, a batch or NDJSON.
pub fn in_batch() -> Reason {
    Reason::new(
        codes::REGULATION_IN_BATCH,
        "a regulation must be the whole body, not an item of an array, a batch or NDJSON",
    )
}

/// A rejected item of an array, a batch or NDJSON that is a regulation says so, rather than what
/// the event mapping found missing. Costs nothing for the events that transform.
pub fn explain_rejection(raw: &str, reason: Reason) -> Reason {
    if is_regulation_item(raw) {
        in_batch()
    } else {
        reason
    }
}

fn invalid(message: String) -> Reason {
    Reason::new(codes::INVALID_REGULATION, message)
}

/// At most [`MAX_QUOTED_CHARS`] characters of a caller's text.
fn quoted(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => Cow::Owned(format!("{}...", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

fn user_id(index: usize, raw: &RawValue) -> Result<String, Reason> {
    let not_an_object = || {
        Reason::new(
            codes::INVALID_USER_ID,
            format!("users[{index}] is not an object with a userId"),
        )
    };
    if !raw.get().starts_with('{') {
        return Err(not_an_object());
    }
    let Members(members) =
        serde_json::from_str::<Members<'_>>(raw.get()).map_err(|_| not_an_object())?;
    let missing = || {
        Reason::new(
            codes::MISSING_USER_ID,
            format!("users[{index}] has no userId: there is no profile to delete"),
        )
    };
    let invalid = || {
        Reason::new(
            codes::INVALID_USER_ID,
            format!("users[{index}].userId must be a string or a number"),
        )
    };
    match members.iter().rev().find(|(k, _)| k == "userId") {
        None => Err(missing()),
        Some((_, v)) if *v == "null" => Err(missing()),
        // A number is deleted as the text the transform's records carry for it (JavaScript's
        // number formatting: `1.0` is "1"), so the profile it created is the one deleted.
        Some((_, v)) if v.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
            match v.parse::<f64>() {
                Ok(0.0) => Err(missing()),
                Ok(n) if n.is_finite() => {
                    let mut id = String::with_capacity(v.len());
                    crate::json::writer::write_number_text(&mut id, v);
                    Ok(id)
                }
                _ => Err(invalid()),
            }
        }
        Some((_, v)) => match serde_json::from_str::<String>(v) {
            Ok(id) if id.trim().is_empty() => Err(missing()),
            Ok(id) => Ok(id),
            Err(_) => Err(invalid()),
        },
    }
}

fn destination_ids(raw: &str) -> Result<Vec<DestinationId>, Reason> {
    let items = serde_json::from_str::<Vec<&RawValue>>(raw)
        .map_err(|_| invalid("destinationIds must be an array of destination ids".into()))?;
    let mut ids: Vec<DestinationId> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let id = serde_json::from_str::<String>(item.get())
            .ok()
            .and_then(|s| DestinationId::parse(&s).ok())
            .ok_or_else(|| {
                invalid(format!(
                    "destinationIds[{i}] is not a destination id (1 to 128 characters from \
                     A-Z a-z 0-9 _ . -)"
                ))
            })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The members of one JSON object, in order, values as raw text.
struct Members<'a>(Vec<(Cow<'a, str>, &'a str)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value.get()));
                }
                Ok(Members(members))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(de::Error::custom("expected a JSON object"))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> String {
        Regulation::parse(text).unwrap_err().code.into_owned()
    }

    #[test]
    fn a_range_of_users_is_written_as_the_whole_with_only_those_users() {
        let r = Regulation::parse(
            r#"{"regulationType":"suppress_with_delete","users":[{"userId":"a"},{},{"userId":"c"},{"userId":"d"}],"x":1}"#,
        )
        .unwrap();
        assert_eq!(
            r.with_users_in(1..3, |_| true),
            r#"{"regulationType":"suppress_with_delete","users":[{},{"userId":"c"}],"x":1}"#
        );
        assert_eq!(
            r.with_users_in(0..4, |i| i != 1),
            r.with_users(|i| i != 1),
            "the whole range is with_users"
        );
        assert!(
            r.with_users_in(3..99, |_| true)
                .contains(r#"[{"userId":"d"}]"#)
        );
        assert!(r.with_users_in(9..99, |_| true).contains(r#""users":[]"#));
    }

    #[test]
    fn a_regulation_gives_its_users_and_destinations_in_order() {
        let r = Regulation::parse(
            r#"{"regulationType":"suppress_with_delete","destinationIds":["d-1","d-2","d-1"],
                "users":[{"userId":"u-1","email":"a@b.c"},{"userId":"u-\u00e9"}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.destination_ids
                .iter()
                .map(DestinationId::as_str)
                .collect::<Vec<_>>(),
            ["d-1", "d-2"]
        );
        assert_eq!(r.identities().collect::<Vec<_>>(), [(0, "u-1"), (1, "u-é")]);
        assert_eq!(r.users[0].raw, r#"{"userId":"u-1","email":"a@b.c"}"#);
    }

    #[test]
    fn absent_null_or_empty_destination_ids_mean_the_message_destination() {
        for ids in ["", r#","destinationIds":null"#, r#","destinationIds":[]"#] {
            let text = format!(r#"{{"regulationType":"suppress_with_delete","users":[]{ids}}}"#);
            assert!(Regulation::parse(&text).unwrap().destination_ids.is_empty());
        }
    }

    #[test]
    fn users_without_a_usable_user_id_are_rejected_one_by_one() {
        let r = Regulation::parse(
            r#"{"regulationType":"suppress_with_delete","users":[
                {"userId":"ok"},{},{"userId":null},{"userId":"  "},{"userId":true},"u",
                {"userId":{"a":1}},{"userId":0},{"userId":1e400}]}"#,
        )
        .unwrap();
        let codes: Vec<Option<&str>> = r
            .users
            .iter()
            .map(|u| u.user_id.as_ref().err().map(|e| e.code.as_ref()))
            .collect();
        assert_eq!(
            codes,
            [
                None,
                Some("missing_user_id"),
                Some("missing_user_id"),
                Some("missing_user_id"),
                Some("invalid_user_id"),
                Some("invalid_user_id"),
                Some("invalid_user_id"),
                Some("missing_user_id"),
                Some("invalid_user_id"),
            ]
        );
        assert!(
            r.users[1]
                .user_id
                .as_ref()
                .unwrap_err()
                .message
                .contains("users[1]")
        );
        assert_eq!(r.identities().count(), 1);
    }

    #[test]
    fn a_numeric_user_id_is_deleted_as_its_decimal_text() {
        let r = Regulation::parse(
            r#"{"regulationType":"suppress_with_delete","users":[
                {"userId":12345},{"userId":-7},{"userId":1.0},{"userId":2.50},{"userId":"s"}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.identities().collect::<Vec<_>>(),
            [(0, "12345"), (1, "-7"), (2, "1"), (3, "2.5"), (4, "s")]
        );
    }

    #[test]
    fn an_unknown_regulation_type_is_unsupported_and_named() {
        let e = Regulation::parse(r#"{"regulationType":"suppress","users":[]}"#).unwrap_err();
        assert_eq!(e.code, "unsupported_regulation_type");
        assert!(e.message.contains("\"suppress\""), "{}", e.message);
        let long = format!(r#"{{"regulationType":"{}","users":[]}}"#, "x".repeat(500));
        assert!(Regulation::parse(&long).unwrap_err().message.len() < 200);
    }

    #[test]
    fn a_malformed_regulation_is_rejected_with_invalid_regulation() {
        for text in [
            r#"{"regulationType":1,"users":[]}"#,
            r#"{"regulationType":null,"users":[]}"#,
            r#"{"regulationType":"suppress_with_delete"}"#,
            r#"{"regulationType":"suppress_with_delete","users":{"userId":"u"}}"#,
            r#"{"regulationType":"suppress_with_delete","users":[],"destinationIds":"d-1"}"#,
            r#"{"regulationType":"suppress_with_delete","users":[],"destinationIds":["ok",""]}"#,
            r#"{"regulationType":"suppress_with_delete","users":[],"destinationIds":["a/b"]}"#,
            r#"{"regulationType":"suppress_with_delete","users":[],"destinationIds":[3]}"#,
        ] {
            assert_eq!(code(text), "invalid_regulation", "{text}");
        }
    }

    #[test]
    fn the_dead_letter_body_keeps_every_member_and_only_the_kept_users() {
        let text = r#"{"regulationType":"suppress_with_delete","destinationIds":["d-1"],"workspaceId":"w\"1","users":[{"userId":"a"},{},{"userId":"c"}]}"#;
        let r = Regulation::parse(text).unwrap();
        assert_eq!(r.with_users(|_| true), text);
        assert_eq!(
            r.with_users(|i| i == 1),
            r#"{"regulationType":"suppress_with_delete","destinationIds":["d-1"],"workspaceId":"w\"1","users":[{}]}"#
        );
        let kept = r.with_users(|i| i != 1);
        assert_eq!(Regulation::parse(&kept).unwrap().identities().count(), 2);
    }

    #[test]
    fn only_an_item_with_a_top_level_regulation_type_is_a_regulation() {
        assert!(is_regulation_item(
            r#"{"regulationType":"suppress_with_delete","users":[]}"#
        ));
        assert!(!is_regulation_item(
            r#"{"type":"track","properties":{"regulationType":"x"}}"#
        ));
        assert!(!is_regulation_item(r#"{"type":"track"}"#));
        assert!(!is_regulation_item(r#"["regulationType"]"#));
    }

    #[test]
    fn nesting_ten_thousand_levels_deep_is_read_without_overflowing_the_stack() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        for text in [
            format!(r#"{{"regulationType":"suppress_with_delete","users":[{deep}]}}"#),
            format!(r#"{{"regulationType":"suppress_with_delete","users":[{{"userId":{deep}}}]}}"#),
        ] {
            let r = Regulation::parse(&text).unwrap();
            assert_eq!(
                r.users[0].user_id.as_ref().unwrap_err().code,
                "invalid_user_id"
            );
        }
        let text = format!(r#"{{"regulationType":{deep},"users":[]}}"#);
        assert_eq!(code(&text), "invalid_regulation");
        assert!(crate::input::split_body(&text).is_err());
    }

    #[test]
    fn a_regulation_inside_a_batch_is_rejected_as_such() {
        let raw = r#"{"regulationType":"suppress_with_delete","users":[]}"#;
        let missing = Reason::new("missing_type", "no type");
        assert_eq!(
            explain_rejection(raw, missing.clone()).code,
            "regulation_in_batch"
        );
        assert_eq!(
            explain_rejection(r#"{"a":1}"#, missing).code,
            "missing_type"
        );
    }
}
