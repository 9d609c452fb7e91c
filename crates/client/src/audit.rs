//! The auditor's logic: a trusted checkpoint kept in a state file, the step
//! from it to a newer checkpoint, and the full audit (every entry
//! re-hashed, parsed as leaf format v1, and re-scanned for raw PII).
//!
//! The transport (gRPC) is the caller's; every function here takes bytes.

use std::collections::HashSet;
use std::path::Path;

use cairn_core::checkpoint::{Checkpoint, VerifiedCheckpoint};
use cairn_core::{Hash, TreeState, leaf_hash};
use cairn_masking::{ContentType, Masker, Policy, TokenKeys};
use serde::{Deserialize, Serialize};

use crate::evidence::{Evidence, EvidenceKind};
use crate::fsutil::atomic_write;
use crate::verify::{LogVerifier, VerifyError};

/// The auditor's trusted checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditState {
    /// Format version (1).
    pub version: u32,
    /// The log's origin.
    pub origin: String,
    /// Trusted tree size.
    pub size: u64,
    /// Trusted root (base64).
    pub root: String,
    /// The signed checkpoint note, verbatim.
    pub note: String,
}

/// The state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Error.
        source: std::io::Error,
    },
    /// Not a state file, or for another log.
    #[error("{path}: {message}")]
    Invalid {
        /// File.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl AuditState {
    /// Loads the state file; `None` if it does not exist yet. The stored
    /// checkpoint is re-verified with `verifier` (log signature only: the
    /// quorum was checked when it was trusted).
    pub fn load(path: &Path, verifier: &LogVerifier) -> Result<Option<AuditState>, StateError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let invalid = |message: String| StateError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let s: AuditState = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("not an audit state file: {e}")))?;
        if s.version != 1 {
            return Err(invalid(format!("state version {} is not 1", s.version)));
        }
        if s.origin != verifier.origin() {
            return Err(invalid(format!(
                "the state is for log {:?}, not {:?}",
                s.origin,
                verifier.origin()
            )));
        }
        let v = verifier
            .verify_log_signature(s.note.as_bytes())
            .map_err(|e| invalid(format!("stored checkpoint does not verify: {e}")))?;
        if v.checkpoint.size.0 != s.size || v.checkpoint.root.to_base64() != s.root {
            return Err(invalid(
                "size or root disagrees with the stored note".into(),
            ));
        }
        Ok(Some(s))
    }

    /// The state for a verified checkpoint.
    pub fn from_verified(v: &VerifiedCheckpoint, note: &str) -> Self {
        AuditState {
            version: 1,
            origin: v.checkpoint.origin.clone(),
            size: v.checkpoint.size.0,
            root: v.checkpoint.root.to_base64(),
            note: note.to_owned(),
        }
    }

    /// Replaces the state file atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| StateError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        atomic_write(path, &bytes).map_err(|source| StateError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// The trusted checkpoint body.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        let n = cairn_core::Note::parse(self.note.as_bytes()).ok()?;
        Checkpoint::parse(n.text()).ok()
    }
}

/// A verification failure, with the evidence to write.
#[derive(Debug, Clone)]
pub struct AuditFailure {
    /// What failed.
    pub error: VerifyError,
    /// Both signed checkpoints (where there are two) and the failing proof.
    pub evidence: Evidence,
}

/// Checks that `new_note` (already verified as `new`) extends the trusted
/// state with `proof` (the log's consistency proof from the trusted size
/// to the new one; empty when the sizes are equal or nothing is trusted).
pub fn check_advance(
    trusted: Option<&AuditState>,
    new: &VerifiedCheckpoint,
    new_note: &str,
    proof: &[Hash],
    now: u64,
) -> Result<(), Box<AuditFailure>> {
    let Some(t) = trusted else { return Ok(()) };
    let Some(old) = t.checkpoint() else {
        return Ok(());
    };
    LogVerifier::verify_consistency(&old, &new.checkpoint, proof).map_err(|error| {
        Box::new({
            let kind = match error {
                VerifyError::SplitView { .. } => EvidenceKind::SplitView,
                VerifyError::Rollback { .. } => EvidenceKind::Rollback,
                _ => EvidenceKind::Inconsistent,
            };
            AuditFailure {
                evidence: Evidence {
                    kind,
                    origin: new.checkpoint.origin.clone(),
                    observed_at: now,
                    source: "auditor".into(),
                    checkpoints: vec![t.note.clone(), new_note.to_owned()],
                    proof: proof.iter().map(Hash::to_base64).collect(),
                    detail: format!(
                        "trusted size {} and offered size {} do not form one history: {error}",
                        old.size, new.checkpoint.size
                    ),
                },
                error,
            }
        })
    })
}

/// Raw PII found in a stored entry: where and what, never the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrivacyFinding {
    /// Entry index.
    pub index: u64,
    /// RFC 6901 pointer into the entry's body.
    pub pointer: String,
    /// Detector that fired.
    pub detector: String,
}

