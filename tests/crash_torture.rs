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

#[path = "support/log_checks.rs"]
mod log_checks;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_client::LogVerifier;
use cairn_core::NoteVerifier;
use common::start;
use log_checks::{Acked, Seen, appender, check};

#[test]
fn kill_9_at_random_moments() {
    let kills = common::env_number("CAIRN_TORTURE_KILLS", 5);
    let mut seed = common::env_seed("CAIRN_TORTURE_SEED");
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
        } = start(&mut common::quiet_serve(&data));
        // Keep draining stderr so the server never blocks on it.
        common::drain(stderr);
        let server = format!("http://127.0.0.1:{port}");
        let v = verifier.get_or_insert_with(|| {
            let vkey = std::fs::read_to_string(data.join("log.vkey")).unwrap();
            LogVerifier::log_only(NoteVerifier::parse(vkey.trim()).unwrap())
        });
        let size = rt
            .block_on(check(&server, v, &acked, &mut seen))
            .unwrap_or_else(|e| panic!("after kill {round}: {e}"));
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
        seen.add_receipts(v, &got).unwrap();
        eprintln!("round {round}: {} receipts before the kill", got.len());
        rounds_with_receipts += usize::from(!got.is_empty());
        acked.extend(got);
    }
}
