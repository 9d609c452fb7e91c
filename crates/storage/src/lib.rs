//! `cairn-storage`: where the log's bytes live, without knowing how.
//!
//! The [`LogStore`] trait is the whole contract between the log engine and
//! storage. This crate holds the contract, the reference backend
//! ([`MemoryStore`], for fast tests), and the checks every backend shares:
//! [`validate_batch`] (before anything is written), [`verify_state`]
//! (start-up recovery) and the [fork guard](guard) against restored
//! backups. Backends live in their own crates: `cairn-storage-rocks` (the
//! embedded default, RocksDB) and, next, object storage.
//!
//! With the `testing` feature: [`conformance`], one suite every backend
//! must pass, and [`FaultyStore`], which wraps any store to inject failures
//! before or after persisting. Production builds leave them out.
//!
//! ```
//! # #[cfg(feature = "testing")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cairn_storage::{LogStore, MemoryStore, conformance::Harness};
//! let store = MemoryStore::new();
//! // The harness builds batches the way the sequencer does: leaf hashes,
//! // integration, then commit_batch and put_checkpoint.
//! let mut h = Harness::new();
//! h.commit(&store, 300)?;
//! let state = store.load_state()?; // verified against the tiles
//! assert_eq!(state.tree.size().0, 300);
//! assert_eq!(state.checkpoint.map(|c| c.size.0), Some(300));
//! assert_eq!(store.read_entries(cairn_core::LeafIndex(299), 10)?.len(), 1);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "testing"))]
//! # fn main() {}
//! ```
//!
//! Storage never hashes the tree as part of persisting it: it stores the
//! leaf hashes and tile hashes it is given. Only [`verify_state`] (start-up
//! recovery) calls into `cairn-core` to recompute the root and check it.

#[cfg(feature = "testing")]
pub mod conformance;
pub mod durable;
mod error;
#[cfg(feature = "testing")]
mod faulty;
pub mod guard;
mod index;
mod memory;
pub mod verify;

use cairn_core::hash::{Hash, LeafIndex, TreeSize};
use cairn_core::tile::Tile;
use cairn_core::tree::{TileUpdate, TreeState};

pub use error::StoreError;
#[cfg(feature = "testing")]
pub use faulty::{Fault, FaultPoint, FaultyStore};
pub use index::MemIndex;
pub use memory::MemoryStore;
pub use verify::{StoreTiles, validate_batch, verify_state};

/// Version of the on-disk layout this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// One new leaf for [`LogStore::commit_batch`].
#[derive(Clone, Copy, Debug)]
pub struct NewEntry<'a> {
    /// The stored leaf bytes (the masked, canonical event). At most 65,535
    /// bytes, so that it fits a C2SP entry bundle.
    pub data: &'a [u8],
    /// Its RFC 6962 leaf hash, computed by the caller.
    pub leaf_hash: Hash,
    /// The append's idempotency record, if it had a key.
    pub idempotency: Option<Idempotency>,
}

/// An idempotency key as stored: 32 opaque bytes chosen by the caller.
///
/// Storage never sees what a client sent: Cairn's server stores a keyed
/// hash (HMAC-SHA-256 under a per-log secret) of the caller's identity and
/// key, so keys are scoped to their caller and no client byte reaches disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(pub [u8; 32]);

/// What [`NewEntry::idempotency`] stores with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idempotency {
    /// The scoped, hashed key.
    pub key: IdempotencyKey,
    /// A digest of the request first made with the key (again opaque to
    /// storage), so that a repeat with a different event can be told
    /// from a retry.
    pub request: [u8; 32],
}

/// What [`LogStore::find_idempotency_key`] finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The entry appended with the key.
    pub index: LeafIndex,
    /// The request digest stored with it; `None` for a record written
    /// before request digests were kept (those keys were stored raw, and
    /// no hashed key ever finds them).
    pub request: Option<[u8; 32]>,
}

/// Everything one sequencer batch persists, in one atomic write.
#[derive(Clone, Copy, Debug)]
pub struct CommitBatch<'a> {
    /// The tree size the caller believes is stored (compare-and-swap).
    pub expected_size: TreeSize,
    /// New leaves, in log order, starting at index `expected_size`.
    pub entries: &'a [NewEntry<'a>],
    /// Tile hashes from [`cairn_core::tree::TreeState::integrate`].
    pub tiles: &'a [TileUpdate],
    /// The tree after the batch.
    pub state: &'a TreeState,
    /// A signed checkpoint note for `state` to store with the batch, if the
    /// caller has one. Cairn's server passes `None` and stores the
    /// checkpoint with [`LogStore::put_checkpoint`] once the batch is
    /// durable, so that nothing is signed before its batch is on disk.
    pub checkpoint: Option<&'a [u8]>,
}

/// A signed checkpoint note as stored, with its tree size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size the checkpoint covers.
    pub size: TreeSize,
    /// The signed note, byte for byte as signed.
    pub note: Vec<u8>,
}

/// What [`LogStore::load_state`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedState {
    /// The durable tree: size and frontier.
    pub tree: TreeState,
    /// The latest stored checkpoint (it may be older than `tree` if a crash
    /// came between a batch and its checkpoint; the caller signs the missing one).
    pub checkpoint: Option<StoredCheckpoint>,
}

