//! `cairn-log`: the log engine, with no transport.
//!
//! * [`pipeline`]: the one write pipeline. A batch of masked leaves is
//!   integrated, committed durably, and only then signed and its
//!   checkpoint stored. `cairn serve` (through the [`sequencer`]) and
//!   `cairn import` both write through it, so the commit point and the
//!   recovery after a failed write are written once.
//! * [`sequencer`]: the log's single writer for a running log: a queue
//!   bounded in entries and bytes, batching, idempotency keys (scoped and
//!   hashed), answers to every waiter, the fatal/transient split.
//! * [`publish`]: the publisher seam, what runs when a log has a new
//!   signed head; the writer-lease seam is `cairn_storage::WriterLease`,
//!   checked by the pipeline before every commit.
//! * [`metrics`]: the process's counters, rendered as Prometheus text by
//!   whichever transport serves `/metrics`.
//!
//! Transports (gRPC, HTTP) live in `cairn-server`; storage behind the
//! [`cairn_storage::LogStore`] contract.

pub mod metrics;
pub mod pipeline;
pub mod publish;
pub mod sequencer;

pub use pipeline::{WriteFailure, WritePipeline, Written};
pub use publish::Publisher;
pub use sequencer::{
    AppendError, AppendRequest, Appended, IdempotencyHasher, Sequencer, SequencerConfig, SignedHead,
};
