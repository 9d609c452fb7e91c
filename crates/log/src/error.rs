//! The engine's errors, by what the caller should do about them. Every
//! transport maps them in one place (`cairn-server`'s `error` module, the
//! table in docs/api.md). Messages never echo event content: masking
//! errors name byte offsets only, store errors their client-safe summary.

use cairn_core::proof::{ProofError, ProveError};
use cairn_masking::MaskError;
use cairn_storage::StoreError;

use crate::sequencer::AppendError;

/// Why an engine call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The event could not be masked (malformed JSON, not UTF-8, too deep…).
    #[error("event rejected: {0}")]
    Mask(#[from] MaskError),
    /// A request field is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// An index or size beyond the tree.
    #[error("{0}")]
    OutOfRange(String),
    /// No such entry (by leaf hash), or no such log.
    #[error("{0}")]
    NotFound(String),
    /// The append queue is full: retry later.
    #[error("the append queue is full; retry later")]
    Busy,
    /// Storage or the sequencer is unavailable: retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The log cannot do this in its state: frozen, stopped writing, no
    /// witnesses configured. Retrying does not help.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A wait the caller asked for ran out (the work itself is done).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The request conflicts with an earlier one (an idempotency key used
    /// for a different event).
    #[error("{0}")]
    AlreadyExists(String),
}

impl From<AppendError> for LogError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Busy => LogError::Busy,
            AppendError::Unavailable(m) => LogError::Unavailable(m),
            AppendError::ShuttingDown => LogError::Unavailable("the log is shutting down".into()),
            AppendError::Standby(m) => LogError::Unavailable(m.to_string()),
            AppendError::ReadOnly(m) => LogError::FailedPrecondition(m.to_string()),
            e @ AppendError::KeyReused { .. } => LogError::AlreadyExists(e.to_string()),
            e @ (AppendError::Halted(_) | AppendError::Frozen(_)) => {
                LogError::FailedPrecondition(e.to_string())
            }
        }
    }
}

impl From<StoreError> for LogError {
    /// Callers get [`StoreError::summary`] (no file paths, no OS error
    /// text); the full error goes to the server's log.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::OutOfRange { .. } => LogError::OutOfRange(e.to_string()),
            other => {
                tracing::warn!(error = %other, "storage error, answered UNAVAILABLE");
                LogError::Unavailable(other.summary())
            }
        }
    }
}

impl From<ProofError> for LogError {
    fn from(e: ProofError) -> Self {
        match e {
            ProofError::IndexOutOfRange { .. } => LogError::OutOfRange(e.to_string()),
            ProofError::OldAfterNew { .. } | ProofError::OldSizeZero => {
                LogError::InvalidArgument(e.to_string())
            }
            // A short tile while proving means the store is damaged.
            other => LogError::Unavailable(other.to_string()),
        }
    }
}

impl From<ProveError<StoreError>> for LogError {
    fn from(e: ProveError<StoreError>) -> Self {
        match e {
            ProveError::Proof(p) => p.into(),
            ProveError::Read(s) => s.into(),
        }
    }
}
