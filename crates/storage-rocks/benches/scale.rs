//! Storage at scale: builds (once) a store of 10^7 300-byte entries, then
//! measures start-up time, on-disk bytes per entry, random entry reads and
//! proof-tile reads. Prints one line per figure.
//!
//! Run: `cargo bench --locked --bench scale` (docs/benchmarks.md).
//! Environment: `CAIRN_SCALE_N` (entries, default 10,000,000),
//! `CAIRN_SCALE_DIR` (default `<target>/cairn-scale-<N>`; reused if complete).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_core::hash::{Hash, LeafIndex, TreeSize, leaf_hash};
use cairn_core::proof::ProofPlan;
use cairn_core::tree::TreeState;
use cairn_storage::conformance::Harness;
use cairn_storage::{CommitBatch, LogStore, NewEntry, StoreTiles};
use cairn_storage_rocks::{RocksStore, StoreOptions};

const ENTRY_LEN: usize = 300;

fn entry(i: u64) -> Vec<u8> {
    let mut e = format!(
        r#"{{"v":1,"ts":{},"body":{{"action":"user.login","user":"tok:1:{:016x}","ip":"203.0.113.0/24","session":"{:032x}"}},"masked":[["/user","email","token"]]}}"#,
        1_760_000_000_000u64 + i,
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        u128::from(i).wrapping_mul(0x0123_4567_89ab_cdef_0011_2233_4455_6677)
    )
    .into_bytes();
    e.resize(ENTRY_LEN, b' ');
    e
}

fn rng(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn build(store: &RocksStore, n: u64) {
    let h = Harness::new();
    let mut tree = store.load_state().unwrap().tree;
    let t0 = Instant::now();
    let mut next_report = (tree.size().0 / 1_000_000 + 1) * 1_000_000;
    while tree.size().0 < n {
        let start = tree.size().0;
        let k = (n - start).min(16_384);
        let data: Vec<Vec<u8>> = (start..start + k).map(entry).collect();
        let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let integ = tree.integrate(&hashes).unwrap();
        let entries: Vec<NewEntry<'_>> = data
            .iter()
            .zip(&hashes)
            .map(|(d, h)| NewEntry {
                data: d,
                leaf_hash: *h,
                idempotency: None,
            })
            .collect();
        let note = h.sign(&integ.state);
        store
            .commit_batch(CommitBatch {
                expected_size: tree.size(),
                entries: &entries,
                tiles: &integ.tiles,
                state: &integ.state,
                checkpoint: Some(&note),
            })
            .unwrap();
        tree = integ.state;
        if tree.size().0 >= next_report {
            let s = t0.elapsed().as_secs_f64();
            eprintln!(
                "  built {} / {n} entries ({:.0} entries/s)",
                tree.size(),
                tree.size().0 as f64 / s
            );
            next_report += 1_000_000;
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes every bench binary.
    }
    let n: u64 = std::env::var("CAIRN_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = std::env::var_os("CAIRN_SCALE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join(format!("cairn-scale-{n}")));
    let opts = || {
        let mut o = StoreOptions::new(&dir);
        o.guard_path = Some(dir.with_extension("guard"));
        o
    };
    {
        let store = RocksStore::open(opts()).unwrap();
        let size = store.load_state().unwrap().tree.size().0;
        if size < n {
            eprintln!(
                "building a store of {n} entries in {} (from {size})",
                dir.display()
            );
            build(&store, n);
            store.compact().unwrap();
        }
    }
    // Start-up: open + WAL replay + format check + root-from-tiles check +
    // fork-guard check. Best of 5 (page cache warm, as after a restart).
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let s = RocksStore::open(opts()).unwrap();
        let el = t.elapsed();
        drop(s);
        best = best.min(el);
    }
    println!(
        "startup_to_verified_state: {:.1} ms ({n} entries)",
        best.as_secs_f64() * 1e3
    );

    let store = RocksStore::open(opts()).unwrap();
    let size = TreeSize(store.load_state().unwrap().tree.size().0);
    let usage = store.disk_usage().unwrap();
    let total: u64 = usage.iter().map(|(_, b)| b).sum();
    let entries_cf = usage
        .iter()
        .find(|(n, _)| *n == "entries")
        .map_or(0, |(_, b)| *b);
    for (name, bytes) in &usage {
        println!(
            "disk_{name}: {bytes} bytes = {:.2} bytes/entry",
            *bytes as f64 / n as f64
        );
    }
    println!(
        "disk_overhead_outside_entries_cf: {:.2} bytes/entry (every column family but entries; raw entries are {ENTRY_LEN} B, the entries CF holds {:.1} B/entry incl. keys)",
        (total - entries_cf) as f64 / n as f64,
        entries_cf as f64 / n as f64
    );
    // The payload alone, LZ4-compressed in 16 KiB blocks as RocksDB does:
    // everything else on disk (keys included) is overhead.
    let mut payload = 0u64;
    let mut block = Vec::with_capacity(20 << 10);
    let mut flush = |block: &mut Vec<u8>| {
        payload += lz4_flex::block::compress(block).len() as u64;
        block.clear();
    };
    for i in 0..n {
        block.extend_from_slice(&entry(i));
        if block.len() >= 16 << 10 {
            flush(&mut block);
        }
    }
    flush(&mut block);
    println!(
        "disk_overhead_beyond_compressed_payload: {:.2} bytes/entry (payload alone compresses to {:.1} B/entry with LZ4 in 16 KiB blocks)",
        (total - payload) as f64 / n as f64,
        payload as f64 / n as f64
    );

    // Random single-entry reads, one thread.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let reads = 200_000u64;
    let t = Instant::now();
    for _ in 0..reads {
        let i = rng(&mut x) % n;
        let e = store.read_entries(LeafIndex(i), 1).unwrap();
        std::hint::black_box(e);
    }
    println!(
        "random_entry_reads: {:.0}/s (1 thread)",
        reads as f64 / t.elapsed().as_secs_f64()
    );

    // Proof-tile reads: the tiles of a random inclusion proof, one call each.
    let proofs = 200_000u64;
    let t = Instant::now();
    for _ in 0..proofs {
        let i = rng(&mut x) % n;
        let plan = ProofPlan::inclusion(LeafIndex(i), size).unwrap();
        std::hint::black_box(store.read_tiles(plan.tiles()).unwrap());
    }
    println!(
        "proof_tile_reads: {:.0} proofs' tiles/s (1 thread, {} tiles per proof at this size)",
        proofs as f64 / t.elapsed().as_secs_f64(),
        ProofPlan::inclusion(LeafIndex(12345), size)
            .unwrap()
            .tiles()
            .len()
    );
    // Whole inclusion proofs (tile read + hashing), no cache above the store.
    let t = Instant::now();
    for _ in 0..proofs / 4 {
        let i = rng(&mut x) % n;
        let p = cairn_core::proof::inclusion_proof(&StoreTiles(&store), LeafIndex(i), size);
        std::hint::black_box(p.unwrap());
    }
    println!(
        "inclusion_proofs_from_store: {:.0}/s (1 thread, no tile cache)",
        (proofs / 4) as f64 / t.elapsed().as_secs_f64()
    );
    let _ = TreeState::empty();
}
