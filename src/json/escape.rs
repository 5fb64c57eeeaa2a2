//! The escaping rules both directions share: which bytes a JSON string must escape (found
//! eight bytes at a time) and how one escape decodes. One owner, so the reader's decoder and the
//! writer's encoder can never disagree; kept apart from both so neither imports the other back.

/// Why raw JSON text could not be rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// Nested deeper than `writer::MAX_NESTING`.
    TooDeep,
    /// Not the JSON text it was expected to be (cannot happen after serde_json validated it).
    Malformed,
}

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
