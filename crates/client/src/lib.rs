//! `cairn-client`: the verifying side of Cairn.
//!
//! Everything here checks what a log or a witness says, and keeps the small
//! amount of state needed to notice when they change their story:
//!
//! | module | what |
//! |---|---|
//! | [`policy`] | C2SP tlog-policy: log keys, witness keys, groups, quorum |
//! | [`verify`] | [`LogVerifier`]: checkpoints (signature + quorum), inclusion, consistency, tlog-proof receipts |
//! | [`witness`] | C2SP tlog-witness `add-checkpoint`: parsing, the checks in spec order, the compare-and-swap state |
//! | [`gossip`] | comparing a peer witness's cosigned checkpoint with ours |
//! | [`evidence`] | signed proof of misbehaviour, persisted append-only |
//! | [`audit`] | the auditor: trusted state, the step from one checkpoint to the next, the full and privacy audits |
//! | [`fsutil`] | atomic file replacement (write, fsync, rename, fsync the folder) |
//!
//! No protobuf and no network: the transports (gRPC, HTTP) live in the
//! server and CLI crates and hand this crate bytes.

pub mod audit;
pub mod evidence;
pub mod fsutil;
pub mod gossip;
pub mod policy;
pub mod verify;
pub mod witness;

pub use evidence::{Evidence, EvidenceKind, EvidenceLog};
pub use policy::TrustPolicy;
pub use verify::{LogVerifier, VerifyError};
pub use witness::{AddCheckpoint, Witness, WitnessError};
