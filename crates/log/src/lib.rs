//! `cairn-log`: the log engine, with no transport.
//!
//! * [`registry`]: the logs of a process (name → running log); a log that
//!   could not start is reported, and the others serve.
//! * [`log`]: one running log and everything a transport asks of it:
//!   mask and append, receipts, proofs, entries, freezing. Domain types
//!   in and out.
//! * [`pipeline`]: the one write pipeline. A batch of masked leaves is
//!   integrated, committed durably, and only then signed and its
//!   checkpoint stored. `cairn serve` (through the [`sequencer`]) and
//!   `cairn import` both write through it, so the commit point and the
//!   recovery after a failed write are written once.
//! * [`sequencer`]: the log's single writer for a running log: a queue
//!   bounded in entries and bytes, batching, idempotency keys (scoped and
//!   hashed), answers to every waiter, the fatal/transient split, freezes.
//! * [`cache`]: the proof tile cache, fed by every batch before it is
//!   answered, so receipts prove from memory.
//! * [`publish`]: the publisher seam, what runs when a log has a new
//!   signed head; the writer-lease seam is `cairn_storage::WriterLease`,
//!   checked by the pipeline before every commit.
//! * [`metrics`]: each log's counters and the process's, rendered as
//!   Prometheus text by whichever transport serves `/metrics`.
//! * [`error`]: what engine calls fail with; transports map it once.
//!
//! Transports (gRPC, HTTP) live in `cairn-server`; storage behind the
//! [`cairn_storage::LogStore`] contract.

pub mod cache;
pub mod error;
pub mod log;
pub mod metrics;
pub mod pipeline;
pub mod publish;
pub mod registry;
pub mod sequencer;

pub use error::LogError;
pub use log::{
    DEFAULT_LOG, DEFAULT_TILE_CACHE_MB, InclusionProof, LeafRef, Log, LogName, LogOptions, Receipt,
    SubjectState, mask_event,
};
pub use pipeline::{WriteFailure, WritePipeline, Written};
pub use publish::Publisher;
pub use registry::{Hosted, Registry};
pub use sequencer::{
    AppendError, AppendRequest, Appended, Follow, IdempotencyHasher, Sequencer, SequencerConfig,
    SignedHead,
};
