//! A strict one-pass JSON reader over borrowed text, for the event reader (`event.rs`).
//! It accepts exactly the grammar serde_json accepts (RFC 8259: no trailing commas, no leading
//! zeros, no raw control characters in strings, valid escapes) but only *finds* values: each
//! value comes back as its own text, borrowed, and a value the mapping never reads is skipped
//! at a few instructions per byte (strings eight bytes at a time). serde_json's `IgnoredAny`
//! scan costs more than the whole mapping has to spend (BENCHMARKS.md), hence this module.
//! Nesting is tracked in a bit stack, not by recursion, so any depth is read without growing
//! the call stack (as serde_json's own skipping does).

use super::escape::{self, WriteError, next_escape};
use std::borrow::Cow;
use std::fmt;

/// The text of one valid JSON value, borrowed from the input (no surrounding whitespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    /// The value's JSON text.
    pub fn get(&self) -> &'a str {
        self.0
    }

    /// Reads `text` as exactly one JSON value (whitespace around it allowed).
    #[cfg(test)]
    pub fn parse(text: &'a str) -> Result<Self, SyntaxError> {
        let mut r = Reader::new(text);
        let v = r.value()?;
        r.end()?;
        Ok(v)
    }
}

/// Reads `text` as exactly one JSON value, as JavaScript's `JSON.parse` would accept it
/// (whitespace around it allowed); none when it is not JSON.
pub(crate) fn parse_value(text: &str) -> Option<Raw<'_>> {
    let mut r = Reader::new(text);
    let v = r.value().ok()?;
    r.end().ok()?;
    Some(v)
}

/// Why text is not valid JSON, and the byte offset where that was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError {
    pub what: &'static str,
    pub at: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for SyntaxError {}

