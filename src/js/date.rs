//! JavaScript's `Date.parse` as V8 (Node.js, which runs the reference) implements it, in the
//! Lambda's time zone, UTC: first the ECMAScript date-time string format (`2024-03-05`,
//! `2024-03-05T10:20:30.123+05:30`), then, for anything else, V8's legacy parser, which reads
//! RFC 2822 (`Tue, 05 Mar 2024 10:20:30 GMT`), `Date#toString` output
//! (`Tue Mar 05 2024 15:50:30 GMT+0530 (India Standard Time)`), `2024/03/05`, `March 5, 2024`,
//! `3/5/2024` and the like. Written from V8's documented behaviour (its `dateparser` rules), with
//! no JavaScript engine: a tokenizer over the characters and three composers (day, time, zone),
//! the way V8 is organised, so each rule can be checked against V8's.

/// V8's keyword kinds; words that match none are `Invalid` ("garbage" words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Invalid,
    MonthName,
    TimeZoneName,
    TimeSeparator,
    AmPm,
}

/// Three-letter (lower-case, zero-padded) prefixes V8 recognises, with their kind and value.
const KEYWORDS: [([u32; 3], Word, i64); 27] = {
    const fn k(s: &[u8], word: Word, value: i64) -> ([u32; 3], Word, i64) {
        let mut p = [0u32; 3];
        let mut i = 0;
        while i < s.len() && i < 3 {
            p[i] = s[i] as u32;
            i += 1;
        }
        (p, word, value)
    }
    [
        k(b"jan", Word::MonthName, 1),
        k(b"feb", Word::MonthName, 2),
        k(b"mar", Word::MonthName, 3),
        k(b"apr", Word::MonthName, 4),
        k(b"may", Word::MonthName, 5),
        k(b"jun", Word::MonthName, 6),
        k(b"jul", Word::MonthName, 7),
        k(b"aug", Word::MonthName, 8),
        k(b"sep", Word::MonthName, 9),
        k(b"oct", Word::MonthName, 10),
        k(b"nov", Word::MonthName, 11),
        k(b"dec", Word::MonthName, 12),
        k(b"am", Word::AmPm, 0),
        k(b"pm", Word::AmPm, 12),
        k(b"ut", Word::TimeZoneName, 0),
        k(b"utc", Word::TimeZoneName, 0),
        k(b"z", Word::TimeZoneName, 0),
        k(b"gmt", Word::TimeZoneName, 0),
        k(b"cdt", Word::TimeZoneName, -5),
        k(b"cst", Word::TimeZoneName, -6),
        k(b"edt", Word::TimeZoneName, -4),
        k(b"est", Word::TimeZoneName, -5),
        k(b"mdt", Word::TimeZoneName, -6),
        k(b"mst", Word::TimeZoneName, -7),
        k(b"pdt", Word::TimeZoneName, -7),
        k(b"pst", Word::TimeZoneName, -8),
        k(b"t", Word::TimeSeparator, 0),
    ]
};

/// Digits of a numeral that count; further digits only add to its length.
const MAX_SIGNIFICANT_DIGITS: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// An unsigned numeral: its value (first nine significant digits) and its length in
    /// characters, leading zeros included.
    Number {
        value: i64,
        len: usize,
    },
    /// One of `:`, `-`, `+`, `.`, `)`.
    Symbol(char),
    Keyword {
        word: Word,
        value: i64,
        len: usize,
    },
    WhiteSpace,
    /// Any other character, or a parenthesised text.
    Unknown,
    End,
    /// The ES5 form started and then broke: the string is not a date.
    Invalid,
}

impl Token {
    fn is_number(self) -> bool {
        matches!(self, Token::Number { .. })
    }

    fn number(self) -> i64 {
        match self {
            Token::Number { value, .. } => value,
            _ => 0,
        }
    }

    fn is_fixed_length_number(self, n: usize) -> bool {
        matches!(self, Token::Number { len, .. } if len == n)
    }

    fn sign(self) -> Option<i64> {
        match self {
            Token::Symbol('+') => Some(1),
            Token::Symbol('-') => Some(-1),
            _ => None,
        }
    }

