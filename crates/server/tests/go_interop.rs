//! Interoperability with Go's transparency code: a checkpoint fetched from
//! `/checkpoint` verifies with `golang.org/x/mod/sumdb/note` using the key
//! in `log.vkey`, and `sumdb/tlog`'s `TreeHash` over the entries (fetched as
//! C2SP entry bundles) equals the checkpoint root.
//!
//! Needs Go and the x/mod sources (Debian: `golang-go`,
//! `golang-golang-x-mod-dev`; `.ci/run` installs them when it can). Without
//! them the test says so and checks nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use cairn_core::tile::{TilePath, parse_entry_bundle};
use cairn_server::pb::log_client::LogClient;
use cairn_server::{LogConfig, ServeConfig, Server, pb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;

const GOPATH: &str = "/usr/share/gocode";

async fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 200"), "{path}");
    buf[split + 4..].to_vec()
}

/// True if Go and the x/mod sources are here; otherwise says why the test
/// checks nothing.
fn have_go() -> bool {
    let go = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    let ok = go
        && Path::new(GOPATH)
            .join("src/golang.org/x/mod/sumdb/tlog")
            .exists();
    cairn_server::testing::require(
        ok,
        "Go and golang.org/x/mod sources (apt-get install golang-go golang-golang-x-mod-dev)",
    )
}

