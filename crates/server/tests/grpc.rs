//! The gRPC service end to end: a real server on 127.0.0.1:0, real RocksDB
//! in a temporary folder, a real tonic client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;

use cairn_core::checkpoint::{WitnessPolicy, verify_checkpoint};
use cairn_core::hash::{Hash, LeafIndex, TreeSize, leaf_hash};
use cairn_core::proof::{verify_consistency, verify_inclusion};
use cairn_core::tlog_proof::TlogProof;
use cairn_masking::{Masker, Policy, TokenKeys};
use cairn_server::pb;
use cairn_server::pb::log_client::LogClient;
use cairn_storage::{Fault, FaultPoint, FaultyStore, LogStore};
use cairn_storage_rocks::{Compression, RocksStore, StoreOptions};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

const ORIGIN: &str = "grpc.cairn.test/log";

mod common;

use common::signer;

/// The log service over `store` (open, no witnesses): its gRPC address.
async fn serve(store: Arc<dyn LogStore>) -> SocketAddr {
    common::serve(store, None).await.0
}

async fn client(addr: SocketAddr) -> LogClient<Channel> {
    LogClient::connect(format!("http://{addr}")).await.unwrap()
}

fn rocks(dir: &std::path::Path) -> Arc<RocksStore> {
    let mut o = StoreOptions::new(dir.join("data"));
    o.block_cache_bytes = 8 << 20;
    // Uncompressed, so a leak of raw PII onto disk would be visible.
    o.compression = Compression::None;
    Arc::new(RocksStore::open(o).unwrap())
}