    fn is_keyword_z(self) -> bool {
        matches!(
            self,
            Token::Keyword {
                word: Word::TimeZoneName,
                value: 0,
                len: 1
            }
        )
    }
}

/// JavaScript's WhiteSpace and LineTerminator characters.
pub fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{B}' | '\u{C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// The characters of the string with one token of lookahead. A NUL character ends the input,
/// as it does in V8's reader.
struct Scanner<'a> {
    chars: std::str::Chars<'a>,
    ch: char,
    next: Token,
}

impl<'a> Scanner<'a> {
    fn new(s: &'a str) -> Self {
        let mut chars = s.chars();
        let ch = chars.next().unwrap_or('\0');
        let mut scanner = Scanner {
            chars,
            ch,
            next: Token::End,
        };
        scanner.next = scanner.scan();
        scanner
    }

    fn advance(&mut self) {
        self.ch = self.chars.next().unwrap_or('\0');
    }

    fn peek(&self) -> Token {
        self.next
    }

    fn next(&mut self) -> Token {
        let token = self.next;
        self.next = self.scan();
        token
    }

    fn skip_symbol(&mut self, c: char) -> bool {
        if self.next == Token::Symbol(c) {
            self.next = self.scan();
            true
        } else {
            false
        }
    }

    fn scan(&mut self) -> Token {
        let c = self.ch;
        if c == '\0' {
            return Token::End;
        }
        if c.is_ascii_digit() {
            let mut len = 0;
            while self.ch == '0' {
                len += 1;
                self.advance();
            }
            let (mut value, mut significant) = (0i64, 0usize);
            while let Some(d) = self.ch.to_digit(10) {
                if significant < MAX_SIGNIFICANT_DIGITS {
                    value = value * 10 + i64::from(d);
                }
                significant += 1;
                len += 1;
                self.advance();
            }
            return Token::Number { value, len };
        }
        if matches!(c, ':' | '-' | '+' | '.' | ')') {
            self.advance();
            return Token::Symbol(c);
        }
        if c >= 'A' && !is_js_space(c) {
            let mut prefix = [0u32; 3];
            let mut len = 0;
            while self.ch >= 'A' && !is_js_space(self.ch) {
                if let Some(slot) = prefix.get_mut(len) {
                    *slot = u32::from(self.ch) | 0x20;
                }
                len += 1;
                self.advance();
            }
            let found = KEYWORDS
                .iter()
                .find(|(p, word, _)| *p == prefix && (len <= 3 || *word == Word::MonthName));
            let (word, value) = found.map_or((Word::Invalid, 0), |(_, w, v)| (*w, *v));
            return Token::Keyword { word, value, len };
        }
        if is_js_space(c) {
            self.advance();
            return Token::WhiteSpace;
        }
        if c == '(' {
            let mut balance = 0i64;
            loop {
                if self.ch == ')' {
                    balance -= 1;
                } else if self.ch == '(' {
                    balance += 1;
                }
                self.advance();
                if balance <= 0 || self.ch == '\0' {
                    break;
                }
            }
            return Token::Unknown;
        }
        self.advance();
        Token::Unknown
    }
}

fn between(x: i64, lo: i64, hi: i64) -> bool {
    (lo..=hi).contains(&x)
}
fn is_month(x: i64) -> bool {
    between(x, 1, 12)
}
fn is_day(x: i64) -> bool {
    between(x, 1, 31)
}
fn is_hour(x: i64) -> bool {
    between(x, 0, 23)
}
fn is_minute(x: i64) -> bool {
    between(x, 0, 59)
}
fn is_second(x: i64) -> bool {
    between(x, 0, 59)
}
fn is_millisecond(x: i64) -> bool {
    between(x, 0, 999)
}

#[derive(Default)]
struct Day {
    comp: [i64; 3],
    index: usize,
    named_month: Option<i64>,
    iso: bool,
}

impl Day {
    fn add(&mut self, n: i64) -> bool {
        match self.comp.get_mut(self.index) {
            Some(slot) => {
                *slot = n;
                self.index += 1;
                true
            }
            None => false,
        }
    }

    fn is_empty(&self) -> bool {
        self.index == 0
    }

