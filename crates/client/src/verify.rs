//! [`LogVerifier`]: everything a client checks about one log.
//!
//! - A checkpoint: strict C2SP note syntax, the log's Ed25519 signature,
//!   the origin (the log key's name), and the trust policy's witness quorum
//!   over valid cosignature/v1 lines (C2SP tlog-cosignature).
//! - Inclusion (RFC 9162 §2.1.3.2) and consistency (§2.1.4.2) proofs
//!   against verified checkpoints.
//! - C2SP tlog-proof receipts.

use cairn_core::checkpoint::{Checkpoint, CheckpointError, VerifiedCheckpoint, verify_checkpoint};
use cairn_core::note::NoteVerifier;
use cairn_core::proof::{ProofError, verify_consistency, verify_inclusion};
use cairn_core::tlog_proof::{TlogProof, TlogProofError};
use cairn_core::{Hash, LeafIndex, WitnessPolicy};

use crate::policy::TrustPolicy;

/// A verification failed. Every variant means the log (or whoever handed
/// us the data) showed something that does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The checkpoint is malformed, unsigned, or for another origin.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// Too few witnesses cosigned.
    #[error(
        "checkpoint at size {size} does not satisfy the witness quorum ({got} policy witnesses cosigned)"
    )]
    Quorum {
        /// Tree size of the checkpoint.
        size: u64,
        /// Policy witnesses whose cosignatures verified.
        got: usize,
    },
    /// A proof did not verify.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
    /// Two checkpoints of one size with different roots.
    #[error("two different roots for tree size {size}: {a} and {b}")]
    SplitView {
        /// Tree size.
        size: u64,
        /// One root (base64).
        a: String,
        /// The other root (base64).
        b: String,
    },
    /// The newer checkpoint is smaller than the trusted one.
    #[error("the log went backwards: trusted size {trusted}, offered {offered}")]
    Rollback {
        /// Trusted size.
        trusted: u64,
        /// Size offered.
        offered: u64,
    },
    /// A receipt is malformed.
    #[error("receipt: {0}")]
    Receipt(String),
}

impl From<TlogProofError> for VerifyError {
    fn from(e: TlogProofError) -> Self {
        match e {
            TlogProofError::Checkpoint(c) => VerifyError::Checkpoint(c),
            TlogProofError::Proof(p) => VerifyError::Proof(p),
            other => VerifyError::Receipt(other.to_string()),
        }
    }
}

/// Verifies one log's checkpoints and proofs.
#[derive(Clone, Debug)]
pub struct LogVerifier {
    log_key: NoteVerifier,
    policy: TrustPolicy,
    /// Witness keys in the policy, in the form the core's note check takes.
    witnesses: WitnessPolicy,
}

impl LogVerifier {
    /// A verifier for the log `log_key` under `policy` (use
    /// [`TrustPolicy::log_only`] when no cosignatures are required). The
    /// origin is the log key's name.
    pub fn new(log_key: NoteVerifier, policy: TrustPolicy) -> Self {
        let witnesses = WitnessPolicy {
            witnesses: policy.witness_keys(),
            quorum: 0,
        };
        LogVerifier {
            log_key,
            policy,
            witnesses,
        }
    }

    /// A verifier that trusts `log_key` and needs no witnesses.
    pub fn log_only(log_key: NoteVerifier) -> Self {
        Self::new(log_key.clone(), TrustPolicy::log_only(log_key))
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.log_key.name()
    }

    /// The log key.
    pub fn log_key(&self) -> &NoteVerifier {
        &self.log_key
    }

    /// The trust policy.
    pub fn policy(&self) -> &TrustPolicy {
        &self.policy
    }

    /// Checks a signed checkpoint note: syntax, log signature, origin, and
    /// the policy's quorum. A failing signature by any key we know rejects
    /// the note (C2SP signed-note).
    pub fn verify_checkpoint(&self, note: &[u8]) -> Result<VerifiedCheckpoint, VerifyError> {
        let v = verify_checkpoint(note, None, &self.log_key, &self.witnesses)?;
        if !self.policy.satisfied(&v.cosignatures) {
            return Err(VerifyError::Quorum {
                size: v.checkpoint.size.0,
                got: v.cosignatures.len(),
            });
        }
        Ok(v)
    }

    /// Checks a signed checkpoint's log signature and origin, ignoring the
    /// witness quorum (witnesses themselves, and logs collecting
    /// cosignatures, need this).
    pub fn verify_log_signature(&self, note: &[u8]) -> Result<VerifiedCheckpoint, VerifyError> {
        Ok(verify_checkpoint(
            note,
            None,
            &self.log_key,
            &self.witnesses,
        )?)
    }

    /// Checks that `new` extends `old`: equal sizes need equal roots; a
    /// smaller `new` is a rollback; otherwise the RFC 9162 §2.1.4.2
    /// consistency proof must verify. An empty `old` is consistent with
    /// anything.
    pub fn verify_consistency(
        old: &Checkpoint,
        new: &Checkpoint,
        proof: &[Hash],
    ) -> Result<(), VerifyError> {
        if new.size < old.size {
            return Err(VerifyError::Rollback {
                trusted: old.size.0,
                offered: new.size.0,
            });
        }
        if new.size == old.size {
            if new.root != old.root {
                return Err(VerifyError::SplitView {
                    size: old.size.0,
                    a: old.root.to_base64(),
                    b: new.root.to_base64(),
                });
            }
            return Ok(());
        }
        if old.size.0 == 0 {
            return Ok(());
        }
        verify_consistency(old.size, new.size, &old.root, &new.root, proof)?;
        Ok(())
    }

    /// Checks that `leaf` is at `index` in `checkpoint`'s tree.
    pub fn verify_inclusion(
        leaf: &Hash,
        index: LeafIndex,
        checkpoint: &Checkpoint,
        proof: &[Hash],
    ) -> Result<(), VerifyError> {
        verify_inclusion(leaf, index, checkpoint.size, proof, &checkpoint.root)?;
        Ok(())
    }

    /// Checks a C2SP tlog-proof receipt offline: the checkpoint (with the
    /// policy's quorum) and the inclusion of `leaf`.
    pub fn verify_tlog_proof(
        &self,
        text: &str,
        leaf: &Hash,
    ) -> Result<(TlogProof, VerifiedCheckpoint), VerifyError> {
        let proof = TlogProof::parse(text)?;
        let cp = self.verify_checkpoint(proof.checkpoint.as_bytes())?;
        Self::verify_inclusion(leaf, proof.index, &cp.checkpoint, &proof.path)?;
        Ok((proof, cp))
    }
}
