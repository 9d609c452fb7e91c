//! The sequencer against real stores: batching, idempotency, backpressure,
//! faults at each persistence step, restart and start-up recovery.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use cairn_core::checkpoint::{WitnessPolicy, verify_checkpoint};
use cairn_core::hash::{LeafIndex, TreeSize, leaf_hash};
use cairn_core::note::NoteSigner;
use cairn_core::proof::{inclusion_proof, verify_inclusion};
use cairn_server::{AppendError, AppendRequest, Sequencer, SequencerConfig};
use cairn_storage::conformance::Harness;
use cairn_storage::{
    Fault, FaultPoint, FaultyStore, LogStore, MemoryStore, RocksStore, StoreOptions, StoreTiles,
};

const ORIGIN: &str = "seq.cairn.test/log";

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, &[5; 32]).unwrap()
}

fn req(i: u64, key: Option<&str>) -> AppendRequest {
    let leaf = format!(r#"{{"v":1,"n":{i}}}"#).into_bytes();
    AppendRequest {
        leaf_hash: leaf_hash(&leaf),
        leaf,
        idempotency_key: key.map(|k| k.as_bytes().to_vec()),
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
    let b = seq.append(req(2, Some("k1"))).await.unwrap();
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

/// A store whose commits take a while, so the queue fills.
struct SlowStore(MemoryStore);

impl LogStore for SlowStore {
    fn load_state(&self) -> Result<cairn_storage::LoadedState, cairn_storage::StoreError> {
        self.0.load_state()
    }
    fn commit_batch(
        &self,
        b: cairn_storage::CommitBatch<'_>,
    ) -> Result<(), cairn_storage::StoreError> {
        std::thread::sleep(Duration::from_millis(200));
        self.0.commit_batch(b)
    }
    fn put_checkpoint(&self, s: TreeSize, n: &[u8]) -> Result<(), cairn_storage::StoreError> {
        self.0.put_checkpoint(s, n)
    }
    fn read_entries(
        &self,
        s: LeafIndex,
        l: usize,
    ) -> Result<Vec<Vec<u8>>, cairn_storage::StoreError> {
        self.0.read_entries(s, l)
    }
    fn read_tiles(
        &self,
        t: &[cairn_core::Tile],
    ) -> Result<Vec<Vec<cairn_core::Hash>>, cairn_storage::StoreError> {
        self.0.read_tiles(t)
    }
    fn checkpoint(
        &self,
        s: Option<TreeSize>,
    ) -> Result<Option<cairn_storage::StoredCheckpoint>, cairn_storage::StoreError> {
        self.0.checkpoint(s)
    }
    fn find_leaf(
        &self,
        h: &cairn_core::Hash,
    ) -> Result<Option<LeafIndex>, cairn_storage::StoreError> {
        self.0.find_leaf(h)
    }
    fn find_idempotency_key(
        &self,
        k: &[u8],
    ) -> Result<Option<LeafIndex>, cairn_storage::StoreError> {
        self.0.find_idempotency_key(k)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_busy() {
    let store = Arc::new(SlowStore(MemoryStore::new()));
    let cfg = SequencerConfig {
        queue: 4,
        max_batch: 2,
        ..SequencerConfig::default()
    };
    let seq = start(store, cfg);
    let mut pending = Vec::new();
    let mut busy = 0;
    for i in 0..50 {
        match seq.try_append(req(i, None)) {
            Ok(rx) => pending.push(rx),
            Err(AppendError::Busy) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(busy > 0, "a 4-slot queue took 50 appends");
    // Everything accepted still completes.
    for rx in pending {
        rx.await.unwrap().unwrap();
    }
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