/// `go run PROGRAM ARGS… < stdin` with the Debian GOPATH, in GOPATH mode.
fn go_run(tmp: &Path, program: &str, args: &[String], stdin: &[u8]) -> std::process::Output {
    let program = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop")
        .join(program);
    let mut go = Command::new("go")
        .arg("run")
        .arg(&program)
        .args(args)
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", tmp.join("gocache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    go.stdin.take().unwrap().write_all(stdin).unwrap();
    go.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_sumdb_note_and_tlog_agree() {
    if !have_go() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = ServeConfig {
        logs: vec![LogConfig {
            data_dir: tmp.path().join("data"),
            origin: "interop.cairn.test/log".into(),
            tile_cache_mb: 16,
            ..LogConfig::default()
        }],
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::default()
    };
    let server = Server::bind(&cfg).await.unwrap();
    let (grpc, http) = (server.grpc_addr().unwrap(), server.http_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    let reqs = (0..300u64).map(|i| pb::AppendRequest {
        event: format!(r#"{{"i":{i},"email":"p{i}@example.com"}}"#).into_bytes(),
        content_type: pb::ContentType::Json as i32,
        policy: String::new(),
        idempotency_key: Vec::new(),
        wait_cosigned: false,
        ..Default::default()
    });
    let mut s = c
        .append_stream(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    while let Some(r) = s.next().await {
        r.unwrap();
    }
    let note = get(http, "/checkpoint").await;
    // Entries, as a tlog-tiles client fetches them.
    let mut hex_lines = String::new();
    for path in ["tile/entries/000", "tile/entries/001.p/44"] {
        assert!(TilePath::parse(path).is_ok());
        for e in parse_entry_bundle(&get(http, &format!("/{path}")).await).unwrap() {
            hex_lines.push_str(&e.iter().map(|b| format!("{b:02x}")).collect::<String>());
            hex_lines.push('\n');
        }
    }
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
    let entries = tmp.path().join("entries.hex");
    std::fs::write(&entries, hex_lines).unwrap();
    let vkey = std::fs::read_to_string(cfg.logs[0].data_dir.join("log.vkey")).unwrap();
    let out = go_run(
        tmp.path(),
        "cairn_interop.go",
        &[vkey.trim().to_owned(), entries.display().to_string()],
        &note,
    );
    assert!(
        out.status.success(),
        "Go rejected the log: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// A Cairn checkpoint cosigned by a Cairn witness, read by Go's
/// `sumdb/note`: it verifies with the log key, and the cosignature lines
/// are carried as unverified signatures. Go cannot check the cosignatures
/// themselves: `note.NewVerifier` knows only algorithm 0x01, and a
/// cosignature signs `cosignature/v1\ntime …\n<body>` rather than the
/// note text, so even the same public key re-typed as a plain Ed25519
/// verifier cannot verify it (its key ID differs, so the line stays
/// unverified). docs/design/witnessing.md explains this.
#[test]
fn go_sumdb_note_reads_a_cosigned_checkpoint() {
    if !have_go() {
        return;
    }
    use cairn_client::witness::{AddCheckpoint, Witness};
    use cairn_core::{Checkpoint, Cosigner, NoteSigner, TreeState, leaf_hash};
    let tmp = tempfile::tempdir().unwrap();
    let log = NoteSigner::from_seed("interop.cairn.test/log", &[3; 32]).unwrap();
    let leaves: Vec<_> = (0..10u8).map(|i| leaf_hash(&[i])).collect();
    let integ = TreeState::empty().integrate(&leaves).unwrap();
    let note = Checkpoint {
        origin: log.name().into(),
        size: integ.state.size(),
        root: integ.root,
        extensions: vec![],
    }
    .sign(&log)
    .unwrap();
    let mut cosigned = cairn_core::Note::parse(note.as_bytes()).unwrap();
    let mut wkeys = Vec::new();
    for (i, seed) in [[4u8; 32], [5u8; 32]].iter().enumerate() {
        let w = Cosigner::from_seed(&format!("w{i}.cairn.test"), seed).unwrap();
        wkeys.push(w.verifier().to_string());
        let witness =
            Witness::open(&tmp.path().join(format!("w{i}")), w, vec![log.verifier()]).unwrap();
        let sigs = witness
            .add_checkpoint(
                &AddCheckpoint {
                    old: 0,
                    proof: vec![],
                    note: note.clone(),
                },
                1_700_000_000,
            )
            .unwrap();
        cosigned.push_signature(sigs[0].clone()).unwrap();
    }
    let out = go_run(
        tmp.path(),
        "cosigned_note.go",
        &[log.verifier().to_string(), wkeys[0].clone()],
        cosigned.to_string().as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("log-verified 1\n"), "{stdout}");
    assert!(stdout.contains("unverified 2\n"), "{stdout}");
    assert!(stdout.contains("witness-vkey rejected: "), "{stdout}");
    assert!(
        stdout.contains("witness-as-ed25519 verified 1 unverified 2"),
        "{stdout}"
    );
    eprintln!("{stdout}");
}

/// A GET: status and body.
async fn fetch(addr: SocketAddr, path: &str) -> (u16, String) {
    fetch_with(addr, path, None).await
}

/// A GET with a bearer token, if given: status and body.
async fn fetch_with(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// Go's `sumdb/tlog` reads the log at `base` as a tlog-tiles client:
/// checkpoint (verified with `vkey` by `sumdb/note`), every tile (checked
/// against the tree), every entry bundle. Returns the size it verified.
fn go_verifies(tmp: &Path, http: SocketAddr, base: &str, vkey: &str) -> u64 {
    let out = go_run(
        tmp,
        "cairn_tiles.go",
        &[format!("http://{http}{base}"), vkey.to_owned()],
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Go rejected {base}: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .trim()
        .strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// One process, four logs (issue 16): different origins, keys and
/// policies; concurrent appends to all of them over gRPC; each log's tiles
/// and checkpoint verified by Go's `sumdb/tlog` and `sumdb/note` under
/// `/logs/<name>/` (the default log also at `/`). A token scoped to one
/// log is refused on another; an unknown log is `NOT_FOUND`. A frozen log
/// refuses appends (naming itself), serves proofs, its final checkpoint
/// verifies, and it stays frozen across a restart. A corrupt store in one
/// log leaves the other three serving, and says which log is unhealthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_logs_in_one_process() {
    if !have_go() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| write_file(tmp.path(), name, text);
    let pay_policy = write(
        "payments.toml",
        "version = 1\n[detectors]\ncredit_card = { action = \"partial\", keep_last = 4 }\n",
    );
    let hr_policy = write(
        "hr.toml",
        "version = 1\n[[custom]]\nname = \"employee_id\"\npattern = \"EMP-[0-9]{6}\"\naction = \"redact\"\n",
    );
    let tokens = write(
        "tokens.toml",
        &format!(
            "[[token]]\nname = \"ops\"\nsha256 = \"{}\"\nscopes = [\"admin\"]\n\n[[token]]\nname = \"pay\"\nsha256 = \"{}\"\nscopes = [\"append\", \"admin\"]\nlogs = [\"payments\"]\n",
            cairn_server::auth::token_hash_hex("tok-ops"),
            cairn_server::auth::token_hash_hex("tok-pay")
        ),
    );
    let names = ["default", "payments", "hr", "ops"];
    let policies = [None, Some(pay_policy), Some(hr_policy), None];
    let mut auth = cairn_server::auth::AuthConfig::from_toml(
        "tokens.toml",
        &std::fs::read_to_string(&tokens).unwrap(),
    )
    .unwrap();
    auth.public_reads = true;
    let cfg = ServeConfig {
        logs: names
            .iter()
            .zip(policies)
            .map(|(n, policy)| LogConfig {
                name: cairn_log::LogName::new(n).unwrap(),
                data_dir: tmp.path().join(n),
                origin: format!("{n}.cairn.test/log"),
                policy,
                tile_cache_mb: 4,
                ..LogConfig::default()
            })
            .collect(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        auth: Some(auth),
        ..ServeConfig::default()
    };
    let start = |cfg: ServeConfig| async move {
        let server = Server::bind(&cfg).await.unwrap();
        let addrs = (server.grpc_addr().unwrap(), server.http_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        (addrs, stop, task)
    };
    let ((grpc, http), stop, task) = start(cfg.clone()).await;
    let c = LogClient::connect(format!("http://{grpc}")).await.unwrap();

    // Concurrent appends to all four logs: one stream each, 300 events.
    let event = |log: &str, i: u64| pb::AppendRequest {
        event: format!(r#"{{"i":{i},"card":"4111 1111 1111 1111","note":"badge EMP-{i:06}"}}"#)
            .into_bytes(),
        content_type: pb::ContentType::Json as i32,
        log: log.to_owned(),
        ..Default::default()
    };
    let mut tasks = Vec::new();
    for n in names {
        let mut c = c.clone();
        let reqs: Vec<_> = (0..300).map(|i| event(n, i)).collect();
        tasks.push(tokio::spawn(async move {
            let mut s = c
                .append_stream(authed(tokio_stream::iter(reqs), "tok-ops"))
                .await
                .unwrap()
                .into_inner();
            let mut first = None;
            while let Some(r) = s.next().await {
                let r = r.unwrap();
                let origin = format!("{n}.cairn.test/log\n");
                assert!(r.checkpoint.unwrap().note.starts_with(&origin), "{n}");
                first.get_or_insert(r.leaf);
            }
            String::from_utf8(first.unwrap()).unwrap()
        }));
    }
    let mut leaves = Vec::new();
    for t in tasks {
        leaves.push(t.await.unwrap());
    }
    // Each log masked with its own policy.
    assert!(leaves[0].contains("[REDACTED:credit_card]") && leaves[0].contains("EMP-000000"));
    assert!(
        leaves[1].contains("1111") && !leaves[1].contains("4111 1111"),
        "{}",
        leaves[1]
    );
    assert!(
        leaves[2].contains("[REDACTED:employee_id]"),
        "{}",
        leaves[2]
    );

    // Go verifies every log, each with its own key, under /logs/<name>/.
    let vkey = |n: &str| {
        std::fs::read_to_string(tmp.path().join(n).join("log.vkey"))
            .unwrap()
            .trim()
            .to_owned()
    };
    let mut vkeys = std::collections::BTreeSet::new();
    for n in names {
        assert_eq!(
            go_verifies(tmp.path(), http, &format!("/logs/{n}"), &vkey(n)),
            300,
            "{n}"
        );
        assert!(vkeys.insert(vkey(n)), "{n}: keys differ per log");
    }
    // The default log is also at `/`.
    assert_eq!(go_verifies(tmp.path(), http, "", &vkey("default")), 300);
    // `GET /logs` lists every log with its origin and verifier key.
    let (status, list) = fetch(http, "/logs").await;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    for n in names {
        let l = list
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == n)
            .unwrap();
        assert_eq!(l["origin"], format!("{n}.cairn.test/log"));
        assert_eq!(l["vkey"], vkey(n));
        assert_eq!(l["size"], 300);
        assert_eq!(l["default"], n == "default");
    }

    // Unknown log: NOT_FOUND (the name not echoed), 404 over HTTP.
    let mut c2 = c.clone();
    let e = c2
        .append(authed(event("nope-secret-name", 0), "tok-ops"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(!e.message().contains("nope-secret-name"), "{}", e.message());
    assert_eq!(fetch(http, "/logs/nope/checkpoint").await.0, 404);
    // A token scoped to `payments`: fine there, refused on `hr`.
    c2.append(authed(event("payments", 1000), "tok-pay"))
        .await
        .unwrap();
    let e = c2
        .append(authed(event("hr", 1000), "tok-pay"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{}", e.message());
    assert!(e.message().contains("hr"), "{}", e.message());
    // ...and it cannot freeze another log either.
    let e = c2
        .freeze_log(authed(
            pb::FreezeLogRequest { log: "ops".into() },
            "tok-pay",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    // Freeze `ops`: appends refused, naming the log; proofs go on; the
    // final checkpoint is the one Go verifies.
    let frozen = c2
        .freeze_log(authed(
            pb::FreezeLogRequest { log: "ops".into() },
            "tok-ops",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(frozen.frozen);
    let final_cp = frozen.checkpoint.unwrap();
    assert_eq!(final_cp.size, 300);
    let e = c2
        .append(authed(event("ops", 1), "tok-ops"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(
        e.message().contains("\"ops\"") && e.message().contains("300"),
        "{}",
        e.message()
    );
    let p = c2
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(7)),
            log: "ops".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.tree_size, 300);
    assert_eq!(
        go_verifies(tmp.path(), http, "/logs/ops", &vkey("ops")),
        300
    );
    assert_eq!(fetch(http, "/logs/ops/checkpoint").await.1, final_cp.note);
    // Healthy: a frozen log is meant to take no appends.
    assert_eq!(fetch(http, "/healthz").await.0, 200);
    let _ = stop.send(());
    task.await.unwrap().unwrap();

    // Corrupt `hr`'s store; restart. `hr` is reported, the others serve,
    // and `ops` is still frozen (recorded beside its store).
    let current = tmp.path().join("hr").join("CURRENT");
    assert!(current.exists());
    std::fs::write(&current, "MANIFEST-999999\n").unwrap();
    let ((grpc, http), stop, task) = start(cfg.clone()).await;
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    let e = c
        .append(authed(event("hr", 1), "tok-ops"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{}", e.message());
    assert!(e.message().contains("\"hr\""), "{}", e.message());
    let (status, health) = fetch(http, "/healthz").await;
    assert_eq!(status, 503);
    assert!(
        health.contains("\"hr\"") && !health.contains("payments"),
        "{health}"
    );
    assert_eq!(fetch(http, "/logs/hr/healthz").await.0, 503);
    assert_eq!(fetch(http, "/logs/payments/healthz").await.0, 200);
    for n in ["default", "payments"] {
        let r = c
            .append(authed(event(n, 2000), "tok-ops"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.index, if n == "payments" { 301 } else { 300 }, "{n}");
        assert!(go_verifies(tmp.path(), http, &format!("/logs/{n}"), &vkey(n)) > 300);
    }
    let e = c
        .append(authed(event("ops", 2), "tok-ops"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let logs = c
        .list_logs(pb::ListLogsRequest {})
        .await
        .unwrap()
        .into_inner()
        .logs;
    let hr = logs.iter().find(|l| l.name == "hr").unwrap();
    assert!(!hr.unhealthy.is_empty() && hr.checkpoint.is_none());
    assert!(logs.iter().find(|l| l.name == "ops").unwrap().frozen);
    let (status, metrics) = fetch_with(http, "/metrics", Some("tok-ops")).await;
    assert_eq!(status, 200);
    for series in [
        "cairn_log_halted{log=\"hr\"} 1",
        "cairn_log_halted{log=\"payments\"} 0",
        "cairn_log_frozen{log=\"ops\"} 1",
        "cairn_tree_size{log=\"payments\"} 302",
    ] {
        assert!(metrics.contains(series), "{series}\n{metrics}");
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// PROOF and INDEX receipts agree with Go (issue 18): after a batch with
/// PROOF receipts and one with INDEX receipts, Go's `sumdb/tlog` checks
/// the log's tiles and entries against the checkpoint `sumdb/note`
/// verified, and every receipt's inclusion proof (carried, or fetched
/// later for INDEX) verifies against that same checkpoint's root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_and_index_receipts_agree_with_go() {
    if !have_go() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = ServeConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::single(tmp.path().join("data"))
    };
    let server = Server::bind(&cfg).await.unwrap();
    let (grpc, http) = (server.grpc_addr().unwrap(), server.http_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    let batch = |form: pb::ReceiptForm, from: u64| pb::AppendBatchRequest {
        events: (from..from + 700)
            .map(|i| pb::AppendRequest {
                event: format!(r#"{{"i":{i},"email":"p{i}@example.com"}}"#).into_bytes(),
                ..Default::default()
            })
            .collect(),
        receipt_form: form as i32,
        ..Default::default()
    };
    let proof = c
        .append_batch(batch(pb::ReceiptForm::Proof, 0))
        .await
        .unwrap()
        .into_inner();
    let index = c
        .append_batch(batch(pb::ReceiptForm::Index, 700))
        .await
        .unwrap()
        .into_inner();
    let vkey = std::fs::read_to_string(cfg.logs[0].data_dir.join("log.vkey")).unwrap();
    assert_eq!(go_verifies(tmp.path(), http, "", vkey.trim()), 1400);
    let note = String::from_utf8(get(http, "/checkpoint").await).unwrap();
    let vk = cairn_core::NoteVerifier::parse(vkey.trim()).unwrap();
    let cp = cairn_core::checkpoint::verify_checkpoint(
        note.as_bytes(),
        None,
        &vk,
        &cairn_core::checkpoint::WitnessPolicy::default(),
    )
    .unwrap()
    .checkpoint;
    let hash = |b: &[u8]| cairn_core::Hash::from_slice(b).unwrap();
    for r in proof.receipts.iter().chain(&index.receipts) {
        // The proof in the tree Go verified (refetched at that size).
        let p = c
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(r.index)),
                tree_size: cp.size.0,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(p.leaf_hash, r.leaf_hash);
        let path: Vec<_> = p.proof.iter().map(|h| hash(h)).collect();
        cairn_core::proof::verify_inclusion(
            &hash(&r.leaf_hash),
            cairn_core::LeafIndex(r.index),
            cp.size,
            &path,
            &cp.root,
        )
        .unwrap();
    }
    // The PROOF receipts' own proofs, against the checkpoints they name,
    // which are consistent with the one Go verified.
    for r in &proof.receipts {
        let named = proof
            .checkpoints
            .iter()
            .find(|c| c.size == r.checkpoint_size)
            .unwrap();
        let v = cairn_core::checkpoint::verify_checkpoint(
            named.note.as_bytes(),
            None,
            &vk,
            &cairn_core::checkpoint::WitnessPolicy::default(),
        )
        .unwrap()
        .checkpoint;
        let path: Vec<_> = r.inclusion_proof.iter().map(|h| hash(h)).collect();
        cairn_core::proof::verify_inclusion(
            &hash(&r.leaf_hash),
            cairn_core::LeafIndex(r.index),
            v.size,
            &path,
            &v.root,
        )
        .unwrap();
        let cons = c
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size: v.size.0,
                new_size: cp.size.0,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let path: Vec<_> = cons.proof.iter().map(|h| hash(h)).collect();
        cairn_core::proof::verify_consistency(v.size, cp.size, &v.root, &cp.root, &path).unwrap();
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// Writes `text` to `dir/name`; returns the path.
fn write_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Right to erasure (issue 21): 10,000 events of 1,000 subjects under an
/// `encrypt` policy. No canary is raw in any file of the data folder or
/// the key store, in the leaves, or in the metrics; an authorised reveal
/// returns the exact value and appends an access record; after erasing
/// 100 subjects, no wrapped key left in the key store (unwrapped with the
/// KEK) opens any of their ciphertexts, while the other 900 still reveal;
/// Go's `sumdb/tlog` verifies the whole log afterwards and every earlier
/// receipt still verifies. Refusals: no `reveal` scope → PERMISSION_DENIED
/// (admin does not imply it), no purpose → INVALID_ARGUMENT, an erased
/// subject → NOT_FOUND naming its erasure record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_and_audited_reveal() {
    use cairn_masking::seal::{KeyId, find_sealed};
    use std::os::unix::fs::PermissionsExt;
    if !have_go() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| write_file(tmp.path(), name, text);
    let policy = write(
        "policy.toml",
        "version = 1\nsubject = \"/actor/id\"\n[detectors]\nemail = \"encrypt\"\nssn = \"encrypt\"\n",
    );
    let kek = write("kek", &cairn_subjects::LocalKek::generate_base64().unwrap());
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tokens = write(
        "tokens.toml",
        &format!(
            "[[token]]\nname = \"ops\"\nsha256 = \"{}\"\nscopes = [\"admin\"]\n\n[[token]]\nname = \"dpo\"\nsha256 = \"{}\"\nscopes = [\"reveal\"]\n",
            cairn_server::auth::token_hash_hex("tok-ops"),
            cairn_server::auth::token_hash_hex("tok-dpo"),
        ),
    );
    let mut auth = cairn_server::auth::AuthConfig::from_toml(
        "tokens.toml",
        &std::fs::read_to_string(&tokens).unwrap(),
    )
    .unwrap();
    auth.public_reads = true;
    let (data, keys) = (tmp.path().join("data"), tmp.path().join("subjects"));
    let log_cfg = LogConfig {
        data_dir: data.clone(),
        origin: "erasure.cairn.test/log".into(),
        policy: Some(policy),
        subject_keys: Some(keys.clone()),
        kek_file: Some(kek.clone()),
        tile_cache_mb: 4,
        ..LogConfig::default()
    };
    // The key store may not live inside the data folder.
    let inside = ServeConfig {
        logs: vec![LogConfig {
            subject_keys: Some(data.join("subjects")),
            ..log_cfg.clone()
        }],
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::default()
    };
    match Server::bind(&inside).await {
        Err(e) => assert!(e.to_string().contains("folder of its own"), "{e}"),
        Ok(_) => panic!("a key store inside the data folder was accepted"),
    }
    let cfg = ServeConfig {
        logs: vec![log_cfg],
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        auth: Some(auth),
        ..ServeConfig::default()
    };
    let server = Server::bind(&cfg).await.unwrap();
    let (grpc, http) = (server.grpc_addr().unwrap(), server.http_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let c = LogClient::connect(format!("http://{grpc}")).await.unwrap();

    // 10,000 events, subject k = i % 1,000, over 4 streams.
    let email = |k: u64| format!("canary.subject{k:04}@example.com");
    let ssn = |k: u64| format!("{:03}-{:02}-{:04}", 201 + k % 400, 11 + k % 80, 1001 + k);
    let event = |i: u64| {
        let k = i % 1000;
        pb::AppendRequest {
            event: format!(
                r#"{{"actor":{{"id":"{}"}},"action":"view","ssn":"{}","i":{i}}}"#,
                email(k),
                ssn(k)
            )
            .into_bytes(),
            content_type: pb::ContentType::Json as i32,
            ..Default::default()
        }
    };
    let mut tasks = Vec::new();
    for part in 0..4u64 {
        let mut c = c.clone();
        let reqs: Vec<_> = (0..2500).map(|j| event(part * 2500 + j)).collect();
        tasks.push(tokio::spawn(async move {
            let mut s = c
                .append_stream(authed(tokio_stream::iter(reqs), "tok-ops"))
                .await
                .unwrap()
                .into_inner();
            let mut out = Vec::new();
            while let Some(r) = s.next().await {
                out.push(r.unwrap());
            }
            out
        }));
    }
    // event number -> receipt
    let mut receipts = std::collections::BTreeMap::new();
    for (part, t) in tasks.into_iter().enumerate() {
        for (j, r) in t.await.unwrap().into_iter().enumerate() {
            receipts.insert(part as u64 * 2500 + j as u64, r);
        }
    }
    assert_eq!(receipts.len(), 10_000);
    let canaries: Vec<String> = (0..1000).flat_map(|k| [email(k), ssn(k)]).collect();
    let leaf_of = |i: u64| String::from_utf8(receipts[&i].leaf.clone()).unwrap();
    for i in [0, 1, 999, 5000, 9999] {
        let leaf = leaf_of(i);
        assert!(
            leaf.contains("\"/actor/id\",\"email\",\"encrypt\""),
            "{leaf}"
        );
        assert!(leaf.contains("\"/ssn\",\"ssn\",\"encrypt\""), "{leaf}");
    }

    // Reveal: the exact value, after an access record.
    let mut dpo = c.clone();
    let idx = receipts[&5].index;
    let r = dpo
        .reveal(authed(
            pb::RevealRequest {
                log: String::new(),
                index: idx,
                pointer: "/actor/id".into(),
                purpose: "incident 7 review".into(),
            },
            "tok-dpo",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.plaintext, email(5));
    let rec = r.record.unwrap();
    let rec_leaf: serde_json::Value = serde_json::from_slice(&rec.leaf).unwrap();
    assert_eq!(
        cairn_masking::records::parse_record(&rec_leaf["body"]).unwrap(),
        Some(cairn_masking::records::ParsedRecord::Access {
            index: idx,
            pointer: "/actor/id".into()
        })
    );
    assert_eq!(rec_leaf["body"]["_cairn_record"]["by"], "dpo");
    assert_eq!(rec.index, 10_000, "the access record is the next leaf");
    let ssn_idx = receipts[&7].index;
    let r = dpo
        .reveal(authed(
            pb::RevealRequest {
                log: String::new(),
                index: ssn_idx,
                pointer: "/ssn".into(),
                purpose: "fraud case".into(),
            },
            "tok-dpo",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.plaintext, ssn(7));
    // Refusals.
    let reveal = |token: &'static str, purpose: &'static str| {
        let mut c = c.clone();
        async move {
            c.reveal(authed(
                pb::RevealRequest {
                    log: String::new(),
                    index: idx,
                    pointer: "/actor/id".into(),
                    purpose: purpose.into(),
                },
                token,
            ))
            .await
        }
    };
    let e = reveal("tok-ops", "because").await.unwrap_err();
    assert_eq!(
        e.code(),
        tonic::Code::PermissionDenied,
        "admin does not imply reveal"
    );
    let e = reveal("tok-dpo", "  ").await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
    let mut anon = c.clone();
    let e = anon
        .reveal(pb::RevealRequest {
            log: String::new(),
            index: idx,
            pointer: "/actor/id".into(),
            purpose: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    // A client cannot forge a record.
    let mut ops = c.clone();
    let e = ops
        .append(authed(
            pb::AppendRequest {
                event: br#"{"_cairn_record":{"kind":"erasure"}}"#.to_vec(),
                content_type: pb::ContentType::Json as i32,
                ..Default::default()
            },
            "tok-ops",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());

    // Erase subjects 0..100 (the reason itself names the subject: it is
    // masked in the record).
    let mut erased_kids = std::collections::BTreeSet::new();
    let mut erasure_index = std::collections::BTreeMap::new();
    for k in 0..100u64 {
        let r = ops
            .erase(authed(
                pb::EraseRequest {
                    log: String::new(),
                    subject: email(k),
                    reason: format!("GDPR art. 17 request from {}", email(k)),
                },
                "tok-ops",
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(r.existed);
        let rec = r.record.unwrap();
        let leaf = String::from_utf8(rec.leaf.clone()).unwrap();
        assert!(!leaf.contains(&email(k)), "{leaf}");
        assert!(leaf.contains(&r.subject_key_id), "{leaf}");
        erasure_index.insert(k, rec.index);
        erased_kids.insert(KeyId::parse(&r.subject_key_id).unwrap());
    }
    // Erased: NOT_FOUND, naming the record; the others still reveal.
    let e = dpo
        .reveal(authed(
            pb::RevealRequest {
                log: String::new(),
                index: receipts[&3].index,
                pointer: "/actor/id".into(),
                purpose: "check".into(),
            },
            "tok-dpo",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(
        e.message().contains("erased")
            && e.message()
                .contains(&format!("index {}", erasure_index[&3])),
        "{}",
        e.message()
    );
    // Each of the 900 others still reveals (an event of each).
    for i in 100..1000u64 {
        let r = dpo
            .reveal(authed(
                pb::RevealRequest {
                    log: String::new(),
                    index: receipts[&i].index,
                    pointer: "/actor/id".into(),
                    purpose: "check".into(),
                },
                "tok-dpo",
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.plaintext, email(i % 1000));
    }

    // Try every wrapped key left, unwrapped with the KEK, on every
    // ciphertext of the erased subjects: none opens.
    let store = cairn_subjects::SubjectStore::open(
        &keys,
        "erasure.cairn.test/log",
        Box::new(cairn_subjects::LocalKek::from_file(&kek).unwrap()),
    )
    .unwrap();
    let left: Vec<_> = store
        .wrapped_keys()
        .unwrap()
        .into_iter()
        .map(|(kid, blob)| {
            assert!(!erased_kids.contains(&kid), "an erased key file survived");
            store.unwrap(&kid, &blob).unwrap()
        })
        .collect();
    assert_eq!(left.len(), 900);
    let mut tried = 0;
    for (i, r) in &receipts {
        if i % 1000 >= 100 {
            continue;
        }
        let leaf: serde_json::Value = serde_json::from_slice(&r.leaf).unwrap();
        for p in ["/actor/id", "/ssn"] {
            let text = leaf["body"].pointer(p).unwrap().as_str().unwrap();
            for (_, sealed) in find_sealed(text) {
                assert!(erased_kids.contains(&sealed.kid));
                for key in &left {
                    assert!(sealed.open(key, "erasure.cairn.test/log", p).is_err());
                    tried += 1;
                }
            }
        }
    }
    assert_eq!(
        tried,
        2000 * 900,
        "every erased ciphertext against every key left"
    );

    // No canary, raw, in any file of the data folder, the key store or
    // the guard, nor in the entries as served, nor in the metrics.
    let mut files = files_under(tmp.path());
    files.retain(|p| !p.ends_with("policy.toml") && !p.ends_with("tokens.toml"));
    assert!(files.len() > 900, "{}", files.len());
    // All 2,000 canaries in one pass over each file.
    let finder = aho_corasick::AhoCorasick::new(&canaries).unwrap();
    assert!(
        finder.find(&event(1234).event).is_some(),
        "the search finds a raw event's canaries"
    );
    let clean = |what: &str, bytes: &[u8]| {
        if let Some(m) = finder.find(bytes) {
            panic!("canary {} in {what}", canaries[m.pattern().as_usize()]);
        }
    };
    for f in &files {
        clean(&f.display().to_string(), &std::fs::read(f).unwrap());
    }
    let mut all = Vec::new();
    // The events, 2 + 900 access records, 100 erasure records.
    let size = 10_000 + 2 + 100 + 900;
    let mut got = 0;
    while got < size {
        let mut s = c
            .clone()
            .get_entries(pb::GetEntriesRequest {
                start: got,
                end: size,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        while let Some(e) = s.next().await {
            all.extend_from_slice(&e.unwrap().leaf);
            got += 1;
        }
    }
    clean("the entries", &all);
    let metrics = {
        let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
        s.write_all(
            b"GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer tok-ops\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        assert!(buf.starts_with(b"HTTP/1.1 200"));
        buf
    };
    assert!(String::from_utf8_lossy(&metrics).contains("cairn_masked_total"));
    clean("/metrics", &metrics);

    // Go verifies the whole log, records included; an earlier receipt
    // still verifies against the log key.
    let vkey = std::fs::read_to_string(data.join("log.vkey"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(go_verifies(tmp.path(), http, "", &vkey), size);
    // Every receipt given before the erasures still verifies offline.
    let vk = cairn_core::note::NoteVerifier::parse(&vkey).unwrap();
    for r in receipts.values() {
        cairn_core::tlog_proof::TlogProof::parse(&r.tlog_proof)
            .unwrap()
            .verify(
                &cairn_core::hash::leaf_hash(&r.leaf),
                None,
                &vk,
                &cairn_core::checkpoint::WitnessPolicy::default(),
            )
            .unwrap();
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// Issue 19: a log kept in an S3 bucket (Ceph RGW, started by
/// scripts/services.sh) is read by Go's `sumdb/tlog` and `sumdb/note`
/// **straight from the bucket**, not through Cairn: the bucket is itself a
/// C2SP tlog-tiles endpoint (anonymous reads, as a CDN would serve it).
/// Cairn's own HTTP endpoint serves the same checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_in_a_bucket_is_read_by_go_straight_from_the_bucket() {
    let Some((endpoint, bucket)) = cairn_server::testing::rgw() else {
        return;
    };
    if !have_go() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut n = [0u8; 8];
    getrandom::fill(&mut n).unwrap();
    let prefix = format!("test/go-{}", hex::encode(n));
    let log = LogConfig {
        data_dir: tmp.path().join("data"),
        origin: "bucket.cairn.test/log".into(),
        tile_cache_mb: 4,
        object_store: Some(cairn_server::ObjectStoreConfig {
            location: cairn_storage_s3::S3Location {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
            },
            options: cairn_storage_s3::S3Options {
                endpoint: Some(endpoint.clone()),
                region: None,
                credentials: None,
            },
        }),
        ..LogConfig::default()
    };
    let cfg = ServeConfig {
        logs: vec![log],
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::default()
    };
    let server = Server::bind(&cfg).await.unwrap();
    let (grpc, http) = (server.grpc_addr().unwrap(), server.http_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    // Full bundles and tiles, and a partial one at the right edge.
    for from in [0u64, 700] {
        let r = c
            .append_batch(pb::AppendBatchRequest {
                events: (from..from + 700)
                    .map(|i| pb::AppendRequest {
                        event: format!(r#"{{"i":{i},"email":"b{i}@example.com"}}"#).into_bytes(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.receipts.len(), 700);
    }
    let vkey = std::fs::read_to_string(cfg.logs[0].data_dir.join("log.vkey")).unwrap();
    let rgw: SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    // The bucket's public checkpoint is the one Cairn serves (it is
    // written in the background: wait for it).
    let served = String::from_utf8(get(http, "/checkpoint").await).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (code, from_bucket) = fetch(rgw, &format!("/{bucket}/{prefix}/checkpoint")).await;
        if (code == 200 && from_bucket == served) || std::time::Instant::now() > deadline {
            assert_eq!((code, from_bucket), (200, served));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        go_verifies(tmp.path(), rgw, &format!("/{bucket}/{prefix}"), vkey.trim()),
        1400
    );
    // And no raw PII in any object of the log.
    for i in [0, 699, 1279] {
        let bundle = get(
            rgw,
            &format!("/{bucket}/{prefix}/tile/entries/00{}", i / 256),
        )
        .await;
        let raw = format!("b{i}@example.com");
        assert!(
            !bundle.windows(raw.len()).any(|w| w == raw.as_bytes()),
            "raw email {i} in a bundle"
        );
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
