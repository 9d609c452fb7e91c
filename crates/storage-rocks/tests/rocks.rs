//! RocksDB-specific behaviour: durability across reopen, the folder lock,
//! the format version, the fork guard, corruption, and SIGKILL crashes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_core::hash::{LeafIndex, TreeSize, leaf_hash};
use cairn_storage::conformance::Harness;
use cairn_storage::{Fault, FaultPoint, FaultyStore, LogStore, StoreError};
use cairn_storage_rocks::{Compression, RocksStore, StoreOptions};

fn opts(dir: &Path) -> StoreOptions {
    let mut o = StoreOptions::new(dir.join("data"));
    o.block_cache_bytes = 8 << 20;
    o
}

fn open(dir: &Path) -> RocksStore {
    RocksStore::open(opts(dir)).expect("open")
}

const CFS: [&str; 7] = [
    "default",
    "entries",
    "tiles",
    "leaf_index",
    "idempotency",
    "checkpoints",
    "meta",
];

/// Opens the raw RocksDB folder behind Cairn's back, to damage it.
fn raw(dir: &Path) -> rocksdb::DB {
    let o = rocksdb::Options::default();
    rocksdb::DB::open_cf(&o, dir.join("data"), CFS).expect("raw open")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn data_survives_reopen_with_lz4() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = Harness::new();
    {
        let mut o = opts(tmp.path());
        o.compression = Compression::Lz4;
        let s = RocksStore::open(o).unwrap();
        for n in [1u64, 300, 5, 1000] {
            h.commit(&s, n).unwrap();
        }
    }
    let s = open(tmp.path());
    h.check_store(&s).unwrap();
    // And the log continues where it left off.
    h.commit(&s, 7).unwrap();
    h.check_store(&s).unwrap();
}

#[test]
fn zstd_store_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.compression = Compression::Zstd;
    let s = RocksStore::open(o).unwrap();
    let mut h = Harness::new();
    h.commit(&s, 500).unwrap();
    h.check_store(&s).unwrap();
}

#[test]
fn second_opener_in_process_gets_a_clear_lock_error() {
    let tmp = tempfile::tempdir().unwrap();
    let _first = open(tmp.path());
    let err = RocksStore::open(opts(tmp.path()))
        .err()
        .expect("second open must fail");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Locked { .. }), "{msg}");
    let data = tmp.path().join("data");
    assert!(
        msg.contains(&data.display().to_string()),
        "names the folder: {msg}"
    );
    assert!(msg.contains("cairn.lock"), "names the lock file: {msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "names the holder: {msg}"
    );
}

#[test]
fn second_process_holding_the_lock_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    drop(open(tmp.path()));
    let lock = tmp.path().join("data").join("cairn.lock");
    // Another process takes the same flock(2) lock the store uses.
    // `-o`: only flock itself holds the lock (not the shell it runs), so
    // killing flock releases it.
    let mut child = Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .args(["-c", "echo locked; exec sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock(1) from util-linux");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let err = RocksStore::open(opts(tmp.path()))
        .err()
        .expect("must be locked");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("cairn.lock"));
    // Once the other process is gone, the folder opens.
    open(tmp.path());
}

#[test]
fn unknown_format_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(open(tmp.path()));
    {
        let db = raw(tmp.path());
        db.put_cf(db.cf_handle("meta").unwrap(), b"format", 2u32.to_be_bytes())
            .unwrap();
    }
    let err = RocksStore::open(opts(tmp.path())).err().unwrap();
    assert!(
        matches!(
            err,
            StoreError::UnknownFormat {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("format version 2"));
}

#[test]
fn restored_backup_is_refused_by_the_fork_guard() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let backup = tmp.path().join("backup");
    let mut h = Harness::new();
    {
        let s = open(tmp.path());
        h.commit(&s, 10).unwrap();
    }
    copy_dir(&data, &backup);
    {
        let s = open(tmp.path());
        h.commit(&s, 10).unwrap();
        // The guard lives beside the folder, not in it.
        assert_eq!(s.guard_path(), tmp.path().join("data.guard"));
    }
    // Restore last week's backup over the data folder.
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&backup, &data);
    let err = RocksStore::open(opts(tmp.path()))
        .err()
        .expect("must refuse");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::ForkGuard(_)), "{msg}");
    for needle in [
        "holds 10 leaves",
        "size 20",
        "fork",
        "data.guard",
        "new origin",
    ] {
        assert!(msg.contains(needle), "message mentions {needle:?}: {msg}");
    }
}