/// A cursor over JSON text.
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
    /// Where [`Reader::string_text`] decodes; reused from one string to the next.
    scratch: Vec<u8>,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Reader {
            text,
            pos: 0,
            scratch: Vec::new(),
        }
    }

    /// How many bytes of the text are not read yet.
    pub fn remaining(&self) -> usize {
        self.text.len().saturating_sub(self.pos)
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn err<T>(&self, what: &'static str) -> Result<T, SyntaxError> {
        Err(SyntaxError { what, at: self.pos })
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    /// The first byte of the next value, after whitespace.
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes().get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), SyntaxError> {
        self.ws();
        if self.bytes().get(self.pos) == Some(&byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(what)
        }
    }

    /// Only whitespace may follow.
    pub fn end(&mut self) -> Result<(), SyntaxError> {
        self.ws();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            self.err("trailing characters")
        }
    }

    /// Reads one value, whatever its type, and gives its text.
    pub fn value(&mut self) -> Result<Raw<'a>, SyntaxError> {
        self.ws();
        let start = self.pos;
        self.skip()?;
        Ok(Raw(self.text.get(start..self.pos).unwrap_or_default()))
    }

    /// Reads a value where serde_json would have read it as a typed value rather than skipped
    /// it: a string must then have no unpaired surrogate escape and a number must fit a double.
    pub fn typed_value(&mut self) -> Result<Raw<'a>, SyntaxError> {
        let start = self.pos;
        let raw = self.value()?;
        let ok = match raw.get().as_bytes().first() {
            Some(b'"') => !has_lone_surrogate(raw.get()),
            Some(b'-' | b'0'..=b'9') => raw.get().parse::<f64>().is_ok_and(f64::is_finite),
            _ => true,
        };
        if ok {
            Ok(raw)
        } else {
            Err(SyntaxError {
                what: "a string with an unpaired surrogate or a number out of range",
                at: start,
            })
        }
    }

    /// Reads an object (the next value must be one), calling `member` with each decoded key
    /// while the reader stands before that key's value; `member` must read the value.
    pub fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Result<(), SyntaxError>,
    ) -> Result<(), SyntaxError> {
        self.expect(b'{', "expected an object")?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.key()?;
            self.expect(b':', "expected ':'")?;
            member(self, key)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or '}'"),
            }
        }
    }

    /// Reads an array (the next value must be one), calling `element` before each element;
    /// `element` must read it.
    pub fn elements(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<(), SyntaxError>,
    ) -> Result<(), SyntaxError> {
        self.expect(b'[', "expected an array")?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            element(self)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or ']'"),
            }
        }
    }

    /// An object key, decoded (borrowed when it has no escapes). As serde_json, a key with an
    /// unpaired surrogate escape is an error.
    fn key(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        if self.peek() != Some(b'"') {
            return self.err("expected a key");
        }
        let start = self.pos;
        let escaped = self.string()?;
        let literal = self.text.get(start..self.pos).unwrap_or_default();
        if !escaped {
            return Ok(Cow::Borrowed(
                literal.get(1..literal.len() - 1).unwrap_or_default(),
            ));
        }
        if has_lone_surrogate(literal) {
            return Err(SyntaxError {
                what: "a key with an unpaired surrogate",
                at: start,
            });
        }
        decode_str(literal).map_err(|_| SyntaxError {
            what: "invalid key",
            at: start,
        })
    }

    /// Skips a string literal starting at the quote; tells whether it has escapes. Inlined
    /// into its two callers: it runs about sixty times per event and its body is small.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, SyntaxError> {
        let bytes = self.bytes();
        let mut i = self.pos + 1;
        let mut escaped = false;
        loop {
            let Some(j) = next_escape(bytes, i) else {
                self.pos = bytes.len();
                return self.err("unterminated string");
            };
            match bytes[j] {
                b'"' => {
                    self.pos = j + 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    i = match bytes.get(j + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j + 2,
                        Some(b'u')
                            if bytes
                                .get(j + 2..j + 6)
                                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                        {
                            j + 6
                        }
                        _ => {
                            self.pos = j;
                            return self.err("invalid escape");
                        }
                    };
                }
                _ => {
                    self.pos = j;
                    return self.err("control character in a string");
                }
            }
        }
    }

    /// Reads a string value and gives its text, decoded in the same pass that finds its end;
    /// borrowed when it has no escapes. Lone surrogates become U+FFFD. Made for the SQS
    /// envelope, whose bodies are JSON inside JSON strings, a `\"` every few bytes: eight bytes
    /// at a time, each word copied whole and the output advanced only past the bytes before
    /// its first `"`, `\\` or control character (BENCHMARKS.md, "Whole path").
    pub fn string_text(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        if self.peek() != Some(b'"') {
            return self.err("expected a string");
        }
        let text = self.text;
        let bytes = text.as_bytes();
        let start = self.pos + 1;
        let Some(first) = next_escape(bytes, start) else {
            self.pos = bytes.len();
            return self.err("unterminated string");
        };
        if bytes[first] == b'"' {
            self.pos = first + 1;
            return Ok(Cow::Borrowed(text.get(start..first).unwrap_or_default()));
        }
        // `out[..w]` is the text so far; `out` is kept at least sixteen bytes longer, so every
        // write below is one whole word or a few bytes at `w`.
        let out = &mut self.scratch;
        let (mut i, mut w) = (first, first - start);
        if out.len() < w + 8 {
            out.resize(w + 64, 0);
        }
        out[..w].copy_from_slice(&bytes[start..first]);
        loop {
            // Room for a word, or for the run before an escape plus what it decodes to.
            if out.len() < w + 16 {
                out.resize(2 * out.len() + 16, 0);
            }
            // Copy up to the next byte that needs a look: whole words, then single bytes.
            let chunk = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>);
            let dst = out.get_mut(w..).and_then(<[u8]>::first_chunk_mut::<8>);
            if let (Some(chunk), Some(dst)) = (chunk, dst) {
                *dst = *chunk;
                let hits = escape::needs_escape(u64::from_le_bytes(*chunk));
                if hits == 0 {
                    i += 8;
                    w += 8;
                    continue;
                }
                let run = (hits.trailing_zeros() / 8) as usize;
                i += run;
                w += run;
            } else {
                match bytes.get(i) {
                    None => {
                        self.pos = i;
                        return self.err("unterminated string");
                    }
                    Some(&b) if escape::ESCAPE[b as usize] == 0 => {
                        if let Some(dst) = out.get_mut(w) {
                            *dst = b;
                        }
                        i += 1;
                        w += 1;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            match bytes[i] {
                b'"' => break,
                // `\"`, a body's escape every few bytes, decoded in place: the other escapes
                // go through the table (issue 22: fewer instructions per escape).
                b'\\' if bytes.get(i + 1) == Some(&b'"') => {
                    if let Some(dst) = out.get_mut(w) {
                        *dst = b'"';
                    }
                    i += 2;
                    w += 1;
                }
                b'\\' => {
                    let Ok((read, wrote)) = escape::unescape_into(bytes, i, out, w) else {
                        self.pos = i;
                        return self.err("invalid escape");
                    };
                    i += read;
                    w += wrote;
                }
                _ => {
                    self.pos = i;
                    return self.err("control character in a string");
                }
            }
        }
        self.pos = i + 1;
        // Runs end at ASCII bytes and escapes decode to whole characters: always UTF-8.
        String::from_utf8(out.get(..w).unwrap_or_default().to_vec())
            .map(Cow::Owned)
            .map_err(|_| SyntaxError {
                what: "invalid string",
                at: start,
            })
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.bytes().get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), SyntaxError> {
        let bytes = self.bytes();
        if bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("invalid number"),
        }
        if bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return self.err("invalid number");
            }
        }
        if let Some(b'e' | b'E') = bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = bytes.get(self.pos) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.err("invalid number");
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static str) -> Result<(), SyntaxError> {
        if self.text.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.err("expected value")
        }
    }

    /// Skips one value of any type and depth, without recursion.
    fn skip(&mut self) -> Result<(), SyntaxError> {
        let mut open = BitStack::default();
        loop {
            // A value is expected here.
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        open.push(true);
                        self.member_key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        open.push(false);
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                _ => return self.err("expected value"),
            }
            // A value is complete: close containers until another value is expected.
            loop {
                let Some(in_object) = open.top() else {
                    return Ok(());
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if in_object {
                            self.member_key()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {
                        self.pos += 1;
                        open.pop();
                    }
                    Some(b']') if !in_object => {
                        self.pos += 1;
                        open.pop();
                    }
                    _ => return self.err("expected ',' or a closing bracket"),
                }
            }
        }
    }

    /// Skips `"key":` inside a skipped object.
    fn member_key(&mut self) -> Result<(), SyntaxError> {
        if self.peek() != Some(b'"') {
            return self.err("expected a key");
        }
        self.string()?;
        self.expect(b':', "expected ':'")
    }
}

