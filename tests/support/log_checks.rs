//! What every crash test checks of a restarted log, shared by the process
//! crash test (`crash_torture.rs`) and the power-loss test
//! (`power_loss.rs`): appenders that keep what was acknowledged, and the
//! checks after a restart.
//!
//! The checks return a finding instead of panicking, so the power-loss
//! test can also show that they catch a loss (its lying-disk run).
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cairn_client::LogVerifier;
use cairn_core::{Checkpoint, Hash, LeafIndex, TreeSize, leaf_hash};
use cairn_server::pb;
use cairn_server::pb::log_client::LogClient;
use tokio_stream::StreamExt;

/// One acknowledged append: where it is, what it is, the checkpoint that
/// came with it.
#[derive(Clone, Debug)]
pub struct Acked {
    pub index: u64,
    pub leaf_hash: Hash,
    pub checkpoint: String,
}

/// Every signed checkpoint seen, by size; and the sizes already proved
/// consistent with a later tree.
#[derive(Default)]
pub struct Seen {
    pub roots: BTreeMap<u64, (Hash, String)>,
    pub proved: std::collections::BTreeSet<u64>,
}

impl Seen {
    /// Records a checkpoint; a second root for one size is a finding.
    pub fn add(&mut self, cp: &Checkpoint, note: &str) -> Result<(), String> {
        match self.roots.get(&cp.size.0) {
            Some((root, other)) if *root != cp.root => Err(format!(
                "size {} was signed with two roots:\n{other}\n{note}",
                cp.size
            )),
            Some(_) => Ok(()),
            None => {
                self.roots.insert(cp.size.0, (cp.root, note.to_owned()));
                Ok(())
            }
        }
    }

    /// The largest size returned to a client.
    pub fn max_size(&self) -> u64 {
        self.roots.keys().next_back().copied().unwrap_or(0)
    }

    /// Records the checkpoints of receipts (each must verify and cover its
    /// entry).
    pub fn add_receipts(&mut self, v: &LogVerifier, got: &[Acked]) -> Result<(), String> {
        for a in got {
            let cp = v
                .verify_checkpoint(a.checkpoint.as_bytes())
                .map_err(|e| format!("a receipt's checkpoint does not verify: {e}"))?
                .checkpoint;
            if cp.size.0 <= a.index {
                return Err(format!("receipt {} under checkpoint {}", a.index, cp.size));
            }
            self.add(&cp, &a.checkpoint)?;
        }
        Ok(())
    }
}

/// Streams appends to `server` until the stream breaks, pushing every
/// receipt to `out`.
pub async fn appender(server: String, id: usize, out: Arc<Mutex<Vec<Acked>>>) {
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
        let Ok(leaf_hash) = Hash::from_slice(&r.leaf_hash) else {
            return;
        };
        out.lock().unwrap_or_else(|p| p.into_inner()).push(Acked {
            index: r.index,
            leaf_hash,
            checkpoint: cp.note,
        });
    }
}

fn hashes(v: &[Vec<u8>]) -> Result<Vec<Hash>, String> {
    v.iter()
        .map(|h| Hash::from_slice(h).map_err(|e| format!("a proof hash: {e}")))
        .collect()
}

/// The checks after a restart; the current tree size, or what is wrong:
///
/// - the server's checkpoint verifies under the log's key;
/// - every acknowledged entry is at its index with its leaf hash;
/// - every checkpoint ever returned is consistent with the current tree
///   (and no size has two roots);
/// - the latest acknowledged entry's inclusion proof verifies.
pub async fn check(
    server: &str,
    verifier: &LogVerifier,
    acked: &[Acked],
    seen: &mut Seen,
) -> Result<u64, String> {
    let mut c = LogClient::connect(server.to_owned())
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let head = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .map_err(|e| format!("GetCheckpoint: {e}"))?
        .into_inner();
    let now = verifier
        .verify_checkpoint(head.note.as_bytes())
        .map_err(|e| format!("the restarted log's checkpoint does not verify: {e}"))?
        .checkpoint;
    seen.add(&now, &head.note)?;
    // Every acknowledged entry is there, with its leaf hash.
    let mut leaves = Vec::with_capacity(now.size.0 as usize);
    let mut s = c
        .get_entries(pb::GetEntriesRequest {
            start: 0,
            end: now.size.0,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("GetEntries: {e}"))?
        .into_inner();
    while let Some(e) = s.next().await {
        leaves.push(leaf_hash(&e.map_err(|e| format!("GetEntries: {e}"))?.leaf));
    }
    if leaves.len() as u64 != now.size.0 {
        return Err(format!("{} entries for size {}", leaves.len(), now.size));
    }
    let lost = acked.iter().filter(|a| a.index >= now.size.0).count();
    if lost > 0 {
        return Err(format!(
            "{lost} acknowledged entries are beyond the tree ({}) after restart",
            now.size
        ));
    }
    for a in acked {
        if leaves[a.index as usize] != a.leaf_hash {
            return Err(format!("acknowledged entry {} changed", a.index));
        }
    }
    // Every checkpoint ever returned is consistent with this tree.
    let sizes: Vec<u64> = seen
        .roots
        .keys()
        .copied()
        .filter(|s| *s > 0 && !seen.proved.contains(s))
        .collect();
    for size in sizes {
        if size > now.size.0 {
            return Err(format!(
                "a checkpoint of size {size} was returned, but the tree is {} after restart",
                now.size
            ));
        }
        if size == now.size.0 {
            continue;
        }
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
            .map_err(|e| format!("GetConsistencyProof {size}: {e}"))?
            .into_inner();
        LogVerifier::verify_consistency(&old, &now, &hashes(&p.proof)?)
            .map_err(|e| format!("checkpoint {size} is not consistent with {}: {e}", now.size))?;
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
            .map_err(|e| format!("GetInclusionProof: {e}"))?
            .into_inner();
        LogVerifier::verify_inclusion(&a.leaf_hash, LeafIndex(a.index), &now, &hashes(&p.proof)?)
            .map_err(|e| format!("inclusion of {}: {e}", a.index))?;
    }
    Ok(now.size.0)
}
