//! Recall and keep-precision on the labelled corpus
//! (`tests/data/pii-labeled.ndjson`, copied from `../shared/corpus/`): no
//! `pii` value may survive masking verbatim, and every `keep` value must.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use std::collections::BTreeMap;

use cairn_masking::{ContentType, Masker, Policy, TokenKeys};
use common::{PlanComparison, Score, strings_of};

#[test]
fn shared_corpus_recall_and_precision() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pii-labeled.ndjson"
    ))
    .unwrap();
    let masker = Masker::new(
        Policy::default_policy().unwrap(),
        &TokenKeys::new(),
        "test.example/log",
    )
    .unwrap();
    let mut score: BTreeMap<String, Score> = BTreeMap::new();
    let mut keep = Score::default();
    let mut plans = PlanComparison::default();
    let mut salt = || [0u8; 16];
    for (n, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let event = serde_json::to_vec(&v["event"]).unwrap();
        let m = masker
            .mask(&event, ContentType::Json, 1, &mut salt)
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(m.body()).unwrap();
        let out = strings_of(&body);
        for p in v["pii"].as_array().unwrap() {
            let t = p["type"].as_str().unwrap();
            let val = p["value"].as_str().unwrap();
            let leaked = out.iter().any(|s| s.contains(val));
            if t == "phone" {
                plans.phone(val, !leaked);
            }
            let s = score.entry(t.to_owned()).or_default();
            s.total += 1;
            if leaked {
                s.failed += 1;
                if s.failed <= 3 {
                    eprintln!("LEAK line {} type {t}", n + 1);
                }
            }
        }
        for k in v["keep"].as_array().unwrap() {
            let val = k.as_str().unwrap();
            keep.total += 1;
            let kept = out.iter().any(|s| s.contains(val));
            plans.keep(val, kept);
            if !kept {
                keep.failed += 1;
                if keep.failed <= 5 {
                    eprintln!("LOST keep value on line {}: {val}", n + 1);
                }
            }
        }
    }
    eprintln!("\n| type | values | leaked | recall |\n|---|---|---|---|");
    for (t, s) in &score {
        eprintln!("| {t} | {} | {} | {:.2}% |", s.total, s.failed, s.rate());
    }
    eprintln!(
        "| keep (precision) | {} | {} lost | {:.2}% |",
        keep.total,
        keep.failed,
        keep.rate()
    );
    plans.assert_rules_win("shared corpus");
    for (t, s) in &score {
        assert!(s.rate() >= 99.5, "recall for {t} is {:.2}%", s.rate());
    }
    assert!(keep.rate() >= 99.0, "keep precision {:.2}%", keep.rate());
}
