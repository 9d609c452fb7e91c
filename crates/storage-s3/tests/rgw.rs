//! The bucket store on a real S3: Ceph RGW, started on loopback by
//! `scripts/services.sh` (scripts/test.sh starts it and exports
//! `CAIRN_S3_ENDPOINT`, `CAIRN_S3_BUCKET` and the AWS credentials).
//!
//! - the storage conformance suite, each case under a fresh prefix;
//! - two writers on one log: the second commits, the first is fenced (its
//!   next commit and its checkpoint are refused, and its lease fails), and
//!   nothing it tried is visible;
//! - a batch sequenced by a writer that died before its commit point is
//!   completed by the next writer to open the log;
//! - the bucket is a tlog-tiles endpoint: the public checkpoint, tiles and
//!   entry bundles are at their C2SP paths;
//! - a store that ignores conditional writes (as Garage does) is refused
//!   at open, with the endpoint named;
//! - a follower (read replica, warm standby) reads what the writer
//!   commits, batch by batch, refuses to write, and takes over when
//!   promoted (the old writer is then fenced); a history that does not
//!   extend what it read is refused and the old one kept.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use cairn_storage::conformance::Harness;
use cairn_storage::{LogStore, SharedLogStore, StoreError};
use cairn_storage_s3::{BatchRecord, BucketStore, S3Location, S3Options};
use object_store::ObjectStoreExt;

/// The RGW under test, or `None` (a failure under CI) if it is not set up.
fn rgw() -> Option<(String, S3Options)> {
    let (endpoint, bucket) = cairn_server::testing::rgw()?;
    Some((
        bucket,
        S3Options {
            endpoint: Some(endpoint),
            region: None,
            credentials: None,
        },
    ))
}

/// A fresh prefix in the test bucket.
fn fresh_location(bucket: &str, what: &str) -> S3Location {
    let mut n = [0u8; 8];
    getrandom::fill(&mut n).unwrap();
    S3Location {
        bucket: bucket.to_owned(),
        prefix: format!("test/{what}-{}", hex::encode(n)),
    }
}

/// The test bucket itself, through `object_store`, to write what a crashed
/// writer or an operator leaves behind.
fn raw_bucket(bucket: &str, opts: &S3Options) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_endpoint(opts.endpoint.clone().unwrap())
        .with_allow_http(true)
        .with_region("us-east-1")
        .build()
        .unwrap()
}

fn open(loc: &S3Location, opts: &S3Options) -> BucketStore {
    BucketStore::open_s3(loc, opts).unwrap_or_else(|e| panic!("opening {loc:?}: {e}"))
}

macro_rules! on_rgw {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let Some((bucket, opts)) = rgw() else { return };
            let store = open(&fresh_location(&bucket, stringify!($name)), &opts);
            if let Err(e) = cairn_storage::conformance::$name(&store) {
                panic!("conformance case {} failed on RGW: {e}", stringify!($name));
            }
        }
    )*};
}

on_rgw!(
    empty_store,
    commit_and_read_back,
    checkpoint_in_batch,
    conflict_is_not_saved,
    invalid_batches_are_not_saved,
    checkpoint_rules,
    tree_ahead_of_checkpoint,
    concurrent_readers,
);

#[test]
fn a_second_writer_fences_the_first() {
    let Some((bucket, opts)) = rgw() else { return };
    let loc = fresh_location(&bucket, "fence");
    let a = open(&loc, &opts);
    let mut h = Harness::new();
    h.commit(&a, 300).unwrap();
    // B opens the same log, sees A's history, and extends it.
    let b = open(&loc, &opts);
    assert_eq!(b.load_state().unwrap().tree, h.tree);
    let mut hb = Harness::resume(h.tree.clone());
    hb.commit(&b, 10).unwrap();
    // A, unaware, tries to extend it from where it stood.
    let p = h.prepare(5, false);
    let e = p.entries();
    let err = a.commit_batch(p.batch(&e, false)).unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err}");
    assert!(err.to_string().contains("another writer"), "{err}");
    // It stays fenced: no checkpoint, no lease, no later batch.
    assert!(matches!(
        a.put_checkpoint(h.tree.size(), &h.sign(&h.tree)),
        Err(StoreError::Fenced(_))
    ));
    assert!(matches!(a.lease().check(), Err(StoreError::Fenced(_))));
    // Nothing it tried is visible: a third opener sees B's log.
    let c = open(&loc, &opts);
    assert_eq!(c.load_state().unwrap().tree, hb.tree);
    let tail = c.read_entries(cairn_core::LeafIndex(295), 100).unwrap();
    let want: Vec<Vec<u8>> = (295..310).map(Harness::entry).collect();
    assert_eq!(tail, want);
}

