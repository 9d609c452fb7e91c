//! C2SP signed-note v1.0.0 (<https://c2sp.org/signed-note>), byte-compatible
//! with Go's `golang.org/x/mod/sumdb/note`.
//!
//! ```text
//! <text, one or more lines, each ending in \n>
//! \n
//! — <key name> <base64(key ID (4 bytes, big-endian) || signature)>\n
//! …
//! ```
//!
//! * Key ID = the first 4 bytes of `SHA-256(name || 0x0A || type || public key)`.
//! * Verifier key = `name+hex8(key ID)+base64(type || public key)`.
//! * Private key (Go's format) = `PRIVATE+KEY+name+hex8(key ID)+base64(type || seed)`.
//! * Types: `0x01` Ed25519 note signatures; `0x04` tlog-cosignature/v1
//!   (see [`crate::cosignature`]), whose signature bytes are
//!   `timestamp (8 bytes, big-endian) || Ed25519 signature`.
//!
//! Parsing is strict: UTF-8, no ASCII control characters but `\n`, and the
//! *last* blank line separates the text from the signatures. Opening a
//! note ignores signatures by unknown keys, drops repeated signatures by one
//! known key (as Go does), and rejects the whole note if a known key's
//! signature fails. At most [`MAX_SIGNATURES`] signature lines are read.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::encoding::{decode_base64, encode_base64};

/// Signature lines a note may carry (Go's limit; the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// The prefix of every signature line: U+2014 EM DASH and a space.
pub const SIG_PREFIX: &str = "\u{2014} ";

/// A signature algorithm identifier byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `0x01`: Ed25519 over the note text.
    Ed25519,
    /// `0x04`: Ed25519 tlog-cosignature/v1 with a timestamp.
    Cosignature,
}

impl KeyType {
    /// The identifier byte.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => 0x01,
            KeyType::Cosignature => 0x04,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(KeyType::Ed25519),
            0x04 => Some(KeyType::Cosignature),
            _ => None,
        }
    }
}

/// A key string could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not of the form `name+hex8+base64`.
    #[error("malformed key: {0}")]
    Malformed(&'static str),
    /// A key name must be non-empty, without spaces or `+`.
    #[error("invalid key name (must be non-empty, with no whitespace and no '+')")]
    Name,
    /// The algorithm byte is not one this build supports.
    #[error("unsupported key type 0x{0:02x} (supported: 0x01 Ed25519, 0x04 cosignature)")]
    UnsupportedType(u8),
    /// The key is of a supported type, but not the one this use needs.
    #[error("wrong key type: expected 0x{expected:02x}, got 0x{got:02x}")]
    WrongType {
        /// Needed type.
        expected: u8,
        /// Given type.
        got: u8,
    },
    /// The key ID in the string does not match the key.
    #[error("key ID {given:08x} does not match the key (computed {computed:08x})")]
    KeyIdMismatch {
        /// In the string.
        given: u32,
        /// From the key.
        computed: u32,
    },
    /// The public key is not a valid Ed25519 point.
    #[error("invalid Ed25519 public key")]
    BadPublicKey,
}

/// A note could not be parsed, signed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not well-formed: details in the message, never the note's content.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A known key's signature did not verify.
    #[error("invalid signature by known key {name}+{key_id:08x}")]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key ID.
        key_id: u32,
    },
    /// No signature by any known key.
    #[error("note has no signature by a known key")]
    Unverified,
    /// The signer's key cannot sign this kind of note.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Whether `name` is a valid key name: non-empty, no Unicode whitespace, no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The 4-byte key ID: `SHA-256(name || 0x0A || type || public key)[..4]`.
pub fn key_id(name: &str, key_type: KeyType, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', key_type.byte()]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Splits `name+hex8+base64` into its parts and checks the name and hex.
fn split_key(s: &str) -> Result<(&str, u32, Vec<u8>), KeyError> {
    // The base64 part may itself contain '+': split at the first two only.
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(KeyError::Malformed("expected name+keyid+key"));
    };
    if !is_valid_key_name(name) {
        return Err(KeyError::Name);
    }
    if hex.len() != 8
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(KeyError::Malformed(
            "key ID must be 8 lower-case hex digits",
        ));
    }
    let id = u32::from_str_radix(hex, 16).map_err(|_| KeyError::Malformed("key ID"))?;
    let raw = decode_base64(b64).map_err(|_| KeyError::Malformed("key is not valid base64"))?;
    Ok((name, id, raw))
}

