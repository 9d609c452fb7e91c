//! `cairn-server`: the only crate (with the CLI) that knows gRPC and
//! protobuf. The sequencer ([`sequencer`]) is the log's single writer; the
//! gRPC service ([`service`]) masks events in the request path, hands them
//! to the sequencer, and serves proofs straight from the store.

pub mod auth;
pub mod cache;
pub mod error;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod outbound;
pub mod run;
pub mod sequencer;
pub mod service;
pub mod tls;
pub mod witness;
pub mod witnessing;

/// Code generated from `proto/cairn/v1/log.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("cairn.v1");

    /// The encoded file descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/cairn_v1_descriptor.bin"));
}

pub use run::{
    ServeConfig, ServeError, Server, TlsFiles, build_masker, exposure_warnings, load_or_create_key,
    read_secret,
};
pub use sequencer::{
    AppendError, AppendRequest, Appended, IdempotencyHasher, Sequencer, SequencerConfig, SignedHead,
};
pub use service::LogService;
