//! The file system's state: what a program sees (`live`), what would
//! survive a power cut (`durable`, kept in the backing folder), and the
//! operations in between (`pending`), in the order they were made.
//!
//! # The durability model
//!
//! The model is the strict reading of POSIX that ALICE and LazyFS test
//! against (Pillai et al., OSDI 2014), not the kindest file system:
//!
//! | operation | durable once |
//! | --- | --- |
//! | `write`, `truncate`, `fallocate`, `chmod` of a file | that file is `fsync`ed or `fdatasync`ed (or was opened `O_SYNC`/`O_DSYNC`) |
//! | create, `mkdir`, `link`, `unlink`, `rmdir`, `rename` in one folder | that folder is `fsync`ed |
//! | `rename` across folders | each half when its own folder is `fsync`ed (the name may exist in both, or neither) |
//! | `sync_file_range`, `sync`, `syncfs`, `close` | never (they do not reach a FUSE file system as a sync) |
//!
//! So an `fsync` of a new file does not make its name durable (ext4 often
//! does; POSIX does not promise it), and a file whose name was made durable
//! before its data comes back empty. A cut drops every pending operation
//! ([`Cut::DropAll`]), or keeps a random prefix of them in the order they
//! were made ([`Cut::KeepPrefix`]: the disk wrote some of its cache back,
//! in order, before the power went).
//!
//! What it does not model: torn sectors (an operation is applied whole or
//! not at all), a disk that lies about its own flushes, reordering beyond
//! a prefix, extended attributes, symbolic links.
//!
//! # The backing folder
//!
//! `data/<inode>` holds the durable bytes of each file; `namespace.json`
//! the durable folders (name -> inode) and modes, replaced by write +
//! rename. Because only durable state is ever written there, killing the
//! process that serves the mount loses exactly what a power cut loses.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// An inode number. The root folder is [`ROOT`].
pub type Ino = u64;

/// The root folder's inode number (FUSE's).
pub const ROOT: Ino = 1;

/// An error a file system operation answers, as an errno value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// No such file or folder.
    pub const NOENT: Errno = Errno(libc::ENOENT);
    /// Exists already.
    pub const EXIST: Errno = Errno(libc::EEXIST);
    /// Not a folder.
    pub const NOTDIR: Errno = Errno(libc::ENOTDIR);
    /// Is a folder.
    pub const ISDIR: Errno = Errno(libc::EISDIR);
    /// Folder not empty.
    pub const NOTEMPTY: Errno = Errno(libc::ENOTEMPTY);
    /// Invalid argument (e.g. a name that is not UTF-8).
    pub const INVAL: Errno = Errno(libc::EINVAL);
    /// Not supported by this model.
    pub const OPNOTSUPP: Errno = Errno(libc::EOPNOTSUPP);
    /// The backing folder failed.
    pub const IO: Errno = Errno(libc::EIO);
}

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

/// What a folder entry or inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
}

/// What `stat` shows of an inode.
#[derive(Clone, Copy, Debug)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// File or folder.
    pub kind: Kind,
    /// Size in bytes (files) or entries (folders).
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Hard links.
    pub nlink: u32,
    /// Last change of contents.
    pub mtime: SystemTime,
}

enum Body {
    File(Vec<u8>),
    Dir(BTreeMap<String, Ino>),
}

struct Node {
    body: Body,
    mode: u32,
    nlink: u32,
    mtime: SystemTime,
    /// Folders: the folder they are in (for `..`).
    parent: Ino,
    /// Open handles; an unlinked file lives until the last is released.
    open: u32,
}

/// One change not yet durable. Each belongs to one inode, its *target*:
/// the file for data changes, the folder for name changes; a sync of the
/// target makes it durable.
#[derive(Clone, Debug)]
enum Op {
    Write {
        ino: Ino,
        off: u64,
        data: Vec<u8>,
    },
    SetLen {
        ino: Ino,
        len: u64,
    },
    SetMode {
        ino: Ino,
        mode: u32,
    },
    Link {
        dir: Ino,
        name: String,
        ino: Ino,
        kind: Kind,
        mode: u32,
    },
    Unlink {
        dir: Ino,
        name: String,
    },
    Rename {
        dir: Ino,
        from: String,
        to: String,
    },
}

impl Op {
    fn target(&self) -> Ino {
        match self {
            Op::Write { ino, .. } | Op::SetLen { ino, .. } | Op::SetMode { ino, .. } => *ino,
            Op::Link { dir, .. } | Op::Unlink { dir, .. } | Op::Rename { dir, .. } => *dir,
        }
    }
}

