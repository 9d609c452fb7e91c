//! Inclusion and consistency proofs: generation over stored tiles, and
//! verification per RFC 9162 §2.1.3.2 and §2.1.4.2.
//!
//! # Generation
//!
//! A proof is a list of subtree hashes `MTH(D[lo:hi])` (RFC 9162 §2.1.3.1
//! `PATH` and §2.1.4.1 `SUBPROOF`). Every such range is either a perfect
//! subtree or runs to the right edge of the tree; either way it splits into
//! a few *complete* nodes ([`NodeId`]), and the hash of a complete node is
//! either stored in a tile or is the root of a run of up to 128 hashes of
//! one tile. So generating a proof is:
//!
//! 1. [`ProofPlan`]: the ranges, their complete nodes, and the (deduplicated)
//!    tiles that hold them, each at its width for the proof's tree size;
//! 2. one batched read of those tiles ([`TileReader::read_tiles`]);
//! 3. [`ProofPlan::resolve`]: hash the runs, fold the right-edge ranges.
//!
//! # Degenerate cases (decided here, and relied on by the server)
//!
//! | case | generation | verification |
//! |---|---|---|
//! | inclusion, `size == 0` or `index >= size` | `IndexOutOfRange` | `IndexOutOfRange` |
//! | inclusion, `size == 1` | empty proof | leaf hash must equal the root |
//! | consistency, `old > new` | `OldAfterNew` | `OldAfterNew` |
//! | consistency, `old == 0` | `OldSizeZero` | `OldSizeZero` (nothing to prove: the empty tree is a prefix of every tree; tlog-witness handles `old 0` itself) |
//! | consistency, `old == new` | empty proof | proof must be empty and the roots equal |
//! | a hash that is not 32 bytes | cannot be expressed: proofs are `[Hash]`; parsers reject it with [`HashLengthError`](crate::hash::HashLengthError) | same |
//! | proof of the wrong length | — | `WrongLength` before any hashing |

use crate::hash::{Hash, LeafIndex, TreeSize, fold_right, node_hash, perfect_root};
use crate::tile::{NodeId, Tile};

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not in the tree (this includes every index when the tree is empty).
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// Requested leaf.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// Consistency from a larger tree to a smaller one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    OldAfterNew {
        /// Old size.
        old: u64,
        /// New size.
        new: u64,
    },
    /// Consistency from the empty tree proves nothing and is not defined by RFC 9162.
    #[error("consistency proofs start from a non-empty tree (old size 0)")]
    OldSizeZero,
    /// The proof has the wrong number of hashes for its index and sizes.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongLength {
        /// What the sizes call for.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The proof does not lead to the expected root.
    #[error("proof does not match the root")]
    RootMismatch,
    /// A tile reader returned fewer tiles than asked, or a tile shorter than the plan needs.
    #[error("tile {path} holds {got} hashes, the proof needs {need}")]
    ShortTile {
        /// Path of the tile.
        path: String,
        /// Hashes returned.
        got: usize,
        /// Hashes needed.
        need: usize,
    },
}

/// Reads stored hash tiles. The storage layer implements this; proofs use it.
pub trait TileReader {
    /// A tile's hashes, in order (a `Vec<Hash>`, an `Arc<[Hash]>` from a cache, …).
    type Tile: AsRef<[Hash]>;
    /// The reader's failure.
    type Error;
    /// Returns one tile per request, in request order. Each must hold at
    /// least `tile.width` hashes; more is fine (the tile grew since), and
    /// the extra hashes are ignored. A tile that is missing is an error.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Self::Tile>, Self::Error>;
}

/// Failure of [`inclusion_proof`] or [`consistency_proof`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProveError<E> {
    /// The request itself was invalid, or the tiles were inconsistent.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The tile reader failed.
    #[error("reading tiles: {0}")]
    Read(E),
}

/// Where one complete node's hash comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NodeSource {
    /// Position in [`ProofPlan::tiles`].
    tile: usize,
    start: usize,
    count: usize,
}

/// The tiles a proof needs, and how to turn them into the proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofPlan {
    tiles: Vec<Tile>,
    nodes: Vec<NodeSource>,
    /// Each proof hash is `fold_right` of `nodes[range]`.
    outputs: Vec<std::ops::Range<usize>>,
    /// The leaf range `[lo, hi)` whose root each output is.
    ranges: Vec<(u64, u64)>,
}

