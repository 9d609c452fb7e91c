//! A small strict JSON reader and the canonical writer (RFC 8785 style).
//!
//! Reading borrows from the input wherever a string has no escapes.
//! Writing follows RFC 8785 (JCS) with one documented difference: integers
//! are kept digit for digit (a 19-digit id must not become a float), and
//! only numbers with a fraction or exponent go through the ECMAScript
//! number form. See docs/design/masking.md.

use std::borrow::Cow;

use crate::MaskError;

pub(crate) struct Reader<'a> {
    /// The whole event, already validated as UTF-8: strings are sliced from
    /// it (at ASCII quote positions, so always on char boundaries).
    src: &'a str,
    pub(crate) s: &'a [u8],
    pub(crate) i: usize,
}

/// The first byte at or after `from` that ends the plain part of a JSON
/// string: `"`, `\\` or a control character (which must be escaped,
/// RFC 8259 §7).
///
/// Eight bytes at a time (SWAR): in each word, a byte equal to `"` or `\\`
/// becomes zero after an XOR, and `(v - 0x01…) & !v & 0x80…` flags zero
/// bytes; `(x - 0x20…) & !x & 0x80…` flags bytes below 0x20. A flag can
/// spill into the bytes above a true one (the borrow), never below it, so
/// the lowest flag is exact.
#[inline]
pub(crate) fn find_stop(s: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let tail = s.get(from..)?;
    let mut words = tail.chunks_exact(8);
    let mut at = from;
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b);
        let q = x ^ (ONES * u64::from(b'"'));
        let e = x ^ (ONES * u64::from(b'\\'));
        let m = (q.wrapping_sub(ONES) & !q)
            | (e.wrapping_sub(ONES) & !e)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let m = m & HIGH;
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|k| at + k)
}

