//! The proof tile cache: expanded tiles (every interior node hashed) keyed
//! by tile and width. A tile at a given width never changes, so entries
//! never go stale; the cache only bounds memory (oldest out first).
//!
//! Receipts of one batch all prove against the same right-edge tiles, so
//! after the first receipt the rest cost lookups instead of ~500 hashes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use cairn_core::hash::Hash;
use cairn_core::proof::{ExpandedTile, ProofPlan};
use cairn_core::tile::Tile;
use cairn_storage::LogStore;

use crate::error::ServerError;

type Key = (u8, u64, u16);
/// The map and its insertion order (for eviction).
type Entries = (HashMap<Key, Arc<ExpandedTile>>, VecDeque<Key>);

/// A bounded cache of expanded tiles.
pub struct TileCache {
    cap: usize,
    inner: Mutex<Entries>,
}

impl TileCache {
    /// A cache holding at most `cap` tiles (a full expanded tile is ~16 KiB).
    pub fn new(cap: usize) -> Self {
        TileCache {
            cap: cap.max(1),
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Only whole entries are inserted or removed; a poisoned lock still
        // holds a consistent map.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves a proof plan from cached tiles only: `None` if any tile is
    /// missing. Pure CPU (a few lookups and folds), so async code can call
    /// it without a blocking thread.
    pub fn prove_cached(&self, plan: &ProofPlan) -> Option<Result<Vec<Hash>, ServerError>> {
        let tiles: Option<Vec<Arc<ExpandedTile>>> = {
            let g = self.lock();
            plan.tiles()
                .iter()
                .map(|t| g.0.get(&(t.level, t.index, t.width)).cloned())
                .collect()
        };
        tiles.map(|t| plan.resolve_expanded(&t).map_err(ServerError::from))
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
        t.hashes().get((index % 256) as usize).copied()
    }

    /// Resolves a proof plan, reading only the tiles not cached (in one call).
    pub fn prove(&self, store: &dyn LogStore, plan: &ProofPlan) -> Result<Vec<Hash>, ServerError> {
        let key = |t: &Tile| (t.level, t.index, t.width);
        let mut found: Vec<Option<Arc<ExpandedTile>>> = {
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
            let expanded: Vec<Arc<ExpandedTile>> = read
                .iter()
                .map(|h| Arc::new(ExpandedTile::new(h)))
                .collect();
            let mut g = self.lock();
            for (t, e) in missing.iter().zip(&expanded) {
                if g.0.insert(key(t), e.clone()).is_none() {
                    g.1.push_back(key(t));
                }
            }
            while g.0.len() > self.cap {
                match g.1.pop_front() {
                    Some(old) => {
                        g.0.remove(&old);
                    }
                    None => break,
                }
            }
            drop(g);
            let mut fresh = expanded.into_iter();
            for slot in found.iter_mut().filter(|f| f.is_none()) {
                *slot = fresh.next();
            }
        }
        let tiles: Vec<Arc<ExpandedTile>> = found
            .into_iter()
            .map(|f| f.ok_or_else(|| ServerError::Unavailable("tile cache lost a tile".into())))
            .collect::<Result<_, _>>()?;
        Ok(plan.resolve_expanded(&tiles)?)
    }
}
