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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// Most new records per origin in [`RATE_WINDOW`]: a log that signs
/// conflicting checkpoints by the thousand (or a flood of them replayed)
/// cannot fill the disk. What is past the limit is still reported to the
/// caller (and so logged), just not stored.
pub const RATE_LIMIT: u32 = 100;
/// The window of [`RATE_LIMIT`].
pub const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// What [`EvidenceLog::record`] did with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Appended and fsynced.
    Stored,
    /// The same conflict is already on file.
    Duplicate,
    /// Not stored: its origin is past [`RATE_LIMIT`] this window.
    RateLimited,
}

/// What makes two records the same: kind, origin, and the checkpoints'
/// bodies (signature lines aside, so that re-signed or padded copies of
/// one conflict are one record).
type Key = (EvidenceKind, String, Vec<String>);

fn key(e: &Evidence) -> Key {
    let bodies = e
        .checkpoints
        .iter()
        .map(|n| match cairn_core::Note::parse(n.as_bytes()) {
            Ok(note) => note.text().to_owned(),
            Err(_) => n.clone(),
        })
        .collect();
    (e.kind, e.origin.clone(), bodies)
}

#[derive(Debug, Default)]
struct State {
    /// Keys of every stored record (read once at open).
    seen: std::collections::HashSet<Key>,
    /// Whether the file ends mid-line (a torn append).
    torn: bool,
    /// New records per origin in the current window: (window start, count).
    recent: std::collections::HashMap<String, (std::time::Instant, u32)>,
}

/// The evidence file: `evidence.jsonl`, append-only.
#[derive(Debug)]
pub struct EvidenceLog {
    path: PathBuf,
    state: Mutex<State>,
    /// Records in the file (read once at open; counted after).
    count: std::sync::atomic::AtomicU64,
}

impl EvidenceLog {
    /// The evidence file in `dir`.
    pub fn new(dir: &Path) -> Self {
        let path = dir.join("evidence.jsonl");
        let existing = read_all(&path).unwrap_or_default();
        let torn = std::fs::read(&path).is_ok_and(|b| b.last().is_some_and(|c| *c != b'\n'));
        let state = State {
            seen: existing.iter().map(key).collect(),
            torn,
            recent: std::collections::HashMap::new(),
        };
        EvidenceLog {
            path,
            state: Mutex::new(state),
            count: std::sync::atomic::AtomicU64::new(existing.len() as u64),
        }
    }

    /// Records in the file, without reading it.
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and fsyncs, unless the same conflict is already
    /// stored (same kind, origin and checkpoint bodies) or the origin is
    /// past [`RATE_LIMIT`]. Constant work per record, whatever the file's
    /// size.
    pub fn record(&self, e: &Evidence) -> std::io::Result<Recorded> {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let k = key(e);
        if st.seen.contains(&k) {
            return Ok(Recorded::Duplicate);
        }
        let now = std::time::Instant::now();
        let slot = st.recent.entry(e.origin.clone()).or_insert((now, 0));
        if now.duration_since(slot.0) >= RATE_WINDOW {
            *slot = (now, 0);
        }
        if slot.1 >= RATE_LIMIT {
            return Ok(Recorded::RateLimited);
        }
        let mut line = Vec::new();
        // After a torn last line (a crash mid-append), start a fresh line so
        // this record is not glued to the fragment.
        if st.torn {
            line.push(b'\n');
        }
        line.extend(serde_json::to_vec(e).map_err(std::io::Error::other)?);
        line.push(b'\n');
        let new_file = !self.path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(&line)?;
        f.sync_all()?;
        if new_file {
            // The file's name is durable only once its folder is synced.
            cairn_storage::durable::sync_parent(&self.path)?;
        }
        st.torn = false;
        st.seen.insert(k);
        if let Some(slot) = st.recent.get_mut(&e.origin) {
            slot.1 += 1;
        }
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Recorded::Stored)
    }

    /// Every record, oldest first. A torn last line (a crash mid-append)
    /// is skipped.
    pub fn list(&self) -> std::io::Result<Vec<Evidence>> {
        let _g = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        read_all(&self.path)
    }
}

fn read_all(path: &Path) -> std::io::Result<Vec<Evidence>> {
    let f = match std::fs::File::open(path) {
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
        assert_eq!(log.record(&e).unwrap(), Recorded::Stored);
        assert_eq!(log.record(&e).unwrap(), Recorded::Duplicate);
        assert_eq!(log.count(), 1);
        // A crash mid-append leaves a torn line; after a restart, the next
        // record starts on a line of its own.
        drop(log);
        std::fs::OpenOptions::new()
            .append(true)
            .open(d.path().join("evidence.jsonl"))
            .unwrap()
            .write_all(b"{\"kind\":\"spl")
            .unwrap();
        let log = EvidenceLog::new(d.path());
        assert_eq!(log.list().unwrap(), vec![e.clone()]);
        assert_eq!(
            log.record(&e).unwrap(),
            Recorded::Duplicate,
            "dedupe survives a restart"
        );
        let mut e2 = e.clone();
        e2.checkpoints.push("c".into());
        assert_eq!(log.record(&e2).unwrap(), Recorded::Stored);
        assert_eq!(log.list().unwrap(), vec![e, e2]);
    }

    #[test]
    fn one_conflict_is_one_record_and_origins_are_rate_limited() {
        let d = tempfile::tempdir().unwrap();
        let log = EvidenceLog::new(d.path());
        let note = |body: &str, sigs: &str| format!("{body}\n\n{sigs}");
        let body = "example.com/log\n20\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let e = |sigs: &str, i: u64| Evidence {
            kind: EvidenceKind::SplitView,
            origin: "example.com/log".into(),
            observed_at: i,
            source: "test".into(),
            checkpoints: vec![
                note(
                    body,
                    "— example.com/log AAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
                ),
                note(body, sigs),
            ],
            proof: vec![],
            detail: "d".into(),
        };
        assert_eq!(log.record(&e("— a AAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 1)).unwrap(), Recorded::Stored);
        // The same bodies with other (ignorable) signature lines: one record.
        for i in 0..50 {
            let pad = format!(
                "— x{i} AAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
            );
            assert_eq!(log.record(&e(&pad, i)).unwrap(), Recorded::Duplicate);
        }
        assert_eq!(log.count(), 1);
        // Distinct conflicts of one origin: at most RATE_LIMIT an hour.
        let mut stored = 1;
        for i in 0..(RATE_LIMIT as u64 + 20) {
            let mut x = e(
                "— a AAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
                i,
            );
            x.checkpoints.push(format!("other {i}"));
            if log.record(&x).unwrap() == Recorded::Stored {
                stored += 1;
            }
        }
        assert_eq!(stored, RATE_LIMIT);
        assert_eq!(log.count(), u64::from(RATE_LIMIT));
    }
}