/// Roots of leaf ranges already folded: `MTH(D[lo:hi])` depends only on
/// the leaves, which never change, so a memo is valid for every tree size.
/// Proofs of neighbouring entries in one tree share their right-edge
/// ranges; a batch's receipts fold each once. Bounded: cleared when full.
#[derive(Debug, Default)]
pub struct RangeMemo {
    roots: std::collections::HashMap<(u64, u64), Hash>,
}

impl RangeMemo {
    /// Most ranges kept before the memo starts over.
    pub const CAP: usize = 4096;
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// `PATH(m, D[0:n])` of RFC 9162 §2.1.3.1 as leaf ranges, leaf's sibling first.
fn inclusion_ranges(m: u64, n: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(64);
    let (mut lo, mut hi) = (0, n);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if m < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// `PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true)` of RFC 9162 §2.1.4.1 as
/// leaf ranges, deepest first. Requires `0 < m <= n`.
fn consistency_ranges(m: u64, n: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(64);
    let (mut lo, mut hi, mut whole) = (0, n, true);
    loop {
        if m == hi {
            if !whole {
                out.push((lo, hi));
            }
            break;
        }
        let k = split_point(hi - lo);
        if m <= lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
            whole = false;
        }
    }
    out.reverse();
    out
}

/// Splits `[lo, hi)` into complete nodes, largest first: the RFC 6962
/// decomposition when `lo` is aligned as the proof recursions guarantee.
fn range_nodes(mut lo: u64, hi: u64, out: &mut Vec<NodeId>) {
    while lo < hi {
        let mut level = if lo == 0 {
            63
        } else {
            lo.trailing_zeros().min(63)
        };
        while level > 0 && (1u64 << level) > hi - lo {
            level -= 1;
        }
        out.push(NodeId {
            level: level as u8,
            index: lo >> level,
        });
        lo += 1 << level;
    }
}

impl ProofPlan {
    fn from_ranges(ranges: &[(u64, u64)], size: TreeSize) -> ProofPlan {
        let mut plan = ProofPlan {
            tiles: Vec::new(),
            nodes: Vec::new(),
            outputs: Vec::with_capacity(ranges.len()),
            ranges: ranges.to_vec(),
        };
        let mut ids = Vec::with_capacity(8);
        for &(lo, hi) in ranges {
            ids.clear();
            range_nodes(lo, hi, &mut ids);
            let first = plan.nodes.len();
            for id in &ids {
                let (tl, ti, start, count) = id.tile_location();
                let tile = match plan
                    .tiles
                    .iter()
                    .position(|t| t.level == tl && t.index == ti)
                {
                    Some(p) => p,
                    None => {
                        // Every node of a range below `size` is complete, so
                        // its tile exists at this size; the fallback width only
                        // matters for a plan that is wrong, which resolve()
                        // then reports as a short tile instead of panicking.
                        let tile = Tile::at_size(tl, ti, size).unwrap_or(Tile {
                            level: tl,
                            index: ti,
                            width: (start + count) as u16,
                        });
                        plan.tiles.push(tile);
                        plan.tiles.len() - 1
                    }
                };
                plan.nodes.push(NodeSource { tile, start, count });
            }
            plan.outputs.push(first..plan.nodes.len());
        }
        plan
    }

    /// Plan for the inclusion proof of leaf `index` in the tree of `size` leaves.
    pub fn inclusion(index: LeafIndex, size: TreeSize) -> Result<ProofPlan, ProofError> {
        if !size.contains(index) {
            return Err(ProofError::IndexOutOfRange {
                index: index.0,
                size: size.0,
            });
        }
        Ok(Self::from_ranges(&inclusion_ranges(index.0, size.0), size))
    }

    /// Plan for the consistency proof from tree size `old` to `new`.
    pub fn consistency(old: TreeSize, new: TreeSize) -> Result<ProofPlan, ProofError> {
        check_consistency_sizes(old, new)?;
        Ok(Self::from_ranges(&consistency_ranges(old.0, new.0), new))
    }

    /// Plan for the root of the tree of `size` leaves (one output; none for
    /// the empty tree, whose root is `SHA-256()`).
    pub fn root(size: TreeSize) -> ProofPlan {
        if size.0 == 0 {
            return Self::from_ranges(&[], size);
        }
        Self::from_ranges(&[(0, size.0)], size)
    }

    /// The tiles to read, deduplicated, each at its width for the proof's size.
    pub fn tiles(&self) -> &[Tile] {
        &self.tiles
    }

