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
//! **How.** After every durable checkpoint, the store rewrites the guard
//! (write a temporary file, fsync it, rename it over the guard, fsync the
//! folder). At start-up the store must hold a tree at least as large as
//! the guard's checkpoint, and the very same signed checkpoint at that
//! size; otherwise it refuses to open, and says why and how to recover.
//!
//! **Crash narration.** A crash before the rename leaves the old guard: it
//! is behind the store, which is safe (the store only has to be *at least*
//! as far), and the next checkpoint or start-up advances it. A crash after
//! the rename but before the folder fsync leaves either the old or the new
//! guard after power loss; both are at or behind the store. A torn
//! temporary file is never read (it is only ever renamed whole).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_core::hash::TreeSize;

use crate::StoreError;
use crate::verify::parse_checkpoint;

const MAGIC: &str = "cairn-fork-guard/v1\n";

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
}

impl ForkGuard {
    /// A guard at `path` (the file need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ForkGuard { path: path.into() }
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
        let note = bytes.strip_prefix(MAGIC.as_bytes()).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "fork guard {} is not a Cairn guard file",
                self.path.display()
            ))
        })?;
        let cp = parse_checkpoint(note)
            .map_err(|e| StoreError::Corrupt(format!("fork guard {}: {e}", self.path.display())))?;
        Ok(Some(GuardRecord {
            size: cp.size,
            note: note.to_vec(),
        }))
    }

    /// Replaces the guard atomically and durably with `note`.
    pub fn write(&self, note: &[u8]) -> Result<(), StoreError> {
        let io = |what: &str, e: std::io::Error| {
            StoreError::Io(format!("{what} fork guard {}: {e}", self.path.display()))
        };
        let mut tmp_name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        tmp_name.push(".tmp");
        let tmp = self.path.with_file_name(tmp_name);
        // 1. Write the new guard to a temporary file and fsync it. A crash
        //    here leaves the old guard untouched.
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| io("creating", e))?;
            f.write_all(MAGIC.as_bytes())
                .map_err(|e| io("writing", e))?;
            f.write_all(note).map_err(|e| io("writing", e))?;
            f.sync_all().map_err(|e| io("syncing", e))?;
        }
        // 2. Rename over the guard: readers see the old file or the new one.
        fs::rename(&tmp, &self.path).map_err(|e| io("replacing", e))?;
        // 3. Fsync the folder so the rename itself survives power loss.
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("syncing the folder of", e))?;
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
