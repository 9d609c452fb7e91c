//! Fault injection for any [`LogStore`]: make a chosen operation fail
//! before it persists ("fails and is not saved") or after it persisted
//! ("fails but was saved", as when the disk write succeeds and the
//! acknowledgement is lost). The server's tests use this to prove that
//! neither case loses data or signs a fork.

use std::sync::Mutex;

use cairn_core::hash::{Hash, LeafIndex, TreeSize};
use cairn_core::tile::Tile;

use crate::{
    CommitBatch, IdempotencyKey, IdempotencyRecord, LoadedState, LogStore, StoreError,
    StoredCheckpoint,
};

/// Which operation a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// [`LogStore::commit_batch`].
    CommitBatch,
    /// [`LogStore::put_checkpoint`].
    PutCheckpoint,
    /// [`LogStore::load_state`].
    LoadState,
    /// [`LogStore::read_tiles`].
    ReadTiles,
    /// [`LogStore::read_entries`].
    ReadEntries,
}

/// How the operation fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Return an error without calling the inner store: nothing is saved.
    BeforePersist,
    /// Call the inner store, then return an error even if it succeeded:
    /// the data is saved but the caller is told it failed.
    AfterPersist,
    /// Refuse without calling the inner store, as a store does when it
    /// finds another writer or a damaged history: [`StoreError::Conflict`]
    /// at `commit_batch`, [`StoreError::CheckpointConflict`] at
    /// `put_checkpoint`, [`StoreError::Corrupt`] elsewhere. Errors a
    /// healthy single writer never sees, which must stop it writing.
    Refuse,
}

#[derive(Debug)]
struct Armed {
    point: FaultPoint,
    fault: Fault,
    /// Calls to let through before firing.
    skip: u32,
}

/// A [`LogStore`] wrapper that fails on demand. Each armed fault fires once.
pub struct FaultyStore<S> {
    inner: S,
    armed: Mutex<Vec<Armed>>,
    fired: std::sync::atomic::AtomicU64,
}

impl<S: LogStore> FaultyStore<S> {
    /// Wraps a store; no fault is armed.
    pub fn new(inner: S) -> Self {
        FaultyStore {
            inner,
            armed: Mutex::new(Vec::new()),
            fired: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Arms a one-shot fault on the next call at `point`.
    pub fn arm(&self, point: FaultPoint, fault: Fault) {
        self.arm_after(point, fault, 0);
    }

    /// Arms a one-shot fault that lets `skip` calls at `point` through first.
    pub fn arm_after(&self, point: FaultPoint, fault: Fault, skip: u32) {
        self.lock().push(Armed { point, fault, skip });
    }

    /// Disarms every fault.
    pub fn disarm(&self) {
        self.lock().clear();
    }

    /// How many armed faults have fired so far: a test that arms one
    /// checks it fired, so that a read served from a cache (or a path that
    /// never reaches the store) cannot pass for a handled fault.
    pub fn fired(&self) -> u64 {
        self.fired.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Armed>> {
        // The list is only pushed to and removed from; poisoning cannot
        // leave it half-updated.
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a fault fires for this call, and which.
    fn take(&self, point: FaultPoint) -> Option<Fault> {
        let mut armed = self.lock();
        let pos = armed.iter().position(|a| a.point == point)?;
        if armed[pos].skip > 0 {
            armed[pos].skip -= 1;
            return None;
        }
        self.fired.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(armed.remove(pos).fault)
    }

    fn run<T>(
        &self,
        point: FaultPoint,
        op: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self.take(point) {
            None => op(),
            Some(Fault::BeforePersist) => Err(StoreError::Injected("failed before persisting")),
            Some(Fault::AfterPersist) => {
                op()?;
                Err(StoreError::Injected("failed after persisting"))
            }
            Some(Fault::Refuse) => Err(match point {
                FaultPoint::CommitBatch => StoreError::Conflict { actual_size: 0 },
                FaultPoint::PutCheckpoint => StoreError::CheckpointConflict { size: 0 },
                _ => StoreError::Corrupt("injected: the store contradicts itself".into()),
            }),
        }
    }
}

impl<S: LogStore> LogStore for FaultyStore<S> {
    fn load_state(&self) -> Result<LoadedState, StoreError> {
        self.run(FaultPoint::LoadState, || self.inner.load_state())
    }

    fn commit_batch(&self, batch: CommitBatch<'_>) -> Result<(), StoreError> {
        self.run(FaultPoint::CommitBatch, || self.inner.commit_batch(batch))
    }

    fn put_checkpoint(&self, size: TreeSize, note: &[u8]) -> Result<(), StoreError> {
        self.run(FaultPoint::PutCheckpoint, || {
            self.inner.put_checkpoint(size, note)
        })
    }

    fn read_entries(&self, start: LeafIndex, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(FaultPoint::ReadEntries, || {
            self.inner.read_entries(start, limit)
        })
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<Hash>>, StoreError> {
        self.run(FaultPoint::ReadTiles, || self.inner.read_tiles(tiles))
    }

    fn checkpoint(&self, size: Option<TreeSize>) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.inner.checkpoint(size)
    }

    fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<LeafIndex>, StoreError> {
        self.inner.find_leaf(leaf_hash)
    }

    fn find_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.find_idempotency_key(key)
    }
}
