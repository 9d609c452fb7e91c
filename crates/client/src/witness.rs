//! The witness: the checks and state behind C2SP tlog-witness
//! `add-checkpoint` (<https://c2sp.org/tlog-witness>) with C2SP
//! tlog-cosignature v1 (type 0x04, timestamped) signatures. The request's
//! wire format is `cairn_core::tlog_witness`.
//!
//! Checks, in the spec's order, and their HTTP status:
//!
//! | check | status |
//! |---|---|
//! | body malformed | 400 |
//! | origin not configured | 404 |
//! | no valid signature by the log's key, or a failing one | 403 |
//! | old size > checkpoint size | 400 |
//! | old size ≠ our latest cosigned size (0 if none) | 409, body `<latest>\n`, `text/x.tlog.size` |
//! | old size = checkpoint size, different root | 422 (and split-view evidence; C2SP/C2SP#280) |
//! | proof fails, or non-empty with old 0, or size-0 with a wrong root | 422 |
//! | otherwise: persist, then cosign | 200, cosignature lines |
//!
//! The state is one JSON file per witness (`witness-state.json`): for each
//! origin, the latest cosigned size, root and note. The check against it
//! and its replacement happen under one lock, and the new state is durable
//! (see [`crate::fsutil::atomic_write`]) before the cosignature leaves, so a
//! crash can never make this witness cosign two roots for one size: after a
//! restart it reads back either the old record (nothing was returned) or
//! the new one (the cosignature may or may not have been delivered; a
//! retry with the old size gets 409 and the new size).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cairn_core::checkpoint::Checkpoint;
use cairn_core::cosignature::Cosigner;
use cairn_core::note::{Note, NoteSignature, NoteVerifier};
use cairn_core::{Hash, empty_root};
use serde::{Deserialize, Serialize};

use crate::evidence::{Evidence, EvidenceKind, EvidenceLog};
use crate::fsutil::{atomic_write, lock_dir};
use crate::verify::{LogVerifier, VerifyError};

// The wire format lives with the other C2SP formats, in the core.
pub use cairn_core::tlog_witness::{AddCheckpoint, MAX_BODY, MAX_PROOF_LINES, SIZE_CONTENT_TYPE};

impl From<cairn_core::tlog_witness::MalformedRequest> for WitnessError {
    fn from(e: cairn_core::tlog_witness::MalformedRequest) -> Self {
        WitnessError::Malformed(e.0.to_owned())
    }
}

/// Why a checkpoint was not cosigned. [`WitnessError::http_status`] maps
/// each to the tlog-witness status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// The body is malformed (400).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Origin not configured (404).
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// No valid log signature (403).
    #[error("checkpoint is not validly signed by the log's key: {0}")]
    Forbidden(String),
    /// Old size larger than the checkpoint's (400).
    #[error("old size {old} is larger than the checkpoint size {size}")]
    OldTooLarge {
        /// Old size.
        old: u64,
        /// Checkpoint size.
        size: u64,
    },
    /// Old size is not our latest (409).
    #[error("conflict: this witness's latest cosigned size is {latest}")]
    Conflict {
        /// Our latest cosigned size.
        latest: u64,
    },
    /// The proof does not verify, or the same size has another root
    /// (422).
    #[error("consistency proof does not verify: {0}")]
    BadProof(String),
    /// State could not be persisted (500).
    #[error("witness state: {0}")]
    Storage(String),
}

impl WitnessError {
    /// The tlog-witness HTTP status.
    pub fn http_status(&self) -> u16 {
        match self {
            WitnessError::Malformed(_) | WitnessError::OldTooLarge { .. } => 400,
            WitnessError::Forbidden(_) => 403,
            WitnessError::UnknownOrigin(_) => 404,
            WitnessError::Conflict { .. } => 409,
            WitnessError::BadProof(_) => 422,
            WitnessError::Storage(_) => 500,
        }
    }
}

/// `note` with only the log's own signature lines: what the log signed,
/// and nothing a submitter added.
fn log_signed(log: &LogVerifier, note: &Note) -> Result<String, WitnessError> {
    let log_key = log.log_key();
    let mut out =
        Note::new(note.text().to_owned()).map_err(|e| WitnessError::Malformed(e.to_string()))?;
    for s in note.signatures() {
        if s.name == log_key.name() && s.key_id == log_key.key_id() {
            out.push_signature(s.clone())
                .map_err(|e| WitnessError::Malformed(e.to_string()))?;
        }
    }
    Ok(out.to_string())
}

/// The latest checkpoint cosigned for one log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Tree size.
    pub size: u64,
    /// Root (base64).
    pub root: String,
    /// The log's signed note with our cosignature appended.
    pub note: String,
}

