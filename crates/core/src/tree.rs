//! Incremental integration of new leaves into the tree.
//!
//! The whole tree is summarised by its *right-hand frontier*: the roots of
//! the perfect subtrees that a tree of `n` leaves splits into, one per set bit
//! of `n`, largest (leftmost) first. A tree of 13 = 0b1101 leaves has the
//! frontier `[MTH(0..8), MTH(8..12), MTH(12..13)]`, and its root is
//! `node(f0, node(f1, f2))` (RFC 6962 §2.1: the left subtree of every
//! interior node is the largest perfect subtree that fits).
//!
//! Appending a leaf is a binary increment: the leaf merges with the frontier's
//! smallest subtrees while they have its size. Each merge completes one
//! interior node; the ones on tree levels that are multiples of 8 are stored
//! in tiles. A batch of `b` leaves costs `b - 1 + popcount`-ish node hashes
//! (amortised one per leaf) plus `O(log n)` to fold the root: the tree is
//! never recomputed.

use crate::hash::{Hash, LeafIndex, TreeSize, empty_root, fold_right, node_hash};
use crate::tile::{TILE_HEIGHT, TILE_WIDTH, Tile};

/// The part of the tree that integration needs: its size and frontier.
///
/// Invariant (checked by [`TreeState::new`]): `frontier.len()` equals the
/// number of set bits of `size`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TreeState {
    size: TreeSize,
    frontier: Vec<Hash>,
}

/// The stored tree state did not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// The frontier must have one hash per set bit of the size.
    #[error("tree state of size {size} needs {expected} frontier hashes, got {got}")]
    FrontierLength {
        /// The tree size.
        size: u64,
        /// `popcount(size)`.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The batch would take the tree past `2^64 - 1` leaves.
    #[error("tree size would overflow 64 bits")]
    Overflow,
}

/// New hashes for one tile: `hashes` go at positions `offset ..` of tile
/// `tile`, whose width after the update is `tile.width`
/// (`offset + hashes.len()`). Earlier positions are unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileUpdate {
    /// The tile at its new width.
    pub tile: Tile,
    /// Position of the first new hash within the tile.
    pub offset: u16,
    /// The new hashes, in order.
    pub hashes: Vec<Hash>,
}

/// What integrating a batch produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integration {
    /// The tree after the batch.
    pub state: TreeState,
    /// Its root.
    pub root: Hash,
    /// Index of the first leaf of the batch.
    pub first_index: LeafIndex,
    /// Every new or grown tile, level 0 first, then by index.
    pub tiles: Vec<TileUpdate>,
}

impl TreeState {
    /// The empty tree.
    pub fn empty() -> Self {
        TreeState::default()
    }

    /// Rebuilds a state from storage, checking the frontier's length.
    pub fn new(size: TreeSize, frontier: Vec<Hash>) -> Result<Self, TreeError> {
        let expected = size.0.count_ones() as usize;
        if frontier.len() != expected {
            return Err(TreeError::FrontierLength {
                size: size.0,
                expected,
                got: frontier.len(),
            });
        }
        Ok(TreeState { size, frontier })
    }

    /// Number of leaves.
    pub fn size(&self) -> TreeSize {
        self.size
    }

    /// Perfect-subtree roots, largest first.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// The tree root (`SHA-256()` for the empty tree). `O(log n)` hashes.
    pub fn root(&self) -> Hash {
        fold_right(&self.frontier).unwrap_or_else(empty_root)
    }

