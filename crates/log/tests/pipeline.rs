//! The one write pipeline (integrate → commit → sign → store the
//! checkpoint) against the memory store, with a fault at each persistence
//! step: what it returns, what is durable, and where the next batch goes
//! on from. `cairn serve` (the sequencer) and `cairn import` both write
//! through it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use cairn_core::checkpoint::{WitnessPolicy, verify_checkpoint};
use cairn_core::hash::{TreeSize, leaf_hash};
use cairn_core::note::NoteSigner;
use cairn_core::tree::TreeState;
use cairn_log::WritePipeline;
use cairn_storage::{Fault, FaultPoint, FaultyStore, LogStore, MemoryStore, NewEntry};

const ORIGIN: &str = "pipeline.cairn.test/log";

fn leaves(from: u64, n: u64) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| format!(r#"{{"n":{i}}}"#).into_bytes())
        .collect()
}

fn entries(l: &[Vec<u8>]) -> Vec<NewEntry<'_>> {
    l.iter()
        .map(|d| NewEntry {
            data: d,
            leaf_hash: leaf_hash(d),
            idempotency: None,
        })
        .collect()
}

#[test]
fn each_persistence_step_fails_safely() {
    let signer = NoteSigner::from_seed(ORIGIN, &[4; 32]).unwrap();
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let p = WritePipeline::new(store.clone(), Arc::new(signer.clone()), ORIGIN);
    let first = leaves(0, 3);
    let w = p.write(&TreeState::empty(), &entries(&first)).unwrap();
    assert_eq!(w.tree.size(), TreeSize(3));
    assert!(w.guard.is_ok());
    verify_checkpoint(
        w.head.note.as_bytes(),
        None,
        &signer.verifier(),
        &WitnessPolicy::default(),
    )
    .unwrap();
    assert_eq!(
        store.load_state().unwrap().checkpoint.unwrap().size,
        TreeSize(3)
    );
    let mut tree = w.tree;
    // (step, fault, succeeds, entries durable on failure, fatal)
    let rows = [
        (
            FaultPoint::CommitBatch,
            Fault::BeforePersist,
            false,
            false,
            false,
        ),
        (
            FaultPoint::CommitBatch,
            Fault::AfterPersist,
            true,
            true,
            false,
        ),
        (FaultPoint::CommitBatch, Fault::Refuse, false, false, true),
        (
            FaultPoint::PutCheckpoint,
            Fault::BeforePersist,
            false,
            true,
            false,
        ),
        (
            FaultPoint::PutCheckpoint,
            Fault::AfterPersist,
            true,
            true,
            false,
        ),
        (FaultPoint::PutCheckpoint, Fault::Refuse, false, true, true),
    ];
    for (i, (point, fault, ok, durable, fatal)) in rows.into_iter().enumerate() {
        let what = format!("{point:?} {fault:?}");
        let batch = leaves(100 * (i as u64 + 1), 2);
        store.arm(point, fault);
        let before = tree.size();
        match p.write(&tree, &entries(&batch)) {
            Ok(w) => {
                assert!(ok, "{what}: succeeded");
                assert_eq!(w.tree.size().0, before.0 + 2, "{what}");
                assert_eq!(store.load_state().unwrap().tree, w.tree, "{what}");
                tree = w.tree;
            }
            Err(f) => {
                assert!(!ok, "{what}: failed: {}", f.error);
                assert_eq!(f.entries_durable, durable, "{what}");
                assert_eq!(f.is_fatal(), fatal, "{what}");
                // The caller goes on from the store's durable tree.
                assert_eq!(store.load_state().unwrap().tree, f.tree, "{what}");
                let expect = if durable { before.0 + 2 } else { before.0 };
                assert_eq!(f.tree.size().0, expect, "{what}");
                tree = f.tree;
            }
        }
        assert_eq!(store.fired() as usize, i + 1, "{what}: the fault fired");
    }
    // After all that, the next batch writes and its checkpoint covers
    // every durable entry.
    let w = p.write(&tree, &entries(&leaves(1000, 1))).unwrap();
    let st = store.load_state().unwrap();
    assert_eq!(st.checkpoint.unwrap().size, w.tree.size());
    assert_eq!(st.tree, w.tree);
}
