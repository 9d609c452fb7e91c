//! The real OpenTelemetry Python SDK exports logs to `cairn serve` (issue
//! 20): over OTLP/gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON, with a
//! bearer token, through Python's `logging` and the SDK's batch processor
//! (`tests/interop/otel_logs.py`). Every record lands once, masked, and
//! verifies against a signed checkpoint; the PII canary is found neither
//! in the log's entries, nor in the server's output at debug level, nor
//! raw in the data folder.
//!
//! Needs the SDK in a virtual environment (`scripts/deps.sh` makes it
//! under `CAIRN_TEST_DEPS=1`, at `$CAIRN_VENV` or
//! `~/.cache/cairn-venv`); under CI a missing SDK is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use cairn_core::checkpoint::{WitnessPolicy, verify_checkpoint};
use cairn_core::hash::{Hash, LeafIndex, leaf_hash};
use cairn_core::proof::verify_inclusion;
use cairn_server::pb;
use cairn_server::pb::log_client::LogClient;
use common::{cairn, drain, http_addr, start};
use tokio_stream::StreamExt;

const CANARY: &str = "py.otel.canary.51c9@example.com";
const PER_MODE: usize = 60;

fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("CAIRN_VENV").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/cairn-venv"),
        PathBuf::from,
    );
    let py = venv.join("bin/python");
    let ok = Command::new(&py)
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.json.http",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    cairn_server::testing::require(
        ok,
        "the OpenTelemetry Python SDK (scripts/deps.sh installs it with CAIRN_TEST_DEPS=1)",
    )
    .then_some(py)
}

fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap_or_default());
        }
    }
    out
}

#[test]
fn the_python_sdk_exports_over_grpc_http_and_json() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tokens = tmp.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"otel\"\nsha256 = \"{}\"\nscopes = [\"append\", \"read\"]\n",
            cairn_server::auth::token_hash_hex("tok-otel-1")
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let st = start(
        cairn()
            .args(["serve", "--data-dir"])
            .arg(&data)
            .args([
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--token-file",
            ])
            .arg(&tokens)
            .env("CAIRN_LOG", "debug"),
    );
    let grpc = format!("http://127.0.0.1:{}", st.port);
    let http = http_addr(&st.startup);
    // Read the server's output as it comes (debug level is chatty: a full
    // pipe would stall the server).
    let mut serving = st.serving;
    let output = drain(st.stderr);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/otel_logs.py");
    for (mode, endpoint) in [
        ("grpc", grpc.clone()),
        ("http", format!("http://{http}/v1/logs")),
        ("json", format!("http://{http}/v1/logs")),
    ] {
        let out = Command::new(&py)
            .arg(&script)
            .args([mode, &endpoint, &PER_MODE.to_string(), CANARY, "tok-otel-1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{mode}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Without the token, the SDK's export fails (and nothing lands).
    let out = Command::new(&py)
        .arg(&script)
        .args(["http", &format!("http://{http}/v1/logs"), "3", CANARY])
        .output()
        .unwrap();
    assert!(!out.status.success());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = LogClient::with_interceptor(channel, |mut r: tonic::Request<()>| {
            r.metadata_mut()
                .insert("authorization", "Bearer tok-otel-1".parse().unwrap());
            Ok(r)
        });
        let cp = c
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(cp.size, 3 * PER_MODE as u64, "every record once");
        let vkey = std::fs::read_to_string(data.join("log.vkey")).unwrap();
        let vk = cairn_core::NoteVerifier::parse(vkey.trim()).unwrap();
        let v =
            verify_checkpoint(cp.note.as_bytes(), None, &vk, &WitnessPolicy::default()).unwrap();
        let mut s = c
            .get_entries(pb::GetEntriesRequest {
                start: 0,
                end: cp.size,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut seen = std::collections::BTreeSet::new();
        while let Some(e) = s.next().await {
            let e = e.unwrap();
            let leaf = String::from_utf8(e.leaf.clone()).unwrap();
            assert!(!leaf.contains(CANARY), "{leaf}");
            assert!(leaf.contains("paid by [REDACTED:email]"), "{leaf}");
            let event: serde_json::Value = serde_json::from_str(&leaf).unwrap();
            let attrs = &event["body"]["attributes"];
            assert_eq!(attrs["user.email"], "[REDACTED:email]");
            let key = (
                attrs["mode"].as_str().unwrap().to_owned(),
                attrs["seq"].as_u64().unwrap(),
            );
            assert!(seen.insert(key.clone()), "{key:?} landed twice");
            let p = c
                .get_inclusion_proof(pb::GetInclusionProofRequest {
                    leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(e.index)),
                    tree_size: cp.size,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let path: Vec<Hash> = p
                .proof
                .iter()
                .map(|h| Hash::from_slice(h).unwrap())
                .collect();
            verify_inclusion(
                &leaf_hash(&e.leaf),
                LeafIndex(e.index),
                v.checkpoint.size,
                &path,
                &v.checkpoint.root,
            )
            .unwrap();
        }
        assert_eq!(seen.len(), 3 * PER_MODE);
    });
    // No canary in the server's output (debug level) or raw on disk.
    let _ = serving.0.kill();
    let _ = serving.0.wait();
    let err = output.join().unwrap();
    let canary = CANARY.as_bytes();
    assert!(
        !err.windows(canary.len()).any(|w| w == canary),
        "canary in the server's output"
    );
    let disk = all_bytes(&data);
    assert!(
        !disk.windows(canary.len()).any(|w| w == canary),
        "canary on disk"
    );
}
