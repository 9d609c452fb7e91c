//! Atomic file replacement and single-writer locks for the small state
//! files of witnesses and auditors.
//!
//! [`atomic_write`] is the commit point of every state change here:
//!
//! 1. write `<file>.tmp` and fsync it. A crash here leaves the old file in
//!    place and a stray `.tmp`, which the next write truncates.
//! 2. rename it over `<file>`. POSIX rename is atomic: a reader (or a
//!    restart) sees the old or the new contents, never a mix.
//! 3. fsync the folder, so the rename itself survives power loss. A crash
//!    between 2 and 3 may come back with either version; callers only
//!    report success after step 3, so nothing was promised on the new one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes` atomically and durably (see the module docs).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    File::open(&dir)?.sync_all()
}

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
    std::fs::create_dir_all(dir).map_err(io)?;
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
