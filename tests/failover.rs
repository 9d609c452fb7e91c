//! Failover (issue 19): two `cairn serve` processes share one log in a
//! bucket (Ceph RGW) and an etcd election (scripts/services.sh starts
//! both). Appends stream to the leader; the leader is killed with SIGKILL
//! (alternately A and B, `CAIRN_FAILOVER_KILLS` times, default 10) and
//! restarted as a standby.
//!
//! - Before every kill, the warm standby serves reads: its checkpoint
//!   reaches the leader's size, and it passes the same checks as the
//!   leader (every acknowledged entry, consistency of every checkpoint
//!   either process returned).
//! - After every takeover, appends resume on the other process within
//!   10 s (the lease TTL, 3 s here, plus the promotion); median and max
//!   printed; every acknowledged receipt is in the log at its index with
//!   its leaf hash, every checkpoint ever returned is consistent with the
//!   current tree, no size has two roots (the crash tests' checks).
//!
//! A second test runs a read replica (`--read-only`) beside a writer.
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

/// A `cairn serve`, standby or leader: it serves reads either way, on
/// `port` (gRPC).
struct Node {
    /// Killed (SIGKILL) when dropped.
    _serving: Serving,
    port: u16,
    http: std::net::SocketAddr,
}

fn spawn_with(dir: &Path, url: &str, endpoint: &str, extra: &[&str]) -> Node {
    let mut child = cairn()
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--store", url, "--s3-endpoint", endpoint])
        .args(["--follow-interval-ms", "100"])
        .args(extra)
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
                let _ = tx.send((p, common::http_addr(&line)));
            }
        }
    });
    let serving = Serving(child);
    let (port, http) = port
        .recv_timeout(Duration::from_secs(30))
        .expect("cairn serve did not start serving in 30 s");
    Node {
        _serving: serving,
        port,
        http,
    }
}

fn spawn(dir: &Path, url: &str, endpoint: &str, etcd: &str) -> Node {
    spawn_with(
        dir,
        url,
        endpoint,
        &["--etcd", etcd, "--etcd-lease-ttl", "3"],
    )
}

