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
