//! An in-memory tile map: the reference [`TileReader`], fed by
//! [`Integration`] output. Used by tests, benchmarks, the in-memory storage
//! backend and auditors that rebuild a tree from its entries.

use std::collections::HashMap;
use std::convert::Infallible;

use crate::hash::Hash;
use crate::proof::TileReader;
use crate::tile::{TILE_WIDTH, Tile};
use crate::tree::Integration;

/// Hash tiles keyed by `(level, index)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryTiles {
    tiles: HashMap<(u8, u64), Vec<Hash>>,
}

/// An integration's tile update did not start where the stored tile ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tile {path} holds {have} hashes but the update starts at {offset}")]
pub struct TileGap {
    /// The tile's path.
    pub path: String,
    /// Hashes stored.
    pub have: usize,
    /// Where the update starts.
    pub offset: usize,
}

impl MemoryTiles {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies every tile update of an integration. Each update must start
    /// exactly at the current end of its tile; otherwise nothing is applied.
    pub fn apply(&mut self, integration: &Integration) -> Result<(), TileGap> {
        for u in &integration.tiles {
            let have = self
                .tiles
                .get(&(u.tile.level, u.tile.index))
                .map_or(0, Vec::len);
            if have != usize::from(u.offset)
                || usize::from(u.tile.width) != have + u.hashes.len()
                || u64::from(u.tile.width) > TILE_WIDTH
            {
                return Err(TileGap {
                    path: u.tile.path(),
                    have,
                    offset: usize::from(u.offset),
                });
            }
        }
        for u in &integration.tiles {
            self.tiles
                .entry((u.tile.level, u.tile.index))
                .or_default()
                .extend_from_slice(&u.hashes);
        }
        Ok(())
    }

    /// The stored hashes of tile `(level, index)`, if any.
    pub fn get(&self, level: u8, index: u64) -> Option<&[Hash]> {
        self.tiles.get(&(level, index)).map(Vec::as_slice)
    }

    /// Inserts a tile's hashes directly (for tests of bad storage).
    pub fn insert(&mut self, level: u8, index: u64, hashes: Vec<Hash>) {
        self.tiles.insert((level, index), hashes);
    }

    /// Number of tiles stored.
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    /// Whether no tile is stored.
    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }
}

impl TileReader for MemoryTiles {
    type Tile = Vec<Hash>;
    type Error = Infallible;

    /// Missing tiles come back empty, which proof resolution reports as a
    /// short tile.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<Hash>>, Infallible> {
        Ok(tiles
            .iter()
            .map(|t| {
                self.tiles
                    .get(&(t.level, t.index))
                    .map(|v| v[..v.len().min(usize::from(t.width))].to_vec())
                    .unwrap_or_default()
            })
            .collect())
    }
}

/// A [`MemoryLog`] operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryLogError {
    /// Integration failed (tree full).
    #[error(transparent)]
    Tree(#[from] crate::tree::TreeError),
    /// Tiles did not line up (a bug).
    #[error(transparent)]
    Tiles(#[from] TileGap),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] crate::checkpoint::CheckpointError),
    /// Sizes out of range for a proof.
    #[error(transparent)]
    Proof(#[from] crate::proof::ProofError),
}

/// A whole log in memory: tree state, tiles and a signing key. The
/// reference log for tests and examples of the verifying side (witnesses,
/// auditors), where a real server is not the point.
#[derive(Debug)]
pub struct MemoryLog {
    signer: crate::note::NoteSigner,
    tiles: MemoryTiles,
    state: crate::tree::TreeState,
    root: Hash,
}

impl MemoryLog {
    /// An empty log signing with `signer` (its name is the origin).
    pub fn new(signer: crate::note::NoteSigner) -> Self {
        MemoryLog {
            signer,
            tiles: MemoryTiles::new(),
            state: crate::tree::TreeState::empty(),
            root: crate::hash::empty_root(),
        }
    }

    /// Appends leaves (their data, hashed per RFC 6962) and returns the
    /// signed checkpoint note of the new tree.
    pub fn append<D: AsRef<[u8]>>(&mut self, leaves: &[D]) -> Result<String, MemoryLogError> {
        let hashes: Vec<Hash> = leaves
            .iter()
            .map(|d| crate::hash::leaf_hash(d.as_ref()))
            .collect();
        let integ = self.state.integrate(&hashes)?;
        self.tiles.apply(&integ)?;
        self.state = integ.state;
        self.root = integ.root;
        self.checkpoint()
    }

    /// The signed checkpoint note of the current tree.
    pub fn checkpoint(&self) -> Result<String, MemoryLogError> {
        Ok(crate::checkpoint::Checkpoint {
            origin: self.signer.name().to_owned(),
            size: self.state.size(),
            root: self.root,
            extensions: vec![],
        }
        .sign(&self.signer)?)
    }

    /// Current size.
    pub fn size(&self) -> crate::hash::TreeSize {
        self.state.size()
    }

    /// The consistency proof between two sizes of this log.
    pub fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, MemoryLogError> {
        crate::proof::consistency_proof(
            &self.tiles,
            crate::hash::TreeSize(old),
            crate::hash::TreeSize(new),
        )
        .map_err(|e| match e {
            crate::proof::ProveError::Proof(p) => MemoryLogError::Proof(p),
            crate::proof::ProveError::Read(never) => match never {},
        })
    }

    /// The log's verifier key.
    pub fn verifier(&self) -> crate::note::NoteVerifier {
        self.signer.verifier()
    }
}