fn err(at: usize, what: &'static str) -> MaskError {
    MaskError::Json { offset: at, what }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Reader {
            src: s,
            s: s.as_bytes(),
            i: 0,
        }
    }

    #[inline]
    pub(crate) fn ws(&mut self) {
        // Compact JSON has none: one compare says so.
        while let Some(&c) = self.s.get(self.i)
            && c <= b' '
            && matches!(c, b' ' | b'\t' | b'\n' | b'\r')
        {
            self.i += 1;
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub(crate) fn expect(&mut self, c: u8, what: &'static str) -> Result<(), MaskError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(err(self.i, what))
        }
    }

    /// After a member or element: `,` (true: another follows) or the
    /// closing bracket (false).
    pub(crate) fn more(&mut self, close: u8, what: &'static str) -> Result<bool, MaskError> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(err(self.i, what)),
        }
    }

    pub(crate) fn literal(&mut self, lit: &'static [u8]) -> Result<(), MaskError> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(err(self.i, "invalid literal"))
        }
    }

    /// Reads a string (the opening quote is next), with the offset of its
    /// first byte in the source when it is borrowed (no escapes): such a
    /// string is also known to need no escaping when written back: its
    /// bytes in the source, quotes included, are its canonical form.
    #[inline(always)]
    pub(crate) fn string_at(&mut self) -> Result<(Cow<'a, str>, Option<usize>), MaskError> {
        let start = self.i;
        self.expect(b'"', "expected a string")?;
        let body = self.i;
        let s = self.s;
        // Fast path: one pass to the closing quote, the first escape or a
        // control character.
        let Some(j) = find_stop(s, body) else {
            return Err(err(start, "unterminated string"));
        };
        if s[j] == b'"' {
            self.i = j + 1;
            return Ok((
                Cow::Borrowed(
                    self.slice(body, j)
                        .ok_or_else(|| err(body, "invalid UTF-8"))?,
                ),
                Some(body),
            ));
        }
        self.string_escaped(start, body, j)
    }

    /// The rest of [`Reader::string_at`] for a string with an escape (or a
    /// control character, refused) at `j`: out of line, so that the common
    /// case stays small enough to inline and its result stays in registers.
    #[inline(never)]
    fn string_escaped(
        &mut self,
        start: usize,
        body: usize,
        j: usize,
    ) -> Result<(Cow<'a, str>, Option<usize>), MaskError> {
        let s = self.s;
        if s[j] < 0x20 {
            return Err(err(j, "control character in string"));
        }
        // Decode escapes.
        let mut out = String::with_capacity(j - body + 16);
        out.push_str(
            self.slice(body, j)
                .ok_or_else(|| err(body, "invalid UTF-8"))?,
        );
        let mut k = j;
        loop {
            let run = k;
            while k < s.len() && s[k] != b'"' && s[k] != b'\\' {
                if s[k] < 0x20 {
                    return Err(err(k, "control character in string"));
                }
                k += 1;
            }
            out.push_str(
                self.slice(run, k)
                    .ok_or_else(|| err(run, "invalid UTF-8"))?,
            );
            match s.get(k) {
                None => return Err(err(start, "unterminated string")),
                Some(b'"') => {
                    self.i = k + 1;
                    return Ok((Cow::Owned(out), None));
                }
                Some(_) => {
                    let e = *s.get(k + 1).ok_or_else(|| err(k, "unterminated escape"))?;
                    k += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = hex4(s, k)?;
                            k += 4;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                if s.get(k) != Some(&b'\\') || s.get(k + 1) != Some(&b'u') {
                                    return Err(err(k, "lone surrogate in string"));
                                }
                                let lo = hex4(s, k + 2)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(err(k, "lone surrogate in string"));
                                }
                                k += 6;
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(err(k, "lone surrogate in string"));
                            } else {
                                hi
                            };
                            out.push(char::from_u32(c).ok_or_else(|| err(k, "invalid escape"))?);
                        }
                        _ => return Err(err(k - 1, "invalid escape")),
                    }
                }
            }
        }
    }

    /// Reads a number; returns its text and whether it is a plain integer.
    pub(crate) fn number(&mut self) -> Result<(&'a str, bool), MaskError> {
        let s = self.s;
        let start = self.i;
        let mut j = start;
        if s.get(j) == Some(&b'-') {
            j += 1;
        }
        match s.get(j) {
            Some(b'0') => j += 1,
            Some(b'1'..=b'9') => {
                while s.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            _ => return Err(err(start, "invalid number")),
        }
        let mut integer = true;
        if s.get(j) == Some(&b'.') {
            integer = false;
            j += 1;
            if !s.get(j).is_some_and(u8::is_ascii_digit) {
                return Err(err(j, "invalid number"));
            }
            while s.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        if matches!(s.get(j), Some(b'e' | b'E')) {
            integer = false;
            j += 1;
            if matches!(s.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if !s.get(j).is_some_and(u8::is_ascii_digit) {
                return Err(err(j, "invalid number"));
            }
            while s.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        self.i = j;
        Ok((
            self.slice(start, j)
                .ok_or_else(|| err(start, "invalid UTF-8"))?,
            integer,
        ))
    }

    /// A slice of the (already validated) source. The bounds are always at
    /// ASCII bytes, hence char boundaries; `get` keeps it total anyway.
    /// (An `Option`, small enough to come back in registers; callers turn
    /// `None` into an error.)
    #[inline(always)]
    fn slice(&self, a: usize, b: usize) -> Option<&'a str> {
        self.src.get(a..b)
    }
}

fn hex4(s: &[u8], at: usize) -> Result<u32, MaskError> {
    let h = s
        .get(at..at + 4)
        .ok_or_else(|| err(at, "short \\u escape"))?;
    let mut v = 0u32;
    for &c in h {
        v = v * 16
            + match c {
                b'0'..=b'9' => u32::from(c - b'0'),
                b'a'..=b'f' => u32::from(c - b'a') + 10,
                b'A'..=b'F' => u32::from(c - b'A') + 10,
                _ => return Err(err(at, "invalid \\u escape")),
            };
    }
    Ok(v)
}

/// Writes `s` as a canonical JSON string: only `"`, `\` and control
/// characters are escaped (RFC 8785 §3.2.2.2), everything else is UTF-8.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    if find_stop(b, 0).is_none() {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            c if c < 0x20 => {
                out.extend_from_slice(&b[run..i]);
                out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
                run = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        out.extend_from_slice(esc);
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}

/// Writes a number in its one canonical form: integers digit for digit
/// (`-0` as `0`), anything with a fraction or exponent in the ECMAScript
/// shortest form (RFC 8785 §3.2.2.3), e.g. `1.50` → `1.5`, `1e3` → `1000`.
pub(crate) fn write_number(
    out: &mut Vec<u8>,
    text: &str,
    integer: bool,
    at: usize,
) -> Result<(), MaskError> {
    if integer {
        if text == "-0" {
            out.push(b'0');
        } else {
            out.extend_from_slice(text.as_bytes());
        }
        return Ok(());
    }
    let v: f64 = text.parse().map_err(|_| err(at, "invalid number"))?;
    if !v.is_finite() {
        return Err(err(at, "number out of range"));
    }
    if v == 0.0 {
        out.push(b'0');
        return Ok(());
    }
    let mut buf = ryu_js::Buffer::new();
    out.extend_from_slice(buf.format_finite(v).as_bytes());
    Ok(())
}

/// RFC 8785 key order: by UTF-16 code units.
///
/// UTF-8 byte order is code point order, and UTF-16 code unit order
/// differs from it only between a supplementary character (UTF-8 lead
/// byte `F0`–`F4`, a surrogate pair in UTF-16) and one in `U+E000`–`U+FFFF`
/// (lead byte `EE` or `EF`). So the first differing byte decides unless one
/// of the two is `EE` or above.
pub(crate) fn key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    match x.iter().zip(y).position(|(p, q)| p != q) {
        None => x.len().cmp(&y.len()),
        Some(i) if x[i] < 0xEE && y[i] < 0xEE => x[i].cmp(&y[i]),
        Some(_) => a.encode_utf16().cmp(b.encode_utf16()),
    }
}