#[test]
fn store_from_another_history_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let guard = tmp.path().join("elsewhere.guard");
    let mut o = opts(tmp.path());
    o.guard_path = Some(guard.clone());
    {
        let s = RocksStore::open(o.clone()).unwrap();
        Harness::new().commit(&s, 5).unwrap();
    }
    // A different log's store, at a larger size, under the same guard.
    std::fs::remove_dir_all(tmp.path().join("data")).unwrap();
    {
        let mut other = o.clone();
        other.guard_path = Some(tmp.path().join("other.guard"));
        let s = RocksStore::open(other).unwrap();
        let mut h = Harness::new();
        // Same sizes, different entries: skip one entry so contents differ.
        h.commit(&s, 3).unwrap();
        h.commit(&s, 4).unwrap();
    }
    let err = RocksStore::open(o).err().expect("must refuse");
    assert!(matches!(err, StoreError::ForkGuard(_)), "{err}");
    assert!(err.to_string().contains("signed checkpoint"), "{err}");
}

#[test]
fn guard_is_created_and_advanced() {
    let tmp = tempfile::tempdir().unwrap();
    let guard_path = tmp.path().join("data.guard");
    let s = open(tmp.path());
    assert!(!guard_path.exists(), "no guard before the first checkpoint");
    let mut h = Harness::new();
    h.commit(&s, 3).unwrap();
    let g = cairn_storage::guard::ForkGuard::new(&guard_path)
        .read()
        .unwrap()
        .unwrap();
    assert_eq!(g.size, TreeSize(3));
    h.commit(&s, 4).unwrap();
    let g = cairn_storage::guard::ForkGuard::new(&guard_path)
        .read()
        .unwrap()
        .unwrap();
    assert_eq!(g.size, TreeSize(7));
    // A missing guard on a store with checkpoints is refused (a restored
    // data volume without its guard looks exactly like this), and rebuilt
    // from the store only when the operator asks.
    drop(s);
    std::fs::remove_file(&guard_path).unwrap();
    let err = RocksStore::open(opts(tmp.path())).err().unwrap();
    assert!(matches!(err, StoreError::ForkGuard(_)), "{err}");
    assert!(
        err.to_string().contains("missing") && err.to_string().contains("--rebuild-guard"),
        "{err}"
    );
    assert!(!guard_path.exists(), "refusing wrote nothing");
    let mut o = opts(tmp.path());
    o.rebuild_missing_guard = true;
    let s = RocksStore::open(o).unwrap();
    let g = cairn_storage::guard::ForkGuard::new(&guard_path)
        .read()
        .unwrap()
        .unwrap();
    assert_eq!(
        g.size,
        TreeSize(7),
        "rebuilt from the store's latest checkpoint"
    );
    drop(s);
    // Afterwards it opens as usual.
    drop(open(tmp.path()));
    // A damaged guard is an error, not an empty guard.
    std::fs::write(&guard_path, b"garbage").unwrap();
    let err = RocksStore::open(opts(tmp.path())).err().unwrap();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

/// Start-up recomputes the root from the tiles on the tree's right edge
/// (`O(log n)` reads): altering one of those hashes is caught before the
/// store serves anything. (Interior tiles are covered by RocksDB's block
/// checksums on every read, and by clients verifying every proof.)
#[test]
fn corrupted_tile_is_detected_at_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let s = open(tmp.path());
        Harness::new().commit(&s, 600).unwrap();
    }
    {
        let db = raw(tmp.path());
        let cf = db.cf_handle("tiles").unwrap();
        // Tile 0/2 holds leaves 512..600, the right edge of the tree.
        let mut key = vec![0u8];
        key.extend_from_slice(&2u64.to_be_bytes());
        let mut v = db.get_cf(cf, &key).unwrap().unwrap();
        v[40] ^= 0xff;
        db.put_cf(cf, &key, v).unwrap();
    }
    let err = RocksStore::open(opts(tmp.path()))
        .err()
        .expect("must refuse");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(
        err.to_string().contains("disagrees with the stored tiles"),
        "{err}"
    );
}

#[test]
fn truncated_tile_and_missing_entries_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let s = open(tmp.path());
        Harness::new().commit(&s, 300).unwrap();
    }
    {
        let db = raw(tmp.path());
        let cf = db.cf_handle("entries").unwrap();
        db.delete_cf(cf, 100u64.to_be_bytes()).unwrap();
    }
    let s = open(tmp.path());
    let err = s.read_entries(LeafIndex(90), 20).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    drop(s);
    {
        let db = raw(tmp.path());
        let cf = db.cf_handle("tiles").unwrap();
        let mut key = vec![0u8];
        key.extend_from_slice(&1u64.to_be_bytes());
        db.put_cf(cf, &key, [0u8; 64]).unwrap();
    }
    let err = RocksStore::open(opts(tmp.path()))
        .err()
        .expect("must refuse");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[test]
