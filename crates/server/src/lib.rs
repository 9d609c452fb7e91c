//! `cairn-server`: transports over the engine (`cairn-log`): gRPC
//! ([`service`]), HTTP ([`http`]: tlog-tiles per log, `/logs`, health,
//! metrics), TLS, authorization ([`auth`]), the witness's endpoints
//! ([`witness`]) and the log side of witnessing ([`witnessing`]), and the
//! one mapping from errors to gRPC and HTTP statuses ([`error`]).
//! [`run`] opens the configured logs into the engine's registry and
//! serves them.

pub mod auth;
pub mod error;
pub mod explorer;
pub mod http;
pub mod leader;
/// The engine's metrics and sequencer (`cairn-log`), under their old paths.
pub use cairn_log::{metrics, sequencer};
pub mod listen;
pub mod otlp;
pub mod outbound;
pub mod run;
pub mod service;
pub mod tls;
pub mod witness;
pub mod witnessing;

/// The wire API (`cairn-api`): messages and services of `cairn.v1`.
pub use cairn_api as pb;

/// Helpers for this workspace's tests (not part of the API).
#[doc(hidden)]
pub mod testing {
    /// Whether a test may go on: `present` says whether the tool or
    /// facility it needs (`what`) is here. Missing under CI (`CI` set, as
    /// `.ci/run` runs) is a failure, never a pass: the scripts install
    /// every tool, so a missing one is a broken install. Elsewhere the
    /// test says loudly that it did not run, and returns `false`.
    #[allow(clippy::panic)]
    pub fn require(present: bool, what: &str) -> bool {
        if present {
            return true;
        }
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
            panic!("{what} is missing under CI: the test cannot run (scripts/deps.sh installs it)");
        }
        eprintln!("NOT RUN: {what} is missing (CI fails here; scripts/deps.sh installs it)");
        false
    }

    /// The Ceph RGW the object-storage tests use, as (endpoint, bucket),
    /// from `CAIRN_S3_ENDPOINT` and `CAIRN_S3_BUCKET` (scripts/test.sh
    /// starts it with scripts/services.sh and exports them); `None` (a
    /// failure under CI) when they are not set.
    pub fn rgw() -> Option<(String, String)> {
        let endpoint = std::env::var("CAIRN_S3_ENDPOINT").ok();
        let bucket = std::env::var("CAIRN_S3_BUCKET").ok();
        if !require(
            endpoint.is_some() && bucket.is_some(),
            "Ceph RGW (CAIRN_S3_ENDPOINT, CAIRN_S3_BUCKET: scripts/services.sh start, as scripts/test.sh runs it)",
        ) {
            return None;
        }
        Some((endpoint?, bucket?))
    }
}

pub use run::{
    LogConfig, ObjectStoreConfig, ServeConfig, ServeError, Server, TlsFiles, build_masker,
    exposure_warnings, load_or_create_key, read_secret,
};
pub use sequencer::{
    AppendError, AppendRequest, Appended, IdempotencyHasher, Sequencer, SequencerConfig, SignedHead,
};
pub use service::{LogService, Logs};
