//! Evidence of log misbehaviour: signed checkpoints that cannot both be
//! honest, with the proof that failed. Persisted append-only, one JSON
//! object per line, fsynced before it is reported; never dropped.
//!
//! Anyone can re-check an evidence record offline: the checkpoints carry
//! the log's signatures, so the log cannot deny them.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// What kind of misbehaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// Two signed checkpoints of one size with different roots.
    SplitView,
    /// Two signed checkpoints and a consistency proof between them that
    /// fails, or that the log would not produce.
    Inconsistent,
    /// A signed checkpoint smaller than one already trusted.
    Rollback,
    /// A signed checkpoint submitted with a consistency proof that fails.
    /// Weaker than the others: the proof itself is not signed.
    BadProof,
    /// A signed checkpoint that fails the auditor's checks (full audit:
    /// the entries do not hash to its root).
    BadCheckpoint,
}

/// One piece of evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Kind.
    pub kind: EvidenceKind,
    /// The log's origin.
    pub origin: String,
    /// When it was observed (Unix seconds).
    pub observed_at: u64,
    /// Who showed us the conflicting data (e.g. `add-checkpoint`,
    /// `gossip from <peer>`, `auditor`).
    pub source: String,
    /// The signed checkpoint notes involved, verbatim.
    pub checkpoints: Vec<String>,
    /// The failing proof (base64 hashes), if any.
    pub proof: Vec<String>,
    /// A sentence for humans.
    pub detail: String,
}

/// The evidence file: `evidence.jsonl`, append-only.
#[derive(Debug)]
pub struct EvidenceLog {
    path: PathBuf,
    lock: Mutex<()>,
    /// Records in the file (read once at open; counted after).
    count: std::sync::atomic::AtomicU64,
}

impl EvidenceLog {
    /// The evidence file in `dir`.
    pub fn new(dir: &Path) -> Self {
        let mut log = EvidenceLog {
            path: dir.join("evidence.jsonl"),
            lock: Mutex::new(()),
            count: std::sync::atomic::AtomicU64::new(0),
        };
        let n = log.list_unlocked().map_or(0, |l| l.len() as u64);
        *log.count.get_mut() = n;
        log
    }

    /// Records in the file, without reading it.
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and fsyncs. Identical records (same kind, origin
    /// and checkpoints) are stored once.
    pub fn record(&self, e: &Evidence) -> std::io::Result<bool> {
        let _g = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self
            .list_unlocked()?
            .iter()
            .any(|o| o.kind == e.kind && o.origin == e.origin && o.checkpoints == e.checkpoints)
        {
            return Ok(false);
        }
        let mut line = Vec::new();
        // After a torn last line (a crash mid-append), start a fresh line so
        // this record is not glued to the fragment.
        let existing = std::fs::read(&self.path).unwrap_or_default();
        if existing.last().is_some_and(|b| *b != b'\n') {
            line.push(b'\n');
        }
        line.extend(serde_json::to_vec(e).map_err(std::io::Error::other)?);
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(&line)?;
        f.sync_all()?;
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }

    /// Every record, oldest first. A torn last line (a crash mid-append)
    /// is skipped.
    pub fn list(&self) -> std::io::Result<Vec<Evidence>> {
        let _g = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.list_unlocked()
    }

    fn list_unlocked(&self) -> std::io::Result<Vec<Evidence>> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for line in std::io::BufReader::new(f).lines() {
            if let Ok(e) = serde_json::from_str(&line?) {
                out.push(e);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_dedupes_and_survives_a_torn_line() {
        let d = tempfile::tempdir().unwrap();
        let log = EvidenceLog::new(d.path());
        let e = Evidence {
            kind: EvidenceKind::SplitView,
            origin: "o".into(),
            observed_at: 1,
            source: "test".into(),
            checkpoints: vec!["a".into(), "b".into()],
            proof: vec![],
            detail: "d".into(),
        };
        assert!(log.record(&e).unwrap());
        assert!(!log.record(&e).unwrap());
        assert_eq!(log.count(), 1);
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"{\"kind\":\"spl")
            .unwrap();
        assert_eq!(log.list().unwrap(), vec![e.clone()]);
        let mut e2 = e.clone();
        e2.checkpoints.push("c".into());
        assert!(log.record(&e2).unwrap());
        assert_eq!(log.list().unwrap(), vec![e, e2]);
    }
}
