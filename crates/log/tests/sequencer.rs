//! The sequencer against real stores: batching, idempotency, backpressure,
//! faults at each persistence step, restart and start-up recovery.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use cairn_core::checkpoint::{WitnessPolicy, verify_checkpoint};
use cairn_core::hash::{LeafIndex, TreeSize, leaf_hash};
use cairn_core::note::NoteSigner;
use cairn_core::proof::{inclusion_proof, verify_inclusion};
use cairn_log::{AppendError, AppendRequest, IdempotencyHasher, Sequencer, SequencerConfig};
use cairn_storage::conformance::Harness;
use cairn_storage::{
    Fault, FaultPoint, FaultyStore, LogStore, MemoryStore, StoreError, StoreTiles,
};
use cairn_storage_rocks::{RocksStore, StoreOptions};

const ORIGIN: &str = "seq.cairn.test/log";

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, &[5; 32]).unwrap()
}

/// Append `i` (the event is its number), with an anonymous caller's key.
fn req(i: u64, key: Option<&str>) -> AppendRequest {
    let leaf = format!(r#"{{"v":1,"n":{i}}}"#).into_bytes();
    let hasher = IdempotencyHasher::new(&signer());
    AppendRequest {
        leaf_hash: leaf_hash(&leaf),
        idempotency: key.map(|k| hasher.record(None, k.as_bytes(), &[&i.to_be_bytes()])),
        leaf,
    }
}

fn start(store: Arc<dyn LogStore>, cfg: SequencerConfig) -> Sequencer {
    Sequencer::start(store, signer(), ORIGIN.into(), cfg)
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_indexes_and_proofs_verify() {
    let store = Arc::new(MemoryStore::new());
    let seq = start(store.clone(), SequencerConfig::default());
    let mut tasks = Vec::new();
    for i in 0..1000u64 {
        let s = seq.clone();
        tasks.push(tokio::spawn(async move {
            (i, s.append(req(i, None)).await.unwrap())
        }));
    }
    let mut seen = vec![false; 1000];
    for t in tasks {
        let (i, a) = t.await.unwrap();
        assert!(!a.duplicate);
        let idx = a.index.0 as usize;
        assert!(!seen[idx], "index {idx} given twice");
        seen[idx] = true;
        // The receipt's head covers the entry, is signed, and proves it.
        assert!(a.head.size.0 > a.index.0);
        let v = verify_checkpoint(
            a.head.note.as_bytes(),
            None,
            &signer().verifier(),
            &WitnessPolicy::default(),
        )
        .unwrap();
        assert_eq!(v.checkpoint.size, a.head.size);
        let leaf = store.read_entries(a.index, 1).unwrap().remove(0);
        assert_eq!(leaf, req(i, None).leaf, "entry {i} stored at its index");
        let p = inclusion_proof(&StoreTiles(&*store), a.index, a.head.size).unwrap();
        verify_inclusion(&leaf_hash(&leaf), a.index, a.head.size, &p, &a.head.root).unwrap();
    }
    assert!(seen.iter().all(|s| *s));
    let st = store.load_state().unwrap();
    assert_eq!(st.tree.size(), TreeSize(1000));
    assert_eq!(seq.head().borrow().size, TreeSize(1000));
    // Batching: far fewer checkpoints than appends.
    let mut checkpoints = 0;
    for n in 1..=1000 {
        if store.checkpoint(Some(TreeSize(n))).unwrap().is_some() {
            checkpoints += 1;
        }
    }
    assert!(
        checkpoints < 500,
        "{checkpoints} checkpoints for 1000 appends: no batching"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_return_the_original_index() {
    let store = Arc::new(MemoryStore::new());
    let seq = start(store.clone(), SequencerConfig::default());
    let a = seq.append(req(1, Some("k1"))).await.unwrap();
    let b = seq.append(req(1, Some("k1"))).await.unwrap();
    assert_eq!(a.index, b.index);
    assert!(b.duplicate);
    // Twice within one batch, too.
    let (x, y) = tokio::join!(
        seq.append(req(3, Some("k2"))),
        seq.append(req(3, Some("k2")))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.index, y.index);
    assert!(x.duplicate ^ y.duplicate);
    assert_eq!(store.load_state().unwrap().tree.size(), TreeSize(2));
}

/// Issue 15, item 1: a key repeated with a different event is refused,
/// never answered as a duplicate (the second event would be silently
/// dropped); across batches and within one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_with_another_event_is_refused() {
    let store = Arc::new(MemoryStore::new());
    let seq = start(store.clone(), SequencerConfig::default());
    let a = seq.append(req(1, Some("k1"))).await.unwrap();
    let r = seq.append(req(2, Some("k1"))).await;
    assert!(
        matches!(r, Err(AppendError::KeyReused { index }) if index == a.index),
        "{r:?}"
    );
    let (x, y) = tokio::join!(
        seq.append(req(3, Some("k2"))),
        seq.append(req(4, Some("k2")))
    );
    assert!(
        x.is_ok() ^ y.is_ok(),
        "one of two different events under one key is appended: {x:?} {y:?}"
    );
    assert!(matches!(
        x.err().or(y.err()),
        Some(AppendError::KeyReused { .. })
    ));
    assert_eq!(store.load_state().unwrap().tree.size(), TreeSize(2));
}

/// A memory store whose commits take `delay` (so the queue fills), and
/// whose next commit or checkpoint write can be made to fail with a given
/// error, without persisting.
#[derive(Default)]
struct TestStore {
    inner: MemoryStore,
    delay: Duration,
    fail_commit: std::sync::Mutex<Option<StoreError>>,
    fail_checkpoint: std::sync::Mutex<Option<StoreError>>,
}

impl TestStore {
    fn slow(delay: Duration) -> Self {
        TestStore {
            delay,
            ..TestStore::default()
        }
    }
}

impl LogStore for TestStore {
    fn load_state(&self) -> Result<cairn_storage::LoadedState, cairn_storage::StoreError> {
        self.inner.load_state()
    }
    fn commit_batch(
        &self,
        b: cairn_storage::CommitBatch<'_>,
    ) -> Result<(), cairn_storage::StoreError> {
        std::thread::sleep(self.delay);
        if let Some(e) = self.fail_commit.lock().unwrap().take() {
            return Err(e);
        }
        self.inner.commit_batch(b)
    }
    fn put_checkpoint(&self, s: TreeSize, n: &[u8]) -> Result<(), cairn_storage::StoreError> {
        if let Some(e) = self.fail_checkpoint.lock().unwrap().take() {
            return Err(e);
        }
        self.inner.put_checkpoint(s, n)
    }
    fn read_entries(
        &self,
        s: LeafIndex,
        l: usize,
    ) -> Result<Vec<Vec<u8>>, cairn_storage::StoreError> {
        self.inner.read_entries(s, l)
    }
    fn read_tiles(
        &self,
        t: &[cairn_core::Tile],
    ) -> Result<Vec<Vec<cairn_core::Hash>>, cairn_storage::StoreError> {
        self.inner.read_tiles(t)
    }
    fn checkpoint(
        &self,
        s: Option<TreeSize>,
    ) -> Result<Option<cairn_storage::StoredCheckpoint>, cairn_storage::StoreError> {
        self.inner.checkpoint(s)
    }
    fn find_leaf(
        &self,
        h: &cairn_core::Hash,
    ) -> Result<Option<LeafIndex>, cairn_storage::StoreError> {
        self.inner.find_leaf(h)
    }
    fn find_idempotency_key(
        &self,
        k: &cairn_storage::IdempotencyKey,
    ) -> Result<Option<cairn_storage::IdempotencyRecord>, cairn_storage::StoreError> {
        self.inner.find_idempotency_key(k)
    }
}

/// Offers `n` appends at once: the receivers of those queued, and how many
/// were answered Busy.
type Queued = tokio::sync::oneshot::Receiver<Result<cairn_log::Appended, AppendError>>;
fn offer(seq: &Sequencer, n: u64) -> (Vec<Queued>, usize) {
    let mut pending = Vec::new();
    let mut busy = 0;
    for i in 0..n {
        match seq.try_append(req(i, None)) {
            Ok(rx) => pending.push(rx),
            Err(AppendError::Busy) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    (pending, busy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_busy() {
    let store = Arc::new(TestStore::slow(Duration::from_millis(200)));
    let cfg = SequencerConfig {
        queue: 4,
        max_batch: 2,
        ..SequencerConfig::default()
    };
    let seq = start(store, cfg);
    let (pending, busy) = offer(&seq, 50);
    assert!(busy > 0, "a 4-slot queue took 50 appends");
    // Everything accepted still completes.
    for rx in pending {
        rx.await.unwrap().unwrap();
    }
}

/// Issue 15, item 5: the queue is bounded in bytes as well as entries: with
/// room for 1,000 entries but only ~3 leaves' worth of bytes, a burst is
/// answered Busy, and everything accepted completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_is_bounded_in_bytes() {
    let store = Arc::new(TestStore::slow(Duration::from_millis(100)));
    let leaf_len = req(0, None).leaf.len();
    let cfg = SequencerConfig {
        queue: 1000,
        queue_bytes: 3 * leaf_len + 1,
        max_batch: 1,
        ..SequencerConfig::default()
    };
    let seq = start(store, cfg);
    let (pending, busy) = offer(&seq, 50);
    assert!(
        pending.len() <= 3,
        "{} queued past a 3-leaf budget",
        pending.len()
    );
    assert!(busy >= 47, "{busy}");
    for rx in pending {
        rx.await.unwrap().unwrap();
    }
    // The budget comes back once batches are written.
    seq.append(req(99, None)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_never_lose_or_fork() {
    // (point, fault, do the waiters succeed?)
    let rows = [
        (FaultPoint::CommitBatch, Fault::BeforePersist, false),
        (FaultPoint::CommitBatch, Fault::AfterPersist, true),
        (FaultPoint::PutCheckpoint, Fault::BeforePersist, false),
        (FaultPoint::PutCheckpoint, Fault::AfterPersist, true),
    ];
    for (point, fault, ok) in rows {
        let store = Arc::new(FaultyStore::new(MemoryStore::new()));
        let seq = start(store.clone(), SequencerConfig::default());
        seq.append(req(0, None)).await.unwrap();
        store.arm(point, fault);
        let r = seq.append(req(1, None)).await;
        assert_eq!(r.is_ok(), ok, "{point:?} {fault:?}: {r:?}");
        if let Err(e) = &r {
            assert!(matches!(e, AppendError::Unavailable(_)), "{e}");
        }
        // The log goes on, with no gap, and every signed head verifies
        // against the store's tiles.
        let next = seq.append(req(2, None)).await.unwrap();
        let st = store.load_state().unwrap();
        assert_eq!(st.tree.size(), next.head.size);
        assert_eq!(st.tree.root(), next.head.root);
        let expect = match (point, ok) {
            (FaultPoint::CommitBatch, false) => 1, // entry 1 was not appended
            _ => 2,
        };
        assert_eq!(next.index, LeafIndex(expect), "{point:?} {fault:?}");
    }
}

/// Issue 15, item 11: errors that mean "another writer, a damaged store,
/// or a second view of one size" stop the log writing (FAILED_PRECONDITION
/// for every later append, the halted state set), while an I/O error is
/// retried and the log goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_store_errors_stop_writing_and_transient_ones_do_not() {
    let fatal = [
        (true, StoreError::CheckpointConflict { size: 2 }),
        (false, StoreError::Conflict { actual_size: 9 }),
        (false, StoreError::Corrupt("tile 0/000 disagrees".into())),
    ];
    for (at_checkpoint, err) in fatal {
        let store = Arc::new(TestStore::default());
        let seq = start(store.clone(), SequencerConfig::default());
        seq.append(req(0, None)).await.unwrap();
        let slot = if at_checkpoint {
            &store.fail_checkpoint
        } else {
            &store.fail_commit
        };
        *slot.lock().unwrap() = Some(err.clone());
        let r = seq.append(req(1, None)).await;
        assert!(matches!(r, Err(AppendError::Halted(_))), "{err}: {r:?}");
        assert!(seq.halted().borrow().is_some(), "{err}");
        // Every later append is refused, at once and from the queue.
        for i in 2..5 {
            let r = seq.append(req(i, None)).await;
            assert!(matches!(r, Err(AppendError::Halted(_))), "{err}: {r:?}");
        }
        // Nothing more was signed.
        assert_eq!(seq.head().borrow().size, TreeSize(1), "{err}");
    }
    // An I/O error: this batch fails, the next succeeds.
    let store = Arc::new(TestStore::default());
    let seq = start(store.clone(), SequencerConfig::default());
    *store.fail_commit.lock().unwrap() =
        Some(StoreError::Io("disk on fire: /srv/cairn/000012.log".into()));
    let r = seq.append(req(0, None)).await;
    match &r {
        Err(AppendError::Unavailable(m)) => {
            assert!(
                !m.contains("/srv/cairn"),
                "a server path reached the client: {m}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(seq.halted().borrow().is_none());
    seq.append(req(1, None)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_continues_the_same_tree_and_recovers_missing_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = || {
        let mut o = StoreOptions::new(tmp.path().join("data"));
        o.block_cache_bytes = 8 << 20;
        o
    };
    let first_head;
    {
        let store = Arc::new(RocksStore::open(opts()).unwrap());
        let (seq, task) = Sequencer::start(
            store.clone(),
            signer(),
            ORIGIN.into(),
            SequencerConfig::default(),
        )
        .unwrap();
        for i in 0..100 {
            seq.append(req(i, None)).await.unwrap();
        }
        first_head = seq.head().borrow().clone();
        drop(seq);
        task.await.unwrap();
    }
    {
        // A crash between a commit and its checkpoint, simulated directly.
        let store = RocksStore::open(opts()).unwrap();
        let st = store.load_state().unwrap();
        let h = Harness::resume(st.tree);
        let p = h.prepare(7, false);
        let e = p.entries();
        store.commit_batch(p.batch(&e, false)).unwrap();
    }
    let store = Arc::new(RocksStore::open(opts()).unwrap());
    assert_eq!(
        store.load_state().unwrap().checkpoint.unwrap().size,
        first_head.size
    );
    let seq = start(store.clone(), SequencerConfig::default());
    // Start-up signed the missing checkpoint for the 107-entry tree.
    assert_eq!(seq.head().borrow().size, TreeSize(107));
    assert_eq!(
        store.load_state().unwrap().checkpoint.unwrap().size,
        TreeSize(107)
    );
    let a = seq.append(req(1000, None)).await.unwrap();
    assert_eq!(a.index, LeafIndex(107));
    // The old head is a prefix of the new one.
    let p =
        cairn_core::proof::consistency_proof(&StoreTiles(&*store), first_head.size, a.head.size)
            .unwrap();
    cairn_core::proof::verify_consistency(
        first_head.size,
        a.head.size,
        &first_head.root,
        &a.head.root,
        &p,
    )
    .unwrap();
}

/// A publisher that records what it is told, and what the store held at
/// that moment.
struct Recorder {
    store: Arc<MemoryStore>,
    seen: std::sync::Mutex<Vec<(u64, Option<u64>)>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl cairn_log::Publisher for Recorder {
    fn published(&self, head: &Arc<cairn_log::SignedHead>) {
        let stored = self
            .store
            .checkpoint(Some(head.size))
            .unwrap()
            .map(|c| c.size.0);
        self.seen.lock().unwrap().push((head.size.0, stored));
    }
}

/// The publisher seam: every new head is published once, in order, only
/// once its checkpoint is durable in the store, and before the append that
/// made it is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_see_every_durable_head_in_order_before_the_answer() {
    let store = Arc::new(MemoryStore::new());
    let rec = Arc::new(Recorder {
        store: store.clone(),
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let cfg = SequencerConfig {
        publishers: vec![rec.clone()],
        ..SequencerConfig::default()
    };
    let seq = start(store.clone(), cfg);
    for i in 0..20 {
        let a = seq.append(req(i, None)).await.unwrap();
        let seen = rec.seen.lock().unwrap();
        assert!(
            seen.iter().any(|(s, _)| *s >= a.head.size.0),
            "append {i} answered before its head was published"
        );
    }
    // A repeat adds no head.
    seq.append(req(100, Some("k"))).await.unwrap();
    let before = rec.seen.lock().unwrap().len();
    seq.append(req(100, Some("k"))).await.unwrap();
    let seen = rec.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), before, "a duplicate published a head");
    for w in seen.windows(2) {
        assert!(w[0].0 < w[1].0, "heads out of order: {seen:?}");
    }
    for (size, stored) in &seen {
        assert_eq!(Some(*size), *stored, "published before it was durable");
    }
    assert_eq!(seen.last().unwrap().0, 21);
}

/// A batch queued in one go (`queue_wait_many`) gets consecutive indexes
/// in request order, gives its byte budget back as it is written, falls
/// back to one at a time when it is larger than the whole budget, and is
/// refused as a whole once the log is frozen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_queued_in_order_and_within_the_byte_budget() {
    let store: Arc<dyn LogStore> = Arc::new(MemoryStore::new());
    let leaf_len = req(0, None).leaf.len();
    let cfg = SequencerConfig {
        queue_bytes: 10 * leaf_len,
        ..SequencerConfig::default()
    };
    let seq = start(store, cfg);
    for round in 0..3u64 {
        // 8 fit the budget at once; 25 do not, and go one at a time.
        for n in [8u64, 25] {
            let start = round * 100 + n * 1000;
            let replies = seq
                .queue_wait_many((start..start + n).map(|i| req(i, None)).collect())
                .await
                .unwrap();
            assert_eq!(replies.len(), n as usize);
            let mut indexes = Vec::new();
            for rx in replies {
                indexes.push(rx.await.unwrap().unwrap().index.0);
            }
            assert!(indexes.windows(2).all(|w| w[1] == w[0] + 1), "{indexes:?}");
        }
    }
    assert_eq!(seq.room().1, 10 * leaf_len, "every byte came back");
    seq.freeze(Box::new(|_| "frozen for the test".into()))
        .await
        .unwrap();
    let e = seq
        .queue_wait_many(vec![req(1, None), req(2, None)])
        .await
        .unwrap_err();
    assert!(matches!(e, AppendError::Frozen(_)), "{e}");
}
