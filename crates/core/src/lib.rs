//! `cairn-core`: the parts of Cairn that every auditor, witness and client
//! must be able to trust byte for byte.
//!
//! Pure: no I/O, no async, no protobuf, no clock (callers pass time in).
//!
//! | module | spec |
//! |---|---|
//! | [`hash`] | RFC 6962 §2.1 leaf and node hashes, index and size newtypes |
//! | [`tree`] | incremental integration: frontier + batch → root and tile hashes |
//! | [`proof`] | RFC 9162 §2.1.3 / §2.1.4 inclusion and consistency proofs over tiles |
//! | [`tile`] | C2SP tlog-tiles coordinates, paths, entry bundles |
//! | [`note`] | C2SP signed-note, Go `sumdb/note` keys |
//! | [`checkpoint`] | C2SP tlog-checkpoint, witness policies |
//! | [`cosignature`] | C2SP tlog-cosignature v1 |
//! | [`memtiles`] | an in-memory tile map, the reference `TileReader` |
//! | [`tlog_proof`] | C2SP tlog-proof v1 receipts |
//!
//! ```
//! use cairn_core::checkpoint::{Checkpoint, WitnessPolicy, verify_checkpoint};
//! use cairn_core::proof::{inclusion_proof, verify_inclusion};
//! use cairn_core::{LeafIndex, MemoryTiles, NoteSigner, TreeState, leaf_hash};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let signer = NoteSigner::from_seed("example.com/log", &[7; 32])?;
//! let leaves: Vec<_> = (0..1000u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
//!
//! // Integrate a batch: the new root, plus the tile hashes to persist.
//! let integ = TreeState::empty().integrate(&leaves)?;
//! let mut tiles = MemoryTiles::new();
//! tiles.apply(&integ)?;
//!
//! // Sign a C2SP checkpoint and verify it as an outsider would.
//! let cp = Checkpoint {
//!     origin: "example.com/log".into(),
//!     size: integ.state.size(),
//!     root: integ.root,
//!     extensions: vec![],
//! };
//! let note = cp.sign(&signer)?;
//! let seen = verify_checkpoint(note.as_bytes(), None, &signer.verifier(), &WitnessPolicy::default())?;
//!
//! // Prove leaf 123 is in that tree.
//! let proof = inclusion_proof(&tiles, LeafIndex(123), seen.checkpoint.size)?;
//! verify_inclusion(&leaves[123], LeafIndex(123), seen.checkpoint.size, &proof, &seen.checkpoint.root)?;
//! # Ok(())
//! # }
//! ```

pub mod checkpoint;
pub mod cosignature;
pub mod encoding;
pub mod hash;
pub mod memtiles;
pub mod note;
pub mod proof;
pub mod tile;
pub mod tlog_proof;
pub mod tlog_witness;
pub mod tree;

pub use checkpoint::{
    Checkpoint, CheckpointError, VerifiedCheckpoint, WitnessPolicy, verify_checkpoint,
};
pub use cosignature::Cosigner;
pub use hash::{Hash, LeafIndex, TreeSize, empty_root, leaf_hash, node_hash};
pub use memtiles::{MemoryLog, MemoryTiles};
pub use note::{KeyType, Note, NoteError, NoteSigner, NoteVerifier};
pub use proof::{
    ProofError, ProofPlan, ProveError, TileReader, verify_consistency, verify_inclusion,
};
pub use tile::{NodeId, Tile, TilePath};
pub use tlog_proof::TlogProof;
pub use tlog_witness::AddCheckpoint;
pub use tree::{Integration, TileUpdate, TreeState};
