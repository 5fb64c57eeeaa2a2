//! What is in a dead-letter queue: letters counted by `rejectionCode` and `destinationId`, one
//! example of each, shown so that no passcode or token can appear (members with a secret's name
//! are redacted, and a body that is not JSON is shown only if it names none).

use super::scan::Letter;
use crate::dead_letters::letter::attributes;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The code shown (and accepted by `redrive --code`) for letters without a `rejectionCode`:
/// messages SQS moved after `maxReceiveCount` receives because they kept failing.
pub const KEPT_FAILING: &str = "kept_failing";
/// Longest body shown in an example, in characters.
const MAX_EXAMPLE_CHARS: usize = 500;
/// Member names (lowercase, as substrings) whose values are never shown.
const SECRET_NAMES: [&str; 7] = [
    "passcode",
    "token",
    "secret",
    "password",
    "authorization",
    "apikey",
    "api_key",
];
const REDACTED: &str = "<redacted>";

/// A letter's code for counting and for `--code`.
pub fn code_of(letter: &Letter) -> &str {
    letter
        .attribute(attributes::REJECTION_CODE)
        .unwrap_or(KEPT_FAILING)
}

/// The tally of the letters read.
#[derive(Debug, Default)]
pub struct Tally {
    /// (code, destination id) to (count, example).
    groups: BTreeMap<(String, Option<String>), (u64, Value)>,
}

impl Tally {
    pub fn add(&mut self, letter: &Letter) {
        let key = (
            code_of(letter).to_owned(),
            letter
                .attribute(attributes::DESTINATION_ID)
                .map(str::to_owned),
        );
        self.groups
            .entry(key)
            .and_modify(|(count, _)| *count += 1)
            .or_insert_with(|| (1, example(letter)));
    }

    /// `{"byCode": {...}, "groups": [...]}`, groups by count, largest first.
    pub fn to_json(&self) -> Value {
        let mut by_code: BTreeMap<&str, u64> = BTreeMap::new();
        for ((code, _), (count, _)) in &self.groups {
            *by_code.entry(code).or_default() += count;
        }
        let mut groups: Vec<_> = self.groups.iter().collect();
        groups.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|((code, destination), (count, example))| {
                json!({
                    "rejectionCode": code,
                    "destinationId": destination,
                    "count": count,
                    "example": example,
                })
            })
            .collect();
        json!({"byCode": by_code, "groups": groups})
    }
}

/// One letter as an example: its ids, its reason, and its body made safe to show.
fn example(letter: &Letter) -> Value {
    json!({
        "messageId": letter.message_id,
        "sourceMessageId": letter.attribute(attributes::SOURCE_MESSAGE_ID),
        "rejectionMessage": letter.attribute(attributes::REJECTION_MESSAGE),
        "body": safe_body(&letter.body),
    })
}

/// The body with every secret-named member redacted, cut to [`MAX_EXAMPLE_CHARS`]. A body that
/// is not JSON cannot be redacted member by member: it is withheld when it names a secret.
pub fn safe_body(body: &str) -> String {
    let shown = match serde_json::from_str::<Value>(body) {
        Ok(mut value) => {
            redact(&mut value);
            value.to_string()
        }
        Err(_) => {
            let lower = body.to_ascii_lowercase();
            if SECRET_NAMES.iter().any(|name| lower.contains(name)) {
                return format!(
                    "<withheld: {} bytes, not JSON, naming a passcode, token or secret>",
                    body.len()
                );
            }
            body.to_owned()
        }
    };
    match shown.char_indices().nth(MAX_EXAMPLE_CHARS) {
        Some((cut, _)) => format!("{}...", &shown[..cut]),
        None => shown,
    }
}

fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => redact_members(map),
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn redact_members(map: &mut Map<String, Value>) {
    for (name, value) in map.iter_mut() {
        let lower = name.to_ascii_lowercase();
        if SECRET_NAMES.iter().any(|s| lower.contains(s)) {
            *value = json!(REDACTED);
        } else {
            redact(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;

    fn letter(id: &str, code: Option<&str>, destination: Option<&str>, body: &str) -> Letter {
        let mut attributes = std::collections::HashMap::new();
        let string = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .unwrap()
        };
        if let Some(code) = code {
            attributes.insert("rejectionCode".to_owned(), string(code));
        }
        if let Some(d) = destination {
            attributes.insert("destinationId".to_owned(), string(d));
        }
        Letter {
            message_id: id.into(),
            receipt_handle: "r".into(),
            body: body.into(),
            attributes,
            group_id: None,
        }
    }

    #[test]
    fn letters_are_counted_by_code_and_destination_with_one_example_each() {
        let mut t = Tally::default();
        t.add(&letter("1", Some("invalid_json"), Some("a"), "x"));
        t.add(&letter("2", Some("invalid_json"), Some("a"), "y"));
        t.add(&letter("3", Some("invalid_json"), Some("b"), "z"));
        t.add(&letter("4", None, None, "{}"));
        let j = t.to_json();
        assert_eq!(j["byCode"]["invalid_json"], 3);
        assert_eq!(j["byCode"]["kept_failing"], 1);
        let groups = j["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0]["count"], 2);
        assert_eq!(groups[0]["destinationId"], "a");
        assert_eq!(groups[0]["example"]["messageId"], "1");
        assert!(groups.iter().any(|g| g["destinationId"].is_null()));
    }

    #[test]
    fn secrets_never_show_in_an_example() {
        let body = r#"{"userId":"u","context":{"passcode":"pc-1","x":[{"webhookToken":"t-1"}]}}"#;
        let shown = safe_body(body);
        assert!(!shown.contains("pc-1") && !shown.contains("t-1"), "{shown}");
        assert!(shown.contains("\"userId\":\"u\""), "{shown}");
        let text = safe_body("not json Authorization: Bearer t-2");
        assert!(!text.contains("t-2"), "{text}");
        assert_eq!(safe_body("plain text"), "plain text");
    }

    #[test]
    fn a_long_body_is_cut_on_a_character_boundary() {
        let shown = safe_body(&"é".repeat(2000));
        assert_eq!(shown.chars().count(), MAX_EXAMPLE_CHARS + 3);
    }
}