/// The durable folders and modes (`namespace.json`).
#[derive(Default, Serialize, Deserialize)]
struct Namespace {
    dirs: BTreeMap<Ino, BTreeMap<String, Ino>>,
    modes: BTreeMap<Ino, u32>,
    next_ino: Ino,
}

/// How a power cut treats the operations not yet durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Every one is lost.
    DropAll,
    /// The first `n` (in the order they were made) reached the disk.
    KeepPrefix(usize),
}

/// Counters for the report a cut prints.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// `fsync`/`fdatasync` of files (and `O_SYNC` writes).
    pub file_syncs: u64,
    /// `fsync` of folders.
    pub dir_syncs: u64,
    /// Operations made durable by a sync.
    pub synced_ops: u64,
    /// Operations not durable right now.
    pub pending_ops: usize,
}

/// The whole file system.
pub struct State {
    backing: PathBuf,
    live: HashMap<Ino, Node>,
    next_ino: Ino,
    ns: Namespace,
    pending: BTreeMap<u64, Op>,
    by_target: HashMap<Ino, Vec<u64>>,
    seq: u64,
    /// A broken disk for the harness's own test: syncs answer success and
    /// make nothing durable.
    lie: bool,
    stats: Stats,
}

fn data_path(backing: &Path, ino: Ino) -> PathBuf {
    backing.join("data").join(ino.to_string())
}