/// Appends an RFC 6901 JSON-pointer segment (`~` → `~0`, `/` → `~1`).
pub(crate) fn push_pointer(ptr: &mut String, seg: &str) {
    ptr.push('/');
    if !seg.bytes().any(|b| b == b'~' || b == b'/') {
        ptr.push_str(seg);
        return;
    }
    for c in seg.chars() {
        match c {
            '~' => ptr.push_str("~0"),
            '/' => ptr.push_str("~1"),
            c => ptr.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{find_stop, key_cmp};
    use proptest::prelude::*;

    proptest! {
        /// The eight-at-a-time search finds exactly the first stop byte.
        #[test]
        fn find_stop_is_the_first_stop_byte(
            s in prop::collection::vec(prop_oneof![
                Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xFF, b'a'..=b'z'
            ], 0..40),
            from in 0usize..45,
        ) {
            let want = s
                .get(from..)
                .and_then(|t| t.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20))
                .map(|k| from + k);
            prop_assert_eq!(find_stop(&s, from), want);
        }

        /// The byte-wise fast path agrees with UTF-16 code unit order,
        /// including supplementary characters against U+E000–U+FFFF.
        #[test]
        fn key_order_is_utf16_order(
            a in "[a-c\u{e000}\u{fffd}\u{10000}\u{1f600}é]{0,6}",
            b in "[a-c\u{e000}\u{fffd}\u{10000}\u{1f600}é]{0,6}",
        ) {
            prop_assert_eq!(key_cmp(&a, &b), a.encode_utf16().cmp(b.encode_utf16()));
        }

        #[test]
        fn key_order_any_strings(a in any::<String>(), b in any::<String>()) {
            prop_assert_eq!(key_cmp(&a, &b), a.encode_utf16().cmp(b.encode_utf16()));
        }
    }
}