fn event(i: u64) -> pb::AppendRequest {
    pb::AppendRequest {
        event: format!(r#"{{"seq":{i},"user":"person{i}@example.com","card":"4111 1111 1111 1111","action":"login"}}"#)
            .into_bytes(),
        content_type: pb::ContentType::Json as i32,
        policy: String::new(),
        idempotency_key: Vec::new(),
        wait_cosigned: false,
        ..Default::default()
    }
}

fn hashes(v: &[Vec<u8>]) -> Vec<Hash> {
    v.iter().map(|h| Hash::from_slice(h).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_prove_verify_and_no_pii_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let store = rocks(tmp.path());
    let addr = serve(store.clone()).await;
    let mut c = client(addr).await;
    let vk = signer().verifier();

    let r = c.append(event(1)).await.unwrap().into_inner();
    let leaf = String::from_utf8(r.leaf.clone()).unwrap();
    assert!(
        leaf.contains("[REDACTED:email]") && leaf.contains("[REDACTED:credit_card]"),
        "{leaf}"
    );
    assert!(!leaf.contains("person1@example.com"));
    assert_eq!(r.leaf_hash, leaf_hash(&r.leaf).0.to_vec());
    let cp = r.checkpoint.clone().unwrap();
    let v = verify_checkpoint(cp.note.as_bytes(), None, &vk, &WitnessPolicy::default()).unwrap();
    assert_eq!(v.checkpoint.size.0, cp.size);
    verify_inclusion(
        &leaf_hash(&r.leaf),
        LeafIndex(r.index),
        TreeSize(cp.size),
        &hashes(&r.inclusion_proof),
        &v.checkpoint.root,
    )
    .unwrap();
    // The tlog-proof text verifies offline on its own.
    TlogProof::parse(&r.tlog_proof)
        .unwrap()
        .verify(&leaf_hash(&r.leaf), None, &vk, &WitnessPolicy::default())
        .unwrap();

    // More appends over a stream; receipts come back in request order.
    let reqs: Vec<pb::AppendRequest> = (2..502).map(event).collect();
    let mut stream = c
        .append_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut last = r.index;
    let mut n = 0;
    while let Some(rc) = stream.next().await {
        let rc = rc.unwrap();
        assert_eq!(rc.index, last + 1, "receipts in order");
        last = rc.index;
        n += 1;
        let body = String::from_utf8(rc.leaf).unwrap();
        assert!(body.contains(&format!("\"seq\":{}", n + 1)), "{body}");
    }
    assert_eq!(n, 500);

    // Proofs by index and by leaf hash agree with the receipt's.
    let head = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(head.size, 501);
    let by_index = c
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(0)),
            tree_size: cp.size,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_index.proof, r.inclusion_proof);
    let by_hash = c
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(
                r.leaf_hash.clone(),
            )),
            tree_size: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_hash.index, 0);
    verify_inclusion(
        &leaf_hash(&r.leaf),
        LeafIndex(0),
        TreeSize(by_hash.tree_size),
        &hashes(&by_hash.proof),
        &Hash::from_slice(&head.root).unwrap(),
    )
    .unwrap();
    // Consistency from the first checkpoint to the latest.
    let cons = c
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            old_size: cp.size,
            new_size: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    verify_consistency(
        TreeSize(cp.size),
        TreeSize(head.size),
        &Hash::from_slice(&cp.root).unwrap(),
        &Hash::from_slice(&head.root).unwrap(),
        &hashes(&cons.proof),
    )
    .unwrap();
    // Entries stream back in order.
    let mut entries = c
        .get_entries(pb::GetEntriesRequest {
            start: 10,
            end: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut at = 10;
    while let Some(e) = entries.next().await {
        let e = e.unwrap();
        assert_eq!(e.index, at);
        at += 1;
    }
    assert_eq!(at, 501);

    // No raw PII anywhere in the data folder.
    drop(c);
    store.compact().unwrap();
    let mut files = 0;
    for f in std::fs::read_dir(tmp.path().join("data")).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        files += 1;
        for needle in [&b"@example.com"[..], b"4111 1111"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "raw PII found on disk"
            );
        }
    }
    assert!(files > 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_and_watch() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = serve(rocks(tmp.path())).await;
    let mut c = client(addr).await;
    let mut watch = c
        .watch_checkpoints(pb::WatchCheckpointsRequest {
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().size, 0);
    let mut req = event(7);
    req.idempotency_key = b"order-7".to_vec();
    let a = c.append(req.clone()).await.unwrap().into_inner();
    let b = c.append(req).await.unwrap().into_inner();
    assert_eq!(a.index, b.index);
    assert!(!a.duplicate && b.duplicate);
    assert_eq!(a.leaf, b.leaf);
    assert_eq!(watch.next().await.unwrap().unwrap().size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(
        RocksStore::open(StoreOptions::new(tmp.path().join("d"))).unwrap(),
    ));
    let addr = serve(store.clone()).await;
    let mut c = client(addr).await;
    c.append(event(0)).await.unwrap();
    let code = |r: Result<tonic::Response<pb::Receipt>, tonic::Status>| r.unwrap_err();
    // Malformed JSON: INVALID_ARGUMENT, and the message does not echo it.
    let mut bad = event(1);
    bad.event = br#"{"user":"leaky.person@example.com", oops"#.to_vec();
    let s = code(c.append(bad).await);
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(!s.message().contains("leaky"), "{}", s.message());
    // Unknown policy.
    let mut bad = event(1);
    bad.policy = "no-such".into();
    assert_eq!(code(c.append(bad).await).code(), Code::InvalidArgument);
    // Oversize entry (over 64 KiB after masking).
    let mut bad = event(1);
    bad.event = format!(r#"{{"blob":"{}"}}"#, "x".repeat(70_000)).into_bytes();
    assert_eq!(code(c.append(bad).await).code(), Code::InvalidArgument);
    // Index beyond the tree; unknown leaf hash; bad hash length; old > new.
    let s = c
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(5)),
            tree_size: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::OutOfRange);
    let s = c
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(vec![7; 32])),
            tree_size: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let s = c
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(vec![7; 31])),
            tree_size: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    let s = c
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            old_size: 2,
            new_size: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    let s = c
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            old_size: 1,
            new_size: 50,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::OutOfRange);
    // Storage failure: UNAVAILABLE, and the log carries on after it.
    store.arm(FaultPoint::CommitBatch, Fault::BeforePersist);
    assert_eq!(code(c.append(event(2)).await).code(), Code::Unavailable);
    let ok = c.append(event(3)).await.unwrap().into_inner();
    assert_eq!(ok.index, 1);
}