/// A leaf that is not leaf format v1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MalformedLeaf {
    /// Entry index.
    pub index: u64,
    /// Why.
    pub reason: String,
}

/// The full audit: fed every entry in index order, it recomputes the tree
/// root, checks leaf format v1 and re-scans bodies with the built-in
/// detectors.
pub struct FullAudit {
    tree: TreeState,
    batch: Vec<Hash>,
    next: u64,
    masker: Masker,
    /// Raw PII found, in index order.
    pub findings: Vec<PrivacyFinding>,
    /// Leaves that are not leaf format v1.
    pub malformed: Vec<MalformedLeaf>,
}

/// The full audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum FullAuditError {
    /// Entries out of order.
    #[error("expected entry {expected}, got {got}")]
    OutOfOrder {
        /// Expected index.
        expected: u64,
        /// Index received.
        got: u64,
    },
    /// Internal (tree or masker setup).
    #[error("{0}")]
    Internal(String),
}

impl FullAudit {
    /// A fresh audit with the built-in detector set.
    pub fn new(origin: &str) -> Result<Self, FullAuditError> {
        let policy =
            Policy::default_policy().map_err(|e| FullAuditError::Internal(e.to_string()))?;
        let masker = Masker::new(policy, &TokenKeys::new(), origin)
            .map_err(|e| FullAuditError::Internal(e.to_string()))?;
        Ok(FullAudit {
            tree: TreeState::empty(),
            batch: Vec::with_capacity(4096),
            next: 0,
            masker,
            findings: Vec::new(),
            malformed: Vec::new(),
        })
    }

    /// Entries seen so far.
    pub fn count(&self) -> u64 {
        self.next
    }

    /// Feeds entry `index` (must be the next one).
    pub fn push(&mut self, index: u64, leaf: &[u8]) -> Result<(), FullAuditError> {
        if index != self.next {
            return Err(FullAuditError::OutOfOrder {
                expected: self.next,
                got: index,
            });
        }
        self.next += 1;
        self.batch.push(leaf_hash(leaf));
        if self.batch.len() == 4096 {
            self.flush()?;
        }
        match scan_leaf(&self.masker, leaf) {
            Ok(found) => self
                .findings
                .extend(found.into_iter().map(|(pointer, detector)| PrivacyFinding {
                    index,
                    pointer,
                    detector,
                })),
            Err(reason) => self.malformed.push(MalformedLeaf { index, reason }),
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), FullAuditError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let integ = self
            .tree
            .integrate(&self.batch)
            .map_err(|e| FullAuditError::Internal(e.to_string()))?;
        self.tree = integ.state;
        self.batch.clear();
        Ok(())
    }

    /// The root of every entry fed so far.
    pub fn root(&mut self) -> Result<Hash, FullAuditError> {
        self.flush()?;
        Ok(self.tree.root())
    }
}

