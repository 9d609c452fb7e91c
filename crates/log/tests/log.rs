//! A running log in the engine, with no transport: receipts verify and are
//! built without reading the store's tiles, and a frozen log refuses
//! appends (queued ones too), keeps its final checkpoint, serves proofs,
//! and stays frozen across restarts, whether frozen on request, by
//! configuration, or by `not_after`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_core::checkpoint::{WitnessPolicy, verify_checkpoint};
use cairn_core::hash::{LeafIndex, TreeSize};
use cairn_core::note::NoteSigner;
use cairn_core::proof::verify_inclusion;
use cairn_log::{LeafRef, Log, LogError, LogName, LogOptions, Receipt};
use cairn_masking::{ContentType, Masker, Policy, TokenKeys};
use cairn_storage::{Fault, FaultPoint, FaultyStore, LogStore};
use cairn_storage_rocks::{RocksStore, StoreOptions};

const ORIGIN: &str = "engine.cairn.test/log";

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, &[9; 32]).unwrap()
}

fn masker() -> Arc<Masker> {
    Arc::new(Masker::new(Policy::default_policy().unwrap(), &TokenKeys::new(), ORIGIN).unwrap())
}

fn rocks(dir: &Path) -> Arc<FaultyStore<RocksStore>> {
    Arc::new(FaultyStore::new(
        RocksStore::open(StoreOptions::new(dir.join("data"))).unwrap(),
    ))
}

fn start(store: Arc<dyn LogStore>, dir: &Path, opts: LogOptions) -> Arc<Log> {
    let opts = LogOptions {
        freeze_marker: Some(dir.join("frozen.checkpoint")),
        ..opts
    };
    Log::start(
        LogName::new("engine").unwrap(),
        ORIGIN,
        store,
        signer(),
        masker(),
        opts,
    )
    .unwrap()
    .0
}

async fn append(log: &Arc<Log>, i: u64) -> Result<Receipt, LogError> {
    let masked = log.mask(
        "",
        format!(r#"{{"i":{i},"email":"a{i}@example.com"}}"#).as_bytes(),
        ContentType::Json,
    )?;
    let req = log.request(&masked, None);
    let hash = req.leaf_hash;
    let reply = log.try_append(req)?;
    log.finish(masked, hash, reply, true).await
}

fn verifies(r: &Receipt) {
    let v = verify_checkpoint(
        r.head.note.as_bytes(),
        Some(ORIGIN),
        &signer().verifier(),
        &WitnessPolicy::default(),
    )
    .unwrap();
    assert_eq!(v.checkpoint.size, r.head.size);
    assert_eq!(r.leaf_hash, cairn_core::hash::leaf_hash(&r.leaf));
    verify_inclusion(
        &r.leaf_hash,
        r.index,
        r.head.size,
        &r.path,
        &v.checkpoint.root,
    )
    .unwrap();
}

/// Receipts of concurrent appends verify, and none of them read the
/// store's tiles: every tile read would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_prove_from_the_batch_not_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = rocks(tmp.path());
    let log = start(store.clone(), tmp.path(), LogOptions::default());
    store.arm(FaultPoint::ReadTiles, Fault::BeforePersist);
    let mut tasks = Vec::new();
    for i in 0..2000u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { append(&log, i).await.unwrap() }));
    }
    for t in tasks {
        verifies(&t.await.unwrap());
    }
    assert_eq!(store.fired(), 0, "a receipt read the store's tiles");
    // The same proofs by index come from the cache too.
    let p = log
        .inclusion_proof(LeafRef::Index(LeafIndex(1234)), 0)
        .await
        .unwrap();
    assert_eq!(p.size, TreeSize(2000));
    assert_eq!(store.fired(), 0);
}

/// Freezing on request: the final head is the latest durable one; appends
/// after it (including ones already queued) are refused with a message
/// naming the log and its size; reads go on; the freeze is recorded and
/// survives a restart without any configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_log_keeps_its_final_checkpoint_and_serves_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let store = rocks(tmp.path());
    let log = start(store.clone(), tmp.path(), LogOptions::default());
    for i in 0..10 {
        append(&log, i).await.unwrap();
    }
    // Appends in flight while the freeze arrives: each is either in the
    // final tree (and its receipt verifies against a head no larger than
    // the final one) or refused as frozen; never anything else.
    let mut tasks = Vec::new();
    for i in 10..500u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { append(&log, i).await }));
    }
    let final_head = log.freeze().await.unwrap();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                verifies(&r);
                assert!(r.head.size <= final_head.size);
            }
            Err(LogError::FailedPrecondition(m)) => {
                assert!(m.contains("\"engine\"") && m.contains("frozen"), "{m}");
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let e = append(&log, 999).await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("frozen at size {}", final_head.size)),
        "{e}"
    );
    assert_eq!(
        log.latest().size,
        final_head.size,
        "nothing after the freeze"
    );
    assert_eq!(final_head.size.0 + refused, 500);
    // Reads and proofs go on.
    let p = log
        .inclusion_proof(LeafRef::Index(LeafIndex(3)), 0)
        .await
        .unwrap();
    assert_eq!(p.size, final_head.size);
    // Freezing again returns the same head.
    assert_eq!(log.freeze().await.unwrap().note, final_head.note);
    // Recorded: a restart with no `frozen` setting is still frozen.
    let marker = std::fs::read_to_string(tmp.path().join("frozen.checkpoint")).unwrap();
    assert_eq!(marker, final_head.note);
    log.sequencer().close().await;
    drop(log);
    drop(store);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let store = rocks(tmp.path());
    let log = start(store, tmp.path(), LogOptions::default());
    assert!(log.frozen().is_some());
    assert!(matches!(
        append(&log, 1000).await,
        Err(LogError::FailedPrecondition(_))
    ));
    assert_eq!(log.latest().note, final_head.note);
}

/// `frozen = true` and a past `not_after` start the log frozen (and record
/// it); a `not_after` in the near future freezes it on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_freezes_and_not_after() {
    for how in ["frozen", "past", "soon"] {
        let tmp = tempfile::tempdir().unwrap();
        let store = rocks(tmp.path());
        let log = start(store.clone(), tmp.path(), LogOptions::default());
        append(&log, 0).await.unwrap();
        log.sequencer().close().await;
        drop(log);
        drop(store);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = SystemTime::now();
        let opts = match how {
            "frozen" => LogOptions {
                frozen: true,
                ..LogOptions::default()
            },
            "past" => LogOptions {
                not_after: Some(now - Duration::from_secs(60)),
                ..LogOptions::default()
            },
            _ => LogOptions {
                not_after: Some(now + Duration::from_millis(700)),
                ..LogOptions::default()
            },
        };
        let log = start(rocks(tmp.path()), tmp.path(), opts);
        if how == "soon" {
            append(&log, 1).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        let e = append(&log, 2).await.unwrap_err().to_string();
        assert!(e.contains("frozen"), "{how}: {e}");
        let size = if how == "soon" { 2 } else { 1 };
        assert_eq!(log.latest().size, TreeSize(size), "{how}");
        assert!(
            tmp.path().join("frozen.checkpoint").exists(),
            "{how}: recorded"
        );
    }
}