/// Whether each open container is an object (true) or an array, innermost last: 64 levels in a
/// word, deeper ones in a vector allocated only for such depths.
#[derive(Default)]
struct BitStack {
    depth: usize,
    low: u64,
    high: Vec<u64>,
}

impl BitStack {
    fn push(&mut self, object: bool) {
        let d = self.depth;
        let (word, bit) = if d < 64 {
            (&mut self.low, d)
        } else {
            let w = (d - 64) / 64;
            if w == self.high.len() {
                self.high.push(0);
            }
            match self.high.get_mut(w) {
                Some(word) => (word, (d - 64) % 64),
                None => return,
            }
        };
        if object {
            *word |= 1 << bit;
        } else {
            *word &= !(1 << bit);
        }
        self.depth += 1;
    }

    fn top(&self) -> Option<bool> {
        let d = self.depth.checked_sub(1)?;
        let word = if d < 64 {
            self.low
        } else {
            self.high.get((d - 64) / 64).copied().unwrap_or_default()
        };
        Some(word & (1 << (d % 64)) != 0)
    }

    fn pop(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

/// Whether a valid string literal has a `\u` escape of a surrogate that is not part of a
/// high-low pair (serde_json refuses those where it decodes a string).
fn has_lone_surrogate(literal: &str) -> bool {
    let b = literal.as_bytes();
    let hex = |i: usize| -> Option<u32> {
        let s = std::str::from_utf8(b.get(i..i + 4)?).ok()?;
        u32::from_str_radix(s, 16).ok()
    };
    let mut i = 0;
    while let Some(n) = b
        .get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'\\'))
    {
        i += n;
        if b.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let Some(unit) = hex(i + 2) else { return true };
        i += 6;
        match unit {
            0xD800..0xDC00 => {
                let low = (b.get(i..i + 2) == Some(b"\\u"))
                    .then(|| hex(i + 2))
                    .flatten();
                if !low.is_some_and(|l| (0xDC00..0xE000).contains(&l)) {
                    return true;
                }
                i += 6;
            }
            0xDC00..0xE000 => return true,
            _ => {}
        }
    }
    false
}

