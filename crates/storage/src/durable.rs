//! Durable file primitives: every small file Cairn keeps outside its
//! database (signing keys, fork guards, freeze markers, witness and auditor
//! state, evidence, subject keys) is created, replaced and named through
//! these, so that "durable on return" holds under power loss, not only
//! after a process crash.
//!
//! POSIX makes a file's *data* durable with `fsync` of the file, and its
//! *name* durable only with `fsync` of the folder that holds the name
//! (`fsync(2)`: "Calling fsync() does not necessarily ensure that the entry
//! in the directory containing the file has also reached disk. For that an
//! explicit fsync() on a file descriptor for the directory is also
//! needed."). A new folder's own name lives in its parent. The power-loss
//! harness (`crates/powercut`, `tests/power_loss.rs`) holds Cairn to that
//! reading; it found the key and folder creations that had skipped it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The folder that holds `path`'s name (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `fsync` of a folder: the names created, renamed or removed in it are
/// durable on return.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `fsync` of the folder that holds `path`'s name.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    sync_dir(parent_of(path))
}

/// Creates `dir` and its missing ancestors (mode 0777 less the umask), each
/// durably: after each `mkdir`, its parent is synced, so a power cut never
/// takes away a folder that was reported created (and everything in it).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    create_dir_all_mode(dir, 0o777)
}

/// [`create_dir_all`] with the mode of the new folders (less the umask).
pub fn create_dir_all_mode(dir: &Path, mode: u32) -> io::Result<()> {
    // The missing folders, outermost first.
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    for d in missing.iter().rev() {
        match fs::DirBuilder::new().mode(mode).create(d) {
            Ok(()) => {}
            // Made by someone else meanwhile: its creator syncs it.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => continue,
            Err(e) => return Err(e),
        }
        sync_parent(d)?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically and durably. The commit point:
///
/// 1. write `<file>.tmp` and fsync it. A crash here leaves the old file in
///    place and a stray `.tmp`, which the next write truncates.
/// 2. rename it over `<file>`. POSIX rename is atomic: a reader (or a
///    restart) sees the old or the new contents, never a mix.
/// 3. fsync the folder, so the rename itself survives power loss. A crash
///    between 2 and 3 may come back with either version; callers report
///    success only after step 3, so nothing was promised on the new one.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
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
    fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// Creates `path` with `bytes` (mode `mode`) durably, never replacing a
/// file: a temporary file in the same folder, written and synced, then
/// hard-linked to `path` (which fails if `path` exists), then the folder
/// synced. A crash leaves either no `path` or the whole file, never a
/// short one. `Ok(false)`: `path` existed and was left alone.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<bool> {
    let tmp = parent_of(path).join(format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    }
    sync_parent(path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_replaces_and_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        let p = deep.join("key");
        assert!(create_new(&p, b"one", 0o600).unwrap());
        assert!(!create_new(&p, b"two", 0o600).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        replace(&p, b"three").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"three");
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(&deep)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["key"]);
        let f = d.path().join("file");
        fs::write(&f, b"x").unwrap();
        assert!(create_dir_all(&f.join("below")).is_err());
    }
}