    /// Year, month (1-based) and day, as V8's day composer reads the components.
    fn write(mut self) -> Option<(i64, i64, i64)> {
        if self.index < 1 {
            return None;
        }
        while self.add(1) {}
        let [c0, c1, c2] = self.comp;
        let (mut year, month, day) = match self.named_month {
            None if self.iso || !is_day(c0) => (c0, c1, c2),
            None => (c2, c0, c1),
            Some(month) if !is_day(c0) => (c0, month, c1),
            Some(month) => (c1, month, c0),
        };
        if !self.iso {
            if between(year, 0, 49) {
                year += 2000;
            } else if between(year, 50, 99) {
                year += 1900;
            }
        }
        (is_month(month) && is_day(day)).then_some((year, month, day))
    }
}

#[derive(Default)]
struct Time {
    comp: [i64; 4],
    index: usize,
    hour_offset: Option<i64>,
}

impl Time {
    fn add(&mut self, n: i64) -> bool {
        match self.comp.get_mut(self.index) {
            Some(slot) => {
                *slot = n;
                self.index += 1;
                true
            }
            None => false,
        }
    }

    fn add_final(&mut self, n: i64) -> bool {
        if !self.add(n) {
            return false;
        }
        while self.add(0) {}
        true
    }

    fn is_empty(&self) -> bool {
        self.index == 0
    }

    fn is_expecting(&self, n: i64) -> bool {
        (self.index == 1 && is_minute(n))
            || (self.index == 2 && is_second(n))
            || (self.index == 3 && is_millisecond(n))
    }

    /// Milliseconds into the day.
    fn write(mut self) -> Option<i64> {
        while self.add(0) {}
        let [mut hour, minute, second, ms] = self.comp;
        if let Some(offset) = self.hour_offset {
            if !between(hour, 0, 12) {
                return None;
            }
            hour = hour % 12 + offset;
        }
        let valid = is_hour(hour) && is_minute(minute) && is_second(second) && is_millisecond(ms);
        if !valid && (hour != 24 || minute != 0 || second != 0 || ms != 0) {
            return None;
        }
        Some(((hour * 60 + minute) * 60 + second) * 1000 + ms)
    }
}

#[derive(Default)]
struct Zone {
    sign: Option<i64>,
    hour: Option<i64>,
    minute: Option<i64>,
}

impl Zone {
    fn set(&mut self, offset_hours: i64) {
        self.sign = Some(if offset_hours < 0 { -1 } else { 1 });
        self.hour = Some(offset_hours.abs());
        self.minute = Some(0);
    }

    fn is_expecting(&self, n: i64) -> bool {
        self.hour.is_some() && self.minute.is_none() && is_minute(n)
    }

    fn is_utc(&self) -> bool {
        self.hour == Some(0) && self.minute == Some(0)
    }

    fn is_empty(&self) -> bool {
        self.hour.is_none()
    }

    /// The offset from UTC in seconds; `Some(None)` for local time (UTC here).
    fn write(self) -> Option<Option<i64>> {
        let Some(sign) = self.sign else {
            return Some(None);
        };
        // V8 computes this in 32-bit unsigned arithmetic and refuses more than a small integer.
        let hour = self.hour.unwrap_or(0) as u32;
        let minute = self.minute.unwrap_or(0) as u32;
        let total = hour
            .wrapping_mul(3600)
            .wrapping_add(minute.wrapping_mul(60));
        if total > i32::MAX as u32 {
            return None;
        }
        Some(Some(sign * i64::from(total)))
    }
}

/// The first three significant digits of a fraction of a second, from its value and length.
fn read_milliseconds(token: Token) -> i64 {
    let Token::Number { value, len } = token else {
        return 0;
    };
    match len {
        1 => value * 100,
        2 => value * 10,
        3 => value,
        _ => {
            let len = len.min(MAX_SIGNIFICANT_DIGITS);
            value / 10i64.pow((len - 3) as u32)
        }
    }
}

