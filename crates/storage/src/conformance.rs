//! One conformance suite for every [`LogStore`] backend (like akd's
//! `public_tests`). A backend's test file runs it with
//! [`conformance_tests!`](crate::conformance_tests):
//!
//! ```text
//! cairn_storage::conformance_tests!(((), cairn_storage::MemoryStore::new()));
//! ```
//!
//! The expression yields `(keep_alive, store)`; a fresh one per test.
//! Failures are written as table rows: each bad input says whether it
//! "fails and is not saved" or "fails but was saved".
//!
//! This is test-support code: a broken invariant of the harness itself is a
//! test failure, so `expect` is allowed here and nowhere else in the crate.
#![allow(clippy::expect_used)]

use cairn_core::checkpoint::Checkpoint;
use cairn_core::hash::{Hash, LeafIndex, TreeSize, leaf_hash};
use cairn_core::memtiles::MemoryTiles;
use cairn_core::note::NoteSigner;
use cairn_core::proof::{
    consistency_proof, inclusion_proof, tree_root, verify_consistency, verify_inclusion,
};
use cairn_core::tree::{Integration, TileUpdate, TreeState};

use crate::{
    CommitBatch, Idempotency, IdempotencyKey, IdempotencyRecord, LogStore, NewEntry, StoreError,
    StoreTiles,
};

