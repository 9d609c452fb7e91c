//! End to end: one log, three gossiping witnesses and the `cairn audit`
//! binary; then a fork (the same key and origin on a restored older copy of
//! the data, with different new entries).
//!
//! Logs and witnesses run in this process over real gRPC/HTTP on
//! 127.0.0.1:0 with real RocksDB; the auditor is the real `cairn` binary.
//! Timeline:
//!
//! 1. L1 (witnesses W1, W2, W3; quorum 2) takes 20 entries; all three
//!    cosign size 20. L1 stops; its folder is copied (the "backup").
//! 2. L1 restarts with W1, W2 only (W3 is partitioned from it) and grows to
//!    50; W1 and W2 cosign 50. The auditor passes (with a 2-of-3 policy,
//!    and with the log key alone).
//! 3. L2 starts on the backup (size 20) with the same key and origin and
//!    appends 40 other entries (size 60). W1 and W2 refuse it (409, 422);
//!    W3, which only knew size 20, cosigns it. One gossip round later W1
//!    holds evidence; the auditor, pointed at L2, exits 1 with an evidence
//!    file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_server::pb;
use cairn_server::pb::log_client::LogClient;
use cairn_server::pb::witness_client::WitnessClient;
use cairn_server::witness::{Peer, WitnessConfig, WitnessServer, WitnessedLog};
use cairn_server::witnessing::{WitnessEndpoint, WitnessingConfig};
use cairn_server::{LogConfig, ServeConfig, Server, load_or_create_key};
use common::{http, post_add_checkpoint};
use tokio::sync::oneshot;

const ORIGIN: &str = "example.com/e2e-log";
const GOSSIP: Duration = Duration::from_millis(300);

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// The HTTP address, for a log.
    http: Option<SocketAddr>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

struct Wit {
    name: String,
    vkey: cairn_core::NoteVerifier,
    http: SocketAddr,
    grpc: SocketAddr,
}

async fn start_log(
    dir: &Path,
    grpc: SocketAddr,
    witnesses: &[&Wit],
    quorum: usize,
) -> (SocketAddr, Running) {
    let witnesses = witnesses
        .iter()
        .map(|w| WitnessEndpoint {
            name: w.name.clone(),
            vkey: w.vkey.clone(),
            url: format!("http://{}", w.http),
        })
        .collect();
    start_log_with(
        dir,
        grpc,
        witnesses,
        quorum,
        Duration::from_millis(100),
        None,
        None,
    )
    .await
}

async fn start_log_with(
    dir: &Path,
    grpc: SocketAddr,
    witnesses: Vec<WitnessEndpoint>,
    quorum: usize,
    interval: Duration,
    policy: Option<PathBuf>,
    witness_ca: Option<PathBuf>,
) -> (SocketAddr, Running) {
    let cfg = ServeConfig {
        logs: vec![LogConfig {
            data_dir: dir.to_path_buf(),
            origin: ORIGIN.into(),
            policy,
            witnessing: (!witnesses.is_empty()).then_some(WitnessingConfig {
                witnesses,
                quorum,
                interval,
                timeout: Duration::from_secs(2),
                ca: witness_ca,
            }),
            tile_cache_mb: 16,
            ..LogConfig::default()
        }],
        grpc_addr: grpc,
        http_addr: "127.0.0.1:0".parse().unwrap(),
        cosign_wait: Duration::from_secs(20),
        ..ServeConfig::default()
    };
    let server = Server::bind(&cfg).await.unwrap();
    let addr = server.grpc_addr().unwrap();
    let http = server.http_addr();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (
        addr,
        Running {
            stop: Some(tx),
            task,
            http,
        },
    )
}

async fn client(addr: SocketAddr) -> LogClient<tonic::transport::Channel> {
    LogClient::connect(format!("http://{addr}")).await.unwrap()
}