/// The ECMAScript date-time string format, as far as the string follows it. Gives
/// [`Token::End`] when the whole string is in that format, [`Token::Invalid`] when it started a
/// time and then broke it, else the first token the legacy parser must look at.
fn es5(s: &mut Scanner<'_>, day: &mut Day, time: &mut Time, zone: &mut Zone) -> Token {
    if let Some(sign) = s.peek().sign() {
        let sign_token = s.next();
        if !s.peek().is_fixed_length_number(6) {
            return sign_token;
        }
        let year = s.next().number();
        if sign < 0 && year == 0 {
            return sign_token;
        }
        day.add(sign * year);
    } else if s.peek().is_fixed_length_number(4) {
        day.add(s.next().number());
    } else {
        return s.next();
    }
    if s.skip_symbol('-') {
        if !s.peek().is_fixed_length_number(2) || !is_month(s.peek().number()) {
            return s.next();
        }
        day.add(s.next().number());
        if s.skip_symbol('-') {
            if !s.peek().is_fixed_length_number(2) || !is_day(s.peek().number()) {
                return s.next();
            }
            day.add(s.next().number());
        }
    }
    if !matches!(
        s.peek(),
        Token::Keyword {
            word: Word::TimeSeparator,
            ..
        }
    ) {
        if s.peek() != Token::End {
            return s.next();
        }
    } else {
        s.next();
        if !s.peek().is_fixed_length_number(2) || !between(s.peek().number(), 0, 24) {
            return Token::Invalid;
        }
        // 24:00[:00[.000]] is allowed, no other time starting with 24.
        let hour_is_24 = s.peek().number() == 24;
        time.add(s.next().number());
        if !s.skip_symbol(':') {
            return Token::Invalid;
        }
        let bad = |t: Token, in_range: fn(i64) -> bool| {
            !t.is_fixed_length_number(2) || !in_range(t.number()) || (hour_is_24 && t.number() > 0)
        };
        if bad(s.peek(), is_minute) {
            return Token::Invalid;
        }
        time.add(s.next().number());
        if s.skip_symbol(':') {
            if bad(s.peek(), is_second) {
                return Token::Invalid;
            }
            time.add(s.next().number());
            if s.skip_symbol('.') {
                if !s.peek().is_number() || (hour_is_24 && s.peek().number() > 0) {
                    return Token::Invalid;
                }
                // More or fewer than three digits are allowed.
                time.add(read_milliseconds(s.next()));
            }
        }
        if s.peek().is_keyword_z() {
            s.next();
            zone.set(0);
        } else if let Some(sign) = s.peek().sign() {
            s.next();
            zone.sign = Some(sign);
            if s.peek().is_fixed_length_number(4) {
                // The hhmm extension.
                let hhmm = s.next().number();
                let (hours, minutes) = (hhmm / 100, hhmm % 100);
                if !is_hour(hours) || !is_minute(minutes) {
                    return Token::Invalid;
                }
                zone.hour = Some(hours);
                zone.minute = Some(minutes);
            } else {
                if !s.peek().is_fixed_length_number(2) || !is_hour(s.peek().number()) {
                    return Token::Invalid;
                }
                zone.hour = Some(s.next().number());
                if !s.skip_symbol(':') {
                    return Token::Invalid;
                }
                if !s.peek().is_fixed_length_number(2) || !is_minute(s.peek().number()) {
                    return Token::Invalid;
                }
                zone.minute = Some(s.next().number());
            }
        }
        if s.peek() != Token::End {
            return Token::Invalid;
        }
    }
    // Date-only forms without an offset are UTC; date-time forms local time (UTC here too).
    if zone.is_empty() && time.is_empty() {
        zone.set(0);
    }
    day.iso = true;
    Token::End
}

