//! The proof tile cache: tiles keyed by tile and width, expanded (every
//! interior node hashed) on first use. A tile at a given width never
//! changes, so entries never go stale; the cache only bounds memory
//! (oldest out first).
//!
//! The sequencer hands every batch's new and grown tiles to the cache
//! ([`TileCache::insert_updates`]) before it answers the batch, so the
//! batch's receipts prove from memory: no re-read of the tiles just
//! written. Receipts of one batch all prove against the same right-edge
//! tiles, so after the first receipt the rest cost lookups instead of
//! ~500 hashes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use cairn_core::hash::Hash;
use cairn_core::proof::{ExpandedTile, ProofPlan, RangeMemo};
use cairn_core::tile::Tile;
use cairn_core::tree::TileUpdate;
use cairn_storage::LogStore;

use crate::error::LogError;

type Key = (u8, u64, u16);

/// One cached tile: its hashes, expanded on first use.
struct Cached {
    hashes: Vec<Hash>,
    expanded: OnceLock<ExpandedTile>,
}

impl Cached {
    fn expanded(&self) -> &ExpandedTile {
        self.expanded
            .get_or_init(|| ExpandedTile::new(&self.hashes))
    }
}

/// The map and its insertion order (for eviction).
type Entries = (HashMap<Key, Arc<Cached>>, VecDeque<Key>);

/// A bounded cache of tiles (a full tile costs ~24 KiB once expanded:
/// its hashes and every interior node).
pub struct TileCache {
    cap: usize,
    inner: Mutex<Entries>,
    /// Right-edge range roots, shared by the proofs of one tree (a
    /// batch's receipts fold each range once).
    ranges: Mutex<RangeMemo>,
}

impl std::fmt::Debug for TileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileCache")
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

fn key(t: &Tile) -> Key {
    (t.level, t.index, t.width)
}