fn damaged_files_give_an_error_not_a_silent_tree() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let s = open(tmp.path());
        Harness::new().commit(&s, 2000).unwrap();
        s.compact().unwrap();
    }
    // Truncate every table file to half its length.
    let data = tmp.path().join("data");
    let mut damaged = 0;
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "sst") {
            let len = std::fs::metadata(&p).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(len / 2).unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0);
    match RocksStore::open(opts(tmp.path())) {
        Err(e) => assert!(
            matches!(e, StoreError::Io(_) | StoreError::Corrupt(_)),
            "clear error expected: {e}"
        ),
        Ok(s) => {
            // If RocksDB opened lazily, the first read must fail loudly.
            let r = s.read_entries(LeafIndex(0), 2000);
            assert!(r.is_err(), "a truncated store must not serve entries");
        }
    }
}

#[test]
fn faults_at_each_step_leave_the_store_consistent() {
    // Table rows: (point, fault, saved?)
    let rows = [
        (FaultPoint::CommitBatch, Fault::BeforePersist, false),
        (FaultPoint::CommitBatch, Fault::AfterPersist, true),
        (FaultPoint::PutCheckpoint, Fault::BeforePersist, false),
        (FaultPoint::PutCheckpoint, Fault::AfterPersist, true),
    ];
    for (point, fault, saved) in rows {
        let tmp = tempfile::tempdir().unwrap();
        let store = FaultyStore::new(open(tmp.path()));
        let mut h = Harness::new();
        h.commit(&store, 10).unwrap();
        store.arm(point, fault);
        let p = h.prepare(5, true);
        let e = p.entries();
        let r = store
            .commit_batch(p.batch(&e, false))
            .and_then(|()| store.put_checkpoint(p.integ.state.size(), &p.note));
        assert!(
            matches!(r, Err(StoreError::Injected(_))),
            "{point:?} {fault:?}: {r:?}"
        );
        // The caller's rule after an error: reload, then decide.
        let st = store.load_state().unwrap();
        let batch_landed = st.tree == p.integ.state;
        let cp_landed = st.checkpoint.as_ref().map(|c| c.size) == Some(TreeSize(15));
        match point {
            FaultPoint::CommitBatch => assert_eq!(batch_landed, saved, "{point:?} {fault:?}"),
            _ => {
                assert!(batch_landed);
                assert_eq!(cp_landed, saved, "{point:?} {fault:?}");
            }
        }
        // Recovery: finish what is missing, then the store is whole.
        if !batch_landed {
            let e = p.entries();
            store.commit_batch(p.batch(&e, false)).unwrap();
        }
        if !cp_landed {
            store.put_checkpoint(TreeSize(15), &p.note).unwrap();
        }
        h.accept(p);
        h.check_store(&store).unwrap();
        // Reopen from disk: same.
        drop(store);
        h.check_store(&open(tmp.path())).unwrap();
    }
}

fn crash_writer() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cairn-store-crash-writer"))
}

