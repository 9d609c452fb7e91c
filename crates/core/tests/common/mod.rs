//! Test helpers shared by the core's integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::convert::Infallible;

use cairn_core::hash::{Hash, leaf_hash, node_hash};
use cairn_core::proof::TileReader;
use cairn_core::tile::Tile;
use cairn_core::tree::{Integration, TreeState};

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

/// An in-memory tile store fed by integration output. Checks that every
/// update lands exactly at the tile's current end, so a gap or overlap in
/// the integration output fails the test.
#[derive(Default)]
pub struct MemTiles {
    pub tiles: HashMap<(u8, u64), Vec<Hash>>,
}

impl MemTiles {
    pub fn apply(&mut self, integ: &Integration) {
        for u in &integ.tiles {
            let t = self.tiles.entry((u.tile.level, u.tile.index)).or_default();
            assert_eq!(
                t.len(),
                u.offset as usize,
                "tile update must extend the tile"
            );
            t.extend_from_slice(&u.hashes);
            assert_eq!(t.len(), u.tile.width as usize);
            assert!(t.len() <= 256);
        }
    }

    /// Builds a tree of `leaves` in batches of `batch`.
    pub fn build(leaves: &[Hash], batch: usize) -> (MemTiles, TreeState) {
        let mut m = MemTiles::default();
        let mut s = TreeState::empty();
        for chunk in leaves.chunks(batch.max(1)) {
            let i = s.integrate(chunk).unwrap();
            m.apply(&i);
            s = i.state;
        }
        (m, s)
    }
}

impl TileReader for MemTiles {
    type Tile = Vec<Hash>;
    type Error = Infallible;
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<Hash>>, Infallible> {
        Ok(tiles
            .iter()
            .map(|t| {
                self.tiles
                    .get(&(t.level, t.index))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect())
    }
}
