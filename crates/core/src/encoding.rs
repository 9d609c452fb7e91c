//! Small strict text encodings shared by the C2SP formats: canonical
//! decimal numbers and standard base64.

use base64::Engine;

/// A base64 field could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// Not canonical standard base64 (RFC 4648 §4 alphabet, `=` padding).
    #[error("invalid base64")]
    Invalid,
    /// Decoded, but to the wrong number of bytes.
    #[error("base64 decodes to {0} bytes, expected 32")]
    Length(usize),
}

/// Decodes canonical standard base64 with padding. Non-zero trailing bits,
/// missing padding, whitespace and the URL-safe alphabet are all rejected.
pub fn decode_base64(s: &str) -> Result<Vec<u8>, Base64Error> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| Base64Error::Invalid)
}

/// Encodes standard base64 with padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Parses an ASCII decimal `u64` with no sign, no leading zeros (except `0`
/// itself) and no other characters, as C2SP formats require for sizes and
/// indices. Returns `None` when the text is not in that form or overflows.
pub fn parse_decimal(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    s.parse().ok()
}
