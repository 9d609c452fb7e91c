//! The `encrypt` action: a value sealed under its data subject's own key
//! (crypto-shredding; docs/design/erasure.md).
//!
//! ```text
//! enc:<key id>:<base64url(nonce || ciphertext || tag)>
//! ```
//!
//! - AEAD: AES-256-GCM-SIV (RFC 8452), 96-bit nonce from the caller's salt
//!   source. GCM-SIV is nonce-misuse resistant: a repeated nonce under one
//!   key reveals only that two plaintexts were equal, never the key stream.
//! - Associated data: `"cairn-enc/v1" 0x00 origin 0x00 pointer 0x00 key id`,
//!   so a ciphertext moved to another log, another field or another
//!   subject's key id does not open.
//! - The key id is the subject's keyed token ([`KeyId`]): it names the
//!   subject in the leaf and in the key store without the raw identifier.
//!
//! Pure: the keys come from the caller ([`SubjectKeys`]), the nonce from the
//! caller's [`SaltSource`](crate::SaltSource).

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::Engine as _;
use zeroize::Zeroizing;

/// The prefix of a sealed value in a leaf.
pub const PREFIX: &str = "enc:";

/// The length of a key id's text (base64url of 16 bytes).
pub const KEY_ID_LEN: usize = 22;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A subject's key id: base64url (no padding) of 16 bytes of a keyed hash
/// of the subject identifier. Only the key store can compute it from an
/// identifier; it is safe to store and to show.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// From the 16 bytes of the keyed hash.
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        KeyId(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
    }

    /// Parses a key id's text (22 base64url characters).
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == KEY_ID_LEN
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            && base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .is_ok_and(|b| b.len() == 16);
        ok.then(|| KeyId(s.to_owned()))
    }

    /// The text (also a safe file name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subject's data key, wiped when dropped.
pub type DataKey = Zeroizing<[u8; 32]>;

/// Why a subject's key could not be had. Never holds the subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subject key store: {0}")]
pub struct SubjectKeyError(pub String);

/// Where the `encrypt` action gets keys: the subject key store.
pub trait SubjectKeys {
    /// The data key of `subject` (the raw identifier, never stored by the
    /// caller), created on first use. `Ok(None)`: the subject was erased,
    /// and its values are redacted instead.
    fn data_key(&mut self, subject: &str) -> Result<Option<(KeyId, DataKey)>, SubjectKeyError>;
}

/// No key store: policies that encrypt are refused before they get here
/// (`Masker::mask` passes this).
pub(crate) struct NoKeys;

impl SubjectKeys for NoKeys {
    fn data_key(&mut self, _: &str) -> Result<Option<(KeyId, DataKey)>, SubjectKeyError> {
        Err(SubjectKeyError(
            "the policy encrypts but no subject key store is configured".into(),
        ))
    }
}

fn aad(origin: &str, pointer: &str, kid: &KeyId) -> Vec<u8> {
    let mut a = Vec::with_capacity(16 + origin.len() + pointer.len() + KEY_ID_LEN);
    a.extend_from_slice(b"cairn-enc/v1\0");
    a.extend_from_slice(origin.as_bytes());
    a.push(0);
    a.extend_from_slice(pointer.as_bytes());
    a.push(0);
    a.extend_from_slice(kid.as_str().as_bytes());
    a
}

/// Seals `value` as `enc:<kid>:<base64url>`, appended to `dst`.
pub fn seal_into(
    dst: &mut String,
    key: &[u8; 32],
    kid: &KeyId,
    nonce: &[u8; NONCE_LEN],
    origin: &str,
    pointer: &str,
    value: &str,
) {
    let cipher = Aes256GcmSiv::new(key.into());
    let aad = aad(origin, pointer, kid);
    // AES-GCM-SIV encryption fails only for plaintexts over 2^36 bytes;
    // events are at most MAX_EVENT (1 MiB), so this cannot fail.
    let ct = cipher
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: value.as_bytes(),
                aad: &aad,
            },
        )
        .unwrap_or_default();
    let mut raw = Vec::with_capacity(NONCE_LEN + ct.len());
    raw.extend_from_slice(nonce);
    raw.extend_from_slice(&ct);
    dst.push_str(PREFIX);
    dst.push_str(kid.as_str());
    dst.push(':');
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&raw, dst);
}

/// A sealed value as found in a leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// Whose key.
    pub kid: KeyId,
    /// Nonce, ciphertext and tag.
    raw: Vec<u8>,
}

/// Why a sealed value did not open. Never holds plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not `enc:<kid>:<base64url>` of at least a nonce and a tag.
    #[error("not a sealed value")]
    Malformed,
    /// The tag does not verify under this key, origin and pointer.
    #[error("the sealed value does not open under its key (wrong key, log or field)")]
    Forged,
}