/// A failed conformance check.
pub type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn ok<T>(r: Result<T, StoreError>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// Builds batches the way the sequencer does, with a test signing key.
pub struct Harness {
    signer: NoteSigner,
    /// The tree as the harness believes it is stored.
    pub tree: TreeState,
    /// A mirror of every tile, to compare with what the store returns.
    pub tiles: MemoryTiles,
    /// Every entry committed so far.
    pub entries: Vec<Vec<u8>>,
    /// Whether `tiles` and `entries` mirror the store (false after `resume`).
    mirror: bool,
}

/// A batch ready to commit, with the bytes it borrows from.
pub struct Prepared {
    /// Entry bytes.
    pub data: Vec<Vec<u8>>,
    /// Their leaf hashes.
    pub hashes: Vec<Hash>,
    /// Idempotency keys, one per entry.
    pub keys: Vec<Option<Idempotency>>,
    /// The integration of the batch.
    pub integ: Integration,
    /// The signed checkpoint for the new size.
    pub note: Vec<u8>,
    /// The size the batch starts at.
    pub expected: TreeSize,
}

/// The idempotency record the harness gives entry `i`: distinct keys and
/// request digests per index (opaque bytes, as storage sees them).
pub fn test_idempotency(i: u64) -> Idempotency {
    let mut key = [0x6b; 32];
    key[..8].copy_from_slice(&i.to_be_bytes());
    let mut request = [0x72; 32];
    request[24..].copy_from_slice(&i.to_le_bytes());
    Idempotency {
        key: IdempotencyKey(key),
        request,
    }
}

impl Prepared {
    /// The store's view of the new entries.
    pub fn entries(&self) -> Vec<NewEntry<'_>> {
        self.data
            .iter()
            .zip(&self.hashes)
            .zip(&self.keys)
            .map(|((d, h), k)| NewEntry {
                data: d,
                leaf_hash: *h,
                idempotency: *k,
            })
            .collect()
    }

    /// The commit request, with or without the checkpoint.
    pub fn batch<'a>(
        &'a self,
        entries: &'a [NewEntry<'a>],
        with_checkpoint: bool,
    ) -> CommitBatch<'a> {
        CommitBatch {
            expected_size: self.expected,
            entries,
            tiles: &self.integ.tiles,
            state: &self.integ.state,
            checkpoint: with_checkpoint.then_some(self.note.as_slice()),
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A harness at size 0 with a fixed test key.
    pub fn new() -> Self {
        Harness {
            // A fixed seed: tests must be reproducible, and this key signs nothing real.
            signer: NoteSigner::from_seed("conformance.cairn.test/log", &[42; 32])
                .expect("the fixed test key name is valid"),
            tree: TreeState::empty(),
            tiles: MemoryTiles::new(),
            entries: Vec::new(),
            mirror: true,
        }
    }

    /// A harness that continues a store already at `tree` (for example
    /// after a restart). It does not mirror tiles or entries.
    pub fn resume(tree: TreeState) -> Self {
        Harness {
            tree,
            mirror: false,
            ..Harness::new()
        }
    }

    /// The bytes of test entry `i` (varied lengths, JSON-like).
    pub fn entry(i: u64) -> Vec<u8> {
        let pad = "x".repeat((i % 97) as usize);
        format!(r#"{{"v":1,"seq":{i},"actor":"[REDACTED:email]","pad":"{pad}"}}"#).into_bytes()
    }

    /// Signs the checkpoint for a tree.
    pub fn sign(&self, tree: &TreeState) -> Vec<u8> {
        let cp = Checkpoint {
            origin: self.signer.name().to_owned(),
            size: tree.size(),
            root: tree.root(),
            extensions: vec![],
        };
        cp.sign(&self.signer)
            .map(String::into_bytes)
            .expect("a checkpoint body of a valid origin signs")
    }

    /// Prepares the next `n` entries, optionally with idempotency keys.
    pub fn prepare(&self, n: u64, keys: bool) -> Prepared {
        let start = self.tree.size().0;
        let data: Vec<Vec<u8>> = (start..start + n).map(Self::entry).collect();
        let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let integ = self
            .tree
            .integrate(&hashes)
            .expect("test trees are far below 2^64 leaves");
        let note = self.sign(&integ.state);
        Prepared {
            keys: (start..start + n)
                .map(|i| keys.then(|| test_idempotency(i)))
                .collect(),
            data,
            hashes,
            integ,
            note,
            expected: self.tree.size(),
        }
    }

    /// Records a batch as committed.
    pub fn accept(&mut self, p: Prepared) {
        if self.mirror {
            self.tiles
                .apply(&p.integ)
                .expect("the harness applies its own batches in order");
            self.entries.extend(p.data);
        }
        self.tree = p.integ.state;
    }

    /// Prepares, commits (checkpoint stored separately, as the server does)
    /// and records `n` entries.
    pub fn commit(&mut self, store: &dyn LogStore, n: u64) -> Check {
        let p = self.prepare(n, true);
        let e = p.entries();
        ok(store.commit_batch(p.batch(&e, false)), "commit_batch")?;
        ok(
            store.put_checkpoint(p.integ.state.size(), &p.note),
            "put_checkpoint",
        )?;
        self.accept(p);
        Ok(())
    }

    /// Everything the store says must match the harness.
    pub fn check_store(&self, store: &dyn LogStore) -> Check {
        let st = ok(store.load_state(), "load_state")?;
        ensure!(
            st.tree == self.tree,
            "load_state tree {:?} != {:?}",
            st.tree.size(),
            self.tree.size()
        );
        let n = self.tree.size().0;
        let got = ok(store.read_entries(LeafIndex(0), usize::MAX), "read_entries")?;
        ensure!(got == self.entries, "read_entries(0..) differs");
        if n > 0 {
            let root = ok(
                tree_root(&StoreTiles(store), self.tree.size()).map_err(to_store),
                "root",
            )?;
            ensure!(root == self.tree.root(), "root from store tiles differs");
            let cp = ok(store.checkpoint(None), "checkpoint")?;
            ensure!(
                cp.as_ref().map(|c| c.size) == Some(self.tree.size()),
                "latest checkpoint is not at the tree size"
            );
        }
        Ok(())
    }
}

fn to_store(e: cairn_core::ProveError<StoreError>) -> StoreError {
    match e {
        cairn_core::ProveError::Read(e) => e,
        cairn_core::ProveError::Proof(p) => StoreError::Corrupt(p.to_string()),
    }
}

/// An empty store: size 0, nothing to read, lookups miss.
pub fn empty_store(store: &dyn LogStore) -> Check {
    let st = ok(store.load_state(), "load_state")?;
    ensure!(
        st.tree.size() == TreeSize(0),
        "new store has size {}",
        st.tree.size()
    );
    ensure!(st.checkpoint.is_none(), "new store has a checkpoint");
    ensure!(
        ok(store.read_entries(LeafIndex(0), 10), "read")?.is_empty(),
        "entries in empty store"
    );
    ensure!(
        matches!(
            store.read_entries(LeafIndex(1), 1),
            Err(StoreError::OutOfRange { index: 1, size: 0 })
        ),
        "read past the end must be OutOfRange"
    );
    ensure!(
        ok(store.checkpoint(None), "checkpoint")?.is_none(),
        "checkpoint in empty store"
    );
    ensure!(
        ok(store.find_leaf(&leaf_hash(b"x")), "find_leaf")?.is_none(),
        "leaf found in empty store"
    );
    ensure!(
        ok(
            store.find_idempotency_key(&test_idempotency(0).key),
            "find_key"
        )?
        .is_none(),
        "key found in empty store"
    );
    let t = cairn_core::Tile {
        level: 0,
        index: 0,
        width: 1,
    };
    ensure!(
        matches!(store.read_tiles(&[t]), Err(StoreError::MissingTile { .. })),
        "missing tile must be MissingTile"
    );
    Ok(())
}

/// Batches of many sizes, across tile boundaries: entries, tiles, indexes,
/// checkpoints and proofs all read back exactly.
pub fn commit_and_read_back(store: &dyn LogStore) -> Check {
    let mut h = Harness::new();
    let mut sizes = vec![];
    for n in [1u64, 1, 3, 250, 2, 256, 511, 1, 700, 4096, 1] {
        h.commit(store, n)?;
        sizes.push(h.tree.size());
        h.check_store(store)?;
    }
    let n = h.tree.size();
    // Ranges, including the tail and a zero-length read at the end.
    let mid = ok(store.read_entries(LeafIndex(300), 5), "read")?;
    ensure!(mid == h.entries[300..305], "read_entries(300, 5) differs");
    let tail = ok(store.read_entries(LeafIndex(n.0 - 2), 10), "read")?;
    ensure!(tail.len() == 2, "read past the end returns what exists");
    ensure!(
        ok(store.read_entries(n_index(n), 10), "read")?.is_empty(),
        "read at size is empty"
    );
    // Every tile the harness holds, at several widths.
    for (l, i, w) in [
        (0u8, 0u64, 256u16),
        (0, 1, 100),
        (1, 0, 1),
        (0, (n.0 - 1) / 256, 1),
    ] {
        let t = cairn_core::Tile {
            level: l,
            index: i,
            width: w,
        };
        let got = ok(store.read_tiles(&[t]), "read_tiles")?;
        let want = h.tiles.get(l, i).map(|v| v[..usize::from(w)].to_vec());
        ensure!(Some(&got[0]) == want.as_ref(), "tile {} differs", t.path());
    }
    // Leaf-hash and idempotency lookups.
    for i in [0u64, 1, 255, 256, 1000, n.0 - 1] {
        let lh = leaf_hash(&h.entries[i as usize]);
        ensure!(
            ok(store.find_leaf(&lh), "find_leaf")? == Some(LeafIndex(i)),
            "find_leaf({i})"
        );
        let k = test_idempotency(i);
        ensure!(
            ok(store.find_idempotency_key(&k.key), "find_key")?
                == Some(IdempotencyRecord {
                    index: LeafIndex(i),
                    request: Some(k.request),
                }),
            "find_idempotency_key({i})"
        );
    }
    // Checkpoint history: every size kept, latest is the newest.
    for s in &sizes {
        let cp = ok(store.checkpoint(Some(*s)), "checkpoint")?;
        ensure!(cp.map(|c| c.size) == Some(*s), "checkpoint at {s} missing");
    }
    ensure!(
        ok(store.checkpoint(Some(TreeSize(2))), "checkpoint")?.is_some(),
        "old checkpoint"
    );
    ensure!(
        ok(store.checkpoint(Some(TreeSize(3))), "checkpoint")?.is_none(),
        "no checkpoint at 3"
    );
    // Proofs from store tiles verify.
    let tiles = StoreTiles(store);
    for (i, s) in [(0u64, n), (5, TreeSize(262)), (n.0 - 1, n)] {
        let p = ok(
            inclusion_proof(&tiles, LeafIndex(i), s).map_err(to_store),
            "inclusion",
        )?;
        let root = ok(tree_root(&tiles, s).map_err(to_store), "root")?;
        ensure!(
            verify_inclusion(
                &leaf_hash(&h.entries[i as usize]),
                LeafIndex(i),
                s,
                &p,
                &root
            )
            .is_ok(),
            "inclusion proof {i} in {s}"
        );
    }
    let old = sizes[3];
    let p = ok(
        consistency_proof(&tiles, old, n).map_err(to_store),
        "consistency",
    )?;
    let r_old = ok(tree_root(&tiles, old).map_err(to_store), "root")?;
    ensure!(
        verify_consistency(old, n, &r_old, &h.tree.root(), &p).is_ok(),
        "consistency {old} -> {n}"
    );
    Ok(())
}

fn n_index(n: TreeSize) -> LeafIndex {
    LeafIndex(n.0)
}

/// A checkpoint may ride in the batch itself, atomically.
pub fn checkpoint_in_batch(store: &dyn LogStore) -> Check {
    let mut h = Harness::new();
    let p = h.prepare(10, false);
    let e = p.entries();
    ok(
        store.commit_batch(p.batch(&e, true)),
        "commit_batch with checkpoint",
    )?;
    let cp = ok(store.checkpoint(None), "checkpoint")?;
    ensure!(
        cp.map(|c| c.note) == Some(p.note.clone()),
        "checkpoint not stored with batch"
    );
    h.accept(p);
    h.check_store(store)
}

/// Compare-and-swap: a stale or future expected size fails and is not saved.
pub fn conflict_is_not_saved(store: &dyn LogStore) -> Check {
    let mut h = Harness::new();
    h.commit(store, 5)?;
    for wrong in [0u64, 4, 6, 100] {
        let mut p = h.prepare(3, false);
        p.expected = TreeSize(wrong);
        let e = p.entries();
        let r = store.commit_batch(p.batch(&e, false));
        ensure!(
            r == Err(StoreError::Conflict { actual_size: 5 }),
            "expected size {wrong}: got {r:?}, want Conflict {{ actual_size: 5 }}"
        );
    }
    h.check_store(store)
}

/// Malformed batches: each fails and is not saved.
pub fn invalid_batches_are_not_saved(store: &dyn LogStore) -> Check {
    let mut h = Harness::new();
    h.commit(store, 300)?;
    type Mutate = fn(&mut Prepared);
    let rows: &[(&str, Mutate)] = &[
        ("leaf hash differs from its level-0 tile hash", |p| {
            p.hashes[1].0[0] ^= 1
        }),
        ("tile update does not start at the stored width", |p| {
            if let Some(u) = p.integ.tiles.first_mut() {
                u.offset += 1;
                u.tile.width += 1;
            }
        }),
        (
            "tile update with a width that disagrees with its hashes",
            |p| {
                if let Some(u) = p.integ.tiles.first_mut() {
                    u.tile.width -= 1;
                }
            },
        ),
        ("tile updated twice", |p| {
            let dup: TileUpdate = p.integ.tiles[0].clone();
            p.integ.tiles.push(dup);
        }),
        ("state size is not expected + entries", |p| {
            p.data.pop();
            p.hashes.pop();
            p.keys.pop();
        }),
        ("entry over 65,535 bytes", |p| {
            p.data[0] = vec![b'a'; 65_536]
        }),
        ("idempotency key repeated within the batch", |p| {
            p.keys[1] = p.keys[0]
        }),
        ("idempotency key already stored", |p| {
            p.keys[0] = Some(test_idempotency(7))
        }),
    ];
    for (what, mutate) in rows {
        let mut p = h.prepare(20, true);
        mutate(&mut p);
        let e = p.entries();
        let r = store.commit_batch(p.batch(&e, false));
        ensure!(
            matches!(r, Err(StoreError::InvalidBatch(_))),
            "{what}: got {r:?}, want InvalidBatch"
        );
        h.check_store(store)
            .map_err(|e| format!("{what}: was partly saved: {e}"))?;
    }
    // A checkpoint for the wrong size in the batch.
    let p = h.prepare(4, false);
    let other = h.prepare(5, false).note;
    let e = p.entries();
    let mut b = p.batch(&e, false);
    b.checkpoint = Some(&other);
    ensure!(
        matches!(store.commit_batch(b), Err(StoreError::InvalidBatch(_))),
        "checkpoint for another size must be rejected"
    );
    h.check_store(store)?;
    // And a valid batch still goes through after all that.
    h.commit(store, 20)?;
    h.check_store(store)
}

/// Checkpoint rules: none beyond the tree, idempotent for the same bytes,
/// never two different notes for one size.
pub fn checkpoint_rules(store: &dyn LogStore) -> Check {
    let mut h = Harness::new();
    h.commit(store, 8)?;
    let note8 = h.sign(&h.tree);
    // Same bytes again: fine.
    ok(
        store.put_checkpoint(TreeSize(8), &note8),
        "same checkpoint twice",
    )?;
    // Beyond the tree: fails, not saved.
    let p = h.prepare(4, false);
    let r = store.put_checkpoint(TreeSize(12), &p.note);
    ensure!(
        matches!(r, Err(StoreError::InvalidBatch(_))),
        "checkpoint beyond the tree: {r:?}"
    );
    ensure!(
        ok(store.checkpoint(Some(TreeSize(12))), "checkpoint")?.is_none(),
        "saved anyway"
    );
    // Size label disagrees with the note.
    let r = store.put_checkpoint(TreeSize(7), &note8);
    ensure!(
        matches!(r, Err(StoreError::InvalidBatch(_))),
        "mislabelled checkpoint: {r:?}"
    );
    // A different note for size 8 (another key signing the same tree):
    // refused, and the first stays.
    let other =
        NoteSigner::from_seed("conformance.cairn.test/log", &[7; 32]).map_err(|e| e.to_string())?;
    let cp = Checkpoint {
        origin: other.name().to_owned(),
        size: TreeSize(8),
        root: h.tree.root(),
        extensions: vec![],
    };
    let forged = cp.sign(&other).map_err(|e| e.to_string())?;
    let r = store.put_checkpoint(TreeSize(8), forged.as_bytes());
    ensure!(
        r == Err(StoreError::CheckpointConflict { size: 8 }),
        "second view of size 8: {r:?}"
    );
    let kept = ok(store.checkpoint(Some(TreeSize(8))), "checkpoint")?;
    ensure!(
        kept.map(|c| c.note) == Some(note8),
        "first checkpoint replaced"
    );
    // Garbage is not a checkpoint.
    ensure!(
        store.put_checkpoint(TreeSize(8), b"not a note").is_err(),
        "garbage accepted"
    );
    h.check_store(store)
}

/// The tree can lag its checkpoint (crash between batch and checkpoint);
/// load_state reports the older checkpoint and the newer tree.
pub fn tree_ahead_of_checkpoint(store: &dyn LogStore) -> Check {
    let mut h = Harness::new();
    h.commit(store, 10)?;
    let p = h.prepare(6, false);
    let e = p.entries();
    ok(store.commit_batch(p.batch(&e, false)), "commit_batch")?;
    h.accept(p);
    let st = ok(store.load_state(), "load_state")?;
    ensure!(st.tree == h.tree, "tree");
    ensure!(
        st.checkpoint.map(|c| c.size) == Some(TreeSize(10)),
        "latest checkpoint should be 10"
    );
    // Backfilling the missing checkpoint works.
    ok(
        store.put_checkpoint(TreeSize(16), &h.sign(&h.tree)),
        "backfill",
    )?;
    h.check_store(store)
}

/// Readers on other threads never see a torn batch while the writer runs.
pub fn concurrent_readers(store: &dyn LogStore) -> Check {
    let mut h = Harness::new();
    h.commit(store, 1)?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| -> Check {
                    let mut reads = 0u32;
                    while !stop.load(std::sync::atomic::Ordering::Acquire) || reads < 10 {
                        let st = ok(store.load_state(), "load_state")?;
                        let n = st.tree.size();
                        let got = ok(store.read_entries(LeafIndex(0), usize::MAX), "read")?;
                        ensure!(
                            got.len() as u64 >= n.0,
                            "fewer entries than the loaded size"
                        );
                        reads += 1;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut result = Ok(());
        for n in [3u64, 255, 1, 600, 2, 1000] {
            if let Err(e) = h.commit(store, n) {
                result = Err(e);
                break;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        for r in readers {
            let r = r
                .join()
                .map_err(|_| "reader panicked".to_string())
                .and_then(|r| r);
            if result.is_ok() {
                result = r;
            }
        }
        result
    })?;
    h.check_store(store)
}

/// A conformance case: a name and the check to run on a fresh store.
pub type Case = (&'static str, fn(&dyn LogStore) -> Check);

/// Every conformance case, by name.
pub const CASES: &[Case] = &[
    ("empty_store", empty_store),
    ("commit_and_read_back", commit_and_read_back),
    ("checkpoint_in_batch", checkpoint_in_batch),
    ("conflict_is_not_saved", conflict_is_not_saved),
    (
        "invalid_batches_are_not_saved",
        invalid_batches_are_not_saved,
    ),
    ("checkpoint_rules", checkpoint_rules),
    ("tree_ahead_of_checkpoint", tree_ahead_of_checkpoint),
    ("concurrent_readers", concurrent_readers),
];

/// Generates one `#[test]` per conformance case. The argument is an
/// expression yielding `(keep_alive, store)`, evaluated once per test.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@case $make, empty_store);
        $crate::conformance_tests!(@case $make, commit_and_read_back);
        $crate::conformance_tests!(@case $make, checkpoint_in_batch);
        $crate::conformance_tests!(@case $make, conflict_is_not_saved);
        $crate::conformance_tests!(@case $make, invalid_batches_are_not_saved);
        $crate::conformance_tests!(@case $make, checkpoint_rules);
        $crate::conformance_tests!(@case $make, tree_ahead_of_checkpoint);
        $crate::conformance_tests!(@case $make, concurrent_readers);
    };
    (@case $make:expr, $name:ident) => {
        #[test]
        fn $name() {
            let (_keep, store) = $make;
            if let Err(e) = $crate::conformance::$name(&store) {
                panic!("conformance case {} failed: {}", stringify!($name), e);
            }
        }
    };
}
