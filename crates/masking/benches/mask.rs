//! Masking throughput with the default policy, against a naive baseline
//! (serde_json + one `regex::Regex` per pattern on every string), in the
//! same run.
//!
//! Run: `cargo bench --locked --bench mask` (docs/benchmarks.md).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::time::Duration;

use cairn_masking::{ContentType, Masker, Policy, TokenKeys};
use criterion::{Criterion, Throughput};

/// The labelled corpus events (~270 bytes, ~2.4 PII values each).
#[path = "../../core/benches/support/estimates.rs"]
mod support;
use support::mean_ns;

fn corpus() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pii-labeled.ndjson"
    ))
    .unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::to_vec(&v["event"]).unwrap()
        })
        .collect()
}

#[path = "support/three_pii.rs"]
mod three;
use three::three_pii;

/// ~200-byte events with one PII value.
fn small() -> Vec<Vec<u8>> {
    (0..2000u32)
        .map(|i| {
            format!(
                r#"{{"ts":"2026-03-13T20:03:04Z","action":"object.read","bucket":"logs-{}","key":"2026/03/13/part-{:05}.gz","ip":"10.1.{}.{}","result":"ok","bytes":{},"storage_class":"STANDARD","region":"us-east-1"}}"#,
                i % 7,
                i,
                i % 256,
                (i * 3) % 256,
                i * 37
            )
            .into_bytes()
        })
        .collect()
}

struct Naive {
    res: Vec<regex::Regex>,
}

impl Naive {
    fn new() -> Self {
        let pats = [
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
            r"\+?\d[\d ()-.]{7,}\d",
            r"\b(?:\d[ -]?){13,19}\b",
            r"\b\d{3}-\d{2}-\d{4}\b",
            r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
            r"\b[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}\b",
            r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
            r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
            r"gh[pousr]_[A-Za-z0-9]{36}",
            r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
            r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b",
            r"AIza[0-9A-Za-z_-]{35}",
            r"xox[baprs]-[A-Za-z0-9-]{10,}",
        ];
        Naive {
            res: pats.iter().map(|p| regex::Regex::new(p).unwrap()).collect(),
        }
    }

    fn mask(&self, ev: &[u8]) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(ev).unwrap();
        self.walk(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    fn walk(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => {
                for r in &self.res {
                    if let std::borrow::Cow::Owned(o) = r.replace_all(s, "[REDACTED]") {
                        *s = o;
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.walk(x)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| self.walk(x)),
            _ => {}
        }
    }
}

/// The masker under test: the default policy, no token keys.
fn default_masker() -> Masker {
    Masker::new(
        Policy::default_policy().unwrap(),
        &TokenKeys::new(),
        "bench.example/log",
    )
    .unwrap()
}

/// The event sets, by name.
fn sets() -> [(&'static str, Vec<Vec<u8>>); 3] {
    [
        ("corpus_270B", corpus()),
        ("three_pii_300B", three_pii()),
        ("small_200B", small()),
    ]
}

/// Masks every event of a set with Cairn.
fn mask_all(masker: &Masker, events: &[Vec<u8>]) {
    for e in events {
        black_box(
            masker
                .mask(e, ContentType::Json, 1, &mut || [0u8; 16])
                .unwrap(),
        );
    }
}

fn bench(c: &mut Criterion) {
    let masker = default_masker();
    let naive = Naive::new();
    for (name, events) in sets() {
        let bytes: usize = events.iter().map(Vec::len).sum();
        let mut g = c.benchmark_group(format!("mask_{name}"));
        g.throughput(Throughput::Bytes(bytes as u64));
        g.measurement_time(Duration::from_secs(4));
        g.sample_size(20);
        g.bench_function("cairn", |b| {
            b.iter(|| {
                mask_all(&masker, &events);
            })
        });
        g.bench_function("naive_regex", |b| {
            b.iter(|| {
                for e in &events {
                    black_box(naive.mask(e));
                }
            })
        });
        g.finish();
        println!(
            "{name}: {} events, mean {:.0} bytes/event",
            events.len(),
            bytes as f64 / events.len() as f64
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    println!("\n== throughput per core (this run) ==");
    for (name, events) in sets() {
        let bytes: f64 = events.iter().map(Vec::len).sum::<usize>() as f64;
        let n = events.len() as f64;
        let group = format!("mask_{name}");
        if let (Some(ours), Some(naive)) =
            (mean_ns(&group, "cairn"), mean_ns(&group, "naive_regex"))
        {
            println!(
                "{name}: cairn {:.0} MB/s, {:.0} events/s | naive {:.1} MB/s, {:.0} events/s | cairn = {:.1} x naive",
                bytes / ours * 1e3,
                n / ours * 1e9,
                bytes / naive * 1e3,
                n / naive * 1e9,
                naive / ours
            );
        }
    }
    interleaved();
}

/// Rounds of Cairn then the naive masker over the same events, back to
/// back, for each event set in turn, 150 times (about 8 s): this
/// machine's speed changes by up to 2x within seconds (a shared host), and
/// criterion times the two groups apart. Every round visits every set, so
/// the sets share the machine's good and bad moments. Reports, per set,
/// the median and best round of each masker, and the median of the
/// per-round ratios.
fn interleaved() {
    const ROUNDS: usize = 150;
    let masker = default_masker();
    let naive = Naive::new();
    let sets = sets();
    let time = |f: &dyn Fn()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    // Per set: Cairn's round times, the naive masker's, their ratios.
    let mut times = vec![(Vec::new(), Vec::new(), Vec::new()); sets.len()];
    for _ in 0..ROUNDS {
        for ((_, events), (ours, theirs, ratios)) in sets.iter().zip(&mut times) {
            let a = time(&|| {
                mask_all(&masker, events);
            });
            let b = time(&|| {
                for e in events {
                    black_box(naive.mask(e));
                }
            });
            ours.push(a);
            theirs.push(b);
            ratios.push(b / a);
        }
    }
    println!("\n== interleaved rounds ({ROUNDS} x every set x (cairn, naive)), per core ==");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    for ((name, events), (ours, theirs, ratios)) in sets.iter().zip(&mut times) {
        let bytes: f64 = events.iter().map(Vec::len).sum::<usize>() as f64;
        let n = events.len() as f64;
        let (bo, bt) = (best(ours), best(theirs));
        let (mo, mt, mr) = (median(ours), median(theirs), median(ratios));
        println!(
            "{name}: cairn median {:.0} MB/s {:.0} events/s, best {:.0} MB/s {:.0} events/s | \
             naive median {:.1} MB/s, best {:.1} MB/s | median ratio {:.1} x",
            bytes / mo / 1e6,
            n / mo,
            bytes / bo / 1e6,
            n / bo,
            bytes / mt / 1e6,
            bytes / bt / 1e6,
            mr
        );
    }
}