/// 1,000 concurrent appenders over gRPC: distinct indexes, every receipt's
/// proof verifies, and every checkpoint ever returned is consistent with
/// the final one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_appenders() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = serve(rocks(tmp.path())).await;
    let c = client(addr).await;
    let vk = signer().verifier();
    let mut tasks = Vec::new();
    for i in 0..1000u64 {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.append(event(i)).await.unwrap().into_inner()
        }));
    }
    let mut seen = std::collections::HashSet::new();
    let mut heads = std::collections::BTreeMap::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert!(seen.insert(r.index), "index {} given twice", r.index);
        let cp = r.checkpoint.unwrap();
        let root = Hash::from_slice(&cp.root).unwrap();
        verify_inclusion(
            &leaf_hash(&r.leaf),
            LeafIndex(r.index),
            TreeSize(cp.size),
            &hashes(&r.inclusion_proof),
            &root,
        )
        .unwrap();
        verify_checkpoint(cp.note.as_bytes(), None, &vk, &WitnessPolicy::default()).unwrap();
        heads.insert(cp.size, root);
    }
    assert_eq!(seen.len(), 1000);
    let mut c = c.clone();
    let last = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.size, 1000);
    let last_root = Hash::from_slice(&last.root).unwrap();
    for (size, root) in heads {
        let p = c
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size: size,
                new_size: 0,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        verify_consistency(
            TreeSize(size),
            TreeSize(1000),
            &root,
            &last_root,
            &hashes(&p.proof),
        )
        .unwrap();
    }
}

/// Fault injection through the whole server: each persistence step and
/// each read fails, "not persisted" and "persisted but reported as an
/// error", over real RocksDB and real gRPC. In every row the client sees
/// UNAVAILABLE (or success when the step did persist and the server can
/// tell), the log carries on with no manual step, every acknowledged entry
/// is at its index with its leaf hash, every checkpoint returned is
/// consistent with the final tree, and no size is signed with two roots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_never_loses_acked_entries_or_forks() {
    use std::collections::BTreeMap;
    // (step, fault, may the faulted request still succeed?)
    let rows = [
        (FaultPoint::CommitBatch, Fault::BeforePersist, false),
        (FaultPoint::CommitBatch, Fault::AfterPersist, true),
        (FaultPoint::PutCheckpoint, Fault::BeforePersist, false),
        (FaultPoint::PutCheckpoint, Fault::AfterPersist, true),
        (FaultPoint::ReadTiles, Fault::BeforePersist, false),
        (FaultPoint::ReadEntries, Fault::BeforePersist, false),
    ];
    for (point, fault, may_succeed) in rows {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(FaultyStore::new(
            RocksStore::open(StoreOptions::new(tmp.path().join("d"))).unwrap(),
        ));
        let addr = serve(store.clone()).await;
        let mut c = client(addr).await;
        let vk = signer().verifier();
        let mut acked: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut signed: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut note = |r: &pb::Receipt, acked: &mut Vec<(u64, Vec<u8>)>| {
            let cp = r.checkpoint.clone().unwrap();
            verify_checkpoint(cp.note.as_bytes(), None, &vk, &WitnessPolicy::default()).unwrap();
            let prev = signed.insert(cp.size, cp.root.clone());
            assert!(
                prev.is_none_or(|p| p == cp.root),
                "{point:?}: size {} signed twice",
                cp.size
            );
            acked.push((r.index, r.leaf_hash.clone()));
        };
        for i in 0..3 {
            let r = c.append(event(i)).await.unwrap().into_inner();
            note(&r, &mut acked);
        }
        store.arm(point, fault);
        let what = format!("{point:?} {fault:?}");
        match point {
            FaultPoint::CommitBatch | FaultPoint::PutCheckpoint => match c.append(event(3)).await {
                Ok(r) => {
                    assert!(may_succeed, "{what}: succeeded");
                    note(&r.into_inner(), &mut acked);
                }
                Err(s) => assert_eq!(s.code(), Code::Unavailable, "{what}: {s}"),
            },
            FaultPoint::ReadTiles => {
                // The receipt proves from the tiles its batch just wrote,
                // handed to the cache before the answer: no store read, so
                // a failing tile read cannot fail the append (issue 16).
                let r = c.append(event(3)).await.unwrap().into_inner();
                note(&r, &mut acked);
                assert_eq!(store.fired(), 0, "{what}: a receipt read the store's tiles");
            }
            _ => {
                let s = c
                    .get_entries(pb::GetEntriesRequest {
                        start: 0,
                        end: 3,
                        ..Default::default()
                    })
                    .await;
                let failed = match s {
                    Err(s) => Some(s),
                    Ok(st) => {
                        let mut st = st.into_inner();
                        let mut err = None;
                        while let Some(x) = st.next().await {
                            if let Err(e) = x {
                                err = Some(e);
                                break;
                            }
                        }
                        err
                    }
                };
                let s = failed.expect("the read fault surfaces");
                assert_eq!(s.code(), Code::Unavailable, "{what}: {s}");
            }
        }
        // The fault fired: nothing passed by not reaching the store
        // (a tile read fault cannot fire on the write path: above).
        if !matches!(point, FaultPoint::ReadTiles) {
            assert_eq!(store.fired(), 1, "{what}: the armed fault never fired");
        }
        // No manual step: the log carries on.
        for i in 10..13 {
            let r = c.append(event(i)).await.unwrap().into_inner();
            note(&r, &mut acked);
        }
        let last = c
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .unwrap()
            .into_inner();
        let last_root = Hash::from_slice(&last.root).unwrap();
        // Every acknowledged entry is at its index, with its leaf hash.
        for (index, lh) in &acked {
            let p = c
                .get_inclusion_proof(pb::GetInclusionProofRequest {
                    leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(*index)),
                    tree_size: last.size,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(&p.leaf_hash, lh, "{what}: entry {index} changed");
            verify_inclusion(
                &Hash::from_slice(lh).unwrap(),
                LeafIndex(*index),
                TreeSize(last.size),
                &hashes(&p.proof),
                &last_root,
            )
            .unwrap();
        }
        // Every checkpoint returned is consistent with the final tree.
        for (size, root) in &signed {
            let p = c
                .get_consistency_proof(pb::GetConsistencyProofRequest {
                    old_size: *size,
                    new_size: last.size,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            verify_consistency(
                TreeSize(*size),
                TreeSize(last.size),
                &Hash::from_slice(root).unwrap(),
                &last_root,
                &hashes(&p.proof),
            )
            .unwrap_or_else(|e| panic!("{what}: checkpoint {size} inconsistent: {e}"));
        }
    }
}

/// Fuzzing regression (`fuzz/corpus/append_request/regress-event-spells-error`):
/// an append request whose event spells out an error message and whose
/// content type is out of range. It must be refused with INVALID_ARGUMENT,
/// naming only the number, and decoding it must not panic.
#[test]
fn fuzz_regression_unknown_content_type() {
    use prost::Message;
    let bytes: &[u8] = b"\n\x1eknown content type -2130574328\x10\x88\x88\x88\x88\x88\x02";
    let req = pb::AppendRequest::decode(bytes).unwrap();
    let masker = Masker::new(Policy::default_policy().unwrap(), &TokenKeys::new(), ORIGIN).unwrap();
    let err = cairn_server::service::check_append(&masker, &req, 0, &mut || [0u8; 16]).unwrap_err();
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("unknown content type "),
        "{}",
        status.message()
    );
}

/// Request-size limit: an append request over `MAX_REQUEST_BYTES` is
/// refused while decoding (OUT_OF_RANGE), and the server carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_request_is_refused_before_masking() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = serve(rocks(tmp.path())).await;
    let mut c = client(addr).await;
    let mut big = event(0);
    big.event = format!(
        r#"{{"blob":"{}"}}"#,
        "y".repeat(cairn_server::service::MAX_REQUEST_BYTES + 1)
    )
    .into_bytes();
    let s = c.append(big).await.unwrap_err();
    assert_eq!(s.code(), Code::OutOfRange, "{s}");
    assert_eq!(c.append(event(1)).await.unwrap().into_inner().index, 0);
}

