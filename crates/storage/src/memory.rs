//! The in-memory reference backend: the contract with nothing else in the
//! way. Everything is lost when it is dropped ("durable" means "until drop").

use std::collections::BTreeMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use cairn_core::hash::{Hash, LeafIndex, TreeSize};
use cairn_core::tile::Tile;
use cairn_core::tree::TreeState;

use crate::verify::{check_checkpoint_request, validate_batch, verify_state};
use crate::{
    CommitBatch, IdempotencyKey, IdempotencyRecord, LoadedState, LogStore, MemIndex, StoreError,
    StoredCheckpoint,
};

#[derive(Default)]
struct Mem {
    tree: TreeState,
    entries: Vec<Vec<u8>>,
    index: MemIndex,
    checkpoints: BTreeMap<u64, Vec<u8>>,
}

/// An in-memory [`LogStore`].
#[derive(Default)]
pub struct MemoryStore {
    mem: RwLock<Mem>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Mem> {
        // A poisoned lock only means a panic elsewhere mid-read or mid-write;
        // writes below mutate only after every check passed, so the data
        // is still whole.
        self.mem.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Mem> {
        self.mem.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn check_checkpoint_slot(
    checkpoints: &BTreeMap<u64, Vec<u8>>,
    size: u64,
    note: &[u8],
) -> Result<bool, StoreError> {
    match checkpoints.get(&size) {
        Some(old) if old.as_slice() == note => Ok(false),
        Some(_) => Err(StoreError::CheckpointConflict { size }),
        None => Ok(true),
    }
}

impl LogStore for MemoryStore {
    fn load_state(&self) -> Result<LoadedState, StoreError> {
        let (tree, checkpoint) = {
            let m = self.read();
            let cp = m
                .checkpoints
                .iter()
                .next_back()
                .map(|(s, n)| StoredCheckpoint {
                    size: TreeSize(*s),
                    note: n.clone(),
                });
            (m.tree.clone(), cp)
        };
        verify_state(self, &tree, checkpoint.as_ref())?;
        Ok(LoadedState { tree, checkpoint })
    }

    fn commit_batch(&self, batch: CommitBatch<'_>) -> Result<(), StoreError> {
        let mut m = self.write();
        validate_batch(
            &batch,
            m.tree.size(),
            &|l, i| Ok(m.index.tile_width(l, i)),
            &|k| Ok(m.index.idempotency.contains_key(k)),
        )?;
        if let Some(note) = batch.checkpoint {
            check_checkpoint_slot(&m.checkpoints, batch.state.size().0, note)?;
        }
        // Every check passed: apply.
        m.entries
            .extend(batch.entries.iter().map(|e| e.data.to_vec()));
        m.index.add_entries(batch.expected_size.0, batch.entries);
        for u in batch.tiles {
            m.index
                .tiles
                .entry((u.tile.level, u.tile.index))
                .or_default()
                .extend_from_slice(&u.hashes);
        }
        if let Some(note) = batch.checkpoint {
            m.checkpoints.insert(batch.state.size().0, note.to_vec());
        }
        m.tree = batch.state.clone();
        Ok(())
    }

    fn put_checkpoint(&self, size: TreeSize, note: &[u8]) -> Result<(), StoreError> {
        let mut m = self.write();
        check_checkpoint_request(size, note, m.tree.size())?;
        if check_checkpoint_slot(&m.checkpoints, size.0, note)? {
            m.checkpoints.insert(size.0, note.to_vec());
        }
        Ok(())
    }

    fn read_entries(&self, start: LeafIndex, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let m = self.read();
        let size = m.entries.len() as u64;
        if start.0 > size {
            return Err(StoreError::OutOfRange {
                index: start.0,
                size,
            });
        }
        let from = start.0 as usize;
        let to = from.saturating_add(limit).min(m.entries.len());
        Ok(m.entries[from..to].to_vec())
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<Hash>>, StoreError> {
        self.read().index.read_tiles(tiles)
    }

    fn checkpoint(&self, size: Option<TreeSize>) -> Result<Option<StoredCheckpoint>, StoreError> {
        let m = self.read();
        let found = match size {
            Some(s) => m.checkpoints.get_key_value(&s.0),
            None => m.checkpoints.iter().next_back(),
        };
        Ok(found.map(|(s, n)| StoredCheckpoint {
            size: TreeSize(*s),
            note: n.clone(),
        }))
    }

    fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<LeafIndex>, StoreError> {
        Ok(self.read().index.find_leaf(leaf_hash))
    }

    fn find_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.read().index.find_idempotency_key(key))
    }
}