/// Decodes the content of a JSON string literal (quotes included in `literal`). Borrows when
/// there is nothing to decode. Lone surrogates become U+FFFD (Rust strings cannot hold them).
/// A literal with escapes is decoded by the reader's [`Reader::string_text`].
pub fn decode_str(literal: &str) -> Result<Cow<'_, str>, WriteError> {
    let inner = literal
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or(WriteError::Malformed)?;
    if !inner.as_bytes().contains(&b'\\') {
        return Ok(Cow::Borrowed(inner));
    }
    let mut r = Reader::new(literal);
    let text = r.string_text().map_err(|_| WriteError::Malformed)?;
    r.end().map_err(|_| WriteError::Malformed)?;
    Ok(text)
}

/// Reads the elements of a raw JSON array; anything else gives none.
pub fn array_elements(raw: Raw<'_>) -> Option<Vec<Raw<'_>>> {
    let mut r = Reader::new(raw.get());
    if r.peek() != Some(b'[') {
        return None;
    }
    let mut items = Vec::new();
    r.elements(|r| {
        items.push(r.value()?);
        Ok(())
    })
    .ok()?;
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings of a JSON array, each read with `string_text`.
    fn texts(array: &str) -> Result<Vec<String>, SyntaxError> {
        let mut r = Reader::new(array);
        let mut out = Vec::new();
        r.elements(|r| {
            out.push(r.string_text()?.into_owned());
            Ok(())
        })?;
        r.end()?;
        Ok(out)
    }

    proptest::proptest! {
        #[test]
        fn string_text_decodes_what_serde_json_decodes(
            strings in proptest::collection::vec("\\PC*|[\"\\\\/\u{0}-\u{1f}a-z😀é]{0,40}", 0..6)
        ) {
            // serde_json's own escaping, then every character as \uXXXX (and \/ for '/').
            let plain = serde_json::to_string(&strings).unwrap();
            proptest::prop_assert_eq!(&texts(&plain).unwrap(), &strings);
            let every: Vec<String> = strings
                .iter()
                .map(|s| {
                    let mut lit = String::from("\"");
                    for c in s.chars() {
                        let mut units = [0u16; 2];
                        for unit in c.encode_utf16(&mut units) {
                            lit.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                    lit.push('"');
                    lit
                })
                .collect();
            let array = format!("[{}]", every.join(" , "));
            proptest::prop_assert_eq!(&texts(&array).unwrap(), &strings);
        }
    }

    #[test]
    fn string_text_decodes_every_escape_after_runs_of_every_length() {
        for escape in [
            r#"\""#,
            r"\\",
            r"\/",
            r"\n",
            r"\u00e9",
            r"\u20ac",
            r"\ud83d\ude00",
            r"\udc00",
        ] {
            for run in 0..20 {
                let unit = format!("{}{escape}", "x".repeat(run));
                let literal = format!("\"{}\"", unit.repeat(30));
                let expected: String = serde_json::from_str(&literal).unwrap_or_else(|_| {
                    literal
                        .replace(r"\udc00", "\u{FFFD}")
                        .trim_matches('"')
                        .to_owned()
                });
                let mut r = Reader::new(&literal);
                assert_eq!(r.string_text().unwrap(), expected, "{escape} after {run}");
                assert_eq!(
                    decode_str(&literal).unwrap(),
                    expected,
                    "{escape} after {run}"
                );
            }
        }
    }

    #[test]
    fn string_text_borrows_plain_strings_and_refuses_what_is_not_a_string() {
        let mut r = Reader::new(r#""plain" "#);
        assert!(matches!(r.string_text(), Ok(Cow::Borrowed("plain"))));
        for bad in [
            r#"["ab\"]"#,
            r#"["ab\q"]"#,
            r#"["\u12"]"#,
            "[\"a\u{1}b\"]",
            r#"["{\"a\":1,\"b\":2} and more \u00e9 then no end"#,
            "[5]",
        ] {
            assert!(texts(bad).is_err(), "{bad}");
        }
        assert_eq!(
            texts(r#"["\ud83d\ude00 \ud83d x", "tail\n"]"#).unwrap(),
            ["😀 \u{FFFD} x", "tail\n"]
        );
    }

    #[test]
    fn valid_json_is_read_whole_and_invalid_json_is_refused_as_serde_json_refuses_it() {
        let valid = [
            "0",
            "-0",
            "1.5e-7",
            "-12E+3",
            "true",
            "null",
            "\"a\\u00e9\\n\"",
            "[]",
            "{}",
            " [1, {\"a\": [true, {}]}, \"x\"] ",
            "{\"a\":{\"b\":[[],[{}]]}}",
        ];
        for text in valid {
            assert_eq!(Raw::parse(text).map(|r| r.get()), Ok(text.trim()), "{text}");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
                "{text}"
            );
        }
        let invalid = [
            "",
            "01",
            "1.",
            ".5",
            "1e",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{1:2}",
            "[1 2]",
            "\"a\tb\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"abc",
            "[",
            "{\"a\":1",
            "[}",
            "{]",
            "1 2",
            "\"\\ud800\" x",
        ];
        for text in invalid {
            assert!(Raw::parse(text).is_err(), "{text}");
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn any_depth_is_skipped_without_recursion() {
        let deep = format!("{}1{}", "[{\"k\":".repeat(50_000), "}]".repeat(50_000));
        assert!(Raw::parse(&deep).is_ok());
        let unbalanced = format!("{}1{}", "[".repeat(300), "]".repeat(299));
        assert!(Raw::parse(&unbalanced).is_err());
    }

    #[test]
    fn keys_are_decoded_and_unpaired_surrogates_in_keys_are_refused() {
        let mut keys = Vec::new();
        Reader::new(r#"{"a":1,"b\u00e9":[2],"\ud83d\ude00":{}}"#)
            .members(|r, k| {
                keys.push(k.into_owned());
                r.value().map(|_| ())
            })
            .unwrap();
        assert_eq!(keys, ["a", "bé", "😀"]);
        let lone = Reader::new(r#"{"\ud800":1}"#).members(|r, _| r.value().map(|_| ()));
        assert!(lone.is_err());
        assert!(serde_json::from_str::<serde_json::Value>(r#"{"\ud800":1}"#).is_err());
    }

    #[test]
    fn typed_values_refuse_unpaired_surrogates_and_numbers_beyond_a_double() {
        for text in ["\"\\ud800\"", "\"\\udc00x\"", "1e400", "-1e309"] {
            assert!(Reader::new(text).typed_value().is_err(), "{text}");
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_err(),
                "{text}"
            );
        }
        for text in ["\"\\ud83d\\ude00\"", "1e308", "\"\\u00e9\""] {
            assert!(Reader::new(text).typed_value().is_ok(), "{text}");
        }
    }
}
