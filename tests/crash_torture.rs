//! Crash torture: `cairn serve` is killed with SIGKILL at random moments
//! while four streams append, and restarted each time. After every restart:
//!
//! - every acknowledged receipt's entry is at its index, with its leaf hash;
//! - every checkpoint ever returned is consistent with the current tree;
//! - no tree size was ever signed with two different roots.
//!
//! `CAIRN_TORTURE_KILLS` sets the number of kills (default 5, the CI run;
//! docs/testing.md records a 50-kill run). `CAIRN_TORTURE_SEED` fixes the
//! random schedule.
//!
//! Registered as a test of `crates/cli` (for the `cairn` binary's path).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../crates/cli/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_client::LogVerifier;
use cairn_core::{Checkpoint, Hash, LeafIndex, NoteVerifier, TreeSize, leaf_hash};
use cairn_server::pb;
use cairn_server::pb::log_client::LogClient;
use common::{cairn, start};
use tokio_stream::StreamExt;

#[derive(Clone, Debug)]
struct Acked {
    index: u64,
    leaf_hash: Hash,
    checkpoint: String,
}

/// Every signed checkpoint seen, by size; and the sizes already proved
/// consistent with a later tree.
#[derive(Default)]
struct Seen {
    roots: BTreeMap<u64, (Hash, String)>,
    proved: std::collections::BTreeSet<u64>,
}

impl Seen {
    fn add(&mut self, cp: &Checkpoint, note: &str) {
        match self.roots.get(&cp.size.0) {
            Some((root, other)) => assert_eq!(
                *root, cp.root,
                "size {} was signed with two roots:\n{other}\n{note}",
                cp.size
            ),
            None => {
                self.roots.insert(cp.size.0, (cp.root, note.to_owned()));
            }
        }
    }
}

async fn appender(server: String, id: usize, out: Arc<Mutex<Vec<Acked>>>) {
    let Ok(mut c) = LogClient::connect(server).await else {
        return;
    };
    let (tx, rx) = tokio::sync::mpsc::channel(512);
    tokio::spawn(async move {
        for i in 0u64.. {
            let ev = format!(
                r#"{{"writer":{id},"i":{i},"user":"u{i}@example.com","pad":"{}"}}"#,
                "x".repeat((i % 7 * 40) as usize)
            );
            let req = pb::AppendRequest {
                event: ev.into_bytes(),
                ..Default::default()
            };
            if tx.send(req).await.is_err() {
                return;
            }
        }
    });
    let Ok(resp) = c
        .append_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    else {
        return;
    };
    let mut s = resp.into_inner();
    while let Some(Ok(r)) = s.next().await {
        let cp = r.checkpoint.unwrap_or_default();
        out.lock().unwrap().push(Acked {
            index: r.index,
            leaf_hash: Hash::from_slice(&r.leaf_hash).unwrap(),
            checkpoint: cp.note,
        });
    }
}