/// SIGKILL a writer at random moments; every acknowledged size must
/// survive, and every restart must verify (root = tiles = checkpoint).
#[test]
fn sigkill_never_loses_an_acknowledged_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut acked = 0u64;
    let mut seed = 0x1234_5678u64;
    for round in 0..6 {
        let mut child = Command::new(crash_writer())
            .arg(&data)
            .arg(round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().unwrap().unwrap();
        assert!(ready.starts_with("ready "), "{ready}");
        let start_size: u64 = ready[6..].parse().unwrap();
        assert!(
            start_size >= acked,
            "round {round}: store at {start_size}, acked {acked}"
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(50 + seed % 400);
        let t0 = Instant::now();
        for l in lines.by_ref() {
            let l = l.unwrap();
            if let Some(s) = l.strip_prefix("acked ") {
                acked = s.parse().unwrap();
            }
            if t0.elapsed() >= run_for {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let s = RocksStore::open(StoreOptions::new(&data)).expect("reopen after SIGKILL");
        let st = s.load_state().expect("state verifies after SIGKILL");
        assert!(
            st.tree.size().0 >= acked,
            "round {round}: lost acked entries"
        );
        // Every acknowledged entry is byte-exact at its index.
        for i in [0, acked / 2, acked.saturating_sub(1)] {
            if i < acked {
                let e = s.read_entries(LeafIndex(i), 1).unwrap();
                assert_eq!(e[0], Harness::entry(i));
                assert_eq!(s.find_leaf(&leaf_hash(&e[0])).unwrap(), Some(LeafIndex(i)));
            }
        }
    }
    assert!(acked > 0, "the writer acknowledged something");
}

/// Disk full during commits: the failing commit returns an error and saves
/// nothing; once space is back, the next commit succeeds. Uses a small
/// tmpfs (needs root, as in CI; skipped with a message otherwise).
#[test]
fn disk_full_fails_cleanly_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=96m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        assert!(
            !root,
            "running as root but could not mount a tmpfs for the disk-full test"
        );
        eprintln!("skipping disk_full_fails_cleanly_and_recovers: needs root to mount a tmpfs");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let mut o = StoreOptions::new(mnt.join("data"));
    o.guard_path = Some(tmp.path().join("data.guard"));
    o.block_cache_bytes = 8 << 20;
    o.compression = Compression::None;
    let store = RocksStore::open(o).unwrap();
    let mut h = Harness::new();
    h.commit(&store, 100).unwrap();
    // Fill the disk, leaving a little room.
    let ballast = mnt.join("ballast");
    {
        let mut f = std::fs::File::create(&ballast).unwrap();
        let chunk = vec![0u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let free_a_little = std::fs::metadata(&ballast)
        .unwrap()
        .len()
        .saturating_sub(2 << 20);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ballast)
        .unwrap()
        .set_len(free_a_little)
        .unwrap();
    // Commit until the disk is full.
    let mut failure = None;
    for _ in 0..10_000 {
        let p = h.prepare(500, false);
        let e = p.entries();
        match store.commit_batch(p.batch(&e, false)) {
            Ok(()) => h.accept(p),
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    let err = failure.expect("the disk never filled up");
    assert!(matches!(err, StoreError::Io(_)), "{err}");
    // Nothing of the failed batch was saved.
    let st = store.load_state().unwrap();
    assert_eq!(st.tree, h.tree, "a failed commit left a partial state");
    // Space is back: the next commit succeeds.
    std::fs::remove_file(&ballast).unwrap();
    let mut ok = false;
    for _ in 0..20 {
        let p = h.prepare(10, false);
        let e = p.entries();
        if store.commit_batch(p.batch(&e, false)).is_ok() {
            h.accept(p);
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "commits never recovered after space came back");
    store
        .put_checkpoint(h.tree.size(), &h.sign(&h.tree))
        .unwrap();
    drop(store);
    let mut o = StoreOptions::new(mnt.join("data"));
    o.guard_path = Some(tmp.path().join("data.guard"));
    let store = RocksStore::open(o).unwrap();
    assert_eq!(store.load_state().unwrap().tree, h.tree);
}

/// Idempotency records from before keys were hashed (the client's raw key,
/// an 8-byte value) are deleted at open, and no file of the store keeps
/// the raw key afterwards (issue 15, item 1).
#[test]
fn legacy_raw_idempotency_keys_are_scrubbed_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    drop(open(tmp.path()));
    let raw_key = b"legacy.canary.5521@example.com";
    {
        let db = raw(tmp.path());
        let idem = db.cf_handle("idempotency").unwrap();
        db.put_cf(idem, raw_key, 0u64.to_be_bytes()).unwrap();
        db.flush_cf(idem).unwrap();
    }
    let files = |dir: &Path| -> Vec<u8> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir.join("data")).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                out.extend(std::fs::read(&p).unwrap());
            }
        }
        out
    };
    let has = |hay: &[u8]| hay.windows(raw_key.len()).any(|w| w == raw_key);
    assert!(
        has(&files(tmp.path())),
        "the legacy record is on disk to begin with"
    );
    let s = open(tmp.path());
    drop(s);
    let leftovers: Vec<String> = std::fs::read_dir(tmp.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && has(&std::fs::read(p).unwrap()))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        leftovers.is_empty(),
        "the raw key survived the scrub in {leftovers:?}"
    );
    // Opening again finds nothing to do.
    drop(open(tmp.path()));
}

/// The folder lock is the first writer lease: `check` holds while the
/// locked file is in place, and fails, for good, once it was deleted or
/// replaced (another process could then lock the new file and write).
#[test]
fn the_folder_lease_is_lost_when_its_lock_file_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let lease = s.lease();
    lease.check().unwrap();
    let lock = tmp.path().join("data").join("cairn.lock");
    std::fs::remove_file(&lock).unwrap();
    let e = lease.check().unwrap_err();
    assert!(matches!(e, StoreError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("gone"), "{e}");
    // A new file in its place is not the one locked.
    std::fs::write(&lock, b"pid 0").unwrap();
    let e = lease.check().unwrap_err();
    assert!(e.to_string().contains("replaced"), "{e}");
}
