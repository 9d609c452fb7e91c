//! Token keys: loaded from a key file (never from the policy), never
//! printed, zeroized on drop, with epochs for rotation.
//!
//! ```toml
//! # keys.toml: keep it readable by the Cairn user only.
//! [[token_key]]
//! epoch = 1
//! key = "<base64 of 32 random bytes>"
//! ```
//!
//! New tokens use the highest epoch; its number is part of every token
//! (`tok:<epoch>:…`), so tokens from different epochs never collide.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use zeroize::Zeroizing;

/// A key file could not be used. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct KeyFileError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// HMAC keys by epoch.
#[derive(Clone, Default)]
pub struct TokenKeys {
    epochs: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("epochs", &self.epochs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    #[serde(default)]
    token_key: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    epoch: u32,
    key: String,
}

impl TokenKeys {
    /// No keys: policies that use `token` are refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the key of an epoch.
    pub fn insert(&mut self, epoch: u32, key: [u8; 32]) {
        self.epochs.insert(epoch, Zeroizing::new(key));
    }

    /// Parses a key file. Error messages never quote the file's content.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, KeyFileError> {
        let err = |m: String| KeyFileError {
            file: file.to_owned(),
            message: m,
        };
        let raw: RawKeys = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            // Only toml's own description: it names keys, not values.
            err(format!(
                "line {line}: invalid key file ({})",
                e.message().lines().next().unwrap_or("")
            ))
        })?;
        let mut keys = TokenKeys::new();
        for k in raw.token_key {
            use base64::Engine;
            let k = RawKeyZ {
                epoch: k.epoch,
                key: Zeroizing::new(k.key),
            };
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(k.key.trim())
                    .map_err(|_| err(format!("epoch {}: key is not valid base64", k.epoch)))?,
            );
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                err(format!(
                    "epoch {}: key must be 32 bytes, got {}",
                    k.epoch,
                    bytes.len()
                ))
            })?;
            if keys.epochs.contains_key(&k.epoch) {
                return Err(err(format!("epoch {} appears twice", k.epoch)));
            }
            keys.insert(k.epoch, key);
        }
        Ok(keys)
    }

    /// The newest epoch and its key.
    pub fn current(&self) -> Option<(u32, &[u8; 32])> {
        self.epochs.iter().next_back().map(|(e, k)| (*e, &**k))
    }

    /// Whether no key is loaded.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }
}

/// The raw key string, wiped when dropped.
struct RawKeyZ {
    epoch: u32,
    key: Zeroizing<String>,
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 over the concatenation of `parts`.
#[allow(clippy::expect_used)]
pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length (RFC 2104 §2): `new_from_slice` only
    // fails for fixed-length MACs, so this expect cannot fire.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The per-(origin, detector, epoch) token key.
pub(crate) fn derive(master: &[u8; 32], origin: &str, detector: &str) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hmac(
        master,
        &[
            b"cairn-token/v1\0",
            origin.as_bytes(),
            b"\0",
            detector.as_bytes(),
        ],
    ))
}
