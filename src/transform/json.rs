//! JSON text written exactly as JavaScript's `JSON.stringify` writes it, so nested values that
//! RudderStack turns into JSON strings match its output byte for byte (conformance README):
//! ECMAScript number formatting (`2000`, `1.5e+21`, `1.5e-7`, `-0` as `0`), only `"`, `\` and
//! control characters escaped, everything else literal. Works on raw JSON text that serde_json
//! has already validated, without building a tree and without recursion, so no input nesting
//! can overflow the stack.

use super::reader::Reader;
use std::borrow::Cow;

/// Deepest nesting of a value this crate writes (serde_json's own default recursion limit).
/// A deeper value is rejected (`too_deep`) instead of being written.
pub const MAX_NESTING: usize = 128;

/// Why raw JSON text could not be rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// Nested deeper than [`MAX_NESTING`].
    TooDeep,
    /// Not the JSON text it was expected to be (cannot happen after serde_json validated it).
    Malformed,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 0 = copy as is; otherwise the character after the backslash (`u` = `\u00XX`).
pub(crate) static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Index of the first byte of `bytes` at or after `from` that needs escaping (`"`, `\\` or a
/// control character), eight bytes at a time. The lowest flagged byte of a word is always a
/// true hit (the bit tricks only misflag bytes above a true hit), so it is the answer.
pub(crate) fn next_escape(bytes: &[u8], mut from: usize) -> Option<usize> {
    while let Some(chunk) = bytes.get(from..from + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let hits = needs_escape(u64::from_le_bytes(word));
        if hits != 0 {
            return Some(from + (hits.trailing_zeros() / 8) as usize);
        }
        from += 8;
    }
    bytes
        .get(from..)?
        .iter()
        .position(|&b| ESCAPE[b as usize] != 0)
        .map(|n| from + n)
}

/// The high bit of each byte of the little-endian `word` that needs escaping (`"`, `\\` or a
/// control character), and possibly of bytes above such a byte: the lowest flagged byte is
/// always a true hit.
#[inline]
pub(crate) fn needs_escape(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    ((quote.wrapping_sub(ONES) & !quote)
        | (backslash.wrapping_sub(ONES) & !backslash)
        | (word.wrapping_sub(ONES * 0x20) & !word))
        & HIGH
}

/// Writes `s` as a JSON string literal, quotes included.
pub fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_escape(bytes, start) {
        let b = bytes[i];
        // `i` is at an ASCII byte, so both slice ends are character boundaries.
        out.push_str(s.get(start..i).unwrap_or_default());
        out.push('\\');
        match ESCAPE[b as usize] {
            b'u' => {
                out.push_str("u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
            esc => out.push(esc as char),
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// Writes a number given as JSON number text the way JavaScript prints the same double.
/// Integers of up to 15 digits are already in that form; everything else goes through `f64`
/// and ECMAScript's Number::toString (`ryu-js`). A value outside the double range is `null`,
/// as `JSON.stringify(Infinity)` is.
pub fn write_number_text(out: &mut String, text: &str) {
    if is_plain_small_integer(text) {
        out.push_str(text);
        return;
    }
    match text.parse::<f64>() {
        Ok(f) => write_f64(out, f),
        Err(_) => out.push_str("null"),
    }
}

/// Writes a double as JavaScript's `JSON.stringify` does.
pub fn write_f64(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
    } else if f == 0.0 {
        out.push('0');
    } else {
        let mut buf = ryu_js::Buffer::new();
        out.push_str(buf.format_finite(f));
    }
}

fn is_plain_small_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.len() <= 15
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.len() == 1 || !digits.starts_with('0'))
        && text != "-0"
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

/// The byte a two-character escape stands for (`\"` is `"`), indexed by its second character;
/// 0 for `u` (four hex digits follow) and for what is not an escape.
static UNESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'/' as usize] = b'/';
    table[b'b' as usize] = 0x08;
    table[b'f' as usize] = 0x0c;
    table[b'n' as usize] = b'\n';
    table[b'r' as usize] = b'\r';
    table[b't' as usize] = b'\t';
    table
};

/// Decodes the escape at `bytes[at]` (a backslash) into `out[w..]`, which has room for at least
/// four bytes; gives how many bytes it read and how many it wrote. Each byte is stored on its
/// own: a copy of one to four bytes would be a call.
#[inline]
pub(crate) fn unescape_into(
    bytes: &[u8],
    at: usize,
    out: &mut [u8],
    w: usize,
) -> Result<(usize, usize), WriteError> {
    let second = *bytes.get(at + 1).ok_or(WriteError::Malformed)?;
    let simple = UNESCAPE[second as usize];
    if simple != 0 {
        *out.get_mut(w).ok_or(WriteError::Malformed)? = simple;
        return Ok((2, 1));
    }
    if second != b'u' {
        return Err(WriteError::Malformed);
    }
    let unit = hex4(bytes, at + 2)?;
    let mut read = 6;
    let mut c = char::from_u32(unit);
    if (0xD800..0xDC00).contains(&unit) && bytes.get(at + 6..at + 8) == Some(b"\\u") {
        // A high surrogate: a low one must follow as another \u escape.
        let low = hex4(bytes, at + 8)?;
        if (0xDC00..0xE000).contains(&low) {
            c = char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00));
            read = 12;
        }
    }
    let mut utf8 = [0u8; 4];
    let encoded = c.unwrap_or('\u{FFFD}').encode_utf8(&mut utf8).as_bytes();
    for (n, &b) in encoded.iter().enumerate() {
        *out.get_mut(w + n).ok_or(WriteError::Malformed)? = b;
    }
    Ok((read, encoded.len()))
}