/// "This process may write this store": the writer lease.
///
/// **Exclusive.** While `check` returns `Ok` in one process, no other
/// process's lease on the same store does: one writer per store.
///
/// **Checked at every commit.** The log engine calls `check` immediately
/// before each batch is committed. A lease over shared storage (object
/// storage with a compare-and-swap, etcd) also fences: a writer whose lease
/// was taken over fails the check, or its next conditional write, so a
/// zombie can never commit after its successor.
///
/// **Loss is final and loud.** Once `check` fails it keeps failing; the
/// error is [`StoreError::Locked`] (or another error `is_fatal` names), so
/// the log stops writing and says why until an operator restarts it.
///
/// **Concurrency.** `check` may be called from any thread; it must be
/// cheap (a `stat`, a cached token), since it runs once per batch.
///
/// Implementations: `cairn_storage_rocks::FolderLease` (the data folder's
/// lock file, `flock`).
pub trait WriterLease: Send + Sync + std::fmt::Debug {
    /// `Ok` while this process holds the lease.
    fn check(&self) -> Result<(), StoreError>;
}

/// A store shared with a writer in another process (a log in a bucket):
/// read replicas and warm standbys *follow* it, and a standby that wins
/// leadership *promotes* it.
///
/// **Reads only, until promoted.** A follower never writes: `commit_batch`
/// and `put_checkpoint` return [`StoreError::ReadOnly`] before anything
/// is written, and nothing a follower does changes the shared store.
///
/// **Never backwards.** What a follower serves is a prefix of what it
/// serves later: a history that does not extend what it already read (a
/// shorter tree, a rewritten tile) is [`StoreError::Corrupt`], and the
/// follower keeps serving the history it had.
///
/// **Concurrency.** `refresh` and `promote` may be called from any thread,
/// one at a time; readers are served throughout and see either all of a
/// refresh or none of it.
pub trait SharedLogStore: LogStore {
    /// Reads what the writer committed since the last call (only what
    /// changed: new tiles, the last bundle, new idempotency records, the
    /// latest checkpoint). Returns whether the tree or its latest
    /// checkpoint moved. Transient failures (the network) leave the
    /// follower as it was.
    fn refresh(&self) -> Result<bool, StoreError>;

    /// Becomes the writer: checks that the store honours conditional
    /// writes, catches up, and completes a batch the previous writer
    /// sequenced but did not commit. From `Ok` on the write methods work,
    /// still fenced by the store's conditional writes: safety never
    /// depends on who called `promote`.
    fn promote(&self) -> Result<(), StoreError>;

    /// Whether this process writes the store (promoted, or opened as its
    /// writer).
    fn is_writer(&self) -> bool;
}

/// The storage contract of a Cairn log.
///
/// **Concurrency.** One writer per store: `commit_batch` and
/// `put_checkpoint` are called by one sequencer at a time (the RocksDB
/// backend also locks its folder against other processes). Every read
/// method may be called from any number of threads at once, concurrently
/// with the writer, and never waits for a commit to finish: a reader sees
/// either all of a batch or none of it.
///
/// **Durability.** When a write method returns `Ok`, its data survives a
/// process crash and power loss. When it returns `Err`, the write may or
/// may not have landed (an I/O error can come after the data reached the
/// disk): the caller must call [`load_state`](LogStore::load_state) before
/// writing again, and must never re-use the tree size for other leaves
/// until it knows.
pub trait LogStore: Send + Sync {
    /// Reads the durable tree state and the latest checkpoint, and checks
    /// them against the stored tiles: the root recomputed from the tiles
    /// (`O(log n)` tile reads) must equal the frontier's root and the
    /// latest checkpoint's root at its size. A mismatch is
    /// [`StoreError::Corrupt`]: the store is never served silently wrong.
    ///
    /// Read-only; safe to call at any time, including after a failed write.
    fn load_state(&self) -> Result<LoadedState, StoreError>;

    /// Persists one batch atomically: entries, tile hashes, leaf-hash and
    /// idempotency indexes, the new tree state and (optionally) its
    /// checkpoint. Compare-and-swap on the tree size: if the stored size
    /// is not `batch.expected_size`, nothing is written and the result is
    /// [`StoreError::Conflict`]. A malformed batch (tile updates that do not
    /// extend the stored tiles, leaf hashes that disagree with the level-0
    /// tile hashes, a reused idempotency key, an oversized entry) is
    /// [`StoreError::InvalidBatch`] and writes nothing.
    ///
    /// Durable on `Ok` (synced write-ahead log). All or nothing on crash.
    fn commit_batch(&self, batch: CommitBatch<'_>) -> Result<(), StoreError>;

    /// Stores the signed checkpoint for a tree size that is already
    /// durable (`size <= ` the stored size). Storing the same bytes again is
    /// a no-op; different bytes for a size that already has a checkpoint is
    /// [`StoreError::CheckpointConflict`]: the store refuses to hold two
    /// signed views of one size. Durable on `Ok`; the RocksDB backend also
    /// advances its fork guard before returning, and when only that fails
    /// (the checkpoint is durable) says so with
    /// [`StoreError::GuardWrite`].
    fn put_checkpoint(&self, size: TreeSize, note: &[u8]) -> Result<(), StoreError>;

    /// Reads up to `limit` entries starting at `start`, in index order.
    /// Returns fewer when the tree ends first, and none when `start` equals
    /// the tree size; `start` beyond the size is [`StoreError::OutOfRange`].
    fn read_entries(&self, start: LeafIndex, limit: usize) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Reads hash tiles in one call: one result per request, in order, each
    /// truncated to the requested width. A tile narrower than requested (or
    /// absent) is [`StoreError::MissingTile`]. Consistent with the latest
    /// committed batch: never a half-written tile.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<Hash>>, StoreError>;

    /// The checkpoint stored for exactly `size`, or the latest one when
    /// `size` is `None`. Every checkpoint ever stored is kept, since
    /// witnesses and auditors ask for consistency from old sizes.
    fn checkpoint(&self, size: Option<TreeSize>) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// The lowest index whose leaf hash is `leaf_hash`, if any.
    fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<LeafIndex>, StoreError>;

    /// The record stored with an idempotency key, if any.
    fn find_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
}