/// A public key that can check note signatures (type 0x01) or cosignatures
/// (type 0x04).
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key_type: KeyType,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key `name+hex8+base64(type || public key)`.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        let (name, id, raw) = split_key(vkey)?;
        let (&t, pk) = raw.split_first().ok_or(KeyError::Malformed("empty key"))?;
        let key_type = KeyType::from_byte(t).ok_or(KeyError::UnsupportedType(t))?;
        let pk: [u8; 32] = pk
            .try_into()
            .map_err(|_| KeyError::Malformed("Ed25519 public key must be 32 bytes"))?;
        let computed = key_id(name, key_type, &pk);
        if computed != id {
            return Err(KeyError::KeyIdMismatch {
                given: id,
                computed,
            });
        }
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| KeyError::BadPublicKey)?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: id,
            key_type,
            key,
        })
    }

    /// Builds a verifier from a name, type and raw public key.
    pub fn from_public_key(
        name: &str,
        key_type: KeyType,
        public_key: &[u8; 32],
    ) -> Result<Self, KeyError> {
        if !is_valid_key_name(name) {
            return Err(KeyError::Name);
        }
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| KeyError::BadPublicKey)?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: key_id(name, key_type, public_key),
            key_type,
            key,
        })
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Algorithm.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Checks `sig` (the signature bytes after the key ID) over note `text`.
    /// Returns `None` if it fails; for a cosignature, `Some(Some(timestamp))`.
    pub fn verify(&self, text: &str, sig: &[u8]) -> Option<Option<u64>> {
        match self.key_type {
            KeyType::Ed25519 => {
                let s = ed25519_dalek::Signature::from_slice(sig).ok()?;
                self.key.verify_strict(text.as_bytes(), &s).ok()?;
                Some(None)
            }
            KeyType::Cosignature => {
                let (ts, s) = sig.split_first_chunk::<8>()?;
                let s = ed25519_dalek::Signature::from_slice(s).ok()?;
                let time = u64::from_be_bytes(*ts);
                let msg = crate::cosignature::signed_message(text, time);
                self.key.verify_strict(msg.as_bytes(), &s).ok()?;
                Some(Some(time))
            }
        }
    }
}

impl fmt::Display for NoteVerifier {
    /// The verifier key string, `name+hex8+base64(type || public key)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(self.key_type.byte());
        raw.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_base64(&raw)
        )
    }
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteVerifier({self})")
    }
}

/// An Ed25519 private key with its name and type. Its `Debug` output never
/// shows the secret.
#[derive(Clone)]
pub(crate) struct KeyPair {
    pub(crate) name: String,
    pub(crate) key_id: u32,
    pub(crate) key_type: KeyType,
    pub(crate) sk: SigningKey,
}

impl KeyPair {
    pub(crate) fn from_seed(
        name: &str,
        key_type: KeyType,
        seed: &[u8; 32],
    ) -> Result<Self, KeyError> {
        if !is_valid_key_name(name) {
            return Err(KeyError::Name);
        }
        let sk = SigningKey::from_bytes(seed);
        Ok(KeyPair {
            name: name.to_owned(),
            key_id: key_id(name, key_type, sk.verifying_key().as_bytes()),
            key_type,
            sk,
        })
    }

    pub(crate) fn parse(s: &str, want: KeyType) -> Result<Self, KeyError> {
        let rest = s.strip_prefix("PRIVATE+KEY+").ok_or(KeyError::Malformed(
            "private key must start with PRIVATE+KEY+",
        ))?;
        let (name, id, raw) = split_key(rest)?;
        let (&t, seed) = raw.split_first().ok_or(KeyError::Malformed("empty key"))?;
        let key_type = KeyType::from_byte(t).ok_or(KeyError::UnsupportedType(t))?;
        if key_type != want {
            return Err(KeyError::WrongType {
                expected: want.byte(),
                got: t,
            });
        }
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| KeyError::Malformed("Ed25519 seed must be 32 bytes"))?;
        let kp = KeyPair::from_seed(name, key_type, &seed)?;
        if kp.key_id != id {
            return Err(KeyError::KeyIdMismatch {
                given: id,
                computed: kp.key_id,
            });
        }
        Ok(kp)
    }

    pub(crate) fn private_key_string(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(self.key_type.byte());
        raw.extend_from_slice(self.sk.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_base64(&raw)
        )
    }

    pub(crate) fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key_type: self.key_type,
            key: self.sk.verifying_key(),
        }
    }

    /// `— name base64(key ID || sig)\n`.
    pub(crate) fn line(&self, sig: &[u8]) -> String {
        let mut raw = Vec::with_capacity(4 + sig.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(sig);
        format!("{SIG_PREFIX}{} {}\n", self.name, encode_base64(&raw))
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.sk.sign(msg).to_bytes()
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:08x} (private key hidden)", self.name, self.key_id)
    }
}

