//! Failover (issue 19): two `cairn serve` processes share one log in a
//! bucket (Ceph RGW) and an etcd election (scripts/services.sh starts
//! both). Appends stream to the leader; the leader is killed with SIGKILL
//! (alternately A and B, `CAIRN_FAILOVER_KILLS` times, default 10) and
//! restarted as a standby. After every takeover:
//!
//! - appends resume on the other process within 10 s (the lease TTL, 3 s
//!   here, plus opening the log from the bucket); median and max printed;
//! - every acknowledged receipt is in the log at its index with its leaf
//!   hash, every checkpoint ever returned is consistent with the current
//!   tree, no size has two roots (the crash tests' checks).
//!
//! Registered as a test of `crates/cli` (for the `cairn` binary's path).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../crates/cli/tests/common/mod.rs"]
mod common;
#[path = "support/log_checks.rs"]
mod log_checks;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_client::LogVerifier;
use cairn_core::NoteVerifier;
use common::{Serving, cairn};
use log_checks::{Seen, appender, check};

/// A `cairn serve` that may be a standby: its gRPC port arrives on `port`
/// once it is elected and serving.
struct Node {
    /// Killed (SIGKILL) when dropped.
    _serving: Serving,
    port: mpsc::Receiver<u16>,
}

fn spawn(dir: &Path, url: &str, endpoint: &str, etcd: &str) -> Node {
    let mut child = cairn()
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--store", url, "--s3-endpoint", endpoint, "--etcd", etcd])
        .args(["--etcd-lease-ttl", "3"])
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .env("CAIRN_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let (tx, port) = mpsc::channel();
    std::thread::spawn(move || {
        for line in err.lines() {
            let Ok(line) = line else { return };
            if let Some(rest) = line.split("gRPC on 127.0.0.1:").nth(1)
                && let Ok(p) = rest.split([',', ' ']).next().unwrap_or("").parse::<u16>()
            {
                let _ = tx.send(p);
            }
        }
    });
    Node {
        _serving: Serving(child),
        port,
    }
}

#[test]
fn kill_9_the_leader_and_the_standby_takes_over() {
    let Some((endpoint, bucket)) = cairn_server::testing::rgw() else {
        return;
    };
    let etcd = std::env::var("CAIRN_ETCD_ENDPOINT").ok();
    if !cairn_server::testing::require(
        etcd.is_some(),
        "etcd (CAIRN_ETCD_ENDPOINT: scripts/services.sh start, as scripts/test.sh runs it)",
    ) {
        return;
    }
    let etcd = etcd.unwrap();
    let kills = common::env_number("CAIRN_FAILOVER_KILLS", 10);
    let mut seed = common::env_seed("CAIRN_FAILOVER_SEED");
    eprintln!("failover: {kills} kills, CAIRN_FAILOVER_SEED={seed}");
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let tmp = tempfile::tempdir().unwrap();
    let url = format!(
        "s3://{bucket}/test/failover-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let dirs: [PathBuf; 2] = [tmp.path().join("a"), tmp.path().join("b")];
    // A first, alone: it creates the key (shared with B, as a deployment's
    // `signing_key` would be) and is elected.
    let mut nodes: [Option<Node>; 2] = [Some(spawn(&dirs[0], &url, &endpoint, &etcd)), None];
    let mut port = nodes[0]
        .as_ref()
        .unwrap()
        .port
        .recv_timeout(Duration::from_secs(30))
        .expect("the first node was not elected");
    std::fs::create_dir_all(&dirs[1]).unwrap();
    for f in ["log.key", "log.vkey"] {
        std::fs::copy(dirs[0].join(f), dirs[1].join(f)).unwrap();
    }
    nodes[1] = Some(spawn(&dirs[1], &url, &endpoint, &etcd));
    let vkey = std::fs::read_to_string(dirs[0].join("log.vkey")).unwrap();
    let verifier = LogVerifier::log_only(NoteVerifier::parse(vkey.trim()).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acked = Vec::new();
    let mut seen = Seen::default();
    let mut leader = 0usize;
    let mut resumes = Vec::new();
    for round in 0..kills {
        let server = format!("http://127.0.0.1:{port}");
        rt.block_on(check(&server, &verifier, &acked, &mut seen))
            .unwrap_or_else(|e| panic!("before kill {round}: {e}"));
        // Load on the leader, then SIGKILL it.
        let out = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..4)
            .map(|id| rt.spawn(appender(server.clone(), id, out.clone())))
            .collect();
        std::thread::sleep(Duration::from_millis(300 + rand() % 500));
        drop(nodes[leader].take());
        let killed = Instant::now();
        for t in tasks {
            let _ = rt.block_on(t);
        }
        let got = std::mem::take(&mut *out.lock().unwrap());
        seen.add_receipts(&verifier, &got).unwrap();
        // The standby is elected, opens the log from the bucket, and
        // takes appends.
        let other = 1 - leader;
        port = nodes[other]
            .as_ref()
            .unwrap()
            .port
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("kill {round}: the standby was not elected in 30 s"));
        let server = format!("http://127.0.0.1:{port}");
        loop {
            let out = common::append_stdin(&server, b"{\"probe\":\"after failover\"}\n");
            if out.status.success() {
                break;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(30),
                "kill {round}: appends did not resume: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let resumed = killed.elapsed();
        eprintln!(
            "kill {round}: {} receipts from the old leader; appends resumed on the other in {resumed:.2?}",
            got.len()
        );
        resumes.push(resumed);
        acked.extend(got);
        // The killed one comes back as the standby.
        nodes[leader] = Some(spawn(&dirs[leader], &url, &endpoint, &etcd));
        leader = other;
    }
    let server = format!("http://127.0.0.1:{port}");
    let size = rt
        .block_on(check(&server, &verifier, &acked, &mut seen))
        .unwrap_or_else(|e| panic!("after the last kill: {e}"));
    resumes.sort();
    let median = resumes[resumes.len() / 2];
    let max = *resumes.last().unwrap();
    eprintln!(
        "failover: {kills} kills; final tree {size}; {} acknowledged appends all present; {} checkpoints consistent; appends resumed in median {median:.2?}, max {max:.2?}",
        acked.len(),
        seen.roots.len()
    );
    assert!(!acked.is_empty(), "nothing was acknowledged");
    assert!(max < Duration::from_secs(10), "a takeover took {max:?}");
}
