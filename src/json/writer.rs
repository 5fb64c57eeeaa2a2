//! JSON text written exactly as JavaScript's `JSON.stringify` writes it, so nested values that
//! RudderStack turns into JSON strings match its output byte for byte (conformance README):
//! ECMAScript number formatting (`2000`, `1.5e+21`, `1.5e-7`, `-0` as `0`), only `"`, `\` and
//! control characters escaped, everything else literal. Works on raw JSON text that serde_json
//! has already validated, without building a tree and without recursion, so no input nesting
//! can overflow the stack.

pub use super::escape::WriteError;
use super::escape::{ESCAPE, next_escape};
use super::reader::decode_str;

/// Deepest nesting of a value this crate writes (serde_json's own default recursion limit).
/// A deeper value is rejected (`too_deep`) instead of being written.
pub const MAX_NESTING: usize = 128;

const HEX: &[u8; 16] = b"0123456789abcdef";

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

/// The byte a two-character escape stands for (`\"` is `"`), indexed by its second character;
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