#[test]
fn a_batch_sequenced_before_a_crash_is_completed_by_the_next_writer() {
    let Some((bucket, opts)) = rgw() else { return };
    let loc = fresh_location(&bucket, "complete");
    let a = open(&loc, &opts);
    let mut h = Harness::new();
    h.commit(&a, 100).unwrap();
    // The writer sequences a batch and dies before its commit point: only
    // `.cairn/batch/<start>` is written.
    let p = h.prepare(50, true);
    let rec = {
        let e = p.entries();
        BatchRecord::from_batch(&p.batch(&e, false))
    };
    let raw = raw_bucket(&bucket, &opts);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(raw.put(
        &object_store::path::Path::from(format!("{}/.cairn/batch/{:020}", loc.prefix, 100)),
        rec.encode().into(),
    ))
    .unwrap();
    drop(a);
    // The next writer completes it before anything else.
    let b = open(&loc, &opts);
    let note = h.sign(&p.integ.state);
    let size = p.integ.state.size();
    h.accept(p);
    assert_eq!(b.load_state().unwrap().tree, h.tree);
    b.put_checkpoint(size, &note).unwrap();
    h.check_store(&b).unwrap();
    // The bucket is a tlog-tiles endpoint: checkpoint, tiles and bundles
    // at their C2SP paths.
    let try_get = |rel: &str| {
        rt.block_on(async {
            let r = raw
                .get(&object_store::path::Path::from(format!(
                    "{}/{rel}",
                    loc.prefix
                )))
                .await
                .ok()?;
            r.bytes().await.ok()
        })
    };
    let get = |rel: &str| try_get(rel).unwrap_or_else(|| panic!("{rel} is not in the bucket"));
    // The public checkpoint is written in the background: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while try_get("checkpoint").is_none_or(|b| b.as_ref() != note.as_slice())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(get("checkpoint").as_ref(), note.as_slice());
    assert_eq!(get("tile/0/000.p/150").len(), 150 * 32);
    let bundle = get("tile/entries/000.p/150");
    let entries = cairn_core::tile::parse_entry_bundle(&bundle).unwrap();
    assert_eq!(entries.len(), 150);
    assert_eq!(entries[149], Harness::entry(149).as_slice());
}

/// A tiny S3 that ignores `If-None-Match` and `If-Match`, as Garage does:
/// every PUT overwrites.
fn careless_s3() -> String {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Objects = Arc<Mutex<HashMap<String, Vec<u8>>>>;
    async fn put(
        State(o): State<Objects>,
        Path(key): Path<String>,
        body: axum::body::Bytes,
    ) -> (StatusCode, HeaderMap) {
        let mut m = o.lock().unwrap();
        m.insert(key, body.to_vec());
        let mut h = HeaderMap::new();
        h.insert("etag", format!("\"{}\"", m.len()).parse().unwrap());
        (StatusCode::OK, h)
    }
    async fn get(State(o): State<Objects>, Path(key): Path<String>) -> (StatusCode, Vec<u8>) {
        match o.lock().unwrap().get(&key) {
            Some(b) => (StatusCode::OK, b.clone()),
            None => (StatusCode::NOT_FOUND, Vec::new()),
        }
    }
    async fn delete(State(o): State<Objects>, Path(key): Path<String>) -> StatusCode {
        o.lock().unwrap().remove(&key);
        StatusCode::NO_CONTENT
    }
    let app = axum::Router::new()
        .route("/{*key}", axum::routing::put(put).get(get).delete(delete))
        .with_state(Objects::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(l, app).await.unwrap();
            });
    });
    format!("http://{addr}")
}