/// An Ed25519 (type 0x01) note signer, such as a log's checkpoint key.
#[derive(Clone, Debug)]
pub struct NoteSigner(KeyPair);

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        KeyPair::from_seed(name, KeyType::Ed25519, seed).map(NoteSigner)
    }

    /// Parses Go's `PRIVATE+KEY+name+hex8+base64(0x01 || seed)`.
    pub fn parse(skey: &str) -> Result<Self, KeyError> {
        KeyPair::parse(skey, KeyType::Ed25519).map(NoteSigner)
    }

    /// The private key in Go's format. Secret: never log it.
    pub fn to_private_key_string(&self) -> String {
        self.0.private_key_string()
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        self.0.verifier()
    }

    /// A 32-byte secret derived from the private key for one purpose:
    /// HMAC-SHA-256 (RFC 2104) keyed with the Ed25519 seed, over `context`
    /// (a fixed label naming the purpose, e.g. `cairn-idempotency/v1`).
    /// Distinct contexts give independent secrets, none of which reveals
    /// the key; the secret lives exactly as long as the log's key does.
    #[allow(clippy::expect_used)]
    pub fn derive_secret(&self, context: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, KeyInit, Mac};
        let seed = zeroize::Zeroizing::new(self.0.sk.to_bytes());
        // HMAC takes keys of any length (RFC 2104 §2): `new_from_slice`
        // only fails for fixed-length MACs, so this expect cannot fire.
        let mut m =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&*seed).expect("HMAC accepts any key length");
        m.update(context);
        m.finalize().into_bytes().into()
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Key ID.
    pub fn key_id(&self) -> u32 {
        self.0.key_id
    }

    /// The signature line for `text`: `— name base64(key ID || Ed25519(text))\n`.
    pub fn sign_line(&self, text: &str) -> String {
        self.0.line(&self.0.sign(text.as_bytes()))
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub sig: Vec<u8>,
}

impl NoteSignature {
    /// The line as it appears in the note, with its trailing newline.
    pub fn line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.sig.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.sig);
        format!("{SIG_PREFIX}{} {}\n", self.name, encode_base64(&raw))
    }

    /// Parses one line, without its trailing newline.
    fn parse(line: &str) -> Result<Self, NoteError> {
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
            "signature line must start with an em dash and a space",
        ))?;
        let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
            "signature line needs a name and a signature",
        ))?;
        if !is_valid_key_name(name) {
            return Err(NoteError::Malformed("invalid key name in signature line"));
        }
        let raw = decode_base64(b64)
            .map_err(|_| NoteError::Malformed("signature is not valid base64"))?;
        if raw.len() < 5 {
            return Err(NoteError::Malformed("signature too short"));
        }
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            sig: raw[4..].to_vec(),
        })
    }
}

/// A signature that verified against a known key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub key_id: u32,
    /// Algorithm.
    pub key_type: KeyType,
    /// The cosignature's timestamp, for type 0x04.
    pub timestamp: Option<u64>,
}

/// A parsed signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end with a newline"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("text contains a control character"));
    }
    Ok(())
}

impl Note {
    /// An unsigned note. The text must be non-empty, end in `\n`, and contain
    /// no control characters but `\n`.
    pub fn new(text: impl Into<String>) -> Result<Self, NoteError> {
        let text = text.into();
        check_text(&text)?;
        Ok(Note {
            text,
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note strictly (see the module docs). Signatures are
    /// not checked here: see [`Note::verify`].
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        if s.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::Malformed("control character"));
        }
        let split = s
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "signature block must end with a newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(NoteSignature::parse(line)?);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text, ending in `\n`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line.
    pub fn push_signature(&mut self, sig: NoteSignature) -> Result<(), NoteError> {
        if self.signatures.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        self.signatures.push(sig);
        Ok(())
    }

    /// Signs the text with `signer` and appends the line.
    pub fn sign(&mut self, signer: &NoteSigner) -> Result<(), NoteError> {
        let sig = signer.0.sign(self.text.as_bytes());
        self.push_signature(NoteSignature {
            name: signer.name().to_owned(),
            key_id: signer.key_id(),
            sig: sig.to_vec(),
        })
    }

    /// Checks signatures against `known` keys. Signatures by unknown keys
    /// are ignored; a repeated signature by a known key is skipped; a failing
    /// signature by a known key rejects the note. Succeeds only if at least
    /// one known key signed, and returns the keys that did.
    pub fn verify(&self, known: &[NoteVerifier]) -> Result<Vec<VerifiedSignature>, NoteError> {
        let mut out: Vec<VerifiedSignature> = Vec::new();
        for s in &self.signatures {
            let Some(v) = known
                .iter()
                .find(|v| v.key_id == s.key_id && v.name == s.name)
            else {
                continue;
            };
            if out.iter().any(|o| o.key_id == s.key_id && o.name == s.name) {
                continue;
            }
            let timestamp =
                v.verify(&self.text, &s.sig)
                    .ok_or_else(|| NoteError::InvalidSignature {
                        name: s.name.clone(),
                        key_id: s.key_id,
                    })?;
            out.push(VerifiedSignature {
                name: s.name.clone(),
                key_id: s.key_id,
                key_type: v.key_type,
                timestamp,
            });
        }
        if out.is_empty() {
            return Err(NoteError::Unverified);
        }
        Ok(out)
    }
}

impl fmt::Display for Note {
    /// The serialized note: text, a blank line, then the signature lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for s in &self.signatures {
            f.write_str(&s.line())?;
        }
        Ok(())
    }
}
