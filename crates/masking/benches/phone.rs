//! Issue 17: what validating phone candidates against the numbering plans
//! (libphonenumber's metadata, through the `phonenumber` crate) would cost,
//! next to Cairn's hand rules, per candidate, in the same run.
//!
//! The candidates are the shared corpus's labelled phone numbers. Cairn's
//! column masks each candidate as a whole text value with the default
//! policy: every detector, not only the phone rules, so it overstates the
//! rules' own cost. The plans' columns parse and validate the same string
//! under one region (US), and under the ten regions the comparison in
//! `tests/common` tries for numbers written without an international
//! prefix (Presidio's defaults and the corpora's countries).
//!
//! Run: `cargo bench --locked --bench phone` (docs/benchmarks.md).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::time::Instant;

use cairn_masking::{ContentType, Masker, Policy, TokenKeys};
use phonenumber::country::Id;

const REGIONS: [Id; 10] = [
    Id::US,
    Id::GB,
    Id::DE,
    Id::FR,
    Id::IL,
    Id::IN,
    Id::CA,
    Id::BR,
    Id::AU,
    Id::JP,
];

fn candidates() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pii-labeled.ndjson"
    ))
    .unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for p in v["pii"].as_array().unwrap() {
            if p["type"] == "phone" {
                out.push(p["value"].as_str().unwrap().to_owned());
            }
        }
    }
    out
}

fn valid_in(regions: &[Id], s: &str) -> bool {
    regions
        .iter()
        .any(|r| phonenumber::parse(Some(*r), s).is_ok_and(|n| phonenumber::is_valid(&n)))
}

fn main() {
    const ROUNDS: usize = 31;
    let phones = candidates();
    let masker = Masker::new(
        Policy::default_policy().unwrap(),
        &TokenKeys::new(),
        "bench.example/log",
    )
    .unwrap();
    // Warm the plans' lazily built metadata and regex caches.
    black_box(phones.iter().filter(|p| valid_in(&REGIONS, p)).count());
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e9 / phones.len() as f64
    };
    let mut cols = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        cols[0].push(time(&|| {
            for p in &phones {
                black_box(
                    masker
                        .mask(p.as_bytes(), ContentType::Text, 1, &mut || [0u8; 16])
                        .unwrap(),
                );
            }
        }));
        cols[1].push(time(&|| {
            for p in &phones {
                black_box(valid_in(&REGIONS[..1], p));
            }
        }));
        cols[2].push(time(&|| {
            for p in &phones {
                black_box(valid_in(&REGIONS, p));
            }
        }));
    }
    for c in &mut cols {
        c.sort_by(f64::total_cmp);
    }
    let med = |c: &Vec<f64>| c[c.len() / 2];
    println!(
        "\n== phone candidates: {} shared-corpus numbers, {ROUNDS} interleaved rounds, ns per candidate (median) ==",
        phones.len()
    );
    println!(
        "cairn, whole mask (every detector): {:.0} ns\nphonenumber, parse + is_valid, US only: {:.0} ns ({:.1} x cairn)\nphonenumber, ten regions: {:.0} ns ({:.1} x cairn)",
        med(&cols[0]),
        med(&cols[1]),
        med(&cols[1]) / med(&cols[0]),
        med(&cols[2]),
        med(&cols[2]) / med(&cols[0])
    );
}
