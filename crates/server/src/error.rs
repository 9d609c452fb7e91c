//! The one mapping from internal errors to gRPC status codes (the table in
//! docs/api.md). Messages never echo event content: masking errors name
//! byte offsets only, and store errors name sizes and paths.

use cairn_core::proof::{ProofError, ProveError};
use cairn_masking::MaskError;
use cairn_storage::StoreError;
use tonic::Status;

use crate::sequencer::AppendError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The event could not be masked (malformed JSON, not UTF-8, too deep…).
    #[error("event rejected: {0}")]
    Mask(#[from] MaskError),
    /// A request field is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// An index or size beyond the tree.
    #[error("{0}")]
    OutOfRange(String),
    /// No entry has that leaf hash.
    #[error("{0}")]
    NotFound(String),
    /// The append queue is full.
    #[error("the append queue is full; retry later")]
    Busy,
    /// Storage or the sequencer is unavailable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request needs a feature this server is not configured for.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A wait the client asked for ran out (the work itself is done).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The request conflicts with an earlier one (an idempotency key used
    /// for a different event).
    #[error("{0}")]
    AlreadyExists(String),
    /// Authentication, authorization or quota: the status as decided by
    /// [`crate::auth::Authorizer`].
    #[error("{}", .0.message())]
    Auth(Box<Status>),
}

impl From<AppendError> for ServerError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Busy => ServerError::Busy,
            AppendError::Unavailable(m) => ServerError::Unavailable(m),
            AppendError::ShuttingDown => {
                ServerError::Unavailable("the log is shutting down".into())
            }
            e @ AppendError::KeyReused { .. } => ServerError::AlreadyExists(e.to_string()),
            e @ AppendError::Halted(_) => ServerError::FailedPrecondition(e.to_string()),
        }
    }
}

impl From<StoreError> for ServerError {
    /// Clients get [`StoreError::summary`] (no file paths, no OS error
    /// text); the full error goes to the server's log.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::OutOfRange { .. } => ServerError::OutOfRange(e.to_string()),
            other => {
                tracing::warn!(error = %other, "storage error, answered UNAVAILABLE");
                ServerError::Unavailable(other.summary())
            }
        }
    }
}

impl From<ProofError> for ServerError {
    fn from(e: ProofError) -> Self {
        match e {
            ProofError::IndexOutOfRange { .. } => ServerError::OutOfRange(e.to_string()),
            ProofError::OldAfterNew { .. } | ProofError::OldSizeZero => {
                ServerError::InvalidArgument(e.to_string())
            }
            // A short tile while proving means the store is damaged.
            other => ServerError::Unavailable(other.to_string()),
        }
    }
}

impl From<ProveError<StoreError>> for ServerError {
    fn from(e: ProveError<StoreError>) -> Self {
        match e {
            ProveError::Proof(p) => p.into(),
            ProveError::Read(s) => s.into(),
        }
    }
}

impl From<ServerError> for Status {
    fn from(e: ServerError) -> Status {
        crate::metrics::METRICS.error(match &e {
            ServerError::Mask(_) | ServerError::InvalidArgument(_) => "invalid_argument",
            ServerError::OutOfRange(_) => "out_of_range",
            ServerError::NotFound(_) => "not_found",
            ServerError::Busy => "resource_exhausted",
            ServerError::Unavailable(_) => "unavailable",
            ServerError::FailedPrecondition(_) => "failed_precondition",
            ServerError::DeadlineExceeded(_) => "deadline_exceeded",
            ServerError::AlreadyExists(_) => "already_exists",
            ServerError::Auth(s) => match s.code() {
                tonic::Code::Unauthenticated => "unauthenticated",
                tonic::Code::PermissionDenied => "permission_denied",
                _ => "resource_exhausted",
            },
        });
        let msg = e.to_string();
        match e {
            ServerError::Mask(_) | ServerError::InvalidArgument(_) => Status::invalid_argument(msg),
            ServerError::OutOfRange(_) => Status::out_of_range(msg),
            ServerError::NotFound(_) => Status::not_found(msg),
            ServerError::Busy => Status::resource_exhausted(msg),
            ServerError::Unavailable(_) => Status::unavailable(msg),
            ServerError::FailedPrecondition(_) => Status::failed_precondition(msg),
            ServerError::DeadlineExceeded(_) => Status::deadline_exceeded(msg),
            ServerError::AlreadyExists(_) => Status::already_exists(msg),
            ServerError::Auth(s) => *s,
        }
    }
}