    /// Turns the tiles (in [`tiles`](Self::tiles) order) into the proof hashes.
    pub fn resolve<T: AsRef<[Hash]>>(&self, tiles: &[T]) -> Result<Vec<Hash>, ProofError> {
        self.assemble(|pos, start, count| {
            let data = tiles.get(pos).map(AsRef::as_ref).unwrap_or(&[]);
            // `count` is a power of two by construction (NodeId::tile_location).
            data.get(start..start + count)
                .and_then(perfect_root)
                .ok_or(data.len())
        })
    }

    /// Like [`resolve`](Self::resolve), from tiles whose interior nodes are
    /// already hashed: no hashing but the few right-edge folds. This is
    /// what a tile cache serves.
    pub fn resolve_expanded<T: AsRef<ExpandedTile>>(
        &self,
        tiles: &[T],
    ) -> Result<Vec<Hash>, ProofError> {
        self.assemble(|pos, start, count| {
            let t = tiles.get(pos).map(AsRef::as_ref);
            t.and_then(|t| t.node(start, count))
                .ok_or(t.map_or(0, ExpandedTile::width))
        })
    }

    /// [`resolve_expanded`](Self::resolve_expanded), folding each
    /// incomplete range at most once across the calls that share `memo`.
    pub fn resolve_expanded_memo<T: AsRef<ExpandedTile>>(
        &self,
        tiles: &[T],
        memo: &mut RangeMemo,
    ) -> Result<Vec<Hash>, ProofError> {
        let node = |n: &NodeSource| -> Result<Hash, ProofError> {
            let t = tiles.get(n.tile).map(AsRef::as_ref);
            t.and_then(|t| t.node(n.start, n.count))
                .ok_or_else(|| ProofError::ShortTile {
                    path: self.tiles.get(n.tile).map(Tile::path).unwrap_or_default(),
                    got: t.map_or(0, ExpandedTile::width),
                    need: n.start + n.count,
                })
        };
        if memo.roots.len() > RangeMemo::CAP {
            memo.roots.clear();
        }
        let mut out = Vec::with_capacity(self.outputs.len());
        for (r, range) in self.outputs.iter().zip(&self.ranges) {
            let nodes = &self.nodes[r.clone()];
            let h = match nodes {
                [one] => node(one)?,
                _ => match memo.roots.get(range) {
                    Some(h) => *h,
                    None => {
                        let hashes = nodes.iter().map(node).collect::<Result<Vec<_>, _>>()?;
                        let h = fold_right(&hashes).ok_or(ProofError::RootMismatch)?;
                        memo.roots.insert(*range, h);
                        h
                    }
                },
            };
            out.push(h);
        }
        Ok(out)
    }

    /// Shared by the resolvers: `node(tile position, start, count)` gives a
    /// complete node's hash, or the tile's length if it is too short.
    fn assemble(
        &self,
        node: impl Fn(usize, usize, usize) -> Result<Hash, usize>,
    ) -> Result<Vec<Hash>, ProofError> {
        let mut node_hashes = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let h = node(n.tile, n.start, n.count).map_err(|got| ProofError::ShortTile {
                path: self.tiles.get(n.tile).map(Tile::path).unwrap_or_default(),
                got,
                need: n.start + n.count,
            })?;
            node_hashes.push(h);
        }
        self.outputs
            .iter()
            .map(|r| fold_right(&node_hashes[r.clone()]).ok_or(ProofError::RootMismatch))
            .collect()
    }

    /// Reads the tiles in one call and resolves the proof.
    pub fn execute<R: TileReader + ?Sized>(
        &self,
        reader: &R,
    ) -> Result<Vec<Hash>, ProveError<R::Error>> {
        let tiles = if self.tiles.is_empty() {
            Vec::new()
        } else {
            reader.read_tiles(&self.tiles).map_err(ProveError::Read)?
        };
        Ok(self.resolve(&tiles)?)
    }
}

/// A tile with every interior node of its perfect subtrees hashed: level
/// `k` holds the roots of aligned runs of `2^k` tile hashes (`k` = 0..=8).
/// Building one costs fewer hashes than the tile holds; afterwards any node
/// a proof needs is a lookup. Tiles at a given width never change, so an
/// expanded tile can be cached for as long as it is wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandedTile {
    levels: Vec<Vec<Hash>>,
}

impl ExpandedTile {
    /// Expands a tile's hashes (`width` of them, at most 256).
    pub fn new(hashes: &[Hash]) -> Self {
        let mut levels = vec![hashes.to_vec()];
        while let Some(prev) = levels.last() {
            if prev.len() < 2 {
                break;
            }
            let next: Vec<Hash> = prev
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(next);
        }
        ExpandedTile { levels }
    }