/// The value of the four hex digits at `bytes[at..at + 4]`.
fn hex4(bytes: &[u8], at: usize) -> Result<u32, WriteError> {
    let digits = bytes.get(at..at + 4).ok_or(WriteError::Malformed)?;
    digits.iter().try_fold(0u32, |v, &d| {
        let d = char::from(d).to_digit(16).ok_or(WriteError::Malformed)?;
        Ok(v * 16 + d)
    })
}

/// Writes a JSON string literal (quotes included) in canonical form.
fn write_str_literal(out: &mut String, literal: &str) -> Result<(), WriteError> {
    // serde_json validated the text: no raw control characters or quotes inside, so a literal
    // without backslashes is already canonical.
    if literal.len() >= 2 && !literal.contains('\\') {
        out.push_str(literal);
        return Ok(());
    }
    let decoded = decode_str(literal)?;
    write_str(out, &decoded);
    Ok(())
}

/// Rewrites validated JSON text in canonical `JSON.stringify` form: no whitespace, numbers and
/// strings as JavaScript writes them. Iterative; nesting beyond [`MAX_NESTING`] is an error.
pub fn write_canonical(out: &mut String, raw: &str) -> Result<(), WriteError> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(WriteError::TooDeep);
                }
                out.push(b as char);
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1).ok_or(WriteError::Malformed)?;
                out.push(b as char);
                i += 1;
            }
            b',' | b':' => {
                out.push(b as char);
                i += 1;
            }
            b'"' => {
                let end = string_end(bytes, i)?;
                write_str_literal(out, raw.get(i..end).ok_or(WriteError::Malformed)?)?;
                i = end;
            }
            b't' | b'f' | b'n' => {
                let word = match b {
                    b't' => "true",
                    b'f' => "false",
                    _ => "null",
                };
                if raw.get(i..i + word.len()) != Some(word) {
                    return Err(WriteError::Malformed);
                }
                out.push_str(word);
                i += word.len();
            }
            b'-' | b'0'..=b'9' => {
                let end = bytes[i..]
                    .iter()
                    .position(|c| !matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .map_or(bytes.len(), |n| i + n);
                write_number_text(out, raw.get(i..end).ok_or(WriteError::Malformed)?);
                i = end;
            }
            _ => return Err(WriteError::Malformed),
        }
    }
    if depth == 0 {
        Ok(())
    } else {
        Err(WriteError::Malformed)
    }
}