async fn append(addr: SocketAddr, tag: &str, n: u64) -> u64 {
    let mut c = client(addr).await;
    let mut last = 0;
    for i in 0..n {
        let r = c
            .append(pb::AppendRequest {
                event: format!(r#"{{"tag":"{tag}","i":{i},"email":"{tag}{i}@example.com"}}"#)
                    .into_bytes(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        last = r.index + 1;
    }
    last
}

/// Waits until the log's quorum-cosigned checkpoint reaches `size`.
async fn wait_cosigned(addr: SocketAddr, size: u64) -> pb::SignedCheckpoint {
    let mut c = client(addr).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = c
            .get_checkpoint(pb::GetCheckpointRequest {
                cosigned: true,
                ..Default::default()
            })
            .await
        {
            let r = r.into_inner();
            if r.size >= size {
                return r;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no cosigned checkpoint of size {size}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A witness's latest cosigned size for the log, read over gossip.
async fn witness_size(w: &Wit) -> u64 {
    let mut c = WitnessClient::connect(format!("http://{}", w.grpc))
        .await
        .unwrap();
    let r = c
        .gossip(pb::GossipRequest::default())
        .await
        .unwrap()
        .into_inner();
    r.checkpoints
        .iter()
        .filter_map(|n| {
            let note = cairn_core::Note::parse(n.as_bytes()).ok()?;
            Some(cairn_core::Checkpoint::parse(note.text()).ok()?.size.0)
        })
        .max()
        .unwrap_or(0)
}

async fn wait_witness(w: &Wit, size: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while witness_size(w).await < size {
        assert!(
            Instant::now() < deadline,
            "{} never cosigned {size}",
            w.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Binds one witness of `log`, without peers (add them before running).
async fn bind_witness(
    dir: &Path,
    name: &str,
    log: &cairn_core::NoteVerifier,
) -> (Wit, WitnessServer) {
    let cfg = WitnessConfig {
        data_dir: dir.to_path_buf(),
        name: name.into(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        logs: vec![WitnessedLog {
            vkey: log.clone(),
            url: None,
            log: String::new(),
        }],
        peers: vec![],
        gossip_interval: GOSSIP,
        tls: None,
        tls_ca: None,
        limits: Default::default(),
    };
    let s = WitnessServer::bind(&cfg).await.unwrap();
    let w = Wit {
        name: name.into(),
        vkey: cairn_core::NoteVerifier::parse(&s.vkey).unwrap(),
        http: s.http_addr().unwrap(),
        grpc: s.grpc_addr().unwrap(),
    };
    (w, s)
}

/// Runs a bound witness until stopped.
fn run_witness(s: WitnessServer) -> Running {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        s.run(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        stop: Some(tx),
        task,
        http: None,
    }
}

/// Binds and runs one witness of `log`, without peers.
async fn lone_witness(dir: &Path, name: &str, log: &cairn_core::NoteVerifier) -> (Wit, Running) {
    let (w, s) = bind_witness(dir, name, log).await;
    (w, run_witness(s))
}

/// A temporary folder with a log key in `<tmp>/log`.
fn fresh_log() -> (tempfile::TempDir, PathBuf, cairn_core::NoteVerifier) {
    let tmp = tempfile::tempdir().unwrap();
    let log_dir = tmp.path().join("log");
    let log_vkey = load_or_create_key(&log_dir, ORIGIN).unwrap().verifier();
    (tmp, log_dir, log_vkey)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// `cairn audit --server … --vkey … --state STATE` plus `extra` flags.
fn audit_cmd(server: SocketAddr, vkey: &str, state: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.arg("audit")
        .args(extra)
        .args([
            "--server",
            &format!("http://{server}"),
            "--vkey",
            vkey,
            "--state",
        ])
        .arg(state);
    cmd
}

/// Runs `cairn audit`: (exit code, stdout, stderr).
fn audit(server: SocketAddr, vkey: &str, state: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = audit_cmd(server, vkey, state, extra).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cosigned_growth_then_a_fork_is_caught() {
    let (tmp, log_dir, log_vkey) = fresh_log();

    // Three witnesses, gossiping with each other.
    let mut servers = Vec::new();
    let mut wits = Vec::new();
    for i in 1..=3 {
        let (w, s) = bind_witness(
            &tmp.path().join(format!("w{i}")),
            &format!("w{i}.example.com"),
            &log_vkey,
        )
        .await;
        wits.push(w);
        servers.push(s);
    }

    // Phase 1: L1 with all three witnesses.
    let (l1, run) = start_log(
        &log_dir,
        "127.0.0.1:0".parse().unwrap(),
        &[&wits[0], &wits[1], &wits[2]],
        2,
    )
    .await;
    // A silent peer (it accepts connections and never answers), listed
    // first at W1: it must not stall W1's gossip with the others.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let mut witness_runs = Vec::new();
    for (i, mut s) in servers.into_iter().enumerate() {
        s.set_log_url(ORIGIN, &format!("http://{l1}"));
        if i == 0 {
            s.add_peer(Peer {
                name: "silent".into(),
                vkey: wits[1].vkey.clone(),
                url: silent_url.clone(),
            });
        }
        for (j, w) in wits.iter().enumerate() {
            if i != j {
                s.add_peer(Peer {
                    name: w.name.clone(),
                    vkey: w.vkey.clone(),
                    url: format!("http://{}", w.grpc),
                });
            }
        }
        witness_runs.push(run_witness(s));
    }
    assert_eq!(append(l1, "a", 20).await, 20);
    for w in &wits {
        wait_witness(w, 20).await;
    }
    // A receipt can wait for, and carry, the cosigned checkpoint.
    let mut c = client(l1).await;
    let r = c
        .append(pb::AppendRequest {
            event: br#"{"tag":"wait"}"#.to_vec(),
            wait_cosigned: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let cosigned = r.cosigned_checkpoint.unwrap();
    assert!(cosigned.size > r.index);
    let policy_path = tmp.path().join("policy.txt");
    std::fs::write(
        &policy_path,
        format!(
            "log {log_vkey}\nwitness w1 {}\nwitness w2 {}\nwitness w3 {}\ngroup g 2 w1 w2 w3\nquorum g\n",
            wits[0].vkey, wits[1].vkey, wits[2].vkey
        ),
    )
    .unwrap();
    let verifier = cairn_client::LogVerifier::new(
        log_vkey.clone(),
        cairn_client::TrustPolicy::parse("policy", &std::fs::read_to_string(&policy_path).unwrap())
            .unwrap(),
    );
    let v = verifier
        .verify_checkpoint(cosigned.note.as_bytes())
        .unwrap();
    let proof: Vec<cairn_core::Hash> = r
        .cosigned_inclusion_proof
        .iter()
        .map(|h| cairn_core::Hash::from_slice(h).unwrap())
        .collect();
    cairn_client::LogVerifier::verify_inclusion(
        &cairn_core::Hash::from_slice(&r.leaf_hash).unwrap(),
        cairn_core::LeafIndex(r.index),
        &v.checkpoint,
        &proof,
    )
    .unwrap();
    // `cairn append --wait-cosigned`, then `cairn verify receipt --policy`.
    let mut app = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "append",
            "--wait-cosigned",
            "--server",
            &format!("http://{l1}"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut app.stdin.take().unwrap(),
        b"{\"user\":\"x@example.com\"}\n",
    )
    .unwrap();
    let out = app.wait_with_output().unwrap();
    assert!(out.status.success());
    let receipt = tmp.path().join("receipt.json");
    std::fs::write(&receipt, &out.stdout).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["verify", "receipt"])
        .arg(&receipt)
        .args(["--vkey", &log_vkey.to_string(), "--policy"])
        .arg(&policy_path)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size1 = client(l1)
        .await
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner()
        .size;
    for w in &wits {
        wait_witness(w, size1).await;
    }
    run.stop().await;
    let backup = tmp.path().join("backup");
    copy_dir(&log_dir, &backup);

    // Phase 2: L1 again (same address), W3 partitioned away.
    let (l1b, run) = start_log(&log_dir, l1, &[&wits[0], &wits[1]], 2).await;
    assert_eq!(l1b, l1);
    let size2 = append(l1, "b", 50 - size1).await;
    assert_eq!(size2, 50);
    let cp50 = wait_cosigned(l1, 50).await;
    assert_eq!(cp50.size, 50);
    wait_witness(&wits[0], 50).await;
    wait_witness(&wits[1], 50).await;
    // With witnesses configured, tlog-tiles /checkpoint serves the cosigned note.
    let (code, _, body) = http(run.http.unwrap(), "GET", "/checkpoint", "").unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("\u{2014} w1.example.com ") && body.contains("\u{2014} w2.example.com "),
        "{body}"
    );
    verifier.verify_checkpoint(body.as_bytes()).unwrap();
    let vkey_s = log_vkey.to_string();
    let policy_arg = policy_path.display().to_string();
    let (code, out, err) = audit(
        l1,
        &vkey_s,
        &tmp.path().join("audit-policy.json"),
        &["--policy", &policy_arg],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"size\":50"), "{out}");
    let plain_state = tmp.path().join("audit-plain.json");
    let (code, out, err) = audit(l1, &vkey_s, &plain_state, &[]);
    assert_eq!(code, 0, "{out}{err}");

    // Phase 3: the fork. The fork guard stays with L1's folder, so the
    // restored copy is refused at start...
    let refused = Server::bind(&ServeConfig {
        logs: vec![LogConfig {
            data_dir: backup.clone(),
            origin: ORIGIN.into(),
            ..LogConfig::default()
        }],
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::default()
    })
    .await
    .err()
    .expect("a restored copy without its guard must be refused");
    assert!(refused.to_string().contains("fork guard"), "{refused}");
    // ...so the operator forces it (recreating the guard from the copy),
    // and the witnesses and auditors are what catch the fork.
    drop(
        cairn_storage_rocks::RocksStore::open(cairn_storage_rocks::StoreOptions {
            rebuild_missing_guard: true,
            ..cairn_storage_rocks::StoreOptions::new(&backup)
        })
        .unwrap(),
    );
    let (l2, fork) = start_log(
        &backup,
        "127.0.0.1:0".parse().unwrap(),
        &[&wits[0], &wits[1], &wits[2]],
        1,
    )
    .await;
    assert_eq!(append(l2, "fork", 40).await, size1 + 40);
    // W3 knew only the old size: it cosigns the fork.
    wait_witness(&wits[2], size1 + 40).await;
    let w3_cosigned = Instant::now();
    // W1 and W2 refuse it: 409 from a stale old size, 422 with L2's proof.
    let mut lc = client(l2).await;
    let fork_cp = lc
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (status, ctype, body) =
        post_add_checkpoint(wits[0].http, &format!("old 0\n\n{}", fork_cp.note)).unwrap();
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "50\n")
    );
    let proof = lc
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            old_size: 50,
            new_size: fork_cp.size,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut req = "old 50\n".to_owned();
    for h in &proof.proof {
        req.push_str(&cairn_core::Hash::from_slice(h).unwrap().to_base64());
        req.push('\n');
    }
    req.push('\n');
    req.push_str(&fork_cp.note);
    assert_eq!(post_add_checkpoint(wits[1].http, &req).unwrap().0, 422);
    // Gossip surfaces the split view at W1 within a gossip round or so.
    let mut wc = WitnessClient::connect(format!("http://{}", wits[0].grpc))
        .await
        .unwrap();
    let found = loop {
        let ev = wc
            .list_evidence(pb::ListEvidenceRequest {})
            .await
            .unwrap()
            .into_inner()
            .evidence;
        if let Some(e) = ev.into_iter().find(|e| e.source.starts_with("gossip")) {
            break e;
        }
        assert!(
            w3_cosigned.elapsed() < GOSSIP * 2 + Duration::from_secs(3),
            "no gossip evidence at W1 after {:?}",
            w3_cosigned.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "gossip evidence after {:?}: {}",
        w3_cosigned.elapsed(),
        found.detail
    );
    // Which evidence depends on the fork's batch boundaries: if W3 cosigned
    // one of L2's checkpoints at exactly size 50 before reaching 60, W1
    // holds two roots for one size (split view); otherwise L2's 60 does not
    // extend L1's 50 (inconsistent). Both prove the fork.
    assert!(
        matches!(found.kind.as_str(), "inconsistent" | "split-view"),
        "{found:?}"
    );
    assert_eq!(found.checkpoints.len(), 2);
    // One side is a fork checkpoint W3 cosigned, the other L1's, cosigned by W1.
    let by = |w: &str| {
        found
            .checkpoints
            .iter()
            .any(|n| n.contains(&format!("\u{2014} {w} ")))
    };
    assert!(by("w3.example.com") && by("w1.example.com"), "{found:?}");
    // The evidence is persisted in W1's folder too.
    let saved = std::fs::read_to_string(tmp.path().join("w1/evidence.jsonl")).unwrap();
    assert!(saved.contains("gossip from"), "{saved}");
    // The auditor that trusted L1 at 50, pointed at the fork, fails with evidence.
    let (code, out, err) = audit(l2, &vkey_s, &plain_state, &[]);
    assert_eq!(code, 1, "{out}{err}");
    let ev_path = PathBuf::from(format!("{}.evidence.json", plain_state.display()));
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ev_path).unwrap()).unwrap();
    assert_eq!(ev["kind"], "inconsistent");
    assert_eq!(ev["checkpoints"].as_array().unwrap().len(), 2);
    assert!(!ev["proof"].as_array().unwrap().is_empty());
    // The trusted state was not moved to the fork.
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plain_state).unwrap()).unwrap();
    assert_eq!(st["size"], 50);

    fork.stop().await;
    run.stop().await;
    for r in witness_runs {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_witness_never_stalls_appends_and_submissions_are_rate_limited() {
    let (tmp, log_dir, log_vkey) = fresh_log();
    let (w1, w1_run) = lone_witness(&tmp.path().join("w1"), "w1.example.com", &log_vkey).await;
    // A "witness" that accepts connections and never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = WitnessEndpoint {
        name: "dead".into(),
        vkey: cairn_core::Cosigner::from_seed("dead.example.com", &[7; 32])
            .unwrap()
            .verifier(),
        url: format!("http://{}", hole.local_addr().unwrap()),
    };
    let live = WitnessEndpoint {
        name: w1.name.clone(),
        vkey: w1.vkey.clone(),
        url: format!("http://{}", w1.http),
    };
    let interval = Duration::from_millis(500);
    let (l, run) = start_log_with(
        &log_dir,
        "127.0.0.1:0".parse().unwrap(),
        vec![dead, live],
        1,
        interval,
        None,
        None,
    )
    .await;
    let started = Instant::now();
    let mut c = client(l).await;
    let mut worst = Duration::ZERO;
    let mut n = 0u64;
    while started.elapsed() < Duration::from_millis(2600) {
        let t = Instant::now();
        c.append(pb::AppendRequest {
            event: format!(r#"{{"n":{n}}}"#).into_bytes(),
            ..Default::default()
        })
        .await
        .unwrap();
        worst = worst.max(t.elapsed());
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    // The dead witness's 2 s timeouts never reach the append path.
    assert!(worst < Duration::from_secs(1), "an append took {worst:?}");
    // One live witness meets the quorum of 1.
    let cp = wait_cosigned(l, 1).await;
    assert!(cp.note.contains("\u{2014} w1.example.com "), "{}", cp.note);
    // At most one submission per interval to the live witness (a 409 retry
    // may add one).
    let metrics = http(w1.http, "GET", "/metrics", "").unwrap().2;
    let sent: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("cairn_witness_add_checkpoint_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let rounds = (elapsed.as_millis() / interval.as_millis()) as u64 + 1;
    eprintln!(
        "{n} appends in {elapsed:?}, worst {worst:?}; {sent} submissions to the live witness (at most {rounds} rounds)"
    );
    assert!(
        sent >= 2 && sent <= rounds + 1,
        "{sent} submissions in {rounds} rounds:\n{metrics}"
    );
    for r in [run, w1_run] {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_audit_follow_and_a_privacy_finding() {
    let (tmp, log_dir, log_vkey) = fresh_log();
    // A policy that (wrongly) keeps one field verbatim.
    let policy = tmp.path().join("leaky.toml");
    std::fs::write(
        &policy,
        "version = 1\nmode = \"detect\"\n[[fields]]\npath = \"debug\"\naction = \"keep\"\n",
    )
    .unwrap();
    let (l, run) = start_log_with(
        &log_dir,
        "127.0.0.1:0".parse().unwrap(),
        vec![],
        0,
        Duration::from_secs(1),
        Some(policy),
        None,
    )
    .await;
    assert_eq!(append(l, "x", 30).await, 30);
    let vkey = log_vkey.to_string();
    let state = tmp.path().join("audit.json");
    // --full over clean entries: root recomputed, nothing found.
    let (code, _, err) = audit(l, &vkey, &state, &["--full"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("full audit of 30 entries: root matches; 0 malformed, 0 raw PII"),
        "{err}"
    );
    // --follow sees growth as it happens.
    let mut follow = audit_cmd(l, &vkey, &state, &["--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(follow.stdout.take().unwrap()));
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("\"size\":30"), "{first}");
    append(l, "y", 5).await;
    // Unary appends each get their own checkpoint: one verified line each,
    // every one consistent with the one before.
    let mut prev = 30;
    while prev < 35 {
        let l = lines.next().unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["previous_size"], prev, "{l}");
        prev = v["size"].as_u64().unwrap();
    }
    assert_eq!(prev, 35);
    follow.kill().unwrap();
    let _ = follow.wait();
    // A leaked email in the kept field: reported by pointer and detector, not value.
    let mut c = client(l).await;
    c.append(pb::AppendRequest {
        event: br#"{"debug":"contact leak.victim@example.org","ok":"fine"}"#.to_vec(),
        ..Default::default()
    })
    .await
    .unwrap();
    let (code, stdout, stderr) = audit(l, &vkey, &tmp.path().join("audit2.json"), &["--full"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(r#""detector":"email","index":35,"pointer":"/debug","privacy":"raw PII""#),
        "{stdout}"
    );
    assert!(!stdout.contains("leak.victim") && !stderr.contains("leak.victim"));
    run.stop().await;
}

/// Witnessing over TLS: a witness serving HTTPS and gRPC over TLS, a log
/// submitting to its `https://` URL (verified against `witness_ca`), and
/// the outbound gRPC channel gossip uses reaching it over TLS. An
/// `https://` peer without trust roots is refused at start with a clear
/// error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnessing_over_tls() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use std::os::unix::fs::PermissionsExt;
    let (tmp, dir, vkey) = fresh_log();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "cairn witness test CA");
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let tls = cairn_server::TlsFiles {
        cert: write("w.pem", &cert.pem()),
        key: write("w.key", &key.serialize_pem()),
        client_ca: None,
    };
    let ca_file = write("ca.pem", &ca.pem());
    let mut cfg = WitnessConfig {
        data_dir: tmp.path().join("w1"),
        name: "w1.example".into(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        logs: vec![WitnessedLog {
            vkey: vkey.clone(),
            url: None,
            log: String::new(),
        }],
        peers: vec![],
        gossip_interval: GOSSIP,
        tls: Some(tls),
        tls_ca: None,
        limits: Default::default(),
    };
    let s = WitnessServer::bind(&cfg).await.unwrap();
    let wvkey = cairn_core::NoteVerifier::parse(&s.vkey).unwrap();
    let (http, grpc) = (s.http_addr().unwrap(), s.grpc_addr().unwrap());
    let w = run_witness(s);
    let (addr, log) = start_log_with(
        &dir,
        "127.0.0.1:0".parse().unwrap(),
        vec![WitnessEndpoint {
            name: "w1".into(),
            vkey: wvkey.clone(),
            url: format!("https://localhost:{}", http.port()),
        }],
        1,
        Duration::from_millis(100),
        None,
        Some(ca_file.clone()),
    )
    .await;
    append(addr, "tls", 5).await;
    let cp = wait_cosigned(addr, 5).await;
    assert!(cp.note.contains("— w1.example "), "{}", cp.note);
    // The channel gossip and proof fetches use, over TLS.
    let out = cairn_server::outbound::Outbound::new(Some(&ca_file)).unwrap();
    let ch = out
        .channel(&format!("https://localhost:{}", grpc.port()))
        .await
        .unwrap();
    let r = WitnessClient::new(ch)
        .gossip(pb::GossipRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.checkpoints.len(), 1);
    // Plaintext to the TLS listener gets nowhere.
    let plain = async {
        WitnessClient::connect(format!("http://{grpc}"))
            .await
            .map_err(|e| e.to_string())?
            .gossip(pb::GossipRequest::default())
            .await
            .map_err(|e| e.to_string())
    };
    assert!(
        plain.await.is_err(),
        "plaintext gossip to a TLS witness answered"
    );
    // An https peer with no trust roots: refused at start, named.
    cfg.data_dir = tmp.path().join("w2");
    cfg.tls = None;
    cfg.peers = vec![Peer {
        name: "w1".into(),
        vkey: wvkey,
        url: format!("https://localhost:{}", grpc.port()),
    }];
    let err = WitnessServer::bind(&cfg).await.err().unwrap().to_string();
    assert!(
        err.contains("peer \"w1\"") && err.contains("no TLS CA"),
        "{err}"
    );
    log.stop().await;
    w.stop().await;
}
