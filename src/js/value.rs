//! How the reference (JavaScript) looks at a raw value: which values count as present
//! (`val || val === 0 || val === false`), which are truthy, and how one becomes text.

use crate::json::reader::Raw;
use crate::json::{reader::decode_str, writer::write_f64};
use std::borrow::Cow;

/// The JSON type of a raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool(bool),
    Number,
    String,
    Array,
    Object,
}

pub fn kind(raw: Raw<'_>) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b'"') => Kind::String,
        Some(b't') => Kind::Bool(true),
        Some(b'f') => Kind::Bool(false),
        Some(b'n') | None => Kind::Null,
        Some(_) => Kind::Number,
    }
}

/// The number a numeric raw value holds (JavaScript reads every number as a double).
pub fn number(raw: Raw<'_>) -> Option<f64> {
    match kind(raw) {
        Kind::Number => raw.get().parse::<f64>().ok(),
        _ => None,
    }
}

/// Present as RudderStack's `getValueFromMessage` sees it: anything but null, absent and "".
pub fn present(raw: Option<Raw<'_>>) -> Option<Raw<'_>> {
    raw.filter(|r| !matches!(kind(*r), Kind::Null) && r.get() != "\"\"")
}

/// JavaScript truthiness.
pub fn truthy(raw: Option<Raw<'_>>) -> bool {
    let Some(raw) = raw else { return false };
    match kind(raw) {
        Kind::Null | Kind::Bool(false) => false,
        Kind::String => raw.get() != "\"\"",
        Kind::Number => number(raw).is_some_and(|n| n != 0.0 && !n.is_nan()),
        Kind::Bool(true) | Kind::Array | Kind::Object => true,
    }
}

/// The text of a string value; `None` for other types.
pub fn as_str(raw: Raw<'_>) -> Option<Cow<'_, str>> {
    match kind(raw) {
        Kind::String => decode_str(raw.get()).ok(),
        _ => None,
    }
}

/// JavaScript's `String(value)` for the values RudderStack interpolates into text
/// (`${firstName} ${lastName}`, Handlebars templates).
pub fn js_to_string(raw: Raw<'_>) -> String {
    match kind(raw) {
        Kind::String => as_str(raw).map(Cow::into_owned).unwrap_or_default(),
        Kind::Number => {
            let mut s = String::new();
            match number(raw) {
                Some(n) if n.is_infinite() => {
                    s.push_str(if n > 0.0 { "Infinity" } else { "-Infinity" })
                }
                Some(n) => write_f64(&mut s, n),
                None => s.push_str("NaN"),
            }
            s
        }
        Kind::Bool(b) => b.to_string(),
        Kind::Null => "null".to_owned(),
        Kind::Object => "[object Object]".to_owned(),
        Kind::Array => array_to_string(raw),
    }
}

/// `Array.prototype.toString`: elements joined with commas, null as empty. Nested arrays are
/// flattened the same way, up to the crate's nesting limit.
fn array_to_string(raw: Raw<'_>) -> String {
    fn walk(raw: Raw<'_>, depth: usize, out: &mut String) {
        let Some(items) = crate::json::reader::array_elements(raw) else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match kind(*item) {
                Kind::Null => {}
                Kind::Array if depth < crate::json::writer::MAX_NESTING => {
                    walk(*item, depth + 1, out)
                }
                Kind::Array => {}
                _ => out.push_str(&js_to_string(*item)),
            }
        }
    }
    let mut out = String::new();
    walk(raw, 1, &mut out);
    out
}

/// `s.toLowerCase() === lower` for an ASCII lower-case `lower`, allocating only for non-ASCII.
pub fn js_lower_eq(s: &str, lower: &str) -> bool {
    if s.is_ascii() {
        s.eq_ignore_ascii_case(lower)
    } else {
        s.to_lowercase() == lower
    }
}

/// JavaScript's `String.prototype.trim` (whitespace, line terminators and the BOM).
pub fn js_trim(s: &str) -> &str {
    s.trim_matches(super::date::is_js_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Raw<'_> {
        Raw::parse(s).unwrap()
    }

    #[test]
    fn zero_and_false_are_present_but_null_and_the_empty_string_are_not() {
        for s in ["0", "false", "\" \"", "{}", "[]", "-0.0"] {
            assert!(present(Some(raw(s))).is_some(), "{s}");
        }
        for s in ["null", "\"\""] {
            assert!(present(Some(raw(s))).is_none(), "{s}");
        }
    }

    #[test]
    fn truthiness_follows_javascript() {
        for s in ["1", "\"0\"", "{}", "[]", "true", "-1e-300"] {
            assert!(truthy(Some(raw(s))), "{s}");
        }
        for s in ["0", "-0.0", "false", "null", "\"\""] {
            assert!(!truthy(Some(raw(s))), "{s}");
        }
        assert!(!truthy(None));
    }

    #[test]
    fn values_become_text_as_javascript_string_conversion_does() {
        assert_eq!(js_to_string(raw("\"a\\u00e9\"")), "aé");
        assert_eq!(js_to_string(raw("2000.0")), "2000");
        assert_eq!(js_to_string(raw("true")), "true");
        assert_eq!(js_to_string(raw("{\"a\":1}")), "[object Object]");
        assert_eq!(js_to_string(raw("[1,[2,null],\"x\"]")), "1,2,,x");
    }
}
