//! Test helpers shared by the core's integration tests.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::panic
)]

use cairn_core::hash::{Hash, leaf_hash, node_hash};
use cairn_core::memtiles::MemoryTiles;
use cairn_core::tree::TreeState;

/// Reads a JSON vector file: the project's copy, taken from `../shared/vectors/`.
pub fn vectors(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

pub fn h(hex_str: &str) -> Hash {
    Hash::from_slice(&hex::decode(hex_str).unwrap()).unwrap()
}

/// The recursive definition of RFC 6962 §2.1, written independently of the
/// incremental code under test.
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => cairn_core::empty_root(),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// Distinct test leaves: `leaf_hash(i as u64 big-endian)`.
pub fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// Builds a tree of `leaves` in batches of `batch`, checking every tile
/// update lands at its tile's end.
pub fn build(leaves: &[Hash], batch: usize) -> (MemoryTiles, TreeState) {
    let mut m = MemoryTiles::new();
    let mut s = TreeState::empty();
    for chunk in leaves.chunks(batch.max(1)) {
        let i = s.integrate(chunk).unwrap();
        m.apply(&i).unwrap();
        s = i.state;
    }
    (m, s)
}