impl TileCache {
    /// A cache holding at most `cap` tiles.
    pub fn new(cap: usize) -> Self {
        TileCache {
            cap: cap.max(1),
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
            ranges: Mutex::new(RangeMemo::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Only whole entries are inserted or removed; a poisoned lock still
        // holds a consistent map.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, g: &mut Entries, k: Key, c: Arc<Cached>) {
        if g.0.insert(k, c).is_none() {
            g.1.push_back(k);
        }
        while g.0.len() > self.cap {
            match g.1.pop_front() {
                Some(old) => {
                    g.0.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Takes a batch's new and grown tiles (as the integration produced
    /// them, level 0 first). A grown tile is the cached tile at its old
    /// width plus the new hashes; one whose old width is not cached (the
    /// first batch after a start) is skipped, and read from the store the
    /// first time a proof needs it. Cheap: no hashing here.
    pub fn insert_updates(&self, updates: Vec<TileUpdate>) {
        let mut g = self.lock();
        for u in updates {
            let hashes = if u.offset == 0 {
                u.hashes
            } else {
                match g.0.get(&(u.tile.level, u.tile.index, u.offset)) {
                    Some(prev) if prev.hashes.len() == usize::from(u.offset) => {
                        let mut h = Vec::with_capacity(usize::from(u.tile.width));
                        h.extend_from_slice(&prev.hashes);
                        h.extend_from_slice(&u.hashes);
                        h
                    }
                    _ => continue,
                }
            };
            let c = Arc::new(Cached {
                hashes,
                expanded: OnceLock::new(),
            });
            self.insert(&mut g, key(&u.tile), c);
        }
    }

    /// Resolves a proof plan from cached tiles only: `None` if any tile is
    /// missing. Pure CPU (lookups, folds, and the first expansion of a
    /// tile the batch just wrote), so async code can call it without a
    /// blocking thread.
    pub fn prove_cached(&self, plan: &ProofPlan) -> Option<Result<Vec<Hash>, LogError>> {
        let tiles: Option<Vec<Arc<Cached>>> = {
            let g = self.lock();
            plan.tiles()
                .iter()
                .map(|t| g.0.get(&key(t)).cloned())
                .collect()
        };
        let tiles = tiles?;
        Some(self.resolve(plan, &tiles))
    }

    /// The leaf hash at `index` in the tree of `size`, from the cached
    /// level-0 tile that holds it (tiles hold exactly the leaf hashes that
    /// were integrated), if that tile is cached. C2SP tlog-tiles: tile
    /// `index / 256` of level 0, partial (width `size % 256`) only when it is
    /// the tree's right edge.
    pub fn leaf_cached(&self, index: u64, size: u64) -> Option<Hash> {
        if index >= size {
            return None;
        }
        let tile = index / 256;
        let width = if tile < size / 256 { 256 } else { size % 256 };
        let width = u16::try_from(width).ok()?;
        let g = self.lock();
        let t = g.0.get(&(0, tile, width))?;
        t.hashes.get((index % 256) as usize).copied()
    }

    /// The proof from its tiles, with the shared range memo.
    fn resolve(&self, plan: &ProofPlan, tiles: &[Arc<Cached>]) -> Result<Vec<Hash>, LogError> {
        let expanded: Vec<&ExpandedTile> = tiles.iter().map(|c| c.expanded()).collect();
        let mut memo = self.ranges.lock().unwrap_or_else(|p| p.into_inner());
        Ok(plan.resolve_expanded_memo(&expanded, &mut memo)?)
    }

    /// Resolves a proof plan, reading only the tiles not cached (in one
    /// call). Blocking: call it off the async threads.
    pub fn prove(&self, store: &dyn LogStore, plan: &ProofPlan) -> Result<Vec<Hash>, LogError> {
        let mut found: Vec<Option<Arc<Cached>>> = {
            let g = self.lock();
            plan.tiles()
                .iter()
                .map(|t| g.0.get(&key(t)).cloned())
                .collect()
        };
        let missing: Vec<Tile> = plan
            .tiles()
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(t, _)| *t)
            .collect();
        if !missing.is_empty() {
            let read = store.read_tiles(&missing)?;
            let fresh: Vec<Arc<Cached>> = read
                .into_iter()
                .map(|hashes| {
                    let c = Cached {
                        expanded: OnceLock::new(),
                        hashes,
                    };
                    // Expanded here, off the async threads.
                    c.expanded();
                    Arc::new(c)
                })
                .collect();
            let mut g = self.lock();
            for (t, c) in missing.iter().zip(&fresh) {
                self.insert(&mut g, key(t), c.clone());
            }
            drop(g);
            let mut fresh = fresh.into_iter();
            for slot in found.iter_mut().filter(|f| f.is_none()) {
                *slot = fresh.next();
            }
        }
        let tiles: Vec<Arc<Cached>> = found
            .into_iter()
            .map(|f| f.ok_or_else(|| LogError::Unavailable("tile cache lost a tile".into())))
            .collect::<Result<_, _>>()?;
        self.resolve(plan, &tiles)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cairn_core::hash::{LeafIndex, TreeSize, leaf_hash};
    use cairn_core::tree::TreeState;

    /// Tiles handed over batch by batch prove exactly what the store's
    /// tiles prove, with no store read: the cache answers every proof of
    /// the newest tree from the batches alone.
    #[test]
    fn batches_alone_prove_like_the_store() {
        let store = cairn_storage::MemoryStore::new();
        let cache = TileCache::new(10_000);
        let mut tree = TreeState::empty();
        let mut n = 0u64;
        for batch in [1usize, 300, 7, 513, 1, 256, 2000] {
            let leaves: Vec<Vec<u8>> = (0..batch)
                .map(|k| format!("e{}", n + k as u64).into_bytes())
                .collect();
            let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
            let integ = tree.integrate(&hashes).unwrap();
            let entries: Vec<cairn_storage::NewEntry<'_>> = leaves
                .iter()
                .zip(&hashes)
                .map(|(l, h)| cairn_storage::NewEntry {
                    data: l,
                    leaf_hash: *h,
                    idempotency: None,
                })
                .collect();
            store
                .commit_batch(cairn_storage::CommitBatch {
                    expected_size: tree.size(),
                    entries: &entries,
                    tiles: &integ.tiles,
                    state: &integ.state,
                    checkpoint: None,
                })
                .unwrap();
            cache.insert_updates(integ.tiles);
            tree = integ.state;
            n += batch as u64;
            let size = TreeSize(n);
            for i in [0, n / 3, n / 2, n - 1] {
                let plan = ProofPlan::inclusion(LeafIndex(i), size).unwrap();
                let cached = cache
                    .prove_cached(&plan)
                    .expect("all tiles cached")
                    .unwrap();
                let fresh = TileCache::new(10).prove(&store, &plan).unwrap();
                assert_eq!(cached, fresh, "index {i} of {n}");
                assert_eq!(
                    cache.leaf_cached(i, n),
                    Some(leaf_hash(format!("e{i}").as_bytes()))
                );
            }
        }
    }
}
