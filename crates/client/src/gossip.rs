//! Witness gossip: comparing a peer witness's latest cosigned checkpoint
//! with our own, to catch a log that shows different histories to
//! different witnesses (a split view).
//!
//! A peer's checkpoint counts only if both the log's signature and the
//! peer's cosignature verify. Then, against our latest record for that
//! origin:
//!
//! | relation | action |
//! |---|---|
//! | same size, same root | nothing |
//! | same size, other root | split-view evidence (two log signatures, no proof needed) |
//! | other size | ask the log for a consistency proof between the two and check it; failure, or a log that cannot prove a size it signed, is evidence |
//! | no record of ours | nothing to compare |

use cairn_core::checkpoint::{Checkpoint, VerifiedCheckpoint, verify_checkpoint};
use cairn_core::note::{Note, NoteVerifier};
use cairn_core::{Hash, WitnessPolicy};

use crate::evidence::{Evidence, EvidenceKind};
use crate::verify::{LogVerifier, VerifyError};
use crate::witness::Record;

/// A peer's checkpoint was not acceptable (not evidence: unsigned data
/// proves nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipError {
    /// Not for a log we serve.
    #[error("unknown origin {0:?}")]
    UnknownOrigin(String),
    /// Signatures do not verify.
    #[error("{0}")]
    Unverified(String),
}

/// What to do about a peer's checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relation {
    /// Nothing to check.
    Agree,
    /// Split view: evidence is ready.
    SplitView(Evidence),
    /// Needs a consistency proof from the log from `old` to `new` (the
    /// smaller and the larger of the two checkpoints).
    NeedProof {
        /// Smaller checkpoint (note text).
        old_note: String,
        /// Larger checkpoint (note text).
        new_note: String,
        /// Smaller size.
        old: u64,
        /// Larger size.
        new: u64,
    },
}

/// Verifies a peer's cosigned checkpoint: the log's signature (via `log`)
/// and a cosignature by `peer`.
pub fn verify_peer_checkpoint(
    log: &LogVerifier,
    peer: &NoteVerifier,
    note: &[u8],
) -> Result<VerifiedCheckpoint, GossipError> {
    let policy = WitnessPolicy {
        witnesses: vec![peer.clone()],
        quorum: 1,
    };
    verify_checkpoint(note, None, log.log_key(), &policy)
        .map_err(|e| GossipError::Unverified(e.to_string()))
}

fn parse_record(r: &Record) -> Option<Checkpoint> {
    let n = Note::parse(r.note.as_bytes()).ok()?;
    Checkpoint::parse(n.text()).ok()
}

/// Relates a verified peer checkpoint to our record.
pub fn relate(
    ours: Option<&Record>,
    peer: &VerifiedCheckpoint,
    peer_note: &str,
    source: &str,
    now: u64,
) -> Relation {
    let Some(ours) = ours else {
        return Relation::Agree;
    };
    let Some(our_cp) = parse_record(ours) else {
        return Relation::Agree;
    };
    let theirs = &peer.checkpoint;
    if our_cp.size == theirs.size {
        if our_cp.root == theirs.root {
            return Relation::Agree;
        }
        return Relation::SplitView(Evidence {
            kind: EvidenceKind::SplitView,
            origin: theirs.origin.clone(),
            observed_at: now,
            source: source.to_owned(),
            checkpoints: vec![ours.note.clone(), peer_note.to_owned()],
            proof: vec![],
            detail: format!(
                "two signed checkpoints for size {} with different roots",
                theirs.size
            ),
        });
    }
    let (old_note, new_note, old, new) = if our_cp.size < theirs.size {
        (
            ours.note.clone(),
            peer_note.to_owned(),
            our_cp.size.0,
            theirs.size.0,
        )
    } else {
        (
            peer_note.to_owned(),
            ours.note.clone(),
            theirs.size.0,
            our_cp.size.0,
        )
    };
    if old == 0 {
        return Relation::Agree;
    }
    Relation::NeedProof {
        old_note,
        new_note,
        old,
        new,
    }
}

/// Checks the log's consistency proof for a [`Relation::NeedProof`].
/// `proof` is `Err(reason)` when the log refused to produce one for sizes
/// it has signed. Returns evidence when the check fails.
pub fn check_proof(
    origin: &str,
    old_note: &str,
    new_note: &str,
    proof: Result<&[Hash], &str>,
    source: &str,
    now: u64,
) -> Option<Evidence> {
    let parse = |s: &str| {
        Note::parse(s.as_bytes())
            .ok()
            .and_then(|n| Checkpoint::parse(n.text()).ok())
    };
    let (Some(old), Some(new)) = (parse(old_note), parse(new_note)) else {
        return None;
    };
    let evidence = |detail: String, proof: &[Hash]| Evidence {
        kind: EvidenceKind::Inconsistent,
        origin: origin.to_owned(),
        observed_at: now,
        source: source.to_owned(),
        checkpoints: vec![old_note.to_owned(), new_note.to_owned()],
        proof: proof.iter().map(Hash::to_base64).collect(),
        detail,
    };
    match proof {
        Err(why) => Some(evidence(
            format!(
                "the log signed sizes {} and {} but will not prove them consistent: {why}",
                old.size, new.size
            ),
            &[],
        )),
        Ok(p) => match LogVerifier::verify_consistency(&old, &new, p) {
            Ok(()) => None,
            Err(
                e @ (VerifyError::Proof(_)
                | VerifyError::SplitView { .. }
                | VerifyError::Rollback { .. }),
            ) => Some(evidence(
                format!(
                    "the log's consistency proof {} -> {} fails: {e}",
                    old.size, new.size
                ),
                p,
            )),
            Err(_) => None,
        },
    }
}
