//! An SQS record as read from the batch's text, in the same pass that tells the payload's shape:
//! the members this function uses, borrowed where they hold no escapes, every other member
//! skipped. The reading never fails on a record that is valid JSON: a record that is not an SQS
//! message (not an object, a member of the wrong type) is read as far as it can be and says what
//! is wrong, so that it becomes a retry of that message alone. Read with the transform's own JSON
//! reader rather than serde_json: a body is JSON inside a JSON string, a `\"` every few bytes,
//! and serde_json's string reader spends over a hundred instructions on each escape
//! (BENCHMARKS.md, "Whole path").

use crate::json::reader::decode_str;
use crate::json::reader::{Raw, Reader, SyntaxError};
use std::borrow::Cow;

/// One record of an SQS event.
#[derive(Debug, Default)]
pub struct SqsRecord<'a> {
    pub message_id: Option<Cow<'a, str>>,
    pub receipt_handle: Option<Cow<'a, str>>,
    pub body: Option<Cow<'a, str>>,
    pub event_source: Option<Cow<'a, str>>,
    pub event_source_arn: Option<Cow<'a, str>>,
    /// The `MessageGroupId` system attribute (FIFO queues).
    pub group_id: Option<Cow<'a, str>>,
    /// The `ApproximateReceiveCount` system attribute, as given.
    pub receive_count: Option<Cow<'a, str>>,
    /// The `destinationId` message attribute: `None` when absent, `Some(None)` when present
    /// without a `stringValue`.
    pub destination_attr: Option<Option<Cow<'a, str>>>,
    /// The `bodyForm` message attribute's string value (`crate::queue::attributes`).
    pub body_form: Option<Cow<'a, str>>,
    /// Why this is not an SQS message, when it is not.
    pub problem: Option<String>,
}

