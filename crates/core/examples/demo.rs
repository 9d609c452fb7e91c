//! A tour of cairn-core: build a log of audit events in memory, sign a
//! C2SP checkpoint, issue a tlog-proof receipt and check it as an outside
//! verifier would, then prove the log only grew.
//!
//! `cargo run --release --example demo -- [EVENTS]` (default 1,000,000).
//! The key is derived from a fixed string: this is a demo, not a log.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use cairn_core::checkpoint::{Checkpoint, WitnessPolicy, verify_checkpoint};
use cairn_core::hash::{LeafIndex, TreeSize, leaf_hash};
use cairn_core::memtiles::MemoryTiles;
use cairn_core::note::NoteSigner;
use cairn_core::proof::{consistency_proof, inclusion_proof, tree_root, verify_consistency};
use cairn_core::tlog_proof::TlogProof;
use cairn_core::tree::TreeState;
use sha2::Digest;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .map_err(|_| format!("EVENTS must be a positive integer, got {a:?}"))?,
        None => 1_000_000,
    };
    if events == 0 {
        return Err("EVENTS must be at least 1".into());
    }
    let origin = "demo.cairn.example/log";
    let seed: [u8; 32] = sha2::Sha256::digest(b"cairn demo key, not secret").into();
    let signer = NoteSigner::from_seed(origin, &seed)?;
    println!("log verifier key: {}", signer.verifier());

    let mut tiles = MemoryTiles::new();
    let mut state = TreeState::empty();
    let start = Instant::now();
    let mut batch = Vec::with_capacity(4096);
    let mut next_report = events / 10;
    for i in 0..events {
        let event = format!(r#"{{"v":1,"seq":{i},"actor":"[REDACTED:email]","action":"login"}}"#);
        batch.push(leaf_hash(event.as_bytes()));
        if batch.len() == 4096 || i + 1 == events {
            let integ = state.integrate(&batch)?;
            tiles.apply(&integ)?;
            state = integ.state;
            batch.clear();
            if state.size().0 >= next_report && next_report > 0 {
                eprintln!("  integrated {} / {events}", state.size().0);
                next_report += events / 10;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "integrated {events} events (leaf hash + tree) in {secs:.3} s: {:.0} events/s, {} tiles",
        events as f64 / secs,
        tiles.len()
    );

    let cp = Checkpoint {
        origin: origin.to_owned(),
        size: state.size(),
        root: state.root(),
        extensions: vec![],
    };
    let note = cp.sign(&signer)?;
    println!("\nsigned checkpoint:\n{note}");

    // A receipt for one entry, verified offline like an outside party would.
    let idx = LeafIndex(events / 3);
    let path = inclusion_proof(&tiles, idx, state.size())?;
    let receipt = TlogProof {
        extra: None,
        index: idx,
        path,
        checkpoint: note.clone(),
    };
    let text = receipt.encode();
    println!("tlog-proof for entry {idx}:\n{text}");
    let event = format!(
        r#"{{"v":1,"seq":{},"actor":"[REDACTED:email]","action":"login"}}"#,
        idx.0
    );
    TlogProof::parse(&text)?.verify(
        &leaf_hash(event.as_bytes()),
        Some(origin),
        &signer.verifier(),
        &WitnessPolicy::default(),
    )?;
    println!("receipt verified against the log key");

    // Append-only: the tree at half the size is a prefix of today's.
    if events >= 2 {
        let old = TreeSize(events / 2);
        let old_root = tree_root(&tiles, old)?;
        let proof = consistency_proof(&tiles, old, state.size())?;
        verify_consistency(old, state.size(), &old_root, &state.root(), &proof)?;
        println!(
            "consistency {} -> {} verified ({} hashes)",
            old,
            state.size(),
            proof.len()
        );
    }
    let v = verify_checkpoint(
        note.as_bytes(),
        None,
        &signer.verifier(),
        &WitnessPolicy::default(),
    )?;
    println!(
        "checkpoint verified: size {}, root {}",
        v.checkpoint.size, v.checkpoint.root
    );
    Ok(())
}