impl Sealed {
    /// Parses one sealed value (the whole string).
    pub fn parse(s: &str) -> Result<Sealed, OpenError> {
        let rest = s.strip_prefix(PREFIX).ok_or(OpenError::Malformed)?;
        let (kid, b64) = rest.split_once(':').ok_or(OpenError::Malformed)?;
        let kid = KeyId::parse(kid).ok_or(OpenError::Malformed)?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| OpenError::Malformed)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        Ok(Sealed { kid, raw })
    }

    /// Decrypts with the subject's key, for the value at `pointer` of a
    /// leaf of the log `origin`.
    pub fn open(
        &self,
        key: &[u8; 32],
        origin: &str,
        pointer: &str,
    ) -> Result<Zeroizing<String>, OpenError> {
        let cipher = Aes256GcmSiv::new(key.into());
        let (nonce, ct) = self.raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        let pt = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: &aad(origin, pointer, &self.kid),
                },
            )
            .map_err(|_| OpenError::Forged)?;
        let pt = Zeroizing::new(pt);
        String::from_utf8(pt.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Forged)
    }
}

/// The sealed values inside a string (a whole field, or spans of a text),
/// with their byte ranges, in order.
pub fn find_sealed(text: &str) -> Vec<(std::ops::Range<usize>, Sealed)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(PREFIX) {
        let start = from + at;
        // kid, ':', then base64url characters.
        let body = &text[start + PREFIX.len()..];
        let end = body
            .char_indices()
            .skip(KEY_ID_LEN + 1)
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            .map_or(body.len(), |(i, _)| i);
        let end = (start + PREFIX.len() + end).min(text.len());
        match Sealed::parse(&text[start..end]) {
            Ok(s) => {
                out.push((start..end, s));
                from = end;
            }
            Err(_) => from = start + PREFIX.len(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kid(n: u8) -> KeyId {
        KeyId::from_bytes(&[n; 16])
    }

    #[test]
    fn seals_and_opens_and_binds_origin_pointer_and_key() {
        let key = [7u8; 32];
        let mut s = String::new();
        seal_into(
            &mut s,
            &key,
            &kid(1),
            &[3; 12],
            "example.com/log",
            "/user",
            "ana@example.com",
        );
        assert!(s.starts_with("enc:"));
        assert!(!s.contains("ana"));
        let sealed = Sealed::parse(&s).unwrap();
        assert_eq!(sealed.kid, kid(1));
        assert_eq!(
            &*sealed.open(&key, "example.com/log", "/user").unwrap(),
            "ana@example.com"
        );
        assert_eq!(
            sealed.open(&[8; 32], "example.com/log", "/user"),
            Err(OpenError::Forged)
        );
        assert_eq!(
            sealed.open(&key, "other/log", "/user"),
            Err(OpenError::Forged)
        );
        assert_eq!(
            sealed.open(&key, "example.com/log", "/actor"),
            Err(OpenError::Forged)
        );
        // Another subject's key id on the same bytes.
        let moved = s.replace(kid(1).as_str(), kid(2).as_str());
        assert_eq!(
            Sealed::parse(&moved)
                .unwrap()
                .open(&key, "example.com/log", "/user"),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn known_answer_rfc8452_aes256_gcm_siv() {
        // RFC 8452 Appendix C.2, AEAD_AES_256_GCM_SIV, the first vector with
        // an 8-byte plaintext and no AAD.
        let key = hex32("0100000000000000000000000000000000000000000000000000000000000000");
        let nonce = [3u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let c = Aes256GcmSiv::new((&key).into());
        let ct = c
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &[1, 0, 0, 0, 0, 0, 0, 0],
                    aad: &[],
                },
            )
            .unwrap();
        assert_eq!(hex(&ct), "c2ef328e5c71c83b843122130f7364b761e0b97427e3df28");
    }

    #[test]
    fn finds_spans_in_text_and_skips_lookalikes() {
        let key = [1u8; 32];
        let mut a = String::new();
        seal_into(&mut a, &key, &kid(4), &[0; 12], "o", "", "x");
        let text = format!("enc: nope enc:short:abc then {a}, done");
        let found = find_sealed(&text);
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].0.clone()], a);
    }

    #[test]
    fn malformed_values_are_refused_not_panicked_on() {
        for s in [
            "",
            "enc:",
            "enc::",
            "enc:abc:def",
            "tok:1:abc",
            "enc:AAAAAAAAAAAAAAAAAAAAAA:",
        ] {
            assert!(Sealed::parse(s).is_err(), "{s}");
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut k = [0u8; 32];
        for (i, k) in k.iter_mut().enumerate() {
            *k = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        k
    }
}