/// A string member, or what it was instead.
enum Loose<'a> {
    Str(Cow<'a, str>),
    Null,
    Other(&'static str),
}

impl<'a> Loose<'a> {
    fn of(raw: Raw<'a>) -> Self {
        match raw.get().as_bytes().first() {
            Some(b'"') => match decode_str(raw.get()) {
                Ok(text) => Loose::Str(text),
                // Cannot happen: the reader checked every escape.
                Err(_) => Loose::Other("a string that cannot be decoded"),
            },
            Some(b'n') => Loose::Null,
            _ => Loose::Other(kind(raw)),
        }
    }

    fn str(self) -> Option<Cow<'a, str>> {
        match self {
            Loose::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// What a JSON value is, as said in a problem.
fn kind(raw: Raw<'_>) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

impl<'a> SqsRecord<'a> {
    /// Reads one record at the reader's position. Errs only when the text is not JSON.
    pub fn read(r: &mut Reader<'a>) -> Result<Self, SyntaxError> {
        if r.peek() != Some(b'{') {
            let what = kind(r.value()?);
            return Ok(SqsRecord {
                problem: Some(format!("the record is {what}, not an object")),
                ..SqsRecord::default()
            });
        }
        let mut record = SqsRecord::default();
        r.members(|r, key| {
            match key.as_ref() {
                "messageId" => record.message_id = record.string("messageId", r)?,
                "receiptHandle" => {
                    record.receipt_handle = record.string("receiptHandle", r)?;
                }
                "body" => record.body = record.string("body", r)?,
                "eventSource" => record.event_source = record.string("eventSource", r)?,
                "eventSourceARN" => {
                    record.event_source_arn = record.string("eventSourceARN", r)?;
                }
                "attributes" => record.attributes(r)?,
                "messageAttributes" => record.message_attributes(r)?,
                _ => {
                    r.value()?;
                }
            }
            Ok(())
        })?;
        Ok(record)
    }

    /// Reads `text` as exactly one record (tests).
    #[cfg(test)]
    pub fn from_text(text: &'a str) -> Result<Self, SyntaxError> {
        let mut r = Reader::new(text);
        let record = SqsRecord::read(&mut r)?;
        r.end()?;
        Ok(record)
    }

    fn note(&mut self, member: &str, what: &str) {
        if self.problem.is_none() {
            self.problem = Some(format!("{member} is {what}"));
        }
    }

    /// A string member's value; a value of another type is noted on the record.
    fn string(
        &mut self,
        member: &str,
        r: &mut Reader<'a>,
    ) -> Result<Option<Cow<'a, str>>, SyntaxError> {
        if r.peek() == Some(b'"') {
            return r.string_text().map(Some);
        }
        Ok(match Loose::of(r.value()?) {
            Loose::Str(s) => Some(s),
            Loose::Null => None,
            Loose::Other(what) => {
                self.note(member, &format!("{what}, not a string"));
                None
            }
        })
    }

    /// The `attributes` member: the `MessageGroupId` and `ApproximateReceiveCount`, or what the
    /// member was instead of an object.
    fn attributes(&mut self, r: &mut Reader<'a>) -> Result<(), SyntaxError> {
        if r.peek() != Some(b'{') {
            let raw = r.value()?;
            if !matches!(Loose::of(raw), Loose::Null) {
                self.note("attributes", &format!("{}, not an object", kind(raw)));
            }
            return Ok(());
        }
        r.members(|r, key| {
            match key.as_ref() {
                "MessageGroupId" => self.group_id = Loose::of(r.value()?).str(),
                "ApproximateReceiveCount" => self.receive_count = Loose::of(r.value()?).str(),
                _ => {
                    r.value()?;
                }
            }
            Ok(())
        })
    }

    /// The `messageAttributes` member: the `destinationId` attribute (`Some(None)` when present
    /// without a `stringValue`) and the `bodyForm` one, or what the member was instead of an
    /// object.
    fn message_attributes(&mut self, r: &mut Reader<'a>) -> Result<(), SyntaxError> {
        if r.peek() != Some(b'{') {
            let raw = r.value()?;
            if !matches!(Loose::of(raw), Loose::Null) {
                self.note(
                    "messageAttributes",
                    &format!("{}, not an object", kind(raw)),
                );
            }
            return Ok(());
        }
        r.members(|r, key| {
            if key == "destinationId" {
                self.destination_attr = Some(string_value(r)?);
            } else if key == crate::queue::attributes::BODY_FORM {
                self.body_form = string_value(r)?;
            } else {
                r.value()?;
            }
            Ok(())
        })
    }
}

/// One message attribute's `stringValue`, when it is a string.
fn string_value<'a>(r: &mut Reader<'a>) -> Result<Option<Cow<'a, str>>, SyntaxError> {
    if r.peek() != Some(b'{') {
        r.value()?;
        return Ok(None);
    }
    let mut value = None;
    r.members(|r, key| {
        let raw = r.value()?;
        if key == "stringValue" {
            value = Loose::of(raw).str();
        }
        Ok(())
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_read(text: &str) -> Result<SqsRecord<'_>, SyntaxError> {
        SqsRecord::from_text(text)
    }

    fn read(text: &str) -> SqsRecord<'_> {
        try_read(text).unwrap()
    }

    #[test]
    fn the_members_used_are_read_and_borrowed_where_they_hold_no_escapes() {
        let r = read(
            r#"{"messageId":"m-1","receiptHandle":"rh","body":"{\"a\":1}","md5OfBody":"x",
                "attributes":{"ApproximateReceiveCount":"1","MessageGroupId":"g-1"},
                "messageAttributes":{"destinationId":{"stringValue":"dest-a","dataType":"String"},
                                     "other":{"stringValue":"x"}},
                "eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:1:q.fifo"}"#,
        );
        assert!(matches!(r.message_id, Some(Cow::Borrowed("m-1"))));
        assert_eq!(r.body.as_deref(), Some(r#"{"a":1}"#));
        assert!(matches!(r.body, Some(Cow::Owned(_))), "unescaped: owned");
        assert_eq!(r.group_id.as_deref(), Some("g-1"));
        assert_eq!(r.destination_attr, Some(Some(Cow::Borrowed("dest-a"))));
        assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
        assert!(r.problem.is_none());
    }

    #[test]
    fn a_record_that_is_not_an_sqs_message_says_why_and_keeps_what_it_can() {
        for (text, problem) in [
            ("5", "the record is a number, not an object"),
            (r#"["x"]"#, "the record is an array, not an object"),
            (
                r#"{"messageId":"m-2","body":5}"#,
                "body is a number, not a string",
            ),
            (
                r#"{"messageId":"m-2","attributes":[]}"#,
                "attributes is an array, not an object",
            ),
            (
                r#"{"messageId":"m-2","messageAttributes":"x"}"#,
                "messageAttributes is a string, not an object",
            ),
        ] {
            let r = read(text);
            assert_eq!(r.problem.as_deref(), Some(problem), "{text}");
        }
        assert_eq!(
            read(r#"{"messageId":"m-2","body":5}"#)
                .message_id
                .as_deref(),
            Some("m-2")
        );
    }

    #[test]
    fn a_destination_attribute_without_a_string_value_is_present_but_empty() {
        let r = read(r#"{"messageAttributes":{"destinationId":{"binaryValue":"AA=="}}}"#);
        assert_eq!(r.destination_attr, Some(None));
        let r = read(r#"{"messageAttributes":{}}"#);
        assert_eq!(r.destination_attr, None);
    }

    #[test]
    fn a_record_that_is_not_json_is_an_error_of_the_whole_payload() {
        assert!(try_read(r#"{"body":"x""#).is_err());
        assert!(try_read(r#"{"body":"\x"}"#).is_err());
    }
}