/// Checks one leaf against leaf format v1 and re-scans its body with the
/// built-in detectors. Returns `(pointer, detector)` for every detection
/// that the leaf's own `masked` list does not account for. A field the
/// list says was encrypted holds `enc:` values (ciphertext, whatever a
/// detector makes of it), and the log's own records (erasure, access)
/// must be well formed.
pub fn scan_leaf(masker: &Masker, leaf: &[u8]) -> Result<Vec<(String, String)>, String> {
    if !leaf.starts_with(b"{\"body\":") {
        return Err("does not start with {\"body\": (keys must be sorted, no whitespace)".into());
    }
    let v: serde_json::Value =
        serde_json::from_slice(leaf).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    if keys != ["body", "masked", "policy", "ts", "v"] {
        return Err(format!(
            "keys are {keys:?}, expected body, masked, policy, ts, v"
        ));
    }
    if obj["v"].as_u64() != Some(1) {
        return Err("v is not 1".into());
    }
    if obj["ts"].as_u64().is_none() {
        return Err("ts is not a non-negative integer".into());
    }
    let policy = obj["policy"].as_str().unwrap_or_default();
    if policy.len() != 64
        || !policy
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err("policy is not a 64-digit lowercase hex digest".into());
    }
    let mut masked: HashSet<(String, String)> = HashSet::new();
    let mut sealed: HashSet<String> = HashSet::new();
    for m in obj["masked"].as_array().ok_or("masked is not an array")? {
        let t = m
            .as_array()
            .filter(|a| a.len() == 3 && a.iter().all(serde_json::Value::is_string))
            .ok_or("masked entries must be [pointer, detector, action]")?;
        let pointer = t[0].as_str().unwrap_or_default().to_owned();
        if t[2].as_str() == Some("encrypt") {
            sealed.insert(pointer.clone());
        }
        masked.insert((pointer, t[1].as_str().unwrap_or_default().to_owned()));
    }
    let body = &obj["body"];
    if cairn_masking::records::parse_record(body)?.is_some() {
        // A record's structural members are the log's own (a key id, a
        // pointer); its free text was masked like any event's.
        sealed.insert("/_cairn_record/subject".into());
        sealed.insert("/_cairn_record/pointer".into());
    }
    for p in sealed.iter().filter(|p| !p.starts_with("/_cairn_record/")) {
        let ok = body
            .pointer(p)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|s| !cairn_masking::seal::find_sealed(s).is_empty());
        if !ok {
            return Err(format!(
                "masked says {p:?} was encrypted, but it holds no enc: value"
            ));
        }
    }
    let scanned = match body {
        serde_json::Value::String(s) => {
            masker.mask(s.as_bytes(), ContentType::Text, 0, &mut || [0u8; 16])
        }
        serde_json::Value::Object(_) => {
            let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
            masker.mask(&bytes, ContentType::Json, 0, &mut || [0u8; 16])
        }
        _ => return Err("body is neither an object nor a string".into()),
    }
    .map_err(|e| format!("body does not re-scan: {e}"))?;
    Ok(scanned
        .decisions
        .into_iter()
        .map(|d| (d.pointer, d.detector.into_owned()))
        .filter(|k| !masked.contains(k) && !sealed.contains(&k.0))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker() -> Masker {
        Masker::new(Policy::default_policy().unwrap(), &TokenKeys::new(), "o").unwrap()
    }

    #[test]
    fn a_masked_leaf_is_clean_and_a_raw_one_is_reported_without_its_value() {
        let m = masker();
        let masked = m
            .mask(
                br#"{"user":"ana@example.com","card":"4111 1111 1111 1111","note":"hi"}"#,
                ContentType::Json,
                5,
                &mut || [1; 16],
            )
            .unwrap();
        assert_eq!(scan_leaf(&m, &masked.leaf).unwrap(), vec![]);
        let raw = br#"{"body":{"note":"mail bob@example.org"},"masked":[],"policy":"0c707923d7d2c1e1f5b6a1e1d1c1b1a19181716151413121110f0e0d0c0badde","ts":1,"v":1}"#;
        let found = scan_leaf(&m, raw).unwrap();
        assert_eq!(found, vec![("/note".to_owned(), "email".to_owned())]);
        assert!(!format!("{found:?}").contains("bob@"));
    }

    #[test]
    fn malformed_leaves_say_why() {
        let m = masker();
        for (leaf, needle) in [
            (&br#"{"v":1}"#[..], "sorted"),
            (br#"{"body":{},"masked":[],"policy":"x","ts":1,"v":1}"#, "policy"),
            (br#"{"body":{},"masked":[],"policy":"0c707923d7d2c1e1f5b6a1e1d1c1b1a19181716151413121110f0e0d0c0badde","ts":1,"v":2}"#, "v is not 1"),
            (br#"{"body":{},"extra":1}"#, "keys"),
            (br#"{"body":{"#, "not JSON"),
        ] {
            let e = scan_leaf(&m, leaf).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }

    struct OneKey;
    impl cairn_masking::SubjectKeys for OneKey {
        fn data_key(
            &mut self,
            _: &str,
        ) -> Result<
            Option<(cairn_masking::KeyId, cairn_masking::seal::DataKey)>,
            cairn_masking::SubjectKeyError,
        > {
            Ok(Some((
                cairn_masking::KeyId::from_bytes(&[3; 16]),
                zeroize::Zeroizing::new([4; 32]),
            )))
        }
    }

    #[test]
    fn encrypted_values_and_records_pass_and_forged_ones_do_not() {
        let m = masker();
        let enc = Masker::new(
            Policy::from_toml("p", "version = 1\n[detectors]\nemail = \"encrypt\"\n").unwrap(),
            &TokenKeys::new(),
            "o",
        )
        .unwrap();
        let leaf = enc
            .mask_sealed(
                br#"{"user":"ana@example.com"}"#,
                ContentType::Json,
                1,
                &mut || [9u8; 16],
                &mut OneKey,
            )
            .unwrap()
            .leaf;
        assert_eq!(scan_leaf(&m, &leaf).unwrap(), vec![]);
        // `masked` claims encrypt where there is no sealed value.
        let text = String::from_utf8(leaf).unwrap();
        let forged = text.replacen("enc:", "xyz:", 1);
        assert!(
            scan_leaf(&m, forged.as_bytes())
                .unwrap_err()
                .contains("no enc: value")
        );
        // Records: well formed passes, malformed is reported.
        let rm = cairn_masking::records::record_masker("o").unwrap();
        let kid = cairn_masking::KeyId::from_bytes(&[1; 16]);
        let rec = cairn_masking::records::record_leaf(
            &rm,
            &cairn_masking::records::Record::Erasure {
                subject: &kid,
                by: "dpo",
                reason: "asked by ana@example.com",
            },
            5,
        )
        .unwrap()
        .leaf;
        assert_eq!(scan_leaf(&m, &rec).unwrap(), vec![]);
        let bad = String::from_utf8(rec)
            .unwrap()
            .replace(kid.as_str(), "not-a-key-id");
        assert!(
            scan_leaf(&m, bad.as_bytes())
                .unwrap_err()
                .contains("key id")
        );
    }
}