impl State {
    /// Mounts what is durable in `backing` (an empty or new folder is an
    /// empty file system). Files no durable folder names are removed.
    pub fn load(backing: &Path, lie: bool) -> io::Result<State> {
        fs::create_dir_all(backing.join("data"))?;
        let mut ns: Namespace = match fs::read(backing.join("namespace.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(io::Error::other)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Namespace::default(),
            Err(e) => return Err(e),
        };
        ns.dirs.entry(ROOT).or_default();
        ns.modes.entry(ROOT).or_insert(0o755);
        // Reachable inodes from the root; their parents (folders).
        let mut parent: HashMap<Ino, Ino> = HashMap::from([(ROOT, ROOT)]);
        let mut links: HashMap<Ino, u32> = HashMap::new();
        let mut todo = vec![ROOT];
        while let Some(d) = todo.pop() {
            for &ino in ns.dirs.get(&d).map(|m| m.values()).into_iter().flatten() {
                *links.entry(ino).or_default() += 1;
                if let std::collections::hash_map::Entry::Vacant(v) = parent.entry(ino) {
                    v.insert(d);
                    if ns.dirs.contains_key(&ino) {
                        todo.push(ino);
                    }
                }
            }
        }
        ns.dirs.retain(|d, _| parent.contains_key(d));
        ns.modes.retain(|i, _| parent.contains_key(i));
        let mut max_ino = ns.next_ino.max(ROOT + 1);
        for e in fs::read_dir(backing.join("data"))? {
            let e = e?;
            let ino: Option<Ino> = e.file_name().to_str().and_then(|s| s.parse().ok());
            match ino {
                Some(i) if parent.contains_key(&i) && !ns.dirs.contains_key(&i) => {
                    max_ino = max_ino.max(i + 1)
                }
                Some(i) => {
                    max_ino = max_ino.max(i + 1);
                    fs::remove_file(e.path())?;
                }
                None => fs::remove_file(e.path())?,
            }
        }
        let now = SystemTime::now();
        let mut live = HashMap::new();
        for (&ino, &par) in &parent {
            max_ino = max_ino.max(ino + 1);
            let body = match ns.dirs.get(&ino) {
                Some(entries) => Body::Dir(entries.clone()),
                None => match fs::read(data_path(backing, ino)) {
                    Ok(b) => Body::File(b),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Body::File(Vec::new()),
                    Err(e) => return Err(e),
                },
            };
            let dir = matches!(body, Body::Dir(_));
            live.insert(
                ino,
                Node {
                    body,
                    mode: ns.modes.get(&ino).copied().unwrap_or(0o644),
                    nlink: if dir {
                        2
                    } else {
                        links.get(&ino).copied().unwrap_or(1)
                    },
                    mtime: now,
                    parent: par,
                    open: 0,
                },
            );
        }
        ns.next_ino = max_ino;
        let mut st = State {
            backing: backing.to_owned(),
            live,
            next_ino: max_ino,
            ns,
            pending: BTreeMap::new(),
            by_target: HashMap::new(),
            seq: 0,
            lie,
            stats: Stats::default(),
        };
        st.write_namespace()?;
        Ok(st)
    }

    fn write_namespace(&mut self) -> io::Result<()> {
        self.ns.next_ino = self.ns.next_ino.max(self.next_ino);
        let tmp = self.backing.join("namespace.json.tmp");
        fs::write(
            &tmp,
            serde_json::to_vec(&self.ns).map_err(io::Error::other)?,
        )?;
        fs::rename(&tmp, self.backing.join("namespace.json"))
    }

    fn push(&mut self, op: Op) {
        self.seq += 1;
        self.by_target
            .entry(op.target())
            .or_default()
            .push(self.seq);
        self.pending.insert(self.seq, op);
    }

    /// Applies operations to the backing folder, in order.
    fn apply(&mut self, ops: Vec<Op>) -> io::Result<()> {
        let mut ns_dirty = false;
        for op in ops {
            match op {
                Op::Write { ino, off, data } => {
                    let f = fs::OpenOptions::new()
                        .create(true)
                        .write(true)
                        .truncate(false)
                        .open(data_path(&self.backing, ino))?;
                    f.write_all_at(&data, off)?;
                }
                Op::SetLen { ino, len } => {
                    fs::OpenOptions::new()
                        .create(true)
                        .write(true)
                        .truncate(false)
                        .open(data_path(&self.backing, ino))?
                        .set_len(len)?;
                }
                Op::SetMode { ino, mode } => {
                    self.ns.modes.insert(ino, mode);
                    ns_dirty = true;
                }
                Op::Link {
                    dir,
                    name,
                    ino,
                    kind,
                    mode,
                } => {
                    self.ns.dirs.entry(dir).or_default().insert(name, ino);
                    if kind == Kind::Dir {
                        self.ns.dirs.entry(ino).or_default();
                    }
                    self.ns.modes.entry(ino).or_insert(mode);
                    ns_dirty = true;
                }
                Op::Unlink { dir, name } => {
                    if let Some(d) = self.ns.dirs.get_mut(&dir) {
                        d.remove(&name);
                    }
                    ns_dirty = true;
                }
                Op::Rename { dir, from, to } => {
                    if let Some(d) = self.ns.dirs.get_mut(&dir)
                        && let Some(ino) = d.remove(&from)
                    {
                        d.insert(to, ino);
                    }
                    ns_dirty = true;
                }
            }
            self.stats.synced_ops += 1;
        }
        if ns_dirty {
            self.write_namespace()?;
        }
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file, or `fsync` of a folder: its pending
    /// operations become durable.
    pub fn sync(&mut self, ino: Ino) -> Result<(), Errno> {
        let dir = matches!(self.node(ino)?.body, Body::Dir(_));
        if dir {
            self.stats.dir_syncs += 1;
        } else {
            self.stats.file_syncs += 1;
        }
        if self.lie {
            return Ok(());
        }
        let seqs = self.by_target.remove(&ino).unwrap_or_default();
        let ops = seqs.iter().filter_map(|s| self.pending.remove(s)).collect();
        Ok(self.apply(ops)?)
    }

    /// The power cut: what reaches the backing folder and what is lost.
    /// The caller stops serving right after (the mount is gone).
    pub fn cut(&mut self, how: Cut) -> io::Result<(usize, usize)> {
        let total = self.pending.len();
        let keep = match how {
            Cut::DropAll => 0,
            Cut::KeepPrefix(n) => n.min(total),
        };
        let ops: Vec<Op> = std::mem::take(&mut self.pending)
            .into_values()
            .take(keep)
            .collect();
        self.by_target.clear();
        self.apply(ops)?;
        Ok((keep, total))
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            pending_ops: self.pending.len(),
            ..self.stats
        }
    }

    fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        self.live.get(&ino).ok_or(Errno::NOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, Errno> {
        self.live.get_mut(&ino).ok_or(Errno::NOENT)
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<String, Ino>, Errno> {
        match &self.node(dir)?.body {
            Body::Dir(e) => Ok(e),
            Body::File(_) => Err(Errno::NOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<String, Ino>, Errno> {
        match &mut self.node_mut(dir)?.body {
            Body::Dir(e) => Ok(e),
            Body::File(_) => Err(Errno::NOTDIR),
        }
    }

    /// `stat`.
    pub fn attr(&self, ino: Ino) -> Result<Attr, Errno> {
        let n = self.node(ino)?;
        let (kind, size) = match &n.body {
            Body::File(d) => (Kind::File, d.len() as u64),
            Body::Dir(e) => (Kind::Dir, e.len() as u64),
        };
        Ok(Attr {
            ino,
            kind,
            size,
            mode: n.mode,
            nlink: n.nlink,
            mtime: n.mtime,
        })
    }

    /// A name in a folder.
    pub fn lookup(&self, dir: Ino, name: &str) -> Result<Attr, Errno> {
        let ino = *self.entries(dir)?.get(name).ok_or(Errno::NOENT)?;
        self.attr(ino)
    }

    /// Creates a file or folder; `EEXIST` if the name is taken.
    pub fn create(&mut self, dir: Ino, name: &str, kind: Kind, mode: u32) -> Result<Attr, Errno> {
        if self.entries(dir)?.contains_key(name) {
            return Err(Errno::EXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let mode = mode & 0o7777;
        let body = match kind {
            Kind::File => Body::File(Vec::new()),
            Kind::Dir => Body::Dir(BTreeMap::new()),
        };
        self.live.insert(
            ino,
            Node {
                body,
                mode,
                nlink: if kind == Kind::Dir { 2 } else { 1 },
                mtime: SystemTime::now(),
                parent: dir,
                open: 0,
            },
        );
        self.entries_mut(dir)?.insert(name.to_owned(), ino);
        self.push(Op::Link {
            dir,
            name: name.to_owned(),
            ino,
            kind,
            mode,
        });
        self.attr(ino)
    }

    /// A hard link to a file.
    pub fn link(&mut self, ino: Ino, dir: Ino, name: &str) -> Result<Attr, Errno> {
        if matches!(self.node(ino)?.body, Body::Dir(_)) {
            return Err(Errno(libc::EPERM));
        }
        if self.entries(dir)?.contains_key(name) {
            return Err(Errno::EXIST);
        }
        self.entries_mut(dir)?.insert(name.to_owned(), ino);
        let n = self.node_mut(ino)?;
        n.nlink += 1;
        let mode = n.mode;
        self.push(Op::Link {
            dir,
            name: name.to_owned(),
            ino,
            kind: Kind::File,
            mode,
        });
        self.attr(ino)
    }

    /// Drops one link to `ino`; frees it when nothing links or holds it.
    fn drop_link(&mut self, ino: Ino) {
        if let Some(n) = self.live.get_mut(&ino) {
            n.nlink = n.nlink.saturating_sub(1);
            let dir = matches!(n.body, Body::Dir(_));
            if (dir || n.nlink == 0) && n.open == 0 {
                self.live.remove(&ino);
            }
        }
    }

    /// `unlink` (files) or `rmdir` (empty folders).
    pub fn remove(&mut self, dir: Ino, name: &str, kind: Kind) -> Result<(), Errno> {
        let ino = *self.entries(dir)?.get(name).ok_or(Errno::NOENT)?;
        match (&self.node(ino)?.body, kind) {
            (Body::File(_), Kind::Dir) => return Err(Errno::NOTDIR),
            (Body::Dir(_), Kind::File) => return Err(Errno::ISDIR),
            (Body::Dir(e), Kind::Dir) if !e.is_empty() => return Err(Errno::NOTEMPTY),
            _ => {}
        }
        self.entries_mut(dir)?.remove(name);
        self.drop_link(ino);
        self.push(Op::Unlink {
            dir,
            name: name.to_owned(),
        });
        Ok(())
    }

    /// `rename`; `noreplace` is `RENAME_NOREPLACE`.
    pub fn rename(
        &mut self,
        dir: Ino,
        name: &str,
        newdir: Ino,
        newname: &str,
        noreplace: bool,
    ) -> Result<(), Errno> {
        let ino = *self.entries(dir)?.get(name).ok_or(Errno::NOENT)?;
        let moving_dir = matches!(self.node(ino)?.body, Body::Dir(_));
        self.entries(newdir)?;
        if dir == newdir && name == newname {
            return Ok(());
        }
        if let Some(&old) = self.entries(newdir)?.get(newname) {
            if noreplace {
                return Err(Errno::EXIST);
            }
            match (&self.node(old)?.body, moving_dir) {
                (Body::Dir(e), true) if !e.is_empty() => return Err(Errno::NOTEMPTY),
                (Body::Dir(_), false) => return Err(Errno::ISDIR),
                (Body::File(_), true) => return Err(Errno::NOTDIR),
                _ => {}
            }
            self.drop_link(old);
        }
        self.entries_mut(dir)?.remove(name);
        self.entries_mut(newdir)?.insert(newname.to_owned(), ino);
        if moving_dir {
            self.node_mut(ino)?.parent = newdir;
        }
        if dir == newdir {
            self.push(Op::Rename {
                dir,
                from: name.to_owned(),
                to: newname.to_owned(),
            });
        } else {
            let (kind, mode) = (
                if moving_dir { Kind::Dir } else { Kind::File },
                self.node(ino)?.mode,
            );
            self.push(Op::Link {
                dir: newdir,
                name: newname.to_owned(),
                ino,
                kind,
                mode,
            });
            self.push(Op::Unlink {
                dir,
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// An open handle on `ino` (an unlinked file stays until released).
    pub fn open(&mut self, ino: Ino) -> Result<(), Errno> {
        self.node_mut(ino)?.open += 1;
        Ok(())
    }

    /// The handle is closed.
    pub fn release(&mut self, ino: Ino) {
        if let Some(n) = self.live.get_mut(&ino) {
            n.open = n.open.saturating_sub(1);
            if n.open == 0 && n.nlink == 0 {
                self.live.remove(&ino);
            }
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut Vec<u8>, Errno> {
        let n = self.node_mut(ino)?;
        n.mtime = SystemTime::now();
        match &mut n.body {
            Body::File(d) => Ok(d),
            Body::Dir(_) => Err(Errno::ISDIR),
        }
    }

    /// `pread`.
    pub fn read(&self, ino: Ino, off: u64, len: usize) -> Result<&[u8], Errno> {
        match &self.node(ino)?.body {
            Body::File(d) => {
                let start = (off as usize).min(d.len());
                let end = start.saturating_add(len).min(d.len());
                Ok(&d[start..end])
            }
            Body::Dir(_) => Err(Errno::ISDIR),
        }
    }

    /// `pwrite`; `sync` for a file opened `O_SYNC`/`O_DSYNC`.
    pub fn write(&mut self, ino: Ino, off: u64, data: &[u8], sync: bool) -> Result<(), Errno> {
        let f = self.file_mut(ino)?;
        let off_us = usize::try_from(off).map_err(|_| Errno::INVAL)?;
        let end = off_us.checked_add(data.len()).ok_or(Errno::INVAL)?;
        if f.len() < end {
            f.resize(end, 0);
        }
        f[off_us..end].copy_from_slice(data);
        self.push(Op::Write {
            ino,
            off,
            data: data.to_vec(),
        });
        if sync { self.sync(ino) } else { Ok(()) }
    }

    /// `truncate`/`ftruncate`.
    pub fn set_len(&mut self, ino: Ino, len: u64) -> Result<(), Errno> {
        let l = usize::try_from(len).map_err(|_| Errno::INVAL)?;
        self.file_mut(ino)?.resize(l, 0);
        self.push(Op::SetLen { ino, len });
        Ok(())
    }

    /// `fallocate` (mode 0 grows the file; `FALLOC_FL_KEEP_SIZE` changes
    /// nothing visible); other modes are not supported.
    pub fn fallocate(&mut self, ino: Ino, off: u64, len: u64, mode: i32) -> Result<(), Errno> {
        if mode == libc::FALLOC_FL_KEEP_SIZE {
            self.file_mut(ino)?;
            return Ok(());
        }
        if mode != 0 {
            return Err(Errno::OPNOTSUPP);
        }
        let end = off.checked_add(len).ok_or(Errno::INVAL)?;
        let cur = self.attr(ino)?.size;
        if end > cur {
            self.set_len(ino, end)?;
        }
        Ok(())
    }

    /// `chmod`.
    pub fn set_mode(&mut self, ino: Ino, mode: u32) -> Result<(), Errno> {
        let mode = mode & 0o7777;
        self.node_mut(ino)?.mode = mode;
        self.push(Op::SetMode { ino, mode });
        Ok(())
    }

    /// A folder's entries, `.` and `..` first.
    pub fn list(&self, dir: Ino) -> Result<Vec<(Ino, Kind, String)>, Errno> {
        let parent = self.node(dir)?.parent;
        let mut out = vec![
            (dir, Kind::Dir, ".".to_owned()),
            (parent, Kind::Dir, "..".to_owned()),
        ];
        for (name, &ino) in self.entries(dir)? {
            let kind = self.attr(ino)?.kind;
            out.push((ino, kind, name.clone()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(st: &State, dir: Ino) -> Vec<String> {
        st.list(dir)
            .unwrap()
            .into_iter()
            .skip(2)
            .map(|(_, _, n)| n)
            .collect()
    }

    fn reload(st: &mut State, how: Cut) -> State {
        st.cut(how).unwrap();
        State::load(&st.backing.clone(), false).unwrap()
    }

    #[test]
    fn a_rename_across_folders_is_durable_half_by_half() {
        let tmp = tempfile::tempdir().unwrap();
        let mut st = State::load(tmp.path(), false).unwrap();
        let a = st.create(ROOT, "a", Kind::Dir, 0o755).unwrap().ino;
        let b = st.create(ROOT, "b", Kind::Dir, 0o755).unwrap().ino;
        let f = st.create(a, "f", Kind::File, 0o644).unwrap().ino;
        st.write(f, 0, b"body", true).unwrap();
        st.sync(a).unwrap();
        st.sync(ROOT).unwrap();
        st.rename(a, "f", b, "g", false).unwrap();
        // Only the target folder synced: the file has both names.
        st.sync(b).unwrap();
        let st = reload(&mut st, Cut::DropAll);
        let (a, b) = (
            st.lookup(ROOT, "a").unwrap().ino,
            st.lookup(ROOT, "b").unwrap().ino,
        );
        assert_eq!(names(&st, a), ["f"]);
        assert_eq!(names(&st, b), ["g"]);
        let ino = st.lookup(b, "g").unwrap().ino;
        assert_eq!(st.lookup(a, "f").unwrap().ino, ino);
        assert_eq!(st.attr(ino).unwrap().nlink, 2);
        assert_eq!(st.read(ino, 0, 100).unwrap(), b"body");
    }

    #[test]
    fn an_unlinked_open_file_lives_until_released_and_files_nobody_names_are_collected() {
        let tmp = tempfile::tempdir().unwrap();
        let mut st = State::load(tmp.path(), false).unwrap();
        let f = st.create(ROOT, "f", Kind::File, 0o644).unwrap().ino;
        st.open(f).unwrap();
        st.write(f, 0, b"x", false).unwrap();
        st.sync(f).unwrap();
        st.remove(ROOT, "f", Kind::File).unwrap();
        assert_eq!(st.read(f, 0, 1).unwrap(), b"x");
        st.release(f);
        assert!(st.attr(f).is_err());
        // Its synced data is in the backing folder, but no durable name
        // points at it: the next mount removes it.
        assert!(data_path(tmp.path(), f).exists());
        let st2 = reload(&mut st, Cut::DropAll);
        assert!(!data_path(tmp.path(), f).exists());
        assert!(names(&st2, ROOT).is_empty());
        // Inode numbers are never reused across mounts.
        assert!(st2.next_ino > f);
    }

    #[test]
    fn a_prefix_cut_applies_operations_in_the_order_they_were_made() {
        let tmp = tempfile::tempdir().unwrap();
        let mut st = State::load(tmp.path(), false).unwrap();
        let f = st.create(ROOT, "f", Kind::File, 0o644).unwrap().ino; // op 1
        st.write(f, 0, b"one", false).unwrap(); // op 2
        st.rename(ROOT, "f", ROOT, "g", false).unwrap(); // op 3
        st.write(f, 3, b"two", false).unwrap(); // op 4
        let st2 = reload(&mut st, Cut::KeepPrefix(3));
        let g = st2.lookup(ROOT, "g").unwrap().ino;
        assert_eq!(st2.read(g, 0, 10).unwrap(), b"one");
        assert!(st2.lookup(ROOT, "f").is_err());
    }

    #[test]
    fn a_lying_disk_makes_nothing_durable() {
        let tmp = tempfile::tempdir().unwrap();
        let mut st = State::load(tmp.path(), true).unwrap();
        let f = st.create(ROOT, "f", Kind::File, 0o644).unwrap().ino;
        st.write(f, 0, b"x", true).unwrap();
        st.sync(ROOT).unwrap();
        assert_eq!(st.stats().file_syncs, 1);
        let st2 = reload(&mut st, Cut::DropAll);
        assert!(names(&st2, ROOT).is_empty());
    }
}
