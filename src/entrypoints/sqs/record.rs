//! An SQS record as read from the batch's text, in the same pass that tells the payload's shape:
//! the members this function uses, borrowed where they hold no escapes, every other member
//! skipped. The reading never fails on a record: a record that is not an SQS message (not an
//! object, a member of the wrong type) is read as far as it can be and says what is wrong, so
//! that it becomes a retry of that message alone. One pass over a 14 MB batch instead of two
//! (BENCHMARKS.md, "Whole path").

use crate::transform::event::Key;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

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
    /// Why this is not an SQS message, when it is not.
    pub problem: Option<String>,
}

/// A string member, or what it was instead.
enum Loose<'a> {
    Str(Cow<'a, str>),
    Null,
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Loose<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Loose::Other("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Loose::Other("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Loose::Other("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose::Other("a number"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Other("an object"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for SqsRecord<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = SqsRecord<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut record = SqsRecord::default();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match key.as_ref() {
                        "messageId" => {
                            record.message_id = string(&mut record, "messageId", map.next_value()?)
                        }
                        "receiptHandle" => {
                            record.receipt_handle =
                                string(&mut record, "receiptHandle", map.next_value()?);
                        }
                        "body" => record.body = string(&mut record, "body", map.next_value()?),
                        "eventSource" => {
                            record.event_source =
                                string(&mut record, "eventSource", map.next_value()?);
                        }
                        "eventSourceARN" => {
                            record.event_source_arn =
                                string(&mut record, "eventSourceARN", map.next_value()?);
                        }
                        "attributes" => match map.next_value::<Attributes<'a>>()? {
                            Attributes::Read {
                                group,
                                receive_count,
                            } => {
                                record.group_id = group;
                                record.receive_count = receive_count;
                            }
                            Attributes::Not(what) => record.note("attributes", what),
                        },
                        "messageAttributes" => match map.next_value::<MessageAttributes<'a>>()? {
                            MessageAttributes::Read(destination) => {
                                record.destination_attr = destination;
                            }
                            MessageAttributes::Not(what) => record.note("messageAttributes", what),
                        },
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(record)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SqsRecord::not_an_object("an array"))
            }
            fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
                Ok(SqsRecord::not_an_object("a string"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(SqsRecord::not_an_object("a string"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(SqsRecord::not_an_object("null"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(SqsRecord::not_an_object("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(SqsRecord::not_an_object("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(SqsRecord::not_an_object("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(SqsRecord::not_an_object("a number"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'a> SqsRecord<'a> {
    fn not_an_object(what: &str) -> Self {
        SqsRecord {
            problem: Some(format!("the record is {what}, not an object")),
            ..SqsRecord::default()
        }
    }

    fn note(&mut self, member: &str, what: &str) {
        if self.problem.is_none() {
            self.problem = Some(format!("{member} is {what}"));
        }
    }
}

/// A string member's value; a value of another type is noted on the record.
fn string<'a>(record: &mut SqsRecord<'a>, member: &str, value: Loose<'a>) -> Option<Cow<'a, str>> {
    match value {
        Loose::Str(s) => Some(s),
        Loose::Null => None,
        Loose::Other(what) => {
            record.note(member, &format!("{what}, not a string"));
            None
        }
    }
}

/// The `attributes` member: the `MessageGroupId` and `ApproximateReceiveCount`, or what the
/// member was instead of an object.
enum Attributes<'a> {
    Read {
        group: Option<Cow<'a, str>>,
        receive_count: Option<Cow<'a, str>>,
    },
    Not(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Attributes<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Attributes<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut group = None;
                let mut receive_count = None;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match key.as_ref() {
                        "MessageGroupId" => {
                            if let Loose::Str(s) = map.next_value::<Loose<'a>>()? {
                                group = Some(s);
                            }
                        }
                        "ApproximateReceiveCount" => {
                            if let Loose::Str(s) = map.next_value::<Loose<'a>>()? {
                                receive_count = Some(s);
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Attributes::Read {
                    group,
                    receive_count,
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Attributes::Read {
                    group: None,
                    receive_count: None,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Attributes::Not("an array, not an object"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Attributes::Not("a string, not an object"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Attributes::Not("a boolean, not an object"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Attributes::Not("a number, not an object"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Attributes::Not("a number, not an object"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Attributes::Not("a number, not an object"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The `messageAttributes` member: the `destinationId` attribute (`Some(None)` when present
/// without a `stringValue`), or what the member was instead of an object.
enum MessageAttributes<'a> {
    Read(Option<Option<Cow<'a, str>>>),
    Not(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for MessageAttributes<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = MessageAttributes<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut destination = None;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if key == "destinationId" {
                        destination = Some(map.next_value::<StringValue<'a>>()?.0);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(MessageAttributes::Read(destination))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MessageAttributes::Read(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MessageAttributes::Not("an array, not an object"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MessageAttributes::Not("a string, not an object"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MessageAttributes::Not("a boolean, not an object"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MessageAttributes::Not("a number, not an object"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MessageAttributes::Not("a number, not an object"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MessageAttributes::Not("a number, not an object"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// One message attribute's `stringValue`, when it is a string.
struct StringValue<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for StringValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = StringValue<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut value = None;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if key == "stringValue" {
                        if let Loose::Str(s) = map.next_value::<Loose<'a>>()? {
                            value = Some(s);
                        }
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(StringValue(value))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StringValue(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StringValue(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(StringValue(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StringValue(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StringValue(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StringValue(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StringValue(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> SqsRecord<'_> {
        serde_json::from_str(text).unwrap()
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
        assert!(serde_json::from_str::<SqsRecord<'_>>(r#"{"body":"x""#).is_err());
    }
}
