//! The lookups every in-memory part of a store needs, in one place: hash
//! tiles by `(level, index)`, the lowest index of each leaf hash, and the
//! idempotency records. The memory backend keeps its whole log in one; the
//! bucket store (`cairn-storage-s3`) keeps its caches in one.

use std::collections::HashMap;

use cairn_core::hash::{Hash, LeafIndex};
use cairn_core::tile::Tile;

use crate::{IdempotencyKey, IdempotencyRecord, NewEntry, StoreError};

/// Tiles, leaf-hash index and idempotency records, in memory.
#[derive(Clone, Debug, Default)]
pub struct MemIndex {
    /// Every tile's hashes, by `(level, index)`, at its widest.
    pub tiles: HashMap<(u8, u64), Vec<Hash>>,
    /// The lowest index of each leaf hash.
    pub leaf_index: HashMap<Hash, u64>,
    /// Idempotency key -> (index, request digest).
    pub idempotency: HashMap<IdempotencyKey, (u64, [u8; 32])>,
}

impl MemIndex {
    /// How many hashes tile `(level, index)` holds (0: none).
    pub fn tile_width(&self, level: u8, index: u64) -> usize {
        self.tiles.get(&(level, index)).map_or(0, Vec::len)
    }

    /// [`LogStore::read_tiles`](crate::LogStore::read_tiles) over these tiles.
    pub fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<Hash>>, StoreError> {
        tiles
            .iter()
            .map(|t| {
                self.tiles
                    .get(&(t.level, t.index))
                    .and_then(|v| v.get(..usize::from(t.width)))
                    .map(<[Hash]>::to_vec)
                    .ok_or_else(|| StoreError::MissingTile { path: t.path() })
            })
            .collect()
    }

    /// [`LogStore::find_leaf`](crate::LogStore::find_leaf).
    pub fn find_leaf(&self, leaf_hash: &Hash) -> Option<LeafIndex> {
        self.leaf_index.get(leaf_hash).copied().map(LeafIndex)
    }

    /// [`LogStore::find_idempotency_key`](crate::LogStore::find_idempotency_key).
    pub fn find_idempotency_key(&self, key: &IdempotencyKey) -> Option<IdempotencyRecord> {
        self.idempotency
            .get(key)
            .map(|&(i, request)| IdempotencyRecord {
                index: LeafIndex(i),
                request: Some(request),
            })
    }

    /// Indexes a committed batch's entries, the first at `start`.
    pub fn add_entries(&mut self, start: u64, entries: &[NewEntry<'_>]) {
        for (i, e) in entries.iter().enumerate() {
            let idx = start + i as u64;
            self.leaf_index.entry(e.leaf_hash).or_insert(idx);
            if let Some(k) = e.idempotency {
                self.idempotency.insert(k.key, (idx, k.request));
            }
        }
    }
}