impl Record {
    /// The root hash.
    pub fn root_hash(&self) -> Option<Hash> {
        Hash::from_base64(&self.root).ok()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    logs: BTreeMap<String, Record>,
}

const STATE_VERSION: u32 = 1;

/// Told of every piece of evidence recorded (or that failed to record):
/// what the evidence file did with it, or `Err` when it could not be saved.
pub type EvidenceReporter =
    Box<dyn Fn(&Evidence, &std::io::Result<crate::evidence::Recorded>) + Send + Sync>;

/// A witness: its key, the logs it serves, and its persisted state.
pub struct Witness {
    cosigner: Cosigner,
    logs: BTreeMap<String, LogVerifier>,
    state_path: PathBuf,
    state: Mutex<StateFile>,
    evidence: EvidenceLog,
    reporter: Option<EvidenceReporter>,
    _lock: File,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("cosigner", &self.cosigner)
            .field("logs", &self.logs.keys().collect::<Vec<_>>())
            .field("state_path", &self.state_path)
            .finish_non_exhaustive()
    }
}

/// The witness could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// State folder locked or unreadable.
    #[error(transparent)]
    Lock(#[from] crate::fsutil::LockError),
    /// The state file is corrupt or from a newer version.
    #[error("{path}: {message}")]
    State {
        /// The state file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Witness {
    /// Opens (or creates) the state in `dir` and locks it for this process.
    /// `logs` are the logs served, by verifier key (its name is the origin).
    pub fn open(
        dir: &Path,
        cosigner: Cosigner,
        logs: Vec<NoteVerifier>,
    ) -> Result<Self, OpenError> {
        let lock = lock_dir(dir)?;
        let state_path = dir.join("witness-state.json");
        let state = match std::fs::read(&state_path) {
            Ok(b) => {
                let s: StateFile = serde_json::from_slice(&b).map_err(|e| OpenError::State {
                    path: state_path.display().to_string(),
                    message: format!("corrupt state file: {e}"),
                })?;
                if s.version != STATE_VERSION {
                    return Err(OpenError::State {
                        path: state_path.display().to_string(),
                        message: format!("state version {} is not {STATE_VERSION}", s.version),
                    });
                }
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile {
                version: STATE_VERSION,
                logs: BTreeMap::new(),
            },
            Err(e) => {
                return Err(OpenError::State {
                    path: state_path.display().to_string(),
                    message: e.to_string(),
                });
            }
        };
        Ok(Witness {
            cosigner,
            logs: logs
                .into_iter()
                .map(|v| (v.name().to_owned(), LogVerifier::log_only(v)))
                .collect(),
            state_path,
            state: Mutex::new(state),
            evidence: EvidenceLog::new(dir),
            reporter: None,
            _lock: lock,
        })
    }

    /// This witness's cosignature verifier key.
    pub fn verifier(&self) -> NoteVerifier {
        self.cosigner.verifier()
    }

    /// The log verifier for an origin, if served.
    pub fn log(&self, origin: &str) -> Option<&LogVerifier> {
        self.logs.get(origin)
    }

    /// The evidence log.
    pub fn evidence(&self) -> &EvidenceLog {
        &self.evidence
    }

    /// The latest cosigned record for `origin`.
    pub fn latest(&self, origin: &str) -> Option<Record> {
        self.lock_state().logs.get(origin).cloned()
    }

    /// Every latest cosigned record, with its origin.
    pub fn all_latest(&self) -> Vec<(String, Record)> {
        self.lock_state()
            .logs
            .iter()
            .map(|(o, r)| (o.clone(), r.clone()))
            .collect()
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, StateFile> {
        // A panic while holding the lock cannot leave the in-memory state
        // half-updated: it is replaced in one assignment after the file.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Handles one `add-checkpoint`: the checks in spec order (see the
    /// module docs), then persist, then cosign at `now` (Unix seconds).
    /// Returns the cosignature lines.
    pub fn add_checkpoint(
        &self,
        req: &AddCheckpoint,
        now: u64,
    ) -> Result<Vec<NoteSignature>, WitnessError> {
        let note = Note::parse(req.note.as_bytes())
            .map_err(|e| WitnessError::Malformed(format!("checkpoint note: {e}")))?;
        let cp =
            Checkpoint::parse(note.text()).map_err(|e| WitnessError::Malformed(e.to_string()))?;
        let log = self
            .logs
            .get(&cp.origin)
            .ok_or_else(|| WitnessError::UnknownOrigin(cp.origin.clone()))?;
        log.verify_log_signature(req.note.as_bytes())
            .map_err(|e| WitnessError::Forbidden(e.to_string()))?;
        if req.old > cp.size.0 {
            return Err(WitnessError::OldTooLarge {
                old: req.old,
                size: cp.size.0,
            });
        }
        let mut state = self.lock_state();
        let prev = state.logs.get(&cp.origin);
        let latest = prev.map_or(0, |r| r.size);
        if req.old != latest {
            return Err(WitnessError::Conflict { latest });
        }
        match prev {
            None => {
                if !req.proof.is_empty() {
                    return Err(WitnessError::BadProof(
                        "the proof must be empty when the old size is 0".into(),
                    ));
                }
                if cp.size.0 == 0 && cp.root != empty_root() {
                    return Err(WitnessError::BadProof(
                        "a size-0 checkpoint must have the empty tree's root".into(),
                    ));
                }
            }
            Some(prev) => {
                let prev_cp = Note::parse(prev.note.as_bytes())
                    .ok()
                    .and_then(|n| Checkpoint::parse(n.text()).ok())
                    .ok_or_else(|| {
                        WitnessError::Storage("stored checkpoint is unreadable".into())
                    })?;
                match LogVerifier::verify_consistency(&prev_cp, &cp, &req.proof) {
                    Ok(()) if cp.size == prev_cp.size && !req.proof.is_empty() => {
                        return Err(WitnessError::BadProof(
                            "the proof must be empty when the sizes are equal".into(),
                        ));
                    }
                    Ok(()) => {}
                    // C2SP tlog-witness (c2sp.org/tlog-witness, "If the old
                    // size matches the checkpoint size, the witness MUST
                    // check that the root hashes are also identical. If they
                    // don't match, the witness MUST respond with a "422
                    // Unprocessable Entity""): two checkpoints the log signed
                    // for one size with different roots. That is evidence:
                    // both carry the log's signature (and only the log's
                    // signature lines are kept, so padding a submission with
                    // other lines does not make it new).
                    Err(VerifyError::SplitView { .. }) => {
                        self.note_evidence(Evidence {
                            kind: EvidenceKind::SplitView,
                            origin: cp.origin.clone(),
                            observed_at: now,
                            source: "add-checkpoint".into(),
                            checkpoints: vec![prev.note.clone(), log_signed(log, &note)?],
                            proof: vec![],
                            detail: format!(
                                "two signed checkpoints for size {} with different roots",
                                cp.size
                            ),
                        });
                        return Err(WitnessError::BadProof(format!(
                            "a different checkpoint of size {} was already cosigned",
                            cp.size
                        )));
                    }
                    // A proof that fails is the submitter's, not the log's
                    // (the log signs checkpoints, never proofs): anyone can
                    // send a real checkpoint with a garbage proof. Refused,
                    // and not recorded as evidence (the spec's "MAY log" is
                    // left to debug logging, so it cannot flood anything).
                    Err(e) => {
                        return Err(WitnessError::BadProof(e.to_string()));
                    }
                }
            }
        }
        // Cosign, then commit the new record, then answer.
        let sig = self.cosigner.cosign(note.text(), now);
        // The stored note keeps only the log's own signature lines plus ours.
        let mut cosigned = Note::parse(log_signed(log, &note)?.as_bytes())
            .map_err(|e| WitnessError::Malformed(e.to_string()))?;
        cosigned
            .push_signature(sig.clone())
            .map_err(|e| WitnessError::Malformed(e.to_string()))?;
        let mut next = state.clone();
        next.logs.insert(
            cp.origin.clone(),
            Record {
                size: cp.size.0,
                root: cp.root.to_base64(),
                note: cosigned.to_string(),
            },
        );
        let bytes =
            serde_json::to_vec_pretty(&next).map_err(|e| WitnessError::Storage(e.to_string()))?;
        // Commit point: durable before the cosignature is returned.
        atomic_write(&self.state_path, &bytes)
            .map_err(|e| WitnessError::Storage(format!("{}: {e}", self.state_path.display())))?;
        *state = next;
        Ok(vec![sig])
    }

    /// Sets who is told of each piece of evidence (the server logs it).
    pub fn set_reporter(&mut self, r: EvidenceReporter) {
        self.reporter = Some(r);
    }

    /// Records evidence and tells the reporter, including when it could
    /// not be saved: it is never silently dropped.
    pub fn note_evidence(&self, e: Evidence) {
        let saved = self.evidence.record(&e);
        if let Some(r) = &self.reporter {
            r(&e, &saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bodies_answer_400() {
        // The wire format's own rules are tested in cairn_core::tlog_witness.
        for bad in ["old 01\n\nx", "old 1", "old 1\nnotbase64\n\nx"] {
            let e = AddCheckpoint::parse(bad.as_bytes()).unwrap_err();
            assert_eq!(WitnessError::from(e).http_status(), 400, "{bad:?}");
        }
    }
}