#[test]
fn a_store_that_ignores_conditional_writes_is_refused() {
    let endpoint = careless_s3();
    let err = match BucketStore::open_s3(
        &S3Location::parse("s3://careless/log").unwrap(),
        &S3Options {
            endpoint: Some(endpoint.clone()),
            region: Some("us-east-1".into()),
            credentials: Some(("careless".into(), "careless-secret".into())),
        },
    ) {
        Ok(_) => panic!("a store without conditional writes was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("does not honour create-only writes"), "{err}");
    assert!(err.contains(&endpoint), "the endpoint is named: {err}");
}

/// The follower's lookups agree with the harness for `0..n`.
fn lookups_agree(store: &dyn LogStore, n: u64) {
    for i in [0, n / 2, n - 1] {
        let h = cairn_core::leaf_hash(&Harness::entry(i));
        assert_eq!(store.find_leaf(&h).unwrap(), Some(cairn_core::LeafIndex(i)));
        let k = cairn_storage::conformance::test_idempotency(i);
        let rec = store.find_idempotency_key(&k.key).unwrap().unwrap();
        assert_eq!(rec.index, cairn_core::LeafIndex(i));
    }
}

#[test]
fn a_follower_reads_what_the_writer_commits_and_takes_over() {
    let Some((bucket, opts)) = rgw() else { return };
    let loc = fresh_location(&bucket, "follow");
    let w = open(&loc, &opts);
    // An empty bucket is an empty log to a follower.
    let f = BucketStore::follow_s3(&loc, &opts).unwrap();
    assert!(!f.is_writer());
    assert_eq!(f.load_state().unwrap().tree.size().0, 0);
    let mut h = Harness::new();
    // A writer's first act: the empty tree's checkpoint, before any state.
    assert!(f.checkpoint(None).unwrap().is_none());
    w.put_checkpoint(h.tree.size(), &h.sign(&h.tree)).unwrap();
    assert!(f.refresh().unwrap());
    assert_eq!(f.checkpoint(None).unwrap().unwrap().size.0, 0);
    // Batches that end inside a tile, on its edge, and across several.
    for n in [1, 255, 300, 2, 700] {
        h.commit(&w, n).unwrap();
        assert!(f.refresh().unwrap(), "the follower did not move");
        h.check_store(&f).unwrap();
        lookups_agree(&f, h.tree.size().0);
    }
    assert!(!f.refresh().unwrap(), "nothing new, but the follower moved");
    // It never writes.
    let p = h.prepare(1, false);
    let e = p.entries();
    let err = f.commit_batch(p.batch(&e, false)).unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly(_)), "{err}");
    assert!(matches!(
        f.put_checkpoint(h.tree.size(), &h.sign(&h.tree)),
        Err(StoreError::ReadOnly(_))
    ));
    // Promoted (the writer died, or was paused): it writes from where it
    // stands, with the caches it kept warm.
    f.promote().unwrap();
    assert!(f.is_writer());
    h.commit(&f, 10).unwrap();
    h.check_store(&f).unwrap();
    // The old writer, if it wakes, is fenced.
    let hw = Harness::resume(w.load_state().unwrap().tree);
    let p = hw.prepare(3, false);
    let e = p.entries();
    let err = w.commit_batch(p.batch(&e, false)).unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err}");
    // A fresh opener sees the one history.
    let c = open(&loc, &opts);
    h.check_store(&c).unwrap();
}

#[test]
fn a_follower_refuses_a_rewritten_history() {
    let Some((bucket, opts)) = rgw() else { return };
    let loc = fresh_location(&bucket, "rewritten");
    let w = open(&loc, &opts);
    let mut h = Harness::new();
    h.commit(&w, 300).unwrap();
    let f = BucketStore::follow_s3(&loc, &opts).unwrap();
    h.check_store(&f).unwrap();
    let raw = raw_bucket(&bucket, &opts);
    let state = object_store::path::Path::from(format!("{}/.cairn/state", loc.prefix));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let old = rt
        .block_on(async { raw.get(&state).await.unwrap().bytes().await })
        .unwrap();
    h.commit(&w, 50).unwrap();
    assert!(f.refresh().unwrap());
    // The bucket is rolled back (a restore, an operator's mistake): the
    // follower refuses it and keeps serving the history it verified.
    rt.block_on(raw.put(&state, old.into())).unwrap();
    let err = f.refresh().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("shrank"), "{err}");
    h.check_store(&f).unwrap();
}
