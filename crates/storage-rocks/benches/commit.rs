//! Durable commit throughput of `RocksStore`, against raw RocksDB writing
//! the same key/value bytes in one synced `WriteBatch`, in the same run.
//!
//! Run: `cargo bench --locked --bench commit` (docs/benchmarks.md).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cairn_core::hash::{Hash, leaf_hash};
use cairn_core::tree::{Integration, TreeState};
use cairn_storage::{CommitBatch, LogStore, NewEntry};
use cairn_storage_rocks::{Compression, RocksStore, StoreOptions};
use criterion::{Criterion, Throughput};

const ENTRY_LEN: usize = 300;

/// A ~300-byte masked audit event (JSON), distinct per index.
#[path = "../../core/benches/support/estimates.rs"]
mod support;
use support::mean_ns;

fn entry(i: u64) -> Vec<u8> {
    let mut e = format!(
        r#"{{"v":1,"ts":{},"policy":"9f2c4e1a","body":{{"action":"user.login","user":"tok:1:{:016x}","ip":"203.0.113.0/24","ua":"Mozilla/5.0 (X11; Linux x86_64)","session":"{:032x}","result":"ok"}},"masked":[["/user","email","token"]]}}"#,
        1_760_000_000_000u64 + i,
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        u128::from(i).wrapping_mul(0x0123_4567_89ab_cdef_0011_2233_4455_6677)
    )
    .into_bytes();
    e.resize(ENTRY_LEN, b' ');
    e
}

struct Batch {
    data: Vec<Vec<u8>>,
    hashes: Vec<Hash>,
    integ: Integration,
}

fn prepare(tree: &TreeState, n: u64) -> Batch {
    let start = tree.size().0;
    let data: Vec<Vec<u8>> = (start..start + n).map(entry).collect();
    let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
    let integ = tree.integrate(&hashes).unwrap();
    Batch {
        data,
        hashes,
        integ,
    }
}

/// The key/value pairs `RocksStore` writes for a batch (its layout), for
/// the raw baseline.
fn raw_pairs(b: &Batch, start: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, (d, h)) in b.data.iter().zip(&b.hashes).enumerate() {
        let idx = start + i as u64;
        let mut k = vec![b'e'];
        k.extend_from_slice(&idx.to_be_bytes());
        out.push((k, d.clone()));
        let mut lk = vec![b'l'];
        lk.extend_from_slice(&h.0[..8]);
        lk.extend_from_slice(&idx.to_be_bytes());
        out.push((lk, vec![]));
    }
    for u in &b.integ.tiles {
        let mut k = vec![b't', u.tile.level];
        k.extend_from_slice(&u.tile.index.to_be_bytes());
        // The store writes the whole tile; count its full width.
        out.push((k, vec![0u8; usize::from(u.tile.width) * 32]));
    }
    out.push((
        b"mstate".to_vec(),
        vec![0u8; 8 + 32 * b.integ.state.frontier().len()],
    ));
    out
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("durable_commit_300B");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(4));
    g.warm_up_time(Duration::from_secs(1));
    for batch in [1u64, 64, 1024, 4096] {
        g.throughput(Throughput::Elements(batch));
        // Cairn's store.
        let dir = tmp.path().join(format!("cairn-{batch}"));
        let mut o = StoreOptions::new(&dir);
        o.compression = Compression::Lz4;
        let store = RocksStore::open(o).unwrap();
        let mut tree = TreeState::empty();
        g.bench_function(format!("cairn_batch_{batch}"), |bch| {
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let b = prepare(&tree, batch);
                    let entries: Vec<NewEntry<'_>> = b
                        .data
                        .iter()
                        .zip(&b.hashes)
                        .map(|(d, h)| NewEntry {
                            data: d,
                            leaf_hash: *h,
                            idempotency: None,
                        })
                        .collect();
                    let t = Instant::now();
                    store
                        .commit_batch(CommitBatch {
                            expected_size: tree.size(),
                            entries: &entries,
                            tiles: &b.integ.tiles,
                            state: &b.integ.state,
                            checkpoint: None,
                        })
                        .unwrap();
                    total += t.elapsed();
                    tree = b.integ.state;
                }
                total
            })
        });
        drop(store);
        // Raw RocksDB: the same pairs in one synced WriteBatch, default
        // options plus LZ4, one column family.
        let raw_dir = tmp.path().join(format!("raw-{batch}"));
        let mut ro = rocksdb::Options::default();
        ro.create_if_missing(true);
        ro.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = rocksdb::DB::open(&ro, &raw_dir).unwrap();
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        let mut tree = TreeState::empty();
        g.bench_function(format!("raw_rocksdb_batch_{batch}"), |bch| {
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let b = prepare(&tree, batch);
                    let pairs = raw_pairs(&b, tree.size().0);
                    let t = Instant::now();
                    let mut wb = rocksdb::WriteBatch::default();
                    for (k, v) in &pairs {
                        wb.put(k, v);
                    }
                    db.write_opt(wb, &wo).unwrap();
                    total += t.elapsed();
                    tree = b.integ.state;
                }
                total
            })
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    println!("\n== ratios (this run) ==");
    for batch in [1u64, 64, 1024, 4096] {
        if let (Some(ours), Some(raw)) = (
            mean_ns("durable_commit_300B", &format!("cairn_batch_{batch}")),
            mean_ns("durable_commit_300B", &format!("raw_rocksdb_batch_{batch}")),
        ) {
            let per_s = |ns: f64| batch as f64 * 1e9 / ns;
            println!(
                "batch {batch:>4}: cairn {:>9.0} entries/s, raw RocksDB {:>9.0} entries/s: cairn = {:.2} x raw",
                per_s(ours),
                per_s(raw),
                raw / ours
            );
        }
    }
}