/// A fresh prefix in the test bucket.
fn fresh_url(bucket: &str, what: &str) -> String {
    format!(
        "s3://{bucket}/test/{what}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// The size of `server`'s latest checkpoint.
async fn size_of(server: &str) -> Result<u64, String> {
    let mut c = cairn_server::pb::log_client::LogClient::connect(server.to_owned())
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let head = c
        .get_checkpoint(cairn_server::pb::GetCheckpointRequest::default())
        .await
        .map_err(|e| format!("GetCheckpoint: {e}"))?
        .into_inner();
    let note = cairn_core::Note::parse(head.note.as_bytes()).map_err(|e| format!("{e}"))?;
    let cp = cairn_core::Checkpoint::parse(note.text()).map_err(|e| format!("{e}"))?;
    Ok(cp.size.0)
}

/// Waits until `follower`'s checkpoint reaches `size` (it follows the
/// bucket): how long that took.
async fn caught_up(follower: &str, size: u64) -> Result<Duration, String> {
    let t = Instant::now();
    loop {
        let got = size_of(follower).await?;
        if got >= size {
            return Ok(t.elapsed());
        }
        if t.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "the follower is at {got}, the writer at {size}, after 10 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
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
    let url = fresh_url(&bucket, "failover");
    let dirs: [PathBuf; 2] = [tmp.path().join("a"), tmp.path().join("b")];
    // A first, alone: it creates the key (shared with B, as a deployment's
    // `signing_key` would be) and is elected.
    let mut nodes: [Option<Node>; 2] = [Some(spawn(&dirs[0], &url, &endpoint, &etcd)), None];
    std::fs::create_dir_all(&dirs[1]).unwrap();
    for f in ["log.key", "log.vkey"] {
        std::fs::copy(dirs[0].join(f), dirs[1].join(f)).unwrap();
    }
    let vkey = std::fs::read_to_string(dirs[0].join("log.vkey")).unwrap();
    let verifier = LogVerifier::log_only(NoteVerifier::parse(vkey.trim()).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // A is the writer once an append succeeds on it.
    let first = format!("http://127.0.0.1:{}", nodes[0].as_ref().unwrap().port);
    let t = Instant::now();
    while !common::append_stdin(&first, b"{\"probe\":\"first\"}\n")
        .status
        .success()
    {
        assert!(t.elapsed() < Duration::from_secs(30), "A was not elected");
        std::thread::sleep(Duration::from_millis(50));
    }
    nodes[1] = Some(spawn(&dirs[1], &url, &endpoint, &etcd));
    let mut acked = Vec::new();
    let mut seen = Seen::default();
    let mut leader = 0usize;
    let mut resumes = Vec::new();
    let mut lags = Vec::new();
    for round in 0..kills {
        let other = 1 - leader;
        let server = format!("http://127.0.0.1:{}", nodes[leader].as_ref().unwrap().port);
        let standby = format!("http://127.0.0.1:{}", nodes[other].as_ref().unwrap().port);
        let size = rt
            .block_on(check(&server, &verifier, &acked, &mut seen))
            .unwrap_or_else(|e| panic!("before kill {round}: {e}"));
        // The warm standby follows the bucket and serves the same log.
        let lag = rt
            .block_on(caught_up(&standby, size))
            .unwrap_or_else(|e| panic!("before kill {round}, the standby: {e}"));
        lags.push(lag);
        rt.block_on(check(&standby, &verifier, &acked, &mut seen))
            .unwrap_or_else(|e| panic!("before kill {round}, the standby: {e}"));
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
        // The standby is elected, becomes the writer, and takes appends.
        loop {
            let out = common::append_stdin(&standby, b"{\"probe\":\"after failover\"}\n");
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
            "kill {round}: {} receipts from the old leader; appends resumed on the other in {resumed:.2?} (the standby had caught up in {lag:.2?})",
            got.len()
        );
        resumes.push(resumed);
        acked.extend(got);
        // The killed one comes back as the standby.
        nodes[leader] = Some(spawn(&dirs[leader], &url, &endpoint, &etcd));
        leader = other;
    }
    let port = nodes[leader].as_ref().unwrap().port;
    let server = format!("http://127.0.0.1:{port}");
    let size = rt
        .block_on(check(&server, &verifier, &acked, &mut seen))
        .unwrap_or_else(|e| panic!("after the last kill: {e}"));
    resumes.sort();
    let median = resumes[resumes.len() / 2];
    let max = *resumes.last().unwrap();
    lags.sort();
    eprintln!(
        "failover: {kills} kills; final tree {size}; {} acknowledged appends all present; {} checkpoints consistent; appends resumed in median {median:.2?}, max {max:.2?}; the standby served reads, caught up in at most {:.2?}",
        acked.len(),
        seen.roots.len(),
        lags.last().copied().unwrap_or_default()
    );
    assert!(!acked.is_empty(), "nothing was acknowledged");
    assert!(max < Duration::from_secs(10), "a takeover took {max:?}");
}

#[test]
fn a_read_replica_serves_what_the_writer_commits() {
    let Some((endpoint, bucket)) = cairn_server::testing::rgw() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let url = fresh_url(&bucket, "replica");
    let w = spawn_with(&tmp.path().join("w"), &url, &endpoint, &[]);
    let vkey = std::fs::read_to_string(tmp.path().join("w/log.vkey")).unwrap();
    let verifier = LogVerifier::log_only(NoteVerifier::parse(vkey.trim()).unwrap());
    let r = spawn_with(
        &tmp.path().join("r"),
        &url,
        &endpoint,
        &["--read-only", "--verifier-key", vkey.trim()],
    );
    assert!(
        !tmp.path().join("r/log.key").exists(),
        "a read replica made a signing key"
    );
    let writer = format!("http://127.0.0.1:{}", w.port);
    let replica = format!("http://127.0.0.1:{}", r.port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut acked, mut seen, mut lags) = (Vec::new(), Seen::default(), Vec::new());
    for round in 0..3 {
        let out = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..2)
            .map(|id| rt.spawn(appender(writer.clone(), id, out.clone())))
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        for t in tasks {
            t.abort();
            let _ = rt.block_on(t);
        }
        let got = std::mem::take(&mut *out.lock().unwrap());
        assert!(!got.is_empty(), "round {round}: nothing was acknowledged");
        seen.add_receipts(&verifier, &got).unwrap();
        acked.extend(got);
        // How far behind the replica is, right after the writer's last
        // answer (it reads the bucket every 100 ms here).
        let size = rt.block_on(size_of(&writer)).unwrap();
        lags.push(
            rt.block_on(caught_up(&replica, size))
                .unwrap_or_else(|e| panic!("round {round}, the replica: {e}")),
        );
        rt.block_on(check(&writer, &verifier, &acked, &mut seen))
            .unwrap_or_else(|e| panic!("round {round}, the writer: {e}"));
        // Every acknowledged entry, every checkpoint's consistency, and an
        // inclusion proof, from the replica.
        rt.block_on(check(&replica, &verifier, &acked, &mut seen))
            .unwrap_or_else(|e| panic!("round {round}, the replica: {e}"));
    }
    eprintln!(
        "read replica: {} acknowledged entries served by the replica; it caught up with the writer in {:?}",
        acked.len(),
        lags
    );
    // It never writes: appends are refused, and say where to go.
    let out = common::append_stdin(&replica, b"{\"to\":\"the replica\"}\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an append to a read replica succeeded"
    );
    assert!(err.contains("read replica"), "{err}");
    // Health, role, tiles over HTTP.
    let (code, _, body) = common::http(r.http, "GET", "/healthz", "").unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = common::http(r.http, "GET", "/healthz/writer", "").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("read-only"), "{body}");
    let (code, _, body) = common::http(w.http, "GET", "/healthz/writer", "").unwrap();
    assert_eq!(code, 200, "{body}");
    let (_, _, logs) = common::http(r.http, "GET", "/logs", "").unwrap();
    assert!(logs.contains("\"role\": \"read-only\""), "{logs}");
    let (code, _, cp) = common::http(r.http, "GET", "/checkpoint", "").unwrap();
    assert_eq!(code, 200);
    assert!(cp.starts_with("localhost/cairn\n"), "{cp}");
    let (code, _, tile) = common::http(r.http, "GET", "/tile/0/000", "").unwrap();
    assert_eq!((code, tile.len() >= 32), (200, true));
    drop(r);
    // Mistakes, named: no verifier key, or another log's key.
    let fails = |extra: &[&str]| {
        let out = cairn()
            .args(["serve", "--read-only", "--data-dir"])
            .arg(tmp.path().join("r2"))
            .args(["--store", &url, "--s3-endpoint", &endpoint])
            .args(extra)
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = fails(&[]);
    assert!(e.contains("verifier_key"), "{e}");
    let other = cairn_core::NoteSigner::from_seed("localhost/cairn", &[7; 32])
        .unwrap()
        .verifier()
        .to_string();
    let e = fails(&["--verifier-key", &other]);
    assert!(e.contains("does not verify"), "{e}");
    drop(w);
}
