use std::path::PathBuf;

/// Why a store operation failed. Messages never contain entry contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The stored tree size is not the one the writer expected.
    #[error("tree size conflict: the store holds {actual_size} leaves")]
    Conflict {
        /// The size actually stored.
        actual_size: u64,
    },
    /// The batch is malformed; nothing was written.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// A different checkpoint is already stored for this size.
    #[error(
        "a different checkpoint is already stored for tree size {size}; refusing to keep two signed views of one size"
    )]
    CheckpointConflict {
        /// The tree size.
        size: u64,
    },
    /// A read past the end of the tree.
    #[error("index {index} is beyond the tree size {size}")]
    OutOfRange {
        /// Requested start.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A tile the request needs is not stored at that width.
    #[error("tile {path} is not stored at the requested width")]
    MissingTile {
        /// The tile's C2SP path.
        path: String,
    },
    /// The store contradicts itself (tiles, state and checkpoints disagree,
    /// or a record cannot be decoded). It is not served.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// The store was written by a newer or unknown layout.
    #[error("store at {dir} has format version {found}; this build reads version {supported} only")]
    UnknownFormat {
        /// The data folder.
        dir: PathBuf,
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// Another process holds the data folder.
    #[error(
        "data folder {dir} is in use by another Cairn process ({holder}; lock file {lock_file}); one writer per store"
    )]
    Locked {
        /// The data folder.
        dir: PathBuf,
        /// The lock file.
        lock_file: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// Another writer owns the store: a conditional write this writer
    /// expected to win (create-only object with other bytes, or the state
    /// object's compare-and-swap) lost. Shared-storage backends only. Final:
    /// the process stops writing the log and says so.
    #[error("another writer owns this log's store (fence lost): {0}")]
    Fenced(String),
    /// This process follows the store read-only (a read replica, or a
    /// standby not yet promoted: [`crate::SharedLogStore`]); writes are
    /// refused before anything is written.
    #[error("{0}")]
    ReadOnly(String),
    /// The fork guard refuses this store. The message says why and what to do.
    #[error("{0}")]
    ForkGuard(String),
    /// The checkpoint is durable, but the fork guard could not be advanced
    /// to it (the guard now lags the store; a restored backup up to this
    /// size would go unnoticed until it catches up). Not fatal: the next
    /// checkpoint writes the guard again.
    #[error("the checkpoint is stored, but the fork guard could not be advanced: {0}")]
    GuardWrite(String),
    /// The underlying storage failed (I/O, disk full, RocksDB error).
    #[error("storage I/O error: {0}")]
    Io(String),
    /// A failure injected by [`FaultyStore`](crate::FaultyStore).
    #[error("injected fault: {0}")]
    Injected(&'static str),
}

impl StoreError {
    /// A description safe to send to a client: no file paths, no OS or
    /// RocksDB error text (those go to the server's log). The same words as
    /// the full message where it holds neither.
    pub fn summary(&self) -> String {
        match self {
            StoreError::Corrupt(_) => "the store is corrupt (details in the server log)".into(),
            StoreError::UnknownFormat { found, .. } => {
                format!("the store has an unknown format version {found}")
            }
            StoreError::Locked { .. } => {
                "the data folder is in use by another Cairn process".into()
            }
            StoreError::ForkGuard(_) => {
                "the fork guard refuses this store (details in the server log)".into()
            }
            StoreError::Fenced(_) => {
                "another writer owns the log's store; this process stopped writing it".into()
            }
            StoreError::Io(_) => "storage I/O error (details in the server log)".into(),
            StoreError::GuardWrite(_) => {
                "the fork guard could not be advanced (details in the server log)".into()
            }
            StoreError::Conflict { .. }
            | StoreError::InvalidBatch(_)
            | StoreError::CheckpointConflict { .. }
            | StoreError::OutOfRange { .. }
            | StoreError::MissingTile { .. }
            | StoreError::ReadOnly(_)
            | StoreError::Injected(_) => self.to_string(),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}