/// The checks after a restart.
async fn check(server: &str, verifier: &LogVerifier, acked: &[Acked], seen: &mut Seen) -> u64 {
    let mut c = LogClient::connect(server.to_owned()).await.unwrap();
    let head = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    let now = verifier
        .verify_checkpoint(head.note.as_bytes())
        .unwrap()
        .checkpoint;
    seen.add(&now, &head.note);
    // Every acknowledged entry is there, with its leaf hash.
    let mut leaves = Vec::with_capacity(now.size.0 as usize);
    let mut s = c
        .get_entries(pb::GetEntriesRequest {
            start: 0,
            end: now.size.0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(e) = s.next().await {
        leaves.push(leaf_hash(&e.unwrap().leaf));
    }
    assert_eq!(leaves.len() as u64, now.size.0);
    for a in acked {
        assert!(
            a.index < now.size.0,
            "acknowledged entry {} is beyond the tree ({}) after restart",
            a.index,
            now.size
        );
        assert_eq!(
            leaves[a.index as usize], a.leaf_hash,
            "entry {} changed",
            a.index
        );
    }
    // Every checkpoint ever returned is consistent with this tree.
    let sizes: Vec<u64> = seen
        .roots
        .keys()
        .copied()
        .filter(|s| *s > 0 && *s < now.size.0 && !seen.proved.contains(s))
        .collect();
    for size in sizes {
        let (root, _) = seen.roots[&size];
        let old = Checkpoint {
            origin: now.origin.clone(),
            size: TreeSize(size),
            root,
            extensions: vec![],
        };
        let p = c
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size: size,
                new_size: now.size.0,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let proof = common::hashes(&p.proof);
        LogVerifier::verify_consistency(&old, &now, &proof).unwrap_or_else(|e| {
            panic!("checkpoint {size} is not consistent with {}: {e}", now.size)
        });
        seen.proved.insert(size);
    }
    // Spot-check inclusion of the latest acknowledged entry.
    if let Some(a) = acked.last() {
        let p = c
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(a.index)),
                tree_size: now.size.0,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let proof = common::hashes(&p.proof);
        LogVerifier::verify_inclusion(&a.leaf_hash, LeafIndex(a.index), &now, &proof).unwrap();
    }
    now.size.0
}

#[test]
fn kill_9_at_random_moments() {
    let kills: usize = std::env::var("CAIRN_TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut seed: u64 = std::env::var("CAIRN_TORTURE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash torture: {kills} kills, CAIRN_TORTURE_SEED={seed}");
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acked: Vec<Acked> = Vec::new();
    let mut seen = Seen::default();
    let mut verifier: Option<LogVerifier> = None;
    let mut rounds_with_receipts = 0usize;
    let started = Instant::now();
    for round in 0..=kills {
        let common::Started {
            mut serving,
            port,
            stderr,
            ..
        } = start(
            cairn()
                .args(["serve", "--data-dir"])
                .arg(&data)
                .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
                .env("CAIRN_LOG", "error")
                .stdout(Stdio::null()),
        );
        // Keep draining stderr so the server never blocks on it.
        common::drain(stderr);
        let server = format!("http://127.0.0.1:{port}");
        let v = verifier.get_or_insert_with(|| {
            let vkey = std::fs::read_to_string(data.join("log.vkey")).unwrap();
            LogVerifier::log_only(NoteVerifier::parse(vkey.trim()).unwrap())
        });
        let size = rt.block_on(check(&server, v, &acked, &mut seen));
        if round == kills {
            // The checks above are only as good as what was acknowledged:
            // a run in which nothing (or almost nothing) was acknowledged
            // proves nothing, so it fails.
            assert!(
                rounds_with_receipts * 2 >= kills,
                "only {rounds_with_receipts} of {kills} rounds acknowledged anything"
            );
            assert!(
                !acked.is_empty(),
                "no append was acknowledged in {kills} rounds"
            );
            eprintln!(
                "crash torture: {kills} kills in {:?}; final tree {size}, {} acknowledged appends checked, {} checkpoints consistent",
                started.elapsed(),
                acked.len(),
                seen.roots.len()
            );
            break;
        }
        // Drive appends, then kill -9 at a random moment.
        let out = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..4)
            .map(|id| rt.spawn(appender(server.clone(), id, out.clone())))
            .collect();
        std::thread::sleep(Duration::from_millis(150 + rand() % 850));
        serving.0.kill().unwrap();
        let _ = serving.0.wait();
        for t in tasks {
            let _ = rt.block_on(t);
        }
        let got = std::mem::take(&mut *out.lock().unwrap());
        for a in &got {
            let cp = v
                .verify_checkpoint(a.checkpoint.as_bytes())
                .unwrap()
                .checkpoint;
            assert!(cp.size.0 > a.index);
            seen.add(&cp, &a.checkpoint);
        }
        eprintln!("round {round}: {} receipts before the kill", got.len());
        rounds_with_receipts += usize::from(!got.is_empty());
        acked.extend(got);
    }
}