/// The proof fast path (every tile cached: answered on the async worker
/// from the tile cache, leaf hash from the level-0 tile) gives exactly the
/// slow path's answer (leaf hash looked up in the store, entry read and
/// hashed on a blocking thread), for every index of a tree with a full
/// and a partial level-0 tile, at the full size and at an older one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_fast_path_equals_slow_path() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = serve(rocks(tmp.path())).await;
    let mut c = client(addr).await;
    let reqs: Vec<pb::AppendRequest> = (0..300).map(event).collect();
    let mut stream = c
        .append_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut leaves = Vec::new();
    while let Some(r) = stream.next().await {
        leaves.push(r.unwrap().leaf_hash);
    }
    let head = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(head.size, 300);
    for size in [300u64, 257] {
        for i in (0..size).step_by(11).chain([size - 1]) {
            let by_index = |leaf| pb::GetInclusionProofRequest {
                leaf: Some(leaf),
                tree_size: size,
                ..Default::default()
            };
            // Twice by index: the second is served from the cache.
            let mut answers = Vec::new();
            for _ in 0..2 {
                answers.push(
                    c.get_inclusion_proof(by_index(pb::get_inclusion_proof_request::Leaf::Index(
                        i,
                    )))
                    .await
                    .unwrap()
                    .into_inner(),
                );
            }
            answers.push(
                c.get_inclusion_proof(by_index(pb::get_inclusion_proof_request::Leaf::LeafHash(
                    leaves[i as usize].clone(),
                )))
                .await
                .unwrap()
                .into_inner(),
            );
            for a in &answers {
                assert_eq!(a.leaf_hash, leaves[i as usize], "index {i} size {size}");
                assert_eq!(a.proof, answers[2].proof, "index {i} size {size}");
                assert_eq!((a.index, a.tree_size), (i, size));
            }
        }
    }
}