/// V8's legacy rules for whatever the ECMAScript format left; false when the string is no date.
fn legacy(
    first: Token,
    s: &mut Scanner<'_>,
    day: &mut Day,
    time: &mut Time,
    zone: &mut Zone,
) -> bool {
    let mut has_read_number = !day.is_empty();
    let mut token = first;
    while token != Token::End {
        match token {
            Token::Number { value: n, .. } => {
                has_read_number = true;
                if s.skip_symbol(':') {
                    if s.skip_symbol(':') {
                        // n::
                        if !time.is_empty() {
                            return false;
                        }
                        time.add(n);
                        time.add(0);
                    } else {
                        // n:
                        if !time.add(n) {
                            return false;
                        }
                        if s.peek() == Token::Symbol('.') {
                            s.next();
                        }
                    }
                } else if s.skip_symbol('.') && time.is_expecting(n) {
                    time.add(n);
                    if !s.peek().is_number() {
                        return false;
                    }
                    let ms = read_milliseconds(s.next());
                    time.add_final(ms);
                } else if zone.is_expecting(n) {
                    zone.minute = Some(n);
                } else if time.is_expecting(n) {
                    time.add_final(n);
                    // The end, white space, "Z", "+" or "-" must follow a complete time.
                    let peek = s.peek();
                    if !matches!(peek, Token::End | Token::WhiteSpace)
                        && !peek.is_keyword_z()
                        && peek.sign().is_none()
                    {
                        return false;
                    }
                } else {
                    if !day.add(n) {
                        return false;
                    }
                    s.skip_symbol('-');
                }
            }
            Token::Keyword { word, value, .. } => {
                if word == Word::AmPm && !time.is_empty() {
                    time.hour_offset = Some(value);
                } else if word == Word::MonthName {
                    day.named_month = Some(value);
                    s.skip_symbol('-');
                } else if word == Word::TimeZoneName && has_read_number {
                    zone.set(value);
                } else {
                    // Garbage words are refused after a number, and must be separated from the
                    // first number.
                    if has_read_number || s.peek().is_number() {
                        return false;
                    }
                }
            }
            Token::Symbol(c) if (c == '+' || c == '-') && (zone.is_utc() || !time.is_empty()) => {
                // A UTC offset, after "UTC"/"GMT" or a time.
                zone.sign = Some(if c == '-' { -1 } else { 1 });
                let (mut n, mut len) = (0, 0);
                if let Token::Number { value, len: l } = s.peek() {
                    s.next();
                    n = value;
                    len = l;
                }
                has_read_number = true;
                if s.peek() == Token::Symbol(':') {
                    zone.hour = Some(n);
                    zone.minute = None;
                } else if len == 1 || len == 2 {
                    zone.hour = Some(n);
                    zone.minute = Some(0);
                } else if len == 3 || len == 4 {
                    zone.hour = Some(n / 100);
                    zone.minute = Some(n % 100);
                } else {
                    return false;
                }
            }
            Token::Symbol('+' | '-' | ')') if has_read_number => return false,
            _ => {}
        }
        token = s.next();
    }
    true
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm; a day past the
/// month's end rolls over, as ECMAScript's MakeDay does).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// ECMAScript's time value range: 100,000,000 days either side of the epoch.
const MAX_TIME_MS: f64 = 8.64e15;

/// `Date.parse(s)` in milliseconds since the epoch, time zone UTC; none where JavaScript gives
/// NaN.
pub fn parse_ms(s: &str) -> Option<f64> {
    let mut scanner = Scanner::new(s);
    let (mut day, mut time, mut zone) = (Day::default(), Time::default(), Zone::default());
    let next = es5(&mut scanner, &mut day, &mut time, &mut zone);
    if next == Token::Invalid {
        return None;
    }
    if !legacy(next, &mut scanner, &mut day, &mut time, &mut zone) {
        return None;
    }
    let (year, month, date) = day.write()?;
    let ms_in_day = time.write()?;
    let offset = zone.write()?;
    // MakeDay refuses years beyond a million either way.
    if !between(year, -1_000_000, 1_000_000) {
        return None;
    }
    let days = days_from_civil(year, month, date);
    let local = days as f64 * 86_400_000.0 + ms_in_day as f64;
    let utc = local - offset.unwrap_or(0) as f64 * 1000.0;
    (utc.abs() <= MAX_TIME_MS).then_some(utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings and what Node.js's `Date.parse` gives for them with TZ=UTC (V8's rules).
    #[test]
    fn strings_javascript_reads_as_dates_give_its_time_and_the_rest_give_none() {
        let cases: &[(&str, Option<f64>)] = &[
            // The ECMAScript format.
            ("2024-03-05", Some(1_709_596_800_000.0)),
            ("2024-03-05T10:20:30.123Z", Some(1_709_634_030_123.0)),
            ("2024-03-05t10:20:30z", Some(1_709_634_030_000.0)),
            ("2024-03-05T10:20:30", Some(1_709_634_030_000.0)),
            ("2024-03-05T10:20Z", Some(1_709_634_000_000.0)),
            ("2024-03-05T16:20:30+06:00", Some(1_709_634_030_000.0)),
            ("2024-03-05T16:20:30+0600", Some(1_709_634_030_000.0)),
            ("2024-03-05T10:20:30.1Z", Some(1_709_634_030_100.0)),
            ("2024-03-05T10:20:30.123456789Z", Some(1_709_634_030_123.0)),
            ("2024-03-05T24:00:00Z", Some(1_709_683_200_000.0)),
            ("+002024-03-05T10:20:30Z", Some(1_709_634_030_000.0)),
            ("2024", Some(1_704_067_200_000.0)),
            ("2024-03", Some(1_709_251_200_000.0)),
            ("0000", Some(-62_167_219_200_000.0)),
            ("2024-02-30", Some(1_709_251_200_000.0)),
            ("1970-01-01T00:00:00.000Z", Some(0.0)),
            // RFC 2822 and Date#toString.
            ("Tue, 05 Mar 2024 10:20:30 GMT", Some(1_709_634_030_000.0)),
            (
                "Tue Mar 05 2024 15:50:30 GMT+0530 (India Standard Time)",
                Some(1_709_634_030_000.0),
            ),
            ("05 Mar 2024 10:20:30 +0100", Some(1_709_630_430_000.0)),
            ("Thu, 01 Jan 1970 00:00:00 GMT-0100", Some(3_600_000.0)),
            ("Mar 5 2024 10:20:30 EST", Some(1_709_652_030_000.0)),
            ("Sat, 01-Jan-2000 08:00:00 GMT", Some(946_713_600_000.0)),
            ("Tue Mar 05 2024", Some(1_709_596_800_000.0)),
            // Other legacy forms.
            ("2024/03/05", Some(1_709_596_800_000.0)),
            ("2024-03-05 10:20:30", Some(1_709_634_030_000.0)),
            ("March 5, 2024", Some(1_709_596_800_000.0)),
            ("3/5/2024", Some(1_709_596_800_000.0)),
            ("5.3.2024", Some(1_714_694_400_000.0)),
            ("Mar 5 2024 10:20 PM", Some(1_709_677_200_000.0)),
            ("Mar 5 2024 12:00 AM", Some(1_709_596_800_000.0)),
            ("1/1/70", Some(0.0)),
            ("1/1/49", Some(2_493_072_000_000.0)),
            ("3/5", Some(983_750_400_000.0)),
            ("12", Some(1_007_164_800_000.0)),
            ("99", Some(915_148_800_000.0)),
            ("0", Some(946_684_800_000.0)),
            ("2024-03-05\u{0}garbage", Some(1_709_596_800_000.0)),
            // Not dates.
            ("2024-03-05T10:20:30,123Z", None),
            ("2024-03-05T10:20:30 GMT", None),
            (" 2024-03-05T10:20:30Z", None),
            ("2024-03-05T24:00:01Z", None),
            ("2024-03-05T10Z", None),
            ("2024-13-01", None),
            ("-000000-01-01T00:00:00Z", None),
            ("yesterday", None),
            ("Tue05 Mar 2024", None),
            ("5 Mar 2024 garbage", None),
            ("", None),
            ("0.0", None),
            ("+275761-01-01T00:00:00Z", None),
            ("1/1/1000001", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_ms(text), *want, "{text:?}");
        }
    }

    #[test]
    fn any_text_gives_a_time_in_range_or_none_without_panicking() {
        let odd = [
            "((((",
            "))))",
            "+99999999999:",
            "GMT+999999999:59",
            "9999999999/9/9",
            "Dec 31 275760",
            "-271821-04-20T00:00:00Z",
            "+275760-09-13T00:00:00Z",
            "𝟘𝟙",
            "\u{2028}2024",
            "1:2:3:4:5",
            "1::2",
            "12.",
            "pm 10:00",
            "10:00 pm pm",
            "Z2024",
        ];
        for text in odd {
            if let Some(ms) = parse_ms(text) {
                assert!(
                    ms.abs() <= MAX_TIME_MS && ms.fract() == 0.0,
                    "{text:?} {ms}"
                );
            }
        }
        assert_eq!(
            parse_ms("+275760-09-13T00:00:00Z"),
            Some(MAX_TIME_MS),
            "the last valid instant"
        );
    }
}
