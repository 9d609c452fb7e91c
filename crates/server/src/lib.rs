//! `cairn-server`: the only crate that will know gRPC and HTTP. Today it
//! holds the sequencer, the log's single writer (see [`sequencer`]).

pub mod sequencer;

pub use sequencer::{AppendError, AppendRequest, Appended, Sequencer, SequencerConfig, SignedHead};