/// One bad event never sinks a stream (issue 24): 10,000 events, 1% of
/// them malformed in five ways (not JSON, JSON but not an object, nested
/// too deep, too large once masked, a text event that is not UTF-8). Each
/// bad one is answered in its slot with `INVALID_ARGUMENT` and a message
/// without its content; exactly the good ones are appended, in order, and
/// every receipt verifies; the stream stays open to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_event_never_sinks_a_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = serve(rocks(tmp.path())).await;
    let mut c = client(addr).await;
    let vk = signer().verifier();
    let bad = |k: u64| -> pb::AppendRequest {
        let (event, content_type) = match k % 5 {
            0 => (b"not json {".to_vec(), pb::ContentType::Json),
            1 => (b"[1, 2, 3]".to_vec(), pb::ContentType::Json),
            2 => (
                format!("{{\"a\":{}{}}}", "[".repeat(300), "]".repeat(300)).into_bytes(),
                pb::ContentType::Json,
            ),
            3 => (
                format!("{{\"a\":\"{}\"}}", "x".repeat(100_000)).into_bytes(),
                pb::ContentType::Json,
            ),
            _ => (vec![b'o', b'k', 0xff, 0xfe, b'!'], pb::ContentType::Text),
        };
        pb::AppendRequest {
            event,
            content_type: content_type as i32,
            ..Default::default()
        }
    };
    let n = 10_000u64;
    let is_bad = |i: u64| i % 100 == 37;
    let reqs: Vec<pb::AppendRequest> = (0..n)
        .map(|i| if is_bad(i) { bad(i / 100) } else { event(i) })
        .collect();
    let mut s = c
        .append_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut answers = Vec::new();
    while let Some(r) = s.next().await {
        answers.push(r.expect("the stream stays open to the end"));
    }
    assert_eq!(answers.len() as u64, n, "one answer per request");
    let mut next_index = 0u64;
    for (i, r) in answers.iter().enumerate() {
        let i = i as u64;
        if is_bad(i) {
            let e = r
                .error
                .as_ref()
                .unwrap_or_else(|| panic!("event {i}: no error"));
            assert_eq!(
                e.code,
                tonic::Code::InvalidArgument as i32,
                "{i}: {}",
                e.message
            );
            assert!(r.checkpoint.is_none() && r.leaf.is_empty());
            assert!(
                !e.message.contains("xxxx") && !e.message.contains("not json"),
                "{}",
                e.message
            );
            continue;
        }
        assert!(r.error.is_none(), "event {i}: {:?}", r.error);
        // The good ones, in request order, with no gaps.
        assert_eq!(r.index, next_index, "event {i}");
        next_index += 1;
        assert!(String::from_utf8_lossy(&r.leaf).contains(&format!("\"seq\":{i}")));
        let cp = r.checkpoint.as_ref().unwrap();
        let v =
            verify_checkpoint(cp.note.as_bytes(), None, &vk, &WitnessPolicy::default()).unwrap();
        verify_inclusion(
            &Hash::from_slice(&r.leaf_hash).unwrap(),
            LeafIndex(r.index),
            v.checkpoint.size,
            &hashes(&r.inclusion_proof),
            &v.checkpoint.root,
        )
        .unwrap();
    }
    assert_eq!(next_index, n - n / 100, "exactly the good ones appended");
    let cp = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cp.size, next_index);
}

