//! What a unit's dead letters are made of: its items as they came (a body's events, a
//! regulation's users, or a body decided as a whole), and the body of a letter holding some of
//! them, redrivable as it is.

use crate::engine::prepare::Prepared;
use crate::regulation::Regulation;

/// What a group's dead letters are made of: its items as they came. Each letter carries some of
/// the rejected ones (`crate::dead_letters` splits them by SQS's size limit, never
/// mid-item), in a body that can be redriven as it is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rejections<'r, 'a> {
    /// A body's events: a letter holds one event as it came, or several as a JSON array (NDJSON
    /// when one of them is not JSON).
    Events(&'r [Prepared<'a>]),
    /// A regulation's users: a letter holds the regulation with only its users.
    Users(&'r Regulation<'a>),
    /// A body decided as a whole (one item): the letter holds it as it came.
    Whole(&'r str),
}

impl Rejections<'_, '_> {
    /// How many items the group has (one outcome each).
    pub fn len(&self) -> usize {
        match self {
            Rejections::Events(prepared) => prepared.len(),
            Rejections::Users(regulation) => regulation.users.len(),
            Rejections::Whole(_) => 1,
        }
    }

    /// What the items are called in a reason.
    pub fn noun(&self) -> &'static str {
        match self {
            Rejections::Users(_) => "users",
            Rejections::Events(_) | Rejections::Whole(_) => "events",
        }
    }

    /// The text of item `i` as it came.
    pub fn raw(&self, i: usize) -> &str {
        match self {
            Rejections::Events(prepared) => prepared[i].raw,
            Rejections::Users(regulation) => regulation.users[i].raw,
            Rejections::Whole(body) => body,
        }
    }

    /// An upper bound of the size of a body holding several items: this plus, per item, its
    /// length and a separator. For a regulation, a pass over its users: compute it once.
    pub fn overhead(&self) -> usize {
        match self {
            // "[" and "]"
            Rejections::Events(_) => 2,
            Rejections::Users(_) | Rejections::Whole(_) => self.overhead_alone(),
        }
    }

    /// The size of a body holding one item, less that item's length, as SQS gets it
    /// (`aws::sqs_batch::sqs_body`). For a regulation, a pass
    /// over its users: compute it once.
    pub fn overhead_alone(&self) -> usize {
        match self {
            Rejections::Users(regulation) => {
                crate::aws::sqs_batch::sqs_body(&regulation.with_users(|_| false))
                    .text
                    .len()
            }
            Rejections::Events(_) | Rejections::Whole(_) => 0,
        }
    }

    /// The body of a letter holding the items `items` (ascending).
    pub fn body(&self, items: &[usize]) -> String {
        match self {
            Rejections::Events(prepared) => {
                dead_letter_body(items.iter().map(|&i| prepared[i].raw))
            }
            Rejections::Users(regulation) => {
                regulation.with_users(|u| items.binary_search(&u).is_ok())
            }
            Rejections::Whole(body) => (*body).to_owned(),
        }
    }
}

/// The dead-letter body for rejected events: one event as it came, a JSON array of several, or
/// NDJSON when some of them are not JSON at all (so each still arrives as it came).
pub(crate) fn dead_letter_body<'a>(raws: impl IntoIterator<Item = &'a str>) -> String {
    let raws: Vec<&str> = raws.into_iter().collect();
    match raws.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        many => {
            let all_json = many
                .iter()
                .all(|r| serde_json::from_str::<&serde_json::value::RawValue>(r).is_ok());
            if all_json {
                let mut body =
                    String::with_capacity(many.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
                body.push('[');
                for (i, raw) in many.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(raw.trim());
                }
                body.push(']');
                body
            } else {
                many.join("\n")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rejected_event_is_dead_lettered_as_it_came() {
        assert_eq!(dead_letter_body([r#"{"a":1}"#]), r#"{"a":1}"#);
        assert_eq!(dead_letter_body(["not json"]), "not json");
    }

    #[test]
    fn several_rejected_events_become_a_json_array() {
        assert_eq!(
            dead_letter_body([r#"{"a":1}"#, r#" {"b":2}"#]),
            r#"[{"a":1},{"b":2}]"#
        );
    }

    #[test]
    fn several_rejected_lines_with_one_not_json_stay_ndjson() {
        assert_eq!(
            dead_letter_body([r#"{"a":1}"#, "{oops"]),
            "{\"a\":1}\n{oops"
        );
    }
}
