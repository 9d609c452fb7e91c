//! Core benchmarks: integration throughput against the raw SHA-256 bound and
//! against the `ct-merkle` crate, and proof generation, all in one run.
//!
//! Run: `cargo bench --locked --bench core` (see docs/benchmarks.md). The
//! ratios are printed at the end, computed from this run's estimates.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use cairn_core::hash::{Hash, LeafIndex, TreeSize, leaf_hash, node_hash};
use cairn_core::memtiles::MemoryTiles;
use cairn_core::proof::{consistency_proof, inclusion_proof};
use cairn_core::tree::TreeState;
use criterion::{BatchSize, Criterion, Throughput};

const BASE: u64 = 1_000_000;

#[path = "support/estimates.rs"]
mod support;
use support::mean_ns;

fn leaves(range: std::ops::Range<u64>) -> Vec<Hash> {
    range.map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// A tree of 10^6 leaves, its tiles and state.
fn base_tree() -> (MemoryTiles, TreeState) {
    let mut tiles = MemoryTiles::new();
    let mut s = TreeState::empty();
    for chunk in leaves(0..BASE).chunks(4096) {
        let i = s.integrate(chunk).unwrap();
        tiles.apply(&i).unwrap();
        s = i.state;
    }
    (tiles, s)
}

fn bench_sha256(c: &mut Criterion) {
    let mut g = c.benchmark_group("sha256");
    g.throughput(Throughput::Elements(4096));
    let a = leaf_hash(b"a");
    g.bench_function("node_hash_x4096", |b| {
        b.iter(|| {
            let mut h = a;
            for _ in 0..4096 {
                h = node_hash(&h, black_box(&a));
            }
            h
        })
    });
    g.finish();
}

fn bench_integrate(c: &mut Criterion, state: &TreeState) {
    let mut g = c.benchmark_group("integrate_1e6");
    for batch in [1u64, 256, 4096] {
        let new = leaves(BASE..BASE + batch);
        g.throughput(Throughput::Elements(batch));
        g.bench_function(format!("batch_{batch}"), |b| {
            b.iter(|| state.integrate(black_box(&new)).unwrap())
        });
    }
    // The same job as ct-merkle's push: hash the leaf data, then integrate.
    let data: Vec<[u8; 8]> = (BASE..BASE + 4096).map(u64::to_be_bytes).collect();
    g.throughput(Throughput::Elements(4096));
    g.bench_function("leaf_hash_and_batch_4096", |b| {
        b.iter(|| {
            let hs: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
            let i = state.integrate(&hs).unwrap();
            i.root
        })
    });
    g.finish();
}

fn bench_ct_merkle(c: &mut Criterion) {
    let mut tree = ct_merkle::mem_backed_tree::MemoryBackedTree::<sha2::Sha256, [u8; 8]>::new();
    for i in 0..BASE {
        tree.push(i.to_be_bytes());
    }
    let mut g = c.benchmark_group("ct_merkle_1e6");
    g.throughput(Throughput::Elements(4096));
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(20);
    let mut next = BASE;
    g.bench_function("push_4096_and_root", |b| {
        // ct-merkle keeps the whole tree in memory and updates in place, so
        // the tree grows across iterations (from 10^6 by a few 10^5 leaves;
        // its cost per push depends on log2 of the size, which barely moves).
        b.iter(|| {
            for _ in 0..4096 {
                tree.push(next.to_be_bytes());
                next += 1;
            }
            tree.root()
        })
    });
    g.finish();
}

fn bench_proofs(c: &mut Criterion, tiles: &MemoryTiles) {
    let mut g = c.benchmark_group("proofs_1e6");
    g.throughput(Throughput::Elements(1));
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    g.bench_function("inclusion", |b| {
        b.iter_batched(
            || rnd() % BASE,
            |i| inclusion_proof(tiles, LeafIndex(i), TreeSize(BASE)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("consistency", |b| {
        b.iter_batched(
            || rnd() % (BASE - 1) + 1,
            |m| consistency_proof(tiles, TreeSize(m), TreeSize(BASE)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn report() {
    let per_s = |group: &str, id: &str, elems: f64| mean_ns(group, id).map(|ns| elems * 1e9 / ns);
    let Some(sha) = per_s("sha256", "node_hash_x4096", 4096.0) else {
        println!("(ratios need the sha256 benchmark in the same run)");
        return;
    };
    // The SHA-256 bound for integration: about 2 node hashes per leaf.
    let bound = sha / 2.0;
    println!("\n== ratios (this run) ==");
    println!(
        "SHA-256 node hashes/s: {sha:.0}; integration bound (2 hashes/leaf): {bound:.0} leaves/s"
    );
    for batch in [1u64, 256, 4096] {
        if let Some(r) = per_s("integrate_1e6", &format!("batch_{batch}"), batch as f64) {
            println!(
                "integrate batch {batch:>4}: {r:>12.0} leaves/s = {:.2} x SHA-256 bound",
                r / bound
            );
        }
    }
    if let (Some(ours), Some(theirs)) = (
        per_s("integrate_1e6", "leaf_hash_and_batch_4096", 4096.0),
        per_s("ct_merkle_1e6", "push_4096_and_root", 4096.0),
    ) {
        println!(
            "leaf hash + integrate 4096: cairn {ours:.0}/s, ct-merkle {theirs:.0}/s: cairn = {:.1} x ct-merkle",
            ours / theirs
        );
    }
    for p in ["inclusion", "consistency"] {
        if let Some(r) = per_s("proofs_1e6", p, 1.0) {
            println!("{p} proofs on 10^6 leaves (in-memory tiles, no cache): {r:.0}/s per core");
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let (tiles, state) = base_tree();
    bench_sha256(&mut c);
    bench_integrate(&mut c, &state);
    bench_ct_merkle(&mut c);
    bench_proofs(&mut c, &tiles);
    c.final_summary();
    report();
}
