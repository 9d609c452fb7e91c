//! C2SP tlog-cosignature v1 (<https://c2sp.org/tlog-cosignature>): a
//! witness's timestamped Ed25519 signature over a checkpoint, key type `0x04`.
//!
//! The signed message is
//!
//! ```text
//! cosignature/v1\n
//! time <decimal seconds since the Unix epoch>\n
//! <checkpoint body, the note text, ending in \n>
//! ```
//!
//! and the signature line carries 76 bytes: key ID (4) || timestamp
//! (8, big-endian) || Ed25519 signature (64).

use crate::note::{KeyError, KeyPair, KeyType, NoteSignature, NoteVerifier};

/// Length of a cosignature blob after base64 decoding.
pub const COSIGNATURE_LEN: usize = 4 + 8 + 64;

/// The message a witness signs for a checkpoint body at `time`.
pub fn signed_message(checkpoint_body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{checkpoint_body}")
}

/// A witness's cosigning key (type 0x04). Its `Debug` output hides the secret.
#[derive(Clone, Debug)]
pub struct Cosigner(KeyPair);

impl Cosigner {
    /// A cosigner from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        KeyPair::from_seed(name, KeyType::Cosignature, seed).map(Cosigner)
    }

    /// Parses `PRIVATE+KEY+name+hex8+base64(0x04 || seed)`: Go's private-key
    /// layout with the cosignature type byte.
    pub fn parse(skey: &str) -> Result<Self, KeyError> {
        KeyPair::parse(skey, KeyType::Cosignature).map(Cosigner)
    }

    /// The private key string. Secret: never log it.
    pub fn to_private_key_string(&self) -> String {
        self.0.private_key_string()
    }

    /// The matching verifier (`name+hex8+base64(0x04 || public key)`).
    pub fn verifier(&self) -> NoteVerifier {
        self.0.verifier()
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Key ID.
    pub fn key_id(&self) -> u32 {
        self.0.key_id
    }

    /// Cosigns a checkpoint body at `time`; the result goes into the note's
    /// signature block (see [`NoteSignature::line`]).
    pub fn cosign(&self, checkpoint_body: &str, time: u64) -> NoteSignature {
        let sig = self
            .0
            .sign(signed_message(checkpoint_body, time).as_bytes());
        let mut bytes = Vec::with_capacity(COSIGNATURE_LEN - 4);
        bytes.extend_from_slice(&time.to_be_bytes());
        bytes.extend_from_slice(&sig);
        NoteSignature {
            name: self.0.name.clone(),
            key_id: self.0.key_id,
            sig: bytes,
        }
    }
}

/// The fields of a cosignature blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignatureBlob {
    /// Key ID.
    pub key_id: u32,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// Ed25519 signature.
    pub signature: [u8; 64],
}

impl CosignatureBlob {
    /// Splits a 76-byte blob; `None` for any other length.
    pub fn parse(blob: &[u8]) -> Option<Self> {
        let blob: &[u8; COSIGNATURE_LEN] = blob.try_into().ok()?;
        let (id, rest) = blob.split_first_chunk::<4>()?;
        let (ts, sig) = rest.split_first_chunk::<8>()?;
        Some(CosignatureBlob {
            key_id: u32::from_be_bytes(*id),
            timestamp: u64::from_be_bytes(*ts),
            signature: sig.try_into().ok()?,
        })
    }
}
