//! The one write pipeline: integrate → commit → sign → store the
//! checkpoint. The sequencer runs it for every batch of a serving log, and
//! `cairn import` for every batch it loads, so the commit point and the
//! recovery after a failed write exist once.
//!
//! **The commit point, step by step** (what a crash or an error at each
//! step leaves, and what happens next):
//!
//! 1. **Integrate** (`cairn-core`): new root and tile hashes, in memory.
//!    Nothing is written; an error leaves the store as it was.
//! 2. **Commit** (`LogStore::commit_batch`, one synced write). *Crash
//!    before it completes: the batch is gone and nobody was answered.
//!    Crash after: the entries are durable but not yet covered by a
//!    checkpoint; start-up finds the tree ahead of its latest checkpoint
//!    and signs it.* An error may come after the data reached the disk:
//!    the store's durable state decides ("failed but saved" carries on).
//! 3. **Sign** the checkpoint, only now that the batch is durable.
//! 4. **Store the checkpoint** (`put_checkpoint`, synced; the store
//!    advances its fork guard). *Crash here: as in 2; the re-signed note is
//!    the same bytes (Ed25519 is deterministic and the body is a function
//!    of origin, size and root).* A checkpoint that is durable while only
//!    the guard could not follow is a success with `guard` set to the
//!    error.
//!
//! Nothing is ever signed twice at one size with different roots: after a
//! failure the caller continues from [`WriteFailure::tree`], the store's
//! durable tree.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::checkpoint::Checkpoint;
use cairn_core::hash::Hash;
use cairn_core::note::NoteSigner;
use cairn_core::tree::TreeState;
use cairn_storage::{CommitBatch, LogStore, NewEntry, StoreError, WriterLease};

/// A synced write slower than this is logged at warn level.
const SLOW: Duration = Duration::from_millis(20);

/// A signed tree head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    /// Tree size.
    pub size: cairn_core::hash::TreeSize,
    /// Root.
    pub root: Hash,
    /// The signed checkpoint note.
    pub note: String,
}

/// Signs the checkpoint of `tree` (C2SP tlog-checkpoint, signed note).
pub(crate) fn sign(
    signer: &NoteSigner,
    origin: &str,
    tree: &TreeState,
) -> Result<SignedHead, StoreError> {
    let cp = Checkpoint {
        origin: origin.to_owned(),
        size: tree.size(),
        root: tree.root(),
        extensions: vec![],
    };
    let note = cp
        .sign(signer)
        .map_err(|e| StoreError::InvalidBatch(format!("cannot sign the checkpoint: {e}")))?;
    Ok(SignedHead {
        size: cp.size,
        root: cp.root,
        note,
    })
}

/// Whether a store error means the log must stop writing: it can only
/// come from another writer, a damaged store, or a refusal to sign a
/// second view of history. Retrying would not help, and carrying on could
/// make things worse; an operator must look. Everything else (I/O errors,
/// a full disk) is transient.
pub fn is_fatal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Conflict { .. }
            | StoreError::CheckpointConflict { .. }
            | StoreError::Corrupt(_)
            | StoreError::UnknownFormat { .. }
            | StoreError::Locked { .. }
            | StoreError::Fenced(_)
            | StoreError::ForkGuard(_)
    )
}

/// One log's write path: its store, its key and its origin.
#[derive(Clone)]
pub struct WritePipeline {
    store: Arc<dyn LogStore>,
    signer: Arc<NoteSigner>,
    origin: Arc<str>,
    /// Checked before every commit; `None`: the store alone guards it.
    lease: Option<Arc<dyn WriterLease>>,
}

/// A batch written: durable, checkpointed, signed.
#[derive(Debug)]
pub struct Written {
    /// The durable tree after the batch.
    pub tree: TreeState,
    /// Its signed head, stored.
    pub head: SignedHead,
    /// The batch's new and grown tiles, as written: what the tile cache
    /// takes, so that the batch's receipts prove from memory.
    pub tiles: Vec<cairn_core::tree::TileUpdate>,
    /// `Err` when the checkpoint is durable but the fork guard could not
    /// follow it (`StoreError::GuardWrite`): not a failure of the batch.
    pub guard: Result<(), StoreError>,
}

/// A batch not (fully) written.
#[derive(Debug)]
pub struct WriteFailure {
    /// Why.
    pub error: StoreError,
    /// The durable tree now: continue from here.
    pub tree: TreeState,
    /// The entries are durable (the commit landed) but no checkpoint
    /// covers them yet: the next batch's checkpoint, or the next start,
    /// will.
    pub entries_durable: bool,
}

