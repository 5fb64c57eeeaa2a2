//! The record's `ts`: CleverTap wants epoch seconds (docs/clevertap-api.md, "Record shapes").
//! As in the reference, a number is sent as given, and a string that `Number()` reads as 0 or
//! NaN becomes `Math.floor(new Date(s).getTime() / 1000)`, with `Date.parse` as V8 has it
//! (`date.rs`, time zone UTC). Deliberate differences: a string holding a non-zero number is
//! sent as that number (the reference sends the string), a value that is not a date is left out
//! (the reference sends `null`), and a falsy value is left out (the reference sends `0`, `""` or
//! `false` as it is), so CleverTap stamps the record on arrival.

use super::date::{is_js_space, parse_ms};
use super::value::{Kind, as_str, js_to_string, kind, number, truthy};
use crate::json::reader::Raw;

/// A `ts` to write.
#[derive(Debug, Clone, Copy)]
pub enum Ts<'a> {
    /// A JSON number, written as JavaScript writes it.
    Number(Raw<'a>),
    /// Seconds computed from a number held in a string or from a date.
    Value(f64),
    /// A value the reference keeps as it is because `Number(value)` is truthy: `true`, or an
    /// array such as `[1709634030]`.
    Kept(Raw<'a>),
}

impl PartialEq for Ts<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Ts::Number(a), Ts::Number(b)) => a.get() == b.get(),
            (Ts::Value(a), Ts::Value(b)) => a == b,
            (Ts::Kept(a), Ts::Kept(b)) => a.get() == b.get(),
            _ => false,
        }
    }
}

/// The `ts` for a raw value, or none (absent, falsy, or not a date).
pub fn ts(raw: Option<Raw<'_>>) -> Option<Ts<'_>> {
    if !truthy(raw) {
        return None;
    }
    let raw = raw?;
    match kind(raw) {
        Kind::Number => number(raw)
            .filter(|n| n.is_finite())
            .map(|_| Ts::Number(raw)),
        Kind::String => {
            let s = as_str(raw)?;
            match js_numeric_string(&s) {
                // `Number(s)` is truthy: the reference keeps the value (as a string).
                Some(n) if n != 0.0 => n.is_finite().then_some(Ts::Value(n)),
                // 0 or NaN: the reference reads the text as a date ("0" is 2000-01-01).
                _ => parse_ms(&s).map(|ms| Ts::Value((ms / 1000.0).floor())),
            }
        }
        // `Number(true)` is 1 and `Number([n])` is n: the reference keeps both as they are.
        Kind::Bool(true) => Some(Ts::Kept(raw)),
        Kind::Array => js_numeric_string(&js_to_string(raw))
            .filter(|n| *n != 0.0)
            .map(|_| Ts::Kept(raw)),
        _ => None,
    }
}

/// JavaScript's `Number(s)` for decimal strings (`" 12 "`, `"1e3"`); `None` when it is NaN.
fn js_numeric_string(s: &str) -> Option<f64> {
    let t = s.trim_matches(is_js_space);
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let ok = !body.is_empty()
        && body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok {
        return None;
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Raw<'_> {
        Raw::parse(s).unwrap()
    }

    #[test]
    fn a_date_string_becomes_epoch_seconds_rounded_down() {
        assert_eq!(
            ts(Some(raw("\"2024-03-05T10:20:30.123Z\""))),
            Some(Ts::Value(1_709_634_030.0))
        );
        assert_eq!(
            ts(Some(raw("\"1969-12-31T23:59:59.500Z\""))),
            Some(Ts::Value(-1.0))
        );
    }

    #[test]
    fn strings_that_javascript_date_parses_but_that_are_not_iso_8601_become_epoch_seconds() {
        for text in [
            "Tue, 05 Mar 2024 10:20:30 GMT",
            "Tue Mar 05 2024 15:50:30 GMT+0530 (India Standard Time)",
            "2024-03-05 10:20:30",
            "05 Mar 2024 11:20:30 +0100",
        ] {
            let literal = format!("{text:?}");
            assert_eq!(
                ts(Some(raw(&literal))),
                Some(Ts::Value(1_709_634_030.0)),
                "{text}"
            );
        }
        for text in ["2024/03/05", "March 5, 2024", "3/5/2024", "Mar 05 2024"] {
            let literal = format!("{text:?}");
            assert_eq!(
                ts(Some(raw(&literal))),
                Some(Ts::Value(1_709_596_800.0)),
                "{text}"
            );
        }
        // Zero as text is no number for the reference's test, so it is read as a date.
        assert_eq!(ts(Some(raw("\"0\""))), Some(Ts::Value(946_684_800.0)));
    }

    #[test]
    fn a_comma_before_the_fraction_is_not_a_date() {
        assert_eq!(ts(Some(raw("\"2024-03-05T10:20:30,123Z\""))), None);
        assert!(ts(Some(raw("\"2024-03-05T10:20:30.123Z\""))).is_some());
    }

    #[test]
    fn a_number_is_kept_as_given_and_a_numeric_string_becomes_a_number() {
        let n = raw("1709634030");
        assert_eq!(ts(Some(n)), Some(Ts::Number(n)));
        assert_eq!(
            ts(Some(raw("\"1709634030\""))),
            Some(Ts::Value(1_709_634_030.0))
        );
    }

    #[test]
    fn true_and_arrays_javascript_reads_as_a_number_are_kept_as_they_are() {
        // Issue 23, rule 4: `true` gave no ts before (it was in the list below).
        for s in ["true", "[1709634030]", "[\"12\"]"] {
            assert_eq!(ts(Some(raw(s))), Some(Ts::Kept(raw(s))), "{s}");
        }
    }

    #[test]
    fn falsy_values_and_strings_that_are_not_dates_give_no_ts() {
        for s in [
            "0",
            "\"\"",
            "null",
            "false",
            "\"yesterday\"",
            "\"2024-13-01\"",
            "{}",
            "[]",
            "[\"x\"]",
        ] {
            assert_eq!(ts(Some(raw(s))), None, "{s}");
        }
        assert_eq!(ts(None), None);
    }
}
