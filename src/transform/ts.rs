//! The record's `ts`: CleverTap wants epoch seconds (docs/clevertap-api.md, "Record shapes").
//! As in the reference, a number is sent as given and a date string becomes
//! `Math.floor(new Date(s).getTime() / 1000)`. Two deliberate differences: a numeric string is
//! sent as a number (the reference sends the string), and a value that is not a date is left
//! out (the reference sends `null`), so CleverTap stamps the record on arrival.

use super::event::Raw;
use super::value::{Kind, as_str, js_trim, kind, number, truthy};

/// A `ts` to write.
#[derive(Debug, Clone, Copy)]
pub enum Ts<'a> {
    /// A JSON number, written as JavaScript writes it.
    Number(Raw<'a>),
    /// Seconds computed from a number held in a string or from a date.
    Value(f64),
}

impl PartialEq for Ts<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Ts::Number(a), Ts::Number(b)) => a.get() == b.get(),
            (Ts::Value(a), Ts::Value(b)) => a == b,
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
            if let Some(n) = js_numeric_string(&s) {
                return (n != 0.0 && n.is_finite()).then_some(Ts::Value(n));
            }
            parse_date_ms(&s).map(|ms| Ts::Value((ms / 1000.0).floor()))
        }
        _ => None,
    }
}

/// JavaScript's `Number(s)` for decimal strings (`" 12 "`, `"1e3"`); `None` when it is NaN.
fn js_numeric_string(s: &str) -> Option<f64> {
    let t = js_trim(s);
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

/// Milliseconds since the epoch for the date strings `new Date(s)` reads in the ISO form
/// (`2024-03-05`, `2024-03-05T10:20:30.123Z`, `+05:30` offsets, a space instead of `T`).
/// Times without an offset are read as UTC (the Lambda's time zone).
pub fn parse_date_ms(s: &str) -> Option<f64> {
    let b = js_trim(s).as_bytes();
    let mut p = Parser { b, i: 0 };
    let year = p.digits(4)?;
    let (mut month, mut day) = (1, 1);
    if p.eat(b'-') {
        month = p.digits(2)?;
        if p.eat(b'-') {
            day = p.digits(2)?;
        }
    }
    let (mut h, mut m, mut sec, mut ms) = (0, 0, 0, 0.0);
    let mut offset_min: i64 = 0;
    if p.eat(b'T') || p.eat(b't') || p.eat(b' ') {
        h = p.digits(2)?;
        if !p.eat(b':') {
            return None;
        }
        m = p.digits(2)?;
        if p.eat(b':') {
            sec = p.digits(2)?;
            if p.eat(b'.') || p.eat(b',') {
                let start = p.i;
                while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                    p.i += 1;
                }
                let frac = std::str::from_utf8(b.get(start..p.i)?).ok()?;
                if frac.is_empty() {
                    return None;
                }
                let padded: String = frac.chars().chain("000".chars()).take(3).collect();
                ms = padded.parse::<f64>().ok()?;
            }
        }
        if p.eat(b'Z') || p.eat(b'z') {
        } else if let Some(sign) = p.peek().filter(|c| *c == b'+' || *c == b'-') {
            p.i += 1;
            let oh = p.digits(2)?;
            p.eat(b':');
            let om = p.digits(2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            offset_min = oh * 60 + om;
            if sign == b'-' {
                offset_min = -offset_min;
            }
        }
    }
    if p.i != b.len() {
        return None;
    }
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (h < 24 || (h == 24 && m == 0 && sec == 0 && ms == 0.0))
        && m < 60
        && sec < 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + m * 60 + sec - offset_min * 60;
    Some(secs as f64 * 1000.0 + ms)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn digits(&mut self, n: usize) -> Option<i64> {
        let part = self.b.get(self.i..self.i + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(part.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Raw<'_> {
        Raw::parse(s).unwrap()
    }

    #[test]
    fn an_iso_date_becomes_epoch_seconds_rounded_down() {
        assert_eq!(
            ts(Some(raw("\"2024-03-05T10:20:30.123Z\""))),
            Some(Ts::Value(1_709_634_030.0))
        );
        assert_eq!(parse_date_ms("1970-01-01"), Some(0.0));
        assert_eq!(parse_date_ms("1969-12-31T23:59:59.500Z"), Some(-500.0));
        assert_eq!(
            parse_date_ms("2024-03-05T16:20:30+06:00"),
            parse_date_ms("2024-03-05T10:20:30Z")
        );
        assert_eq!(
            parse_date_ms("2024-03-05 10:20:30"),
            parse_date_ms("2024-03-05T10:20:30Z")
        );
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
    fn falsy_values_and_strings_that_are_not_dates_give_no_ts() {
        for s in [
            "0",
            "\"\"",
            "null",
            "false",
            "\"yesterday\"",
            "\"2024-13-01\"",
            "{}",
            "true",
        ] {
            assert_eq!(ts(Some(raw(s))), None, "{s}");
        }
        assert_eq!(ts(None), None);
    }
}
