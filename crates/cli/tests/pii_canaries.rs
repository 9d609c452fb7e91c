//! PII canaries: unique, unmistakable PII values are sent to a real
//! `cairn serve` process (logging at trace level, JSON), in good events
//! (as values, as JSON keys, as idempotency keys of a valid length, in
//! gRPC metadata headers) and in requests that fail (malformed JSON around
//! the value, an oversized entry, an unknown policy name, a reused
//! idempotency key, HTTP paths and headers). None of them may appear, raw,
//! anywhere the server writes or answers:
//!
//! - any file under the data folder (the RocksDB write-ahead log holds
//!   every record uncompressed, so a leaked value would show there);
//! - the server's stderr (all logs, every level);
//! - `/metrics`, `/checkpoint` and the tiles over HTTP;
//! - every gRPC error message and every receipt (apart from the openings,
//!   which go back to the appender by design and are not used here).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::Stdio;

use cairn_server::pb;
use cairn_server::pb::log_client::LogClient;
use common::{cairn, http, start};

/// One value per detector family; each is unique to this test.
const CANARIES: &[&str] = &[
    "canary.zq7x@example.org",
    "4111 1111 1111 1111",
    "GB82 WEST 1234 5698 7654 32",
    "078-05-1120",
    "+44 20 7946 0958",
    "AKIAZQ7XCANARY000001",
    "ghp_zq7xCanaryToken0000000000000000000000",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnktenE3eCJ9.c2lnbmF0dXJlLWNhbmFyeQ",
];

fn contains_canary(hay: &[u8]) -> Option<&'static str> {
    CANARIES.iter().copied().find(|c| {
        let c = c.as_bytes();
        hay.windows(c.len()).any(|w| w == c)
    })
}

fn scan_dir(dir: &std::path::Path, found: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            scan_dir(&p, found);
        } else if let Some(c) = contains_canary(&std::fs::read(&p).unwrap()) {
            found.push(format!("{} contains {c:?}", p.display()));
        }
    }
}

#[test]
fn no_canary_reaches_disk_logs_metrics_or_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let common::Started {
        serving,
        port,
        stderr,
        startup,
    } = start(
        cairn()
            .args(["serve", "--data-dir"])
            .arg(&data)
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .env("CAIRN_LOG", "trace")
            .env("CAIRN_LOG_FORMAT", "json")
            .stdout(Stdio::null()),
    );
    let http_addr = common::http_addr(&startup);
    let log = common::drain(stderr);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut answers: Vec<String> = Vec::new();
    rt.block_on(async {
        let mut c = LogClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        for (i, v) in CANARIES.iter().enumerate() {
            // A good event, in a field the policy knows and in free text.
            let ok = c
                .append(pb::AppendRequest {
                    event: format!(r#"{{"i":{i},"note":"value {v} here","email":"{v}"}}"#)
                        .into_bytes(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            answers.push(String::from_utf8_lossy(&ok.leaf).into_owned());
            answers.push(ok.tlog_proof.clone());
            // The value as a JSON key, its idempotency key, and a metadata
            // header; then the same key again (a duplicate) and with
            // another event (ALREADY_EXISTS).
            let keyed = |event: String| {
                let mut r = tonic::Request::new(pb::AppendRequest {
                    event: event.into_bytes(),
                    idempotency_key: v.as_bytes().to_vec(),
                    ..Default::default()
                });
                r.metadata_mut().insert("x-canary", v.parse().unwrap());
                r
            };
            let first = c
                .append(keyed(format!(r#"{{"{v}":{{"role":"admin"}}}}"#)))
                .await
                .unwrap()
                .into_inner();
            answers.push(String::from_utf8_lossy(&first.leaf).into_owned());
            let again = c
                .append(keyed(format!(r#"{{"{v}":{{"role":"admin"}}}}"#)))
                .await
                .unwrap()
                .into_inner();
            assert!(again.duplicate);
            answers.push(String::from_utf8_lossy(&again.leaf).into_owned());
            let e = c
                .append(keyed(format!(r#"{{"other":"{v}"}}"#)))
                .await
                .unwrap_err();
            assert_eq!(e.code(), tonic::Code::AlreadyExists);
            answers.push(e.message().to_owned());
            // Text events.
            let ok = c
                .append(pb::AppendRequest {
                    event: format!("user said {v} at login").into_bytes(),
                    content_type: pb::ContentType::Text as i32,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            answers.push(String::from_utf8_lossy(&ok.leaf).into_owned());
            // Failures: malformed JSON around the value, an unknown policy,
            // an oversized entry, a bad idempotency key, a duplicate key.
            let bad = [
                pb::AppendRequest {
                    event: format!(r#"{{"note":"{v}", oops}}"#).into_bytes(),
                    ..Default::default()
                },
                pb::AppendRequest {
                    event: format!(r#"{{"note":"{v}"}}"#).into_bytes(),
                    policy: format!("policy-{v}"),
                    ..Default::default()
                },
                pb::AppendRequest {
                    event: format!(r#"{{"note":"{}"}}"#, format!("{v} ").repeat(20_000))
                        .into_bytes(),
                    content_type: pb::ContentType::Json as i32,
                    ..Default::default()
                },
                pb::AppendRequest {
                    event: format!(r#"{{"note":"{v}","note":"{v}"}}"#).into_bytes(),
                    ..Default::default()
                },
                pb::AppendRequest {
                    event: br#"{"a":1}"#.to_vec(),
                    idempotency_key: format!("{v}{}", "x".repeat(200)).into_bytes(),
                    ..Default::default()
                },
            ];
            for req in bad {
                let e = c.append(req).await.unwrap_err();
                answers.push(e.message().to_owned());
            }
        }
        // Reads: entries, checkpoint.
        let mut s = c
            .get_entries(pb::GetEntriesRequest {
                start: 0,
                end: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        while let Some(e) = tokio_stream::StreamExt::next(&mut s).await {
            answers.push(String::from_utf8_lossy(&e.unwrap().leaf).into_owned());
        }
    });
    for path in [
        "/metrics",
        "/checkpoint",
        "/tile/entries/000.p/16",
        "/healthz",
    ] {
        let (code, _, body) = http(http_addr, "GET", path, "").unwrap();
        assert_eq!(code, 200, "{path}");
        answers.push(body);
    }
    // HTTP error paths: a canary in the path (answered 400 or 404).
    for v in CANARIES.iter().filter(|v| !v.contains(' ')) {
        for path in [
            format!("/tile/{v}"),
            format!("/tile/0/{v}"),
            format!("/{v}"),
        ] {
            let (code, _, body) = http(http_addr, "GET", &path, "").unwrap();
            assert!((400..500).contains(&code), "{path}: {code}");
            answers.push(body);
        }
    }
    // Stop the server (SIGKILL is enough: everything acknowledged is durable).
    drop(serving);
    let logs = log.join().unwrap();
    assert!(
        logs.len() > 1000,
        "trace logging should have produced output ({} bytes)",
        logs.len()
    );
    let mut found = Vec::new();
    if let Some(c) = contains_canary(&logs) {
        found.push(format!("server logs contain {c:?}"));
    }
    for a in &answers {
        if let Some(c) = contains_canary(a.as_bytes()) {
            found.push(format!(
                "an answer contains {c:?}: {}",
                &a[..a.len().min(200)]
            ));
        }
    }
    scan_dir(&data, &mut found);
    assert!(found.is_empty(), "raw PII leaked:\n{}", found.join("\n"));
    // The events did land (masked): 3 per canary.
    assert!(
        answers.iter().any(|a| a.contains("[REDACTED:email]")),
        "masked leaves expected"
    );
}