/// Receipt forms and batches (issue 18): PROOF receipts on a stream carry
/// the checkpoint only when it changes, and each verifies against the
/// checkpoint received last; INDEX receipts verify once their proof is
/// fetched; an `AppendBatch` answers every event in order (a bad one in
/// its slot), sends each checkpoint once, and every receipt verifies
/// against the checkpoint its `checkpoint_size` names. Oversized batches
/// are refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_forms_and_batches_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = serve(rocks(tmp.path())).await;
    let mut c = client(addr).await;
    let vk = signer().verifier();
    let verify = |index: u64, leaf_hash: &[u8], proof: &[Vec<u8>], note: &str| {
        let v = verify_checkpoint(note.as_bytes(), None, &vk, &WitnessPolicy::default()).unwrap();
        verify_inclusion(
            &Hash::from_slice(leaf_hash).unwrap(),
            LeafIndex(index),
            v.checkpoint.size,
            &hashes(proof),
            &v.checkpoint.root,
        )
        .unwrap();
        v.checkpoint.size
    };
    // PROOF on a stream.
    let reqs: Vec<pb::AppendRequest> = (0..2000)
        .map(|i| pb::AppendRequest {
            receipt_form: pb::ReceiptForm::Proof as i32,
            ..event(i)
        })
        .collect();
    let mut s = c
        .append_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let (mut last, mut sent, mut n) = (None::<String>, 0, 0u64);
    while let Some(r) = s.next().await {
        let r = r.unwrap();
        if let Some(cp) = &r.checkpoint {
            assert_ne!(
                last.as_deref(),
                Some(cp.note.as_str()),
                "a checkpoint sent twice in a row"
            );
            last = Some(cp.note.clone());
            sent += 1;
        }
        assert!(r.leaf.is_empty() && r.tlog_proof.is_empty());
        let size = verify(
            r.index,
            &r.leaf_hash,
            &r.inclusion_proof,
            last.as_deref().unwrap(),
        );
        assert_eq!(size, TreeSize(r.checkpoint_size));
        assert_eq!(r.index, n);
        n += 1;
    }
    assert_eq!(n, 2000);
    assert!(
        sent < 200,
        "checkpoints are shared: {sent} sent for 2000 receipts"
    );
    // INDEX, unary: no proof, no checkpoint; the proof fetched later.
    let r = c
        .append(pb::AppendRequest {
            receipt_form: pb::ReceiptForm::Index as i32,
            ..event(5000)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.inclusion_proof.is_empty() && r.checkpoint.is_none() && r.leaf.is_empty());
    assert_eq!((r.index, r.checkpoint_size), (2000, 2001));
    let p = c
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(r.index)),
            tree_size: r.checkpoint_size,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.leaf_hash, r.leaf_hash);
    let cp = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    verify(r.index, &r.leaf_hash, &p.proof, &cp.note);
    // A batch of each form, with bad events among the good.
    for form in [
        pb::ReceiptForm::Full,
        pb::ReceiptForm::Proof,
        pb::ReceiptForm::Index,
    ] {
        let events: Vec<pb::AppendRequest> = (0..1000u64)
            .map(|i| {
                if i % 250 == 7 {
                    pb::AppendRequest {
                        event: b"[\"not an object\"]".to_vec(),
                        ..Default::default()
                    }
                } else {
                    event(10_000 + i)
                }
            })
            .collect();
        let before = c
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .unwrap()
            .into_inner()
            .size;
        let resp = c
            .append_batch(pb::AppendBatchRequest {
                events,
                receipt_form: form as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.receipts.len(), 1000);
        let mut next = before;
        for (i, r) in resp.receipts.iter().enumerate() {
            if i % 250 == 7 {
                assert_eq!(r.error.as_ref().unwrap().code, Code::InvalidArgument as i32);
                continue;
            }
            assert!(r.error.is_none() && r.checkpoint.is_none());
            assert_eq!(r.index, next, "{form:?} {i}");
            next += 1;
            match form {
                pb::ReceiptForm::Index => {
                    assert!(resp.checkpoints.is_empty() && r.inclusion_proof.is_empty());
                }
                _ => {
                    let cp = resp
                        .checkpoints
                        .iter()
                        .find(|c| c.size == r.checkpoint_size)
                        .expect("the receipt's checkpoint is in the response");
                    verify(r.index, &r.leaf_hash, &r.inclusion_proof, &cp.note);
                    assert_eq!(form == pb::ReceiptForm::Full, !r.tlog_proof.is_empty());
                    assert_eq!(form == pb::ReceiptForm::Full, !r.leaf.is_empty());
                }
            }
        }
        let mut notes: Vec<&str> = resp.checkpoints.iter().map(|c| c.note.as_str()).collect();
        notes.dedup();
        assert_eq!(notes.len(), resp.checkpoints.len(), "each checkpoint once");
    }
    // Too many events: refused whole, nothing appended.
    let size = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner()
        .size;
    let e = c
        .append_batch(pb::AppendBatchRequest {
            events: (0..1001).map(event).collect(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("at most 1000 events"),
        "{}",
        e.message()
    );
    let after = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner()
        .size;
    assert_eq!(after, size);
}