/// Index just past the closing quote of the string literal starting at `start`.
fn string_end(bytes: &[u8], start: usize) -> Result<usize, WriteError> {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(WriteError::Malformed)
}

/// Writes `raw` (validated JSON text) as `JSON.stringify(value)` would, wrapped in a JSON string:
/// what RudderStack sends for a nested property, its keys in production order (`order.rs`).
/// `scratch` is reused between calls.
pub fn write_stringified(
    out: &mut String,
    raw: super::reader::Raw<'_>,
    scratch: &mut String,
) -> Result<(), WriteError> {
    scratch.clear();
    super::order::write_ordered(scratch, raw)?;
    write_str(out, scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(raw: &str) -> String {
        let mut s = String::new();
        write_canonical(&mut s, raw).unwrap();
        s
    }

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        let cases = [
            ("1.5", "1.5"),
            ("2000.0", "2000"),
            ("0.1", "0.1"),
            ("-0.0", "0"),
            ("-0", "0"),
            ("1.5e+21", "1.5e+21"),
            ("1.5e21", "1.5e+21"),
            ("1.5e-07", "1.5e-7"),
            ("1e-07", "1e-7"),
            ("9007199254740993", "9007199254740992"),
            ("123456789012345", "123456789012345"),
            ("1e400", "null"),
            ("-12500.0", "-12500"),
            ("100000000000000000000", "100000000000000000000"),
            ("1000000000000000000000", "1e+21"),
        ];
        for (input, expected) in cases {
            let mut s = String::new();
            write_number_text(&mut s, input);
            assert_eq!(s, expected, "{input}");
        }
    }

    #[test]
    fn nested_values_are_rewritten_without_whitespace_and_with_canonical_escapes() {
        assert_eq!(
            canonical(r#"{ "w" : 1.50, "s": "a\/b\u00e9\n\u001F", "l": [ true, false, null ] }"#),
            "{\"w\":1.5,\"s\":\"a/bé\\n\\u001f\",\"l\":[true,false,null]}"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_escaped_either_way_decodes_to_itself(text in "\\PC*|[\"\\\\/\u{0}-\u{1f}a-z😀é]*") {
            // As serde_json writes it: only quotes, backslashes and control characters escaped.
            let literal = serde_json::to_string(&text).unwrap();
            proptest::prop_assert_eq!(decode_str(&literal).unwrap(), text.as_str());
            // Every character as \uXXXX (astral ones as surrogate pairs), with \/ for '/'.
            let mut every = String::from("\"");
            for c in text.chars() {
                if c == '/' {
                    every.push_str("\\/");
                    continue;
                }
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    every.push_str(&format!("\\u{unit:04X}"));
                }
            }
            every.push('"');
            proptest::prop_assert_eq!(decode_str(&every).unwrap(), text.as_str());
        }
    }

    #[test]
    fn malformed_escapes_are_errors() {
        for bad in [
            r#""\x""#,
            r#""\u12""#,
            r#""\u12G4""#,
            r#""a\""#,
            r#""\ud83d\u12""#,
            "\"x",
        ] {
            assert_eq!(decode_str(bad), Err(WriteError::Malformed), "{bad}");
        }
    }

    #[test]
    fn surrogate_pairs_decode_and_lone_surrogates_become_replacement_characters() {
        assert_eq!(decode_str(r#""\ud83d\ude00""#).unwrap(), "😀");
        assert_eq!(decode_str(r#""\ud83dx""#).unwrap(), "\u{FFFD}x");
        assert_eq!(decode_str(r#""\ude00""#).unwrap(), "\u{FFFD}");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let mut s = String::new();
        assert_eq!(write_canonical(&mut s, &deep), Err(WriteError::TooDeep));
        let ok = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert_eq!(canonical(&ok), ok);
    }

    #[test]
    fn control_characters_quotes_and_backslashes_are_escaped_and_the_rest_is_literal() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\u{1}\u{8}\t\u{2028}é/");
        assert_eq!(s, "\"a\\\"b\\\\c\\u0001\\b\\t\u{2028}é/\"");
    }
}
