//! The harness's own model, through the kernel: each row of the table in
//! `src/model.rs` is made with real system calls on a real mount, the
//! power is cut, and what comes back is exactly what the model promises.
//! A harness that kept too much would let durability bugs pass; one that
//! kept too little would report losses that cannot happen.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn fuse_here() -> bool {
    let ok = Path::new("/dev/fuse").exists()
        && Command::new("fusermount3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false"),
        "FUSE (/dev/fuse, fusermount3 from Debian's fuse3) is missing under CI (scripts/deps.sh installs it)"
    );
    eprintln!("NOT RUN: FUSE is missing (CI fails here; scripts/deps.sh installs it)");
    false
}

struct Mount {
    child: Child,
    mnt: std::path::PathBuf,
}

impl Mount {
    fn new(backing: &Path, mnt: &Path, extra: &[&str]) -> Mount {
        fs::create_dir_all(mnt).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn-powercut"))
            .arg("--backing")
            .arg(backing)
            .arg("--mountpoint")
            .arg(mnt)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("ready"), "{line:?}");
        Mount {
            child,
            mnt: mnt.to_owned(),
        }
    }

    /// Cuts the power; returns the harness's report line.
    fn cut(mut self, cmd: &str) -> String {
        writeln!(self.child.stdin.as_mut().unwrap(), "{cmd}").unwrap();
        let mut line = String::new();
        BufReader::new(self.child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(self.child.wait().unwrap().success());
        line
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(&self.mnt)
            .output();
    }
}

fn sync_dir(d: &Path) {
    File::open(d).unwrap().sync_all().unwrap();
}

fn read(p: &Path) -> Option<Vec<u8>> {
    fs::read(p).ok()
}

#[test]
fn only_what_was_synced_survives_a_cut() {
    if !fuse_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (backing, mnt) = (tmp.path().join("b"), tmp.path().join("m"));
    // Set-up, all durable: a folder with two files.
    let m = Mount::new(&backing, &mnt, &[]);
    fs::create_dir(mnt.join("d")).unwrap();
    fs::create_dir(mnt.join("e")).unwrap();
    for (name, body) in [("old", "old body"), ("victim", "victim body")] {
        let mut f = File::create(mnt.join("d").join(name)).unwrap();
        f.write_all(body.as_bytes()).unwrap();
        f.sync_all().unwrap();
    }
    sync_dir(&mnt.join("d"));
    sync_dir(&mnt);
    m.cut("cut");

    let m = Mount::new(&backing, &mnt, &[]);
    let d = mnt.join("d");
    assert_eq!(read(&d.join("old")).unwrap(), b"old body");
    // 1. Written, never synced: lost.
    fs::write(d.join("old"), b"overwritten").unwrap();
    // 2. Data synced, name not (its folder is never synced): gone.
    let mut f = File::create(mnt.join("e").join("nameless")).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_all().unwrap();
    // 3. Name synced, data not: an empty file.
    File::create(d.join("empty"))
        .unwrap()
        .write_all(b"unsynced")
        .unwrap();
    // 4. Both synced: kept.
    let mut f = File::create(d.join("kept")).unwrap();
    f.write_all(b"kept body").unwrap();
    f.sync_data().unwrap();
    // 5. O_DSYNC: every write durable on return.
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .open(d.join("dsync"))
        .unwrap();
    f.write_all(b"dsync body").unwrap();
    // 6. Unlinked, folder synced: gone.
    fs::remove_file(d.join("victim")).unwrap();
    // The folder sync that makes 3, 4, 5 and 6 durable.
    sync_dir(&d);
    // 7. Renamed after the folder sync, not synced again: the old name.
    fs::rename(d.join("kept"), d.join("kept-renamed")).unwrap();
    // 8. A write at an offset past the end, synced: a hole of zeros.
    let f = OpenOptions::new()
        .write(true)
        .open(d.join("dsync"))
        .unwrap();
    f.write_all_at(b"!", 20).unwrap();
    f.sync_all().unwrap();
    let report = m.cut("cut");
    assert!(report.starts_with("cut: kept 0 of "), "{report}");

    let _m = Mount::new(&backing, &mnt, &[]);
    assert_eq!(read(&d.join("old")).unwrap(), b"old body", "1");
    assert!(read(&mnt.join("e").join("nameless")).is_none(), "2");
    assert_eq!(read(&d.join("empty")).unwrap(), b"", "3");
    assert_eq!(read(&d.join("kept")).unwrap(), b"kept body", "4, 7");
    assert!(read(&d.join("kept-renamed")).is_none(), "7");
    let mut want = b"dsync body".to_vec();
    want.resize(20, 0);
    want.push(b'!');
    assert_eq!(read(&d.join("dsync")).unwrap(), want, "5, 8");
    assert!(read(&d.join("victim")).is_none(), "6");
    let mut names: Vec<String> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["dsync", "empty", "kept", "old"]);
}

#[test]
fn a_prefix_cut_keeps_operations_in_order() {
    if !fuse_here() {
        return;
    }
    // 40 appends of one byte each, never synced, cut with a random prefix
    // kept: the file holds exactly the first k bytes for some k, never a
    // later byte without an earlier one.
    for seed in 1..=6u64 {
        let tmp = tempfile::tempdir().unwrap();
        let (backing, mnt) = (tmp.path().join("b"), tmp.path().join("m"));
        let m = Mount::new(&backing, &mnt, &[]);
        File::create(mnt.join("f")).unwrap().sync_all().unwrap();
        sync_dir(&mnt);
        m.cut("cut");
        let m = Mount::new(&backing, &mnt, &["--seed", &seed.to_string()]);
        let mut f = OpenOptions::new().append(true).open(mnt.join("f")).unwrap();
        let all: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for b in &all {
            f.write_all(&[*b]).unwrap();
        }
        let report = m.cut("cut-prefix");
        let _m = Mount::new(&backing, &mnt, &[]);
        let got = read(&mnt.join("f")).unwrap();
        assert!(
            all.starts_with(&got),
            "seed {seed}: {:?} is not a prefix ({report})",
            String::from_utf8_lossy(&got)
        );
        // One operation per byte: the report's count is the file's length.
        assert!(
            report.starts_with(&format!("cut: kept {} of 40 ", got.len())),
            "seed {seed}: {} bytes, but {report}",
            got.len()
        );
        eprintln!("seed {seed}: kept {} of 40 bytes; {report}", got.len());
    }
}

#[test]
fn a_lying_disk_keeps_nothing() {
    if !fuse_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (backing, mnt) = (tmp.path().join("b"), tmp.path().join("m"));
    let m = Mount::new(&backing, &mnt, &["--lie"]);
    let mut f = File::create(mnt.join("f")).unwrap();
    f.write_all(b"body").unwrap();
    f.sync_all().unwrap();
    sync_dir(&mnt);
    m.cut("cut");
    let _m = Mount::new(&backing, &mnt, &[]);
    assert!(read(&mnt.join("f")).is_none());
}
