//! The fork guard: a small file holding the last checkpoint the log signed
//! and stored, kept *outside* the data folder by default.
//!
//! **The danger it stops.** Restore last week's backup of the data folder
//! and start the log: it is now at an older size, and the next batch would
//! be signed at sizes the log already signed last week with *different*
//! entries. Two signed checkpoints for one size with two roots is a fork:
//! every witness and auditor that saw the old one will report the log as
//! compromised, and they would be right.
//!
//! **How.** After every durable checkpoint, the store records it in the
//! guard. At start-up the store must hold a tree at least as large as the
//! guard's checkpoint, and the very same signed checkpoint at that size;
//! otherwise it refuses to open, and says why and how to recover.
//!
//! **Format (v2): two slots, written in place.** The file is two 4 KiB
//! slots. Each holds `cairn-fork-guard/v2\n`, a sequence number (u64 BE),
//! the note's length (u32 BE), CRC-32 (IEEE) of sequence ‖ length ‖ note
//! (u32 BE) and the note (a checksum against torn writes, not a tree hash:
//! storage never hashes the tree). A
//! write goes to the slot *not* holding the newest record, then one
//! `fdatasync`; reading takes the valid slot with the higher sequence. No
//! rename, no unlink, no folder sync: one data sync per checkpoint, where
//! the v1 scheme (temporary file, fsync, rename, fsync the folder) cost two
//! syncs and journal traffic that stalled the log's own WAL syncs on this
//! box (tens to hundreds of milliseconds, docs/benchmarks.md).
//!
//! **Crash narration.** A crash during a slot write can tear only that
//! slot: its checksum fails and the other slot (the previous record) is
//! read, which is at or behind the store: safe, since the store only has to
//! be *at least* as far, and the next checkpoint or start-up advances it. A
//! crash after the write but before the sync leaves the old or the new
//! record; both are at or behind the store. The file is created whole
//! (temporary file, fsync, rename, fsync the folder) the first time, so a
//! half-created guard is never read. v1 files are still read, and replaced
//! by a v2 file at the next write.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_core::hash::TreeSize;

use crate::StoreError;
use crate::verify::parse_checkpoint;

const MAGIC_V1: &str = "cairn-fork-guard/v1\n";
const MAGIC: &[u8; 20] = b"cairn-fork-guard/v2\n";
/// Bytes per slot; a file is exactly two.
const SLOT: usize = 4096;
/// Magic, sequence, length, checksum.
const HEADER: usize = 20 + 8 + 4 + 4;
/// The largest note a slot holds.
pub const MAX_GUARD_NOTE: usize = SLOT - HEADER;

fn slot_checksum(seq: u64, note: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_be_bytes());
    h.update(&(note.len() as u32).to_be_bytes());
    h.update(note);
    h.finalize()
}

fn encode_slot(seq: u64, note: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(SLOT);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&(note.len() as u32).to_be_bytes());
    b.extend_from_slice(&slot_checksum(seq, note).to_be_bytes());
    b.extend_from_slice(note);
    b.resize(SLOT, 0);
    b
}

/// A valid slot's sequence and note; `None` for a torn or empty slot.
fn decode_slot(b: &[u8]) -> Option<(u64, &[u8])> {
    let rest = b.strip_prefix(MAGIC.as_slice())?;
    let (seq, rest) = rest.split_first_chunk::<8>()?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let (sum, rest) = rest.split_first_chunk::<4>()?;
    let seq = u64::from_be_bytes(*seq);
    let note = rest.get(..u32::from_be_bytes(*len) as usize)?;
    (slot_checksum(seq, note) == u32::from_be_bytes(*sum)).then_some((seq, note))
}

/// The checkpoint recorded in a guard file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardRecord {
    /// Its tree size.
    pub size: TreeSize,
    /// The signed note, byte for byte.
    pub note: Vec<u8>,
}

/// A fork-guard file at a path.
#[derive(Clone, Debug)]
pub struct ForkGuard {
    path: PathBuf,
    /// The newest slot's sequence number, once known (0: read the file).
    seq: Arc<AtomicU64>,
}