impl WriteFailure {
    /// Whether the log must stop writing ([`is_fatal`]).
    pub fn is_fatal(&self) -> bool {
        is_fatal(&self.error)
    }
}

impl WritePipeline {
    /// The pipeline of the log `origin`, signed by `signer`, over `store`.
    pub fn new(store: Arc<dyn LogStore>, signer: Arc<NoteSigner>, origin: &str) -> Self {
        WritePipeline {
            store,
            signer,
            origin: origin.into(),
            lease: None,
        }
    }

    /// Checks `lease` before every commit: a lost lease fails the batch
    /// with a fatal error (the log stops writing) before anything is
    /// written.
    pub fn with_lease(mut self, lease: Option<Arc<dyn WriterLease>>) -> Self {
        self.lease = lease;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// Signs the head of `tree` (no write).
    pub fn sign(&self, tree: &TreeState) -> Result<SignedHead, StoreError> {
        sign(&self.signer, &self.origin, tree)
    }

    /// Writes one batch on top of `tree` (the store's durable tree), as the
    /// module docs narrate. Blocking: call it off the async threads.
    pub fn write(
        &self,
        tree: &TreeState,
        entries: &[NewEntry<'_>],
    ) -> Result<Written, WriteFailure> {
        let fail = |error: StoreError, tree: &TreeState, entries_durable: bool| WriteFailure {
            error,
            tree: tree.clone(),
            entries_durable,
        };
        // 1. Integrate.
        let hashes: Vec<Hash> = entries.iter().map(|e| e.leaf_hash).collect();
        let integ = tree
            .integrate(&hashes)
            .map_err(|e| fail(StoreError::InvalidBatch(e.to_string()), tree, false))?;
        // 2. Commit durably (no checkpoint yet: nothing is signed before
        //    its batch is on disk), if this process still holds the lease.
        if let Some(l) = &self.lease
            && let Err(e) = l.check()
        {
            return Err(fail(e, tree, false));
        }
        let t = Instant::now();
        let committed = self.store.commit_batch(CommitBatch {
            expected_size: tree.size(),
            entries,
            tiles: &integ.tiles,
            state: &integ.state,
            checkpoint: None,
        });
        if t.elapsed() > SLOW {
            tracing::warn!(
                entries = entries.len(),
                ms = t.elapsed().as_secs_f64() * 1e3,
                "slow commit"
            );
        }
        if let Err(e) = committed {
            if is_fatal(&e) {
                // Another writer, or a damaged store: never "carry on".
                return Err(fail(e, tree, false));
            }
            // The write may have landed anyway: the store decides.
            match self.store.load_state() {
                Ok(st) if st.tree == integ.state => {
                    tracing::warn!(error = %e, "commit reported an error but the batch is durable");
                }
                Ok(st) => {
                    tracing::warn!(error = %e, "commit failed; nothing of the batch was written");
                    return Err(fail(e, &st.tree, false));
                }
                Err(e2) => {
                    tracing::warn!(error = %e, "commit failed, and reloading the state too");
                    return Err(fail(e2, tree, false));
                }
            }
        }
        // 3. Sign, now that the batch is durable.
        let head = self
            .sign(&integ.state)
            .map_err(|e| fail(e, &integ.state, true))?;
        // 4. Store the checkpoint.
        let t = Instant::now();
        let put = self.store.put_checkpoint(head.size, head.note.as_bytes());
        if t.elapsed() > SLOW {
            tracing::warn!(
                ms = t.elapsed().as_secs_f64() * 1e3,
                "slow checkpoint write"
            );
        }
        let mut guard = Ok(());
        if let Err(e) = put {
            if let StoreError::GuardWrite(_) = e {
                // The checkpoint is durable; only the guard lags.
                guard = Err(e);
            } else if !is_fatal(&e)
                && matches!(
                    self.store.checkpoint(Some(head.size)),
                    Ok(Some(c)) if c.note == head.note.as_bytes()
                )
            {
                tracing::warn!(error = %e, "storing the checkpoint reported an error, but it is durable");
            } else {
                // Entries durable but uncovered; a refused checkpoint
                // (another view of this size is stored) is fatal.
                return Err(fail(e, &integ.state, true));
            }
        }
        Ok(Written {
            tree: integ.state,
            head,
            tiles: integ.tiles,
            guard,
        })
    }
}
