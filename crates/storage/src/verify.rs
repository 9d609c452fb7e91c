//! Checks shared by every backend: batch validation before a write (no
//! hashing), and state verification at load time (recomputes the root with
//! `cairn-core`).

use std::collections::HashSet;

use cairn_core::checkpoint::Checkpoint;
use cairn_core::hash::{Hash, TreeSize};
use cairn_core::note::Note;
use cairn_core::proof::{TileReader, tree_root};
use cairn_core::tile::{MAX_ENTRY_LEN, Tile};
use cairn_core::tree::TreeState;

use crate::{CommitBatch, IdempotencyKey, LogStore, StoreError, StoredCheckpoint};

/// A [`TileReader`] over any [`LogStore`].
pub struct StoreTiles<'a, S: ?Sized>(pub &'a S);

impl<S: LogStore + ?Sized> TileReader for StoreTiles<'_, S> {
    type Tile = Vec<Hash>;
    type Error = StoreError;
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<Hash>>, StoreError> {
        self.0.read_tiles(tiles)
    }
}

/// Parses a stored checkpoint note far enough to get its body.
/// Parses a stored checkpoint note's body (no signature check: the note
/// was signed by this log's writer).
pub fn parse_checkpoint(note: &[u8]) -> Result<Checkpoint, StoreError> {
    let n =
        Note::parse(note).map_err(|e| StoreError::InvalidBatch(format!("checkpoint note: {e}")))?;
    Checkpoint::parse(n.text()).map_err(|e| StoreError::InvalidBatch(format!("checkpoint: {e}")))
}

/// Checks a `put_checkpoint` request: the note parses, is labelled with its
/// own size, and that size is durable.
/// Checks a `put_checkpoint` request against the durable size: the note
/// parses, names `size`, and `size` is not beyond the tree.
pub fn check_checkpoint_request(
    size: TreeSize,
    note: &[u8],
    durable: TreeSize,
) -> Result<(), StoreError> {
    let cp = parse_checkpoint(note)?;
    if cp.size != size {
        return Err(StoreError::InvalidBatch(format!(
            "checkpoint is for size {}, not {size}",
            cp.size
        )));
    }
    if size > durable {
        return Err(StoreError::InvalidBatch(format!(
            "checkpoint size {size} is beyond the durable tree size {durable}"
        )));
    }
    Ok(())
}

/// Checks a batch against the stored tree before anything is written.
///
/// * `stored_size`: the durable tree size (for the compare-and-swap);
/// * `tile_width(level, index)`: how many hashes the store holds for a tile;
/// * `key_used(key)`: whether an idempotency key is already stored.
///
/// Storage never hashes: leaf hashes are compared with the level-0 tile
/// hashes the batch carries, not recomputed.
pub fn validate_batch(
    batch: &CommitBatch<'_>,
    stored_size: TreeSize,
    tile_width: &dyn Fn(u8, u64) -> Result<usize, StoreError>,
    key_used: &dyn Fn(&IdempotencyKey) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    if batch.expected_size != stored_size {
        return Err(StoreError::Conflict {
            actual_size: stored_size.0,
        });
    }
    let bad = |m: String| Err(StoreError::InvalidBatch(m));
    let n = batch.entries.len() as u64;
    if batch.expected_size.0.checked_add(n) != Some(batch.state.size().0) {
        return bad(format!(
            "new tree size {} is not {} + {} entries",
            batch.state.size(),
            batch.expected_size,
            n
        ));
    }
    if let Some((i, e)) = batch
        .entries
        .iter()
        .enumerate()
        .find(|(_, e)| e.data.len() > MAX_ENTRY_LEN)
    {
        return bad(format!(
            "entry {} is {} bytes; the limit is {MAX_ENTRY_LEN}",
            batch.expected_size.0 + i as u64,
            e.data.len()
        ));
    }
    // Level-0 tile hashes must be exactly the entries' leaf hashes, in order.
    let level0: Vec<&Hash> = batch
        .tiles
        .iter()
        .filter(|u| u.tile.level == 0)
        .flat_map(|u| u.hashes.iter())
        .collect();
    if level0.len() as u64 != n
        || !level0
            .iter()
            .zip(batch.entries)
            .all(|(h, e)| **h == e.leaf_hash)
    {
        return bad("level-0 tile hashes do not match the entries' leaf hashes".into());
    }
    let mut seen_tiles = HashSet::new();
    for u in batch.tiles {
        if !seen_tiles.insert((u.tile.level, u.tile.index)) {
            return bad(format!("tile {} updated twice", u.tile.path()));
        }
        if usize::from(u.offset) + u.hashes.len() != usize::from(u.tile.width) || u.tile.width > 256
        {
            return bad(format!(
                "tile {} update has an inconsistent width",
                u.tile.path()
            ));
        }
        let have = tile_width(u.tile.level, u.tile.index)?;
        if have != usize::from(u.offset) {
            return bad(format!(
                "tile {} holds {have} hashes but the update starts at {}",
                u.tile.path(),
                u.offset
            ));
        }
    }
    let mut keys = HashSet::new();
    for e in batch.entries {
        if let Some(k) = &e.idempotency
            && (!keys.insert(k.key) || key_used(&k.key)?)
        {
            return bad("idempotency key already used".into());
        }
    }
    if let Some(note) = batch.checkpoint {
        let cp = parse_checkpoint(note)?;
        if cp.size != batch.state.size() {
            return bad(format!(
                "checkpoint is for size {}, the batch ends at {}",
                cp.size,
                batch.state.size()
            ));
        }
    }
    Ok(())
}

/// Checks a loaded state against the stored tiles and checkpoint: the
/// frontier's root, the root recomputed from tiles (`O(log n)` tile reads),
/// and the latest checkpoint's root (at its own size) must agree.
pub fn verify_state<S: LogStore + ?Sized>(
    store: &S,
    tree: &TreeState,
    latest: Option<&StoredCheckpoint>,
) -> Result<(), StoreError> {
    let corrupt = |m: String| StoreError::Corrupt(m);
    let tiles = StoreTiles(store);
    let from_tiles = tree_root(&tiles, tree.size()).map_err(|e| {
        corrupt(format!(
            "cannot recompute the root of size {} from tiles: {e}",
            tree.size()
        ))
    })?;
    if from_tiles != tree.root() {
        return Err(corrupt(format!(
            "the stored tree state (size {}) disagrees with the stored tiles",
            tree.size()
        )));
    }
    if let Some(cp) = latest {
        let body = parse_checkpoint(&cp.note)
            .map_err(|e| corrupt(format!("stored checkpoint at size {}: {e}", cp.size)))?;
        if body.size != cp.size {
            return Err(corrupt(format!(
                "checkpoint stored under size {} says size {}",
                cp.size, body.size
            )));
        }
        if cp.size > tree.size() {
            return Err(corrupt(format!(
                "latest checkpoint (size {}) is ahead of the stored tree (size {})",
                cp.size,
                tree.size()
            )));
        }
        let root = if cp.size == tree.size() {
            from_tiles
        } else {
            tree_root(&tiles, cp.size).map_err(|e| {
                corrupt(format!(
                    "cannot recompute the root of size {}: {e}",
                    cp.size
                ))
            })?
        };
        if root != body.root {
            return Err(corrupt(format!(
                "the checkpoint at size {} does not match the stored tiles",
                cp.size
            )));
        }
    }
    Ok(())
}
