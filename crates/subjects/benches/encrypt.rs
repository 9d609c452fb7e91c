//! The `encrypt` action against `redact`, interleaved in one run, per core:
//! the same ~300-byte events with 3 PII values each, masked by the default
//! policy (everything redacted) and by a policy that encrypts the e-mail,
//! the IP address and the phone number under the actor's key (a real
//! subject key store in a temporary folder, 2,000 subjects, keys cached
//! after first use as in the server).
//!
//! Run: `cargo bench --locked -p cairn-subjects --bench encrypt`
//! (docs/benchmarks.md, "Masking: encrypt").

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::time::Instant;

use cairn_masking::{ContentType, Masker, Policy, TokenKeys};
use cairn_subjects::{Keys, LocalKek, SubjectStore};

#[path = "../../masking/benches/support/three_pii.rs"]
mod three;
use three::three_pii as events;

fn main() {
    const ROUNDS: usize = 60;
    let events = events();
    let origin = "bench.example/log";
    let redact = Masker::new(Policy::default_policy().unwrap(), &TokenKeys::new(), origin).unwrap();
    let encrypt = Masker::new(
        Policy::from_toml(
            "encrypt.toml",
            "version = 1\nsubject = \"/actor/email\"\n[detectors]\nemail = \"encrypt\"\nipv4 = \"encrypt\"\nphone = \"encrypt\"\n",
        )
        .unwrap(),
        &TokenKeys::new(),
        origin,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SubjectStore::open(dir.path(), origin, Box::new(LocalKek::new([7; 32]))).unwrap();
    let mut salt = 0u128;
    let mut salts = move || {
        salt += 1;
        salt.to_le_bytes()
    };
    // Warm: every subject's key exists and is cached.
    for e in &events {
        let m = encrypt
            .mask_sealed(e, ContentType::Json, 0, &mut salts, &mut Keys(&store))
            .unwrap();
        assert_eq!(
            m.decisions.iter().filter(|d| d.action == "encrypt").count(),
            3
        );
    }
    let (mut r, mut x, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for e in &events {
            black_box(redact.mask(e, ContentType::Json, 0, &mut salts).unwrap());
        }
        let a = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for e in &events {
            black_box(
                encrypt
                    .mask_sealed(e, ContentType::Json, 0, &mut salts, &mut Keys(&store))
                    .unwrap(),
            );
        }
        let b = t.elapsed().as_secs_f64();
        r.push(a);
        x.push(b);
        ratio.push(b / a);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let n = events.len() as f64;
    let (mr, mx, mq) = (median(&mut r), median(&mut x), median(&mut ratio));
    println!(
        "{ROUNDS} interleaved rounds of {} events (3 PII values each), one core:\n\
         redact (default policy): median {:.0} events/s ({:.2} us/event)\n\
         encrypt (3 values under the actor's key): median {:.0} events/s ({:.2} us/event)\n\
         encrypt / redact time per event: median {:.2} x",
        events.len(),
        n / mr,
        mr / n * 1e6,
        n / mx,
        mx / n * 1e6,
        mq
    );
}
