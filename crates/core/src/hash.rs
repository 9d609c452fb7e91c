//! RFC 6962 §2.1 hashing, and the newtypes that keep indices and sizes apart.
//!
//! The Merkle Tree Hash (MTH) of RFC 6962 §2.1 (unchanged in RFC 9162 §2.1.1):
//!
//! ```text
//! MTH({})       = SHA-256()                              -- the empty tree
//! MTH({d(0)})   = SHA-256(0x00 || d(0))                  -- a leaf
//! MTH(D[n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
//!                 where k is the largest power of two smaller than n
//! ```
//!
//! The 0x00 / 0x01 prefixes are the domain separation that stops a leaf
//! from being passed off as an interior node (second-preimage attacks).

use std::fmt;

use sha2::{Digest, Sha256};

/// Length of every hash in the tree, in bytes (SHA-256).
pub const HASH_LEN: usize = 32;

/// A SHA-256 output: a leaf hash, an interior node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_LEN]);

/// The input was not exactly [`HASH_LEN`] bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a hash must be exactly 32 bytes, got {0}")]
pub struct HashLengthError(pub usize);

impl Hash {
    /// Builds a hash from a slice, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashLengthError> {
        <[u8; HASH_LEN]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| HashLengthError(bytes.len()))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Lower-case hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(2 * HASH_LEN);
        for b in self.0 {
            // Writing into a String cannot fail.
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// Standard base64 (RFC 4648 §4, padded), as used by checkpoints and tlog-proof.
    pub fn to_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Parses standard padded base64 that must decode to exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self, crate::encoding::Base64Error> {
        let bytes = crate::encoding::decode_base64(s)?;
        Hash::from_slice(&bytes).map_err(|e| crate::encoding::Base64Error::Length(e.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn finish(h: Sha256) -> Hash {
    Hash(h.finalize().into())
}

/// The root of the empty tree: `SHA-256()` (RFC 6962 §2.1),
/// `e3b0c442…7852b855`.
pub fn empty_root() -> Hash {
    finish(Sha256::new())
}

/// `SHA-256(0x00 || data)`: the hash of one leaf (RFC 6962 §2.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    finish(h)
}

/// `SHA-256(0x01 || left || right)`: an interior node (RFC 6962 §2.1).
/// The 65 input bytes are hashed in one call, two SHA-256 blocks.
#[inline]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 1 + 2 * HASH_LEN];
    buf[0] = 0x01;
    buf[1..1 + HASH_LEN].copy_from_slice(&left.0);
    buf[1 + HASH_LEN..].copy_from_slice(&right.0);
    Hash(Sha256::digest(buf).into())
}

/// The zero-based position of a leaf in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LeafIndex(pub u64);

/// The number of leaves in a tree. A tree of size `n` holds the leaves
/// `0..n`; its last leaf has index `n - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TreeSize(pub u64);

impl TreeSize {
    /// Whether `index` is a leaf of a tree of this size.
    pub fn contains(self, index: LeafIndex) -> bool {
        index.0 < self.0
    }
}

impl fmt::Display for LeafIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for TreeSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Folds perfect-subtree hashes, listed left to right, into the hash of
/// their concatenation: `node(h0, node(h1, … node(h_{k-2}, h_{k-1})))`.
///
/// This is how RFC 6962 hashes a range whose size is not a power of two: its
/// largest left subtree is complete and everything to the right of it is
/// hashed the same way, recursively. Returns `None` for an empty list.
pub fn fold_right(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

/// The root of a perfect subtree whose leaves (or lower-level nodes) are
/// `hashes`. The length must be a power of two; the work is `len - 1` node
/// hashes. Returns `None` if the length is zero or not a power of two.
pub fn perfect_root(hashes: &[Hash]) -> Option<Hash> {
    if !hashes.len().is_power_of_two() {
        return None;
    }
    if hashes.len() == 1 {
        return Some(hashes[0]);
    }
    let mut level: Vec<Hash> = hashes
        .chunks_exact(2)
        .map(|p| node_hash(&p[0], &p[1]))
        .collect();
    while level.len() > 1 {
        let n = level.len() / 2;
        for i in 0..n {
            level[i] = node_hash(&level[2 * i], &level[2 * i + 1]);
        }
        level.truncate(n);
    }
    level.first().copied()
}