    /// Appends `leaves` (leaf hashes, in log order) and reports the new state,
    /// its root and every tile hash that the batch created.
    ///
    /// Pure: `self` is not changed, so a caller can throw the result away if
    /// the durable commit fails.
    pub fn integrate(&self, leaves: &[Hash]) -> Result<Integration, TreeError> {
        let start = self.size.0;
        let end = start
            .checked_add(leaves.len() as u64)
            .ok_or(TreeError::Overflow)?;
        let mut frontier = Vec::with_capacity(64);
        frontier.extend_from_slice(&self.frontier);
        // runs[L] = (first node index at tree level 8·L, hashes) for L >= 1.
        // Completed nodes of one level come out with consecutive indices.
        let mut runs: Vec<(u64, Vec<Hash>)> = Vec::new();
        for (i, leaf) in leaves.iter().enumerate() {
            let idx = start + i as u64;
            let mut cur = *leaf;
            let mut level = 0u32;
            // Merge while the subtree to our left has the same size: that is,
            // for every trailing 1 bit of the new leaf's index.
            while (idx >> level) & 1 == 1 {
                let Some(left) = frontier.pop() else {
                    // Unreachable: the frontier has one hash per set bit of
                    // `idx`, and we pop at most one per trailing set bit.
                    return Err(TreeError::FrontierLength {
                        size: idx,
                        expected: idx.count_ones() as usize,
                        got: 0,
                    });
                };
                cur = node_hash(&left, &cur);
                level += 1;
                if level.is_multiple_of(TILE_HEIGHT) {
                    let tl = (level / TILE_HEIGHT) as usize;
                    let node_index = idx >> level;
                    if runs.len() < tl {
                        runs.resize_with(tl, || (u64::MAX, Vec::new()));
                    }
                    let run = &mut runs[tl - 1];
                    if run.1.is_empty() {
                        run.0 = node_index;
                    }
                    run.1.push(cur);
                }
            }
            frontier.push(cur);
        }
        let mut tiles = Vec::new();
        split_into_tiles(0, start, leaves, &mut tiles);
        for (l, (first, hashes)) in runs.iter().enumerate() {
            split_into_tiles((l + 1) as u8, *first, hashes, &mut tiles);
        }
        let state = TreeState {
            size: TreeSize(end),
            frontier,
        };
        Ok(Integration {
            root: state.root(),
            state,
            first_index: LeafIndex(start),
            tiles,
        })
    }
}

/// Cuts a run of consecutive node hashes of tile level `level`, starting at
/// node `first`, at tile boundaries.
fn split_into_tiles(level: u8, first: u64, hashes: &[Hash], out: &mut Vec<TileUpdate>) {
    let mut pos = first;
    let mut rest = hashes;
    while !rest.is_empty() {
        let offset = pos % TILE_WIDTH;
        let take = ((TILE_WIDTH - offset) as usize).min(rest.len());
        let (chunk, tail) = rest.split_at(take);
        out.push(TileUpdate {
            tile: Tile {
                level,
                index: pos / TILE_WIDTH,
                width: (offset as usize + take) as u16,
            },
            offset: offset as u16,
            hashes: chunk.to_vec(),
        });
        pos += take as u64;
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn frontier_length_checked() {
        let h = leaf_hash(b"x");
        assert!(TreeState::new(TreeSize(3), vec![h, h]).is_ok());
        assert_eq!(
            TreeState::new(TreeSize(3), vec![h]),
            Err(TreeError::FrontierLength {
                size: 3,
                expected: 2,
                got: 1
            })
        );
    }

    #[test]
    fn overflow_rejected() {
        let s = TreeState::new(TreeSize(u64::MAX), vec![Hash::default(); 64]).unwrap();
        assert_eq!(s.integrate(&[leaf_hash(b"")]), Err(TreeError::Overflow));
    }

    #[test]
    fn tile_updates_cross_boundaries() {
        let leaves: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let a = TreeState::empty().integrate(&leaves[..250]).unwrap();
        let b = a.state.integrate(&leaves[250..]).unwrap();
        let shape: Vec<(u8, u64, u16, u16, usize)> = b
            .tiles
            .iter()
            .map(|u| {
                (
                    u.tile.level,
                    u.tile.index,
                    u.tile.width,
                    u.offset,
                    u.hashes.len(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![(0, 0, 256, 250, 6), (0, 1, 44, 0, 44), (1, 0, 1, 0, 1)]
        );
        assert_eq!(b.first_index, LeafIndex(250));
    }
}