    /// Number of tile hashes.
    pub fn width(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The tile hashes themselves.
    pub fn hashes(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// Root of the run `start .. start + count` (`count` a power of two,
    /// `start` a multiple of it), if the tile is wide enough.
    pub fn node(&self, start: usize, count: usize) -> Option<Hash> {
        if !count.is_power_of_two() || !start.is_multiple_of(count) {
            return None;
        }
        let k = count.trailing_zeros() as usize;
        self.levels.get(k)?.get(start >> k).copied()
    }
}

impl AsRef<ExpandedTile> for ExpandedTile {
    fn as_ref(&self) -> &ExpandedTile {
        self
    }
}

fn check_consistency_sizes(old: TreeSize, new: TreeSize) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::OldAfterNew {
            old: old.0,
            new: new.0,
        });
    }
    if old.0 == 0 {
        return Err(ProofError::OldSizeZero);
    }
    Ok(())
}

/// Generates the inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof<R: TileReader + ?Sized>(
    reader: &R,
    index: LeafIndex,
    size: TreeSize,
) -> Result<Vec<Hash>, ProveError<R::Error>> {
    ProofPlan::inclusion(index, size)?.execute(reader)
}

/// Generates the consistency proof from tree size `old` to `new`.
pub fn consistency_proof<R: TileReader + ?Sized>(
    reader: &R,
    old: TreeSize,
    new: TreeSize,
) -> Result<Vec<Hash>, ProveError<R::Error>> {
    ProofPlan::consistency(old, new)?.execute(reader)
}

/// The root of the tree of `size` leaves, recomputed from tiles.
pub fn tree_root<R: TileReader + ?Sized>(
    reader: &R,
    size: TreeSize,
) -> Result<Hash, ProveError<R::Error>> {
    let out = ProofPlan::root(size).execute(reader)?;
    Ok(out.first().copied().unwrap_or_else(crate::hash::empty_root))
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size`.
fn inclusion_len(index: u64, size: u64) -> usize {
    // RFC 9162 §2.1.3.2: the path length is the inner part (bits where the
    // index and the last index differ) plus the border (set bits above it).
    let last = size - 1;
    let inner = 64 - (index ^ last).leading_zeros();
    // `inner` can be 64 (index 1 in a tree of 2^64 - 1): shift by 64 is 0.
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Recomputes the root from an inclusion proof (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion(
    leaf: &Hash,
    index: LeafIndex,
    size: TreeSize,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if !size.contains(index) {
        return Err(ProofError::IndexOutOfRange {
            index: index.0,
            size: size.0,
        });
    }
    let expected = inclusion_len(index.0, size.0);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let (mut fn_, mut sn) = (index.0, size.0 - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength {
                expected,
                got: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    Ok(r)
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: LeafIndex,
    size: TreeSize,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(leaf, index, size, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies that the tree `(new, new_root)` extends `(old, old_root)`
/// (RFC 9162 §2.1.4.2). See the module docs for the degenerate cases.
pub fn verify_consistency(
    old: TreeSize,
    new: TreeSize,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    check_consistency_sizes(old, new)?;
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                got: proof.len(),
            });
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let expected = consistency_len(old.0, new.0);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    // Step 2: if the old size is a power of two, the old root is the first node.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.0.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old.0 - 1, new.0 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::WrongLength {
                expected,
                got: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    if fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Number of hashes in the consistency proof from `old` to `new` (`0 < old < new`).
fn consistency_len(old: u64, new: u64) -> usize {
    // RFC 9162 §2.1.4.2 walk: one hash per level of the new tree's path above
    // the old tree's largest right-aligned subtree, plus that subtree's own
    // hash unless the old tree is a perfect subtree (then the verifier
    // supplies the old root itself).
    let shift = old.trailing_zeros();
    let (o, n) = ((old - 1) >> shift, (new - 1) >> shift);
    let inner = 64 - (o ^ n).leading_zeros();
    let border = o.checked_shr(inner).unwrap_or(0).count_ones();
    let extra = usize::from(o != 0);
    // `o` is the index of the old tree's last leaf in units of 2^shift: its
    // inclusion path in the new tree, plus the starting node if needed.
    (inner + border) as usize + extra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_ranges() {
        for n in 1..200u64 {
            for m in 0..n {
                assert_eq!(
                    inclusion_len(m, n),
                    inclusion_ranges(m, n).len(),
                    "incl {m} {n}"
                );
            }
            for m in 1..n {
                assert_eq!(
                    consistency_len(m, n),
                    consistency_ranges(m, n).len(),
                    "cons {m} {n}"
                );
            }
        }
    }
}
