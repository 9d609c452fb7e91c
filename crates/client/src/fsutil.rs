//! Atomic file replacement and single-writer locks for the small state
//! files of witnesses and auditors.
//!
//! [`atomic_write`] (`cairn_storage::durable::replace`: temporary file,
//! fsync, rename, fsync of the folder) is the commit point of every state
//! change here; its docs narrate what a crash at each step leaves.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// Replaces `path` with `bytes` atomically and durably.
pub use cairn_storage::durable::replace as atomic_write;

/// Why a state folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{0} is locked by another process (only one writer may use a state folder)")]
    Held(String),
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Takes an exclusive advisory lock on `<dir>/LOCK`, held while the
/// returned file is open. Creates `dir` if needed.
pub fn lock_dir(dir: &Path) -> Result<File, LockError> {
    let path = dir.join("LOCK");
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    cairn_storage::durable::create_dir_all(dir).map_err(io)?;
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held(path.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_locks() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let _held = lock_dir(d.path()).unwrap();
        let e = lock_dir(d.path()).unwrap_err();
        assert!(e.to_string().contains("locked by another process"), "{e}");
    }
}