impl ForkGuard {
    /// A guard at `path` (the file need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ForkGuard {
            path: path.into(),
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The default guard path for a data folder: a sibling file
    /// `<folder>.guard`, so that a backup of the folder does not carry it.
    pub fn default_path(data_dir: &Path) -> PathBuf {
        let mut name = data_dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "cairn-data".into());
        name.push(".guard");
        data_dir.with_file_name(name)
    }

    /// The guard's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the guard. A missing file is `None` (a new log); a file that
    /// cannot be parsed is an error, never silently ignored.
    pub fn read(&self) -> Result<Option<GuardRecord>, StoreError> {
        Ok(self.read_slot()?.map(|(_, r)| r))
    }

    /// The newest record and its sequence number (0 for a v1 file).
    fn read_slot(&self) -> Result<Option<(u64, GuardRecord)>, StoreError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Io(format!(
                    "reading fork guard {}: {e}",
                    self.path.display()
                )));
            }
        };
        let corrupt =
            |why: String| StoreError::Corrupt(format!("fork guard {}: {why}", self.path.display()));
        let (seq, note) = if let Some(note) = bytes.strip_prefix(MAGIC_V1.as_bytes()) {
            (0, note)
        } else if bytes.len() == 2 * SLOT
            && (bytes.starts_with(MAGIC) || bytes[SLOT..].starts_with(MAGIC))
        {
            let (a, b) = bytes.split_at(SLOT);
            match (decode_slot(a), decode_slot(b)) {
                (Some(x), Some(y)) => {
                    if x.0 >= y.0 {
                        x
                    } else {
                        y
                    }
                }
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => return Err(corrupt("both slots are damaged".into())),
            }
        } else {
            return Err(corrupt("not a Cairn guard file".into()));
        };
        let cp = parse_checkpoint(note).map_err(|e| corrupt(e.to_string()))?;
        Ok(Some((
            seq,
            GuardRecord {
                size: cp.size,
                note: note.to_vec(),
            },
        )))
    }

    /// Records `note` durably: in place, in the older slot, then one
    /// `fdatasync` (see the module docs). The first write, or the first
    /// after a v1 file, creates the two-slot file whole.
    pub fn write(&self, note: &[u8]) -> Result<(), StoreError> {
        let io = |what: &str, e: std::io::Error| {
            StoreError::Io(format!("{what} fork guard {}: {e}", self.path.display()))
        };
        if note.len() > MAX_GUARD_NOTE {
            return Err(StoreError::Io(format!(
                "checkpoint note of {} bytes does not fit the fork guard's {MAX_GUARD_NOTE}-byte slot",
                note.len()
            )));
        }
        let mut seq = self.seq.load(Ordering::Acquire);
        if seq == 0 {
            seq = match self.read_slot() {
                Ok(Some((s, _))) => s,
                Ok(None) | Err(_) => 0,
            };
        }
        if seq == 0 {
            return self.create(note);
        }
        let next = seq + 1;
        let f = match OpenOptions::new().write(true).open(&self.path) {
            Ok(f) => f,
            // Deleted while running: create it anew rather than stop the log.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.create(note),
            Err(e) => return Err(io("opening", e)),
        };
        // Commit point: the slot write plus its data sync. A crash before
        // the sync completes leaves the other slot (the previous record).
        f.write_all_at(&encode_slot(next, note), (next % 2) * SLOT as u64)
            .map_err(|e| io("writing", e))?;
        f.sync_data().map_err(|e| io("syncing", e))?;
        self.seq.store(next, Ordering::Release);
        Ok(())
    }

    /// Creates the two-slot file whole: temporary file, fsync, rename,
    /// fsync the folder. A crash before the rename leaves the old file (or
    /// none); a torn temporary file is never read.
    fn create(&self, note: &[u8]) -> Result<(), StoreError> {
        let io = |what: &str, e: std::io::Error| {
            StoreError::Io(format!("{what} fork guard {}: {e}", self.path.display()))
        };
        // Sequence 1 in slot 1; slot 0 stays empty until the next write.
        let mut both = vec![0u8; SLOT];
        both.extend_from_slice(&encode_slot(1, note));
        crate::durable::replace(&self.path, &both).map_err(|e| io("creating", e))?;
        self.seq.store(1, Ordering::Release);
        Ok(())
    }

    /// Checks a store against the guard at start-up.
    ///
    /// * `stored_size`: the store's durable tree size;
    /// * `checkpoint_at(size)`: the store's checkpoint note for a size.
    ///
    /// Returns the guard record (if any) so the caller can advance it.
    pub fn check(
        &self,
        data_dir: &Path,
        stored_size: TreeSize,
        checkpoint_at: &dyn Fn(TreeSize) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Option<GuardRecord>, StoreError> {
        let Some(g) = self.read()? else {
            return Ok(None);
        };
        if stored_size < g.size {
            return Err(StoreError::ForkGuard(format!(
                "refusing to start: the store in {dir} holds {stored} leaves, but the fork guard \
                 {guard} records a checkpoint this log already signed at size {gs}. The data \
                 folder is older than what the log has published (was it restored from a \
                 backup?). Signing from here would give sizes {next}..={gs} a second, different \
                 history: a fork that witnesses and auditors will report. To recover, restore a \
                 copy of the data folder that reaches size {gs} or later. If no such copy \
                 exists, this log cannot continue: freeze it and start a new log with a new \
                 origin and key. Do not delete the guard file to get past this check.",
                dir = data_dir.display(),
                stored = stored_size,
                guard = self.path.display(),
                gs = g.size,
                next = stored_size.0 + 1,
            )));
        }
        match checkpoint_at(g.size)? {
            Some(note) if note == g.note => Ok(Some(g)),
            other => Err(StoreError::ForkGuard(format!(
                "refusing to start: the store in {dir} {what} the fork guard {guard} \
                 records at size {gs}. The store and the guard describe different histories (a store from \
                 another log, or one restored and then written to). Signing from here could \
                 fork the log. Point Cairn at the data folder that belongs with this guard, \
                 or, if this store is the right one, find out what happened before replacing \
                 the guard.",
                dir = data_dir.display(),
                what = if other.is_some() {
                    "holds a different signed checkpoint from the one"
                } else {
                    "does not hold the signed checkpoint"
                },
                gs = g.size,
                guard = self.path.display(),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn note(size: u64) -> Vec<u8> {
        let signer = cairn_core::NoteSigner::from_seed("example.com/log", &[1; 32]).unwrap();
        cairn_core::Checkpoint {
            origin: "example.com/log".into(),
            size: TreeSize(size),
            root: cairn_core::Hash([size as u8; 32]),
            extensions: vec![],
        }
        .sign(&signer)
        .unwrap()
        .into_bytes()
    }

    #[test]
    fn slots_alternate_and_a_torn_slot_falls_back_to_the_other() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("g");
        let g = ForkGuard::new(&path);
        assert_eq!(g.read().unwrap(), None);
        for size in 1..=5 {
            g.write(&note(size)).unwrap();
            assert_eq!(g.read().unwrap().unwrap().size, TreeSize(size));
            assert_eq!(fs::metadata(&path).unwrap().len(), 2 * SLOT as u64);
        }
        // A fresh handle (a restart) continues the sequence.
        let g2 = ForkGuard::new(&path);
        g2.write(&note(6)).unwrap();
        assert_eq!(g2.read().unwrap().unwrap().size, TreeSize(6));
        // Tear the newest slot (sequence 6, slot 0): the previous record
        // comes back, which is behind the store and so safe.
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER + 3] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(
            ForkGuard::new(&path).read().unwrap().unwrap().size,
            TreeSize(5)
        );
        // Both torn: an error, never an empty guard.
        bytes[SLOT + HEADER + 3] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            ForkGuard::new(&path).read(),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_v1_guard_is_read_and_upgraded() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("g");
        let mut v1 = MAGIC_V1.as_bytes().to_vec();
        v1.extend(note(3));
        fs::write(&path, v1).unwrap();
        let g = ForkGuard::new(&path);
        assert_eq!(g.read().unwrap().unwrap().size, TreeSize(3));
        g.write(&note(4)).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 2 * SLOT as u64);
        assert_eq!(g.read().unwrap().unwrap().size, TreeSize(4));
        // Deleted while running: the next write recreates it.
        fs::remove_file(&path).unwrap();
        g.write(&note(5)).unwrap();
        assert_eq!(g.read().unwrap().unwrap().size, TreeSize(5));
    }
}
