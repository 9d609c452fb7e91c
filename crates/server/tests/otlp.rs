//! Ingestion from pipelines (issue 20): the OTLP logs receiver over gRPC
//! and HTTP (protobuf and JSON) and the NDJSON append over HTTP, against a
//! real `cairn serve` on 127.0.0.1:0: records land once each, masked, in
//! the log their resource names, and verify; refused records are counted
//! in `partial_success` with a reason that holds no record content; bad
//! requests get their documented status and append nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/mod.rs"]
mod harness;

use std::net::SocketAddr;

use cairn_api::opentelemetry::proto::collector::logs::v1 as collector;
use cairn_api::opentelemetry::proto::common::v1 as common;
use cairn_api::opentelemetry::proto::logs::v1 as logs;
use cairn_api::opentelemetry::proto::resource::v1 as resource;
use cairn_core::checkpoint::{WitnessPolicy, verify_checkpoint};
use cairn_core::hash::{Hash, LeafIndex, leaf_hash};
use cairn_core::proof::verify_inclusion;
use cairn_server::pb::log_client::LogClient;
use cairn_server::{LogConfig, ServeConfig, Server, pb};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;

const CANARY: &str = "otlp.canary.7f3a@example.com";

fn s(v: &str) -> common::AnyValue {
    common::AnyValue {
        value: Some(common::any_value::Value::StringValue(v.to_owned())),
    }
}

fn kv(k: &str, v: &str) -> common::KeyValue {
    common::KeyValue {
        key: k.to_owned(),
        value: Some(s(v)),
    }
}

/// An export: `n` records for each `(cairn.log or none, body)` resource.
fn export(resources: &[(Option<&str>, Vec<String>)]) -> collector::ExportLogsServiceRequest {
    collector::ExportLogsServiceRequest {
        resource_logs: resources
            .iter()
            .map(|(log, bodies)| {
                let mut attributes = vec![kv("service.name", "checkout")];
                if let Some(l) = log {
                    attributes.push(kv("cairn.log", l));
                }
                logs::ResourceLogs {
                    resource: Some(resource::Resource {
                        attributes,
                        ..Default::default()
                    }),
                    scope_logs: vec![logs::ScopeLogs {
                        scope: Some(common::InstrumentationScope {
                            name: "checkout.audit".into(),
                            ..Default::default()
                        }),
                        log_records: bodies
                            .iter()
                            .map(|b| logs::LogRecord {
                                time_unix_nano: 1_700_000_000_000_000_000,
                                severity_number: 9,
                                severity_text: "INFO".into(),
                                body: Some(s(b)),
                                attributes: vec![kv("user.email", CANARY)],
                                trace_id: vec![0xab; 16],
                                span_id: vec![0xcd; 8],
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect(),
    }
}

/// A POST with `Connection: close`: status, content type, body.
async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head[9..12].parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let mut body = buf[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, ctype, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
    out
}

/// Every entry of `log`, as text.
async fn entries(c: &mut LogClient<tonic::transport::Channel>, log: &str) -> Vec<String> {
    let size = c
        .get_checkpoint(pb::GetCheckpointRequest {
            log: log.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .size;
    let mut s = c
        .get_entries(pb::GetEntriesRequest {
            start: 0,
            end: size,
            log: log.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = s.next().await {
        out.push(String::from_utf8(e.unwrap().leaf).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_and_ndjson_ingestion() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = ServeConfig {
        logs: ["default", "audit"]
            .iter()
            .map(|n| LogConfig {
                name: cairn_log::LogName::new(n).unwrap(),
                data_dir: tmp.path().join(n),
                origin: format!("{n}.otlp.test/log"),
                ..LogConfig::default()
            })
            .collect(),
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
    let mut otlp =
        collector::logs_service_client::LogsServiceClient::connect(format!("http://{grpc}"))
            .await
            .unwrap();
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    let big = "x".repeat(100_000);

    // OTLP/gRPC: two records to the default log, one to `audit`, one too
    // large once masked, one to a log that does not exist.
    let req = export(&[
        (
            None,
            vec![
                format!("grpc login by {CANARY}"),
                "grpc logout".into(),
                big.clone(),
            ],
        ),
        (Some("audit"), vec![format!("grpc audit {CANARY}")]),
        (Some("nope"), vec!["lost".into()]),
    ]);
    let resp = otlp.export(req).await.unwrap().into_inner();
    let p = resp.partial_success.unwrap();
    assert_eq!(p.rejected_log_records, 2, "{p:?}");
    assert!(!p.error_message.contains(CANARY) && !p.error_message.contains("xxxx"));
    assert!(p.error_message.contains("65535"), "{}", p.error_message);

    // OTLP/HTTP protobuf.
    let body = export(&[(None, vec![format!("http-pb {CANARY}")])]).encode_to_vec();
    let (status, ctype, out) = post(
        http,
        "/v1/logs",
        &[("Content-Type", "application/x-protobuf")],
        &body,
    )
    .await;
    assert_eq!((status, ctype.as_str()), (200, "application/x-protobuf"));
    let r = collector::ExportLogsServiceResponse::decode(out.as_slice()).unwrap();
    assert!(r.partial_success.is_none());

    // The same, gzip-compressed (the Collector's default).
    let body = {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&export(&[(None, vec!["http-gzip".into()])]).encode_to_vec())
            .unwrap();
        z.finish().unwrap()
    };
    let (status, _, _) = post(
        http,
        "/v1/logs",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    let mut gz =
        collector::logs_service_client::LogsServiceClient::connect(format!("http://{grpc}"))
            .await
            .unwrap()
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let r = gz
        .export(export(&[(None, vec!["grpc-gzip".into()])]))
        .await
        .unwrap()
        .into_inner();
    assert!(r.partial_success.is_none());

    // OTLP/HTTP JSON (the OTLP JSON mapping: camelCase, hex ids).
    let json = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"cairn.log","value":{{"stringValue":"audit"}}}}]}},"scopeLogs":[{{"logRecords":[{{"timeUnixNano":"1700000000000000001","severityNumber":13,"traceId":"0102030405060708090a0b0c0d0e0f10","body":{{"stringValue":"http-json {CANARY}"}},"attributes":[{{"key":"card","value":{{"stringValue":"4111 1111 1111 1111"}}}}]}}]}}]}}]}}"#
    );
    let (status, ctype, out) = post(
        http,
        "/v1/logs",
        &[("Content-Type", "application/json")],
        json.as_bytes(),
    )
    .await;
    assert_eq!((status, ctype.as_str()), (200, "application/json"));
    assert_eq!(String::from_utf8(out).unwrap(), "{}");

    // Bad requests: nothing appended, documented statuses.
    let (status, _, out) = post(
        http,
        "/v1/logs",
        &[("Content-Type", "application/x-protobuf")],
        b"\xff\xff\xff",
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&out));
    let (status, _, _) = post(http, "/v1/logs", &[("Content-Type", "text/plain")], b"x").await;
    assert_eq!(status, 415);
    let (status, _, _) = post(
        http,
        "/v1/logs",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "br"),
        ],
        b"x",
    )
    .await;
    assert_eq!(status, 415);
    let (status, _, out) = post(
        http,
        "/v1/logs",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        b"not gzip",
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&out).contains("not valid gzip"));
    // A gzip bomb: a small body that inflates past the 16 MiB limit.
    let bomb = {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![b' '; (16 << 20) + 10]).unwrap();
        z.finish().unwrap()
    };
    assert!(bomb.len() < 100_000);
    let (status, _, out) = post(
        http,
        "/v1/logs",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &bomb,
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&out).contains("inflates past"));
    let (status, _, out) = post(
        http,
        "/v1/logs",
        &[("Content-Type", "application/json")],
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":"zz"}]}]}]}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&out).contains("spanId: expected hex"));
    let huge = vec![b' '; (16 << 20) + 1];
    let (status, _, _) = post(
        http,
        "/v1/logs",
        &[("Content-Type", "application/json")],
        &huge,
    )
    .await;
    assert_eq!(status, 413);

    // Each record landed once, masked, in its log; each verifies.
    let default_log = entries(&mut c, "").await;
    let audit = entries(&mut c, "audit").await;
    assert_eq!(default_log.len(), 5, "{default_log:?}");
    assert_eq!(audit.len(), 2, "{audit:?}");
    for leaf in default_log.iter().chain(&audit) {
        assert!(!leaf.contains(CANARY), "{leaf}");
        assert!(leaf.contains("[REDACTED:email]"), "{leaf}");
        assert!(
            leaf.contains("\"service.name\":\"checkout\"") || leaf.contains("cairn.log"),
            "{leaf}"
        );
    }
    assert!(default_log[0].contains("\"trace_id\":\"abababababababababababababababab\""));
    assert!(audit[1].contains("\"trace_id\":\"0102030405060708090a0b0c0d0e0f10\""));
    assert!(audit[1].contains("[REDACTED:credit_card]") && !audit[1].contains("4111"));
    for (log, leaves) in [("", &default_log), ("audit", &audit)] {
        let cp = c
            .get_checkpoint(pb::GetCheckpointRequest {
                log: log.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let vkey = std::fs::read_to_string(
            tmp.path()
                .join(if log.is_empty() { "default" } else { log })
                .join("log.vkey"),
        )
        .unwrap();
        let vk = cairn_core::NoteVerifier::parse(vkey.trim()).unwrap();
        let v =
            verify_checkpoint(cp.note.as_bytes(), None, &vk, &WitnessPolicy::default()).unwrap();
        for (i, leaf) in leaves.iter().enumerate() {
            let p = c
                .get_inclusion_proof(pb::GetInclusionProofRequest {
                    leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(i as u64)),
                    log: log.into(),
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
                &leaf_hash(leaf.as_bytes()),
                LeafIndex(i as u64),
                v.checkpoint.size,
                &path,
                &v.checkpoint.root,
            )
            .unwrap();
        }
    }

    // NDJSON over HTTP: a bad line answered in its slot; a resend with the
    // same Idempotency-Key appends nothing twice.
    let body = format!("{{\"user\":\"{CANARY}\",\"n\":1}}\n[\"not an object\"]\n\n{{\"n\":3}}\n");
    for round in 0..2 {
        let (status, ctype, out) = post(
            http,
            "/logs/audit/append",
            &[("Idempotency-Key", "batch-42")],
            body.as_bytes(),
        )
        .await;
        assert_eq!((status, ctype.as_str()), (200, "application/x-ndjson"));
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            (lines[0]["line"].as_u64(), lines[0]["index"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(lines[0]["duplicate"], round == 1);
        assert_eq!(lines[1]["line"], 2);
        assert_eq!(lines[1]["error"]["code"], "InvalidArgument");
        assert_eq!(
            (lines[2]["line"].as_u64(), lines[2]["index"].as_u64()),
            (Some(4), Some(3))
        );
        assert!(
            lines[0]["checkpoint"]
                .as_str()
                .unwrap()
                .starts_with("audit.otlp.test/log\n")
        );
    }
    assert_eq!(entries(&mut c, "audit").await.len(), 4);
    let (status, _, _) = post(http, "/logs/nope/append", &[], b"{}\n").await;
    assert_eq!(status, 404);

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// With a token file, OTLP and NDJSON need the `append` scope, like the
/// rest of the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_needs_the_append_scope() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = format!(
        "[[token]]\nname = \"reader\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n",
        cairn_server::auth::token_hash_hex("tok-read")
    );
    let cfg = ServeConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        auth: Some(cairn_server::auth::AuthConfig::from_toml("t.toml", &tokens).unwrap()),
        ..ServeConfig::single(tmp.path().join("data"))
    };
    let server = Server::bind(&cfg).await.unwrap();
    let (grpc, http) = (server.grpc_addr().unwrap(), server.http_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let mut otlp =
        collector::logs_service_client::LogsServiceClient::connect(format!("http://{grpc}"))
            .await
            .unwrap();
    let e = otlp
        .export(export(&[(None, vec!["x".into()])]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    // Over the 16 MiB limit: refused while decoding, before credentials
    // are even looked at.
    let e = otlp
        .export(export(&[(None, vec!["z".repeat((16 << 20) + 1)])]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{}", e.message());
    // The same, gzip-compressed (a few KiB on the wire): the limit holds
    // for the inflated message too.
    let mut gz = otlp
        .clone()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let e = gz
        .export(export(&[(None, vec!["z".repeat((16 << 20) + 1)])]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{:?}: {}",
        e.code(),
        e.message()
    );
    let mut r = tonic::Request::new(export(&[(None, vec!["x".into()])]));
    r.metadata_mut()
        .insert("authorization", "Bearer tok-read".parse().unwrap());
    assert_eq!(
        otlp.export(r).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let body = export(&[(None, vec!["x".into()])]).encode_to_vec();
    let (status, _, _) = post(
        http,
        "/v1/logs",
        &[("Content-Type", "application/x-protobuf")],
        &body,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = post(
        http,
        "/append",
        &[("Authorization", "Bearer tok-read")],
        b"{\"a\":1}\n",
    )
    .await;
    assert_eq!(status, 403);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// OTLP on listeners of its own (`otlp_grpc_addr`, `otlp_http_addr`):
/// exports land there, and those listeners serve OTLP only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_on_its_own_listeners() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = ServeConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        otlp_grpc_addr: Some("127.0.0.1:0".parse().unwrap()),
        otlp_http_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..ServeConfig::single(tmp.path().join("data"))
    };
    let server = Server::bind(&cfg).await.unwrap();
    let grpc = server.grpc_addr().unwrap();
    let (og, oh) = server.otlp_addrs();
    let (og, oh) = (og.unwrap(), oh.unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let mut otlp =
        collector::logs_service_client::LogsServiceClient::connect(format!("http://{og}"))
            .await
            .unwrap();
    let r = otlp
        .export(export(&[(None, vec!["via 4317".into()])]))
        .await
        .unwrap()
        .into_inner();
    assert!(r.partial_success.is_none());
    let body = export(&[(None, vec!["via 4318".into()])]).encode_to_vec();
    let (status, _, _) = post(
        oh,
        "/v1/logs",
        &[("Content-Type", "application/x-protobuf")],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    // OTLP only: the log's API is not on these listeners.
    let (status, _, _) = post(oh, "/append", &[], b"{}\n").await;
    assert_eq!(status, 404);
    let mut wrong = LogClient::connect(format!("http://{og}")).await.unwrap();
    let e = wrong
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    assert_eq!(entries(&mut c, "").await.len(), 2);
    // An open server (no token file) never freezes a log on request.
    let e = c
        .freeze_log(pb::FreezeLogRequest { log: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("admin token"), "{}", e.message());
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// A store whose durable commits take 1.2 s: the queue stays full while
/// a batch is written.
struct SlowStore(cairn_storage::MemoryStore);

impl cairn_storage::LogStore for SlowStore {
    fn load_state(&self) -> Result<cairn_storage::LoadedState, cairn_storage::StoreError> {
        self.0.load_state()
    }
    fn commit_batch(
        &self,
        batch: cairn_storage::CommitBatch<'_>,
    ) -> Result<(), cairn_storage::StoreError> {
        std::thread::sleep(std::time::Duration::from_millis(1200));
        self.0.commit_batch(batch)
    }
    fn put_checkpoint(
        &self,
        size: cairn_core::TreeSize,
        note: &[u8],
    ) -> Result<(), cairn_storage::StoreError> {
        self.0.put_checkpoint(size, note)
    }
    fn read_entries(
        &self,
        start: LeafIndex,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, cairn_storage::StoreError> {
        self.0.read_entries(start, limit)
    }
    fn read_tiles(
        &self,
        tiles: &[cairn_core::tile::Tile],
    ) -> Result<Vec<Vec<Hash>>, cairn_storage::StoreError> {
        self.0.read_tiles(tiles)
    }
    fn checkpoint(
        &self,
        size: Option<cairn_core::TreeSize>,
    ) -> Result<Option<cairn_storage::StoredCheckpoint>, cairn_storage::StoreError> {
        self.0.checkpoint(size)
    }
    fn find_leaf(&self, h: &Hash) -> Result<Option<LeafIndex>, cairn_storage::StoreError> {
        self.0.find_leaf(h)
    }
    fn find_idempotency_key(
        &self,
        key: &cairn_storage::IdempotencyKey,
    ) -> Result<Option<cairn_storage::IdempotencyRecord>, cairn_storage::StoreError> {
        self.0.find_idempotency_key(key)
    }
}

/// A full queue is answered with a retryable status (OTLP's rule), not a
/// wait, and before anything of the export is queued: `UNAVAILABLE` over
/// gRPC, 503 over HTTP. An export that fits is appended once room frees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_a_retryable_status() {
    let opts = cairn_log::LogOptions {
        sequencer: cairn_server::SequencerConfig {
            queue_bytes: 256 << 10,
            ..Default::default()
        },
        ..Default::default()
    };
    let store = std::sync::Arc::new(SlowStore(cairn_storage::MemoryStore::new()));
    let (grpc, http) = harness::serve_with(store, None, opts).await;
    let mut otlp =
        collector::logs_service_client::LogsServiceClient::connect(format!("http://{grpc}"))
            .await
            .unwrap();
    // ~200 KiB of records: fits the 256 KiB queue, and holds it while its
    // batch is written (1.2 s).
    let bodies = |tag: &str| {
        (0..200)
            .map(|i| format!("{tag} {i} {}", "y".repeat(1000)))
            .collect::<Vec<_>>()
    };
    let first = {
        let mut c = otlp.clone();
        let req = export(&[(None, bodies("first"))]);
        tokio::spawn(async move { c.export(req).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let e = otlp
        .export(export(&[(None, bodies("second"))]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{}", e.message());
    assert!(e.message().contains("queue is full"), "{}", e.message());
    let body = export(&[(None, bodies("third"))]).encode_to_vec();
    let (status, _, _) = post(
        http,
        "/v1/logs",
        &[("Content-Type", "application/x-protobuf")],
        &body,
    )
    .await;
    assert_eq!(status, 503);
    let r = first.await.unwrap().unwrap().into_inner();
    assert!(r.partial_success.is_none());
    // Room again: the retry succeeds, and only the first and the retry
    // were appended.
    let r = otlp
        .export(export(&[(None, bodies("second"))]))
        .await
        .unwrap()
        .into_inner();
    assert!(r.partial_success.is_none());
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    let leaves = entries(&mut c, "").await;
    assert_eq!(leaves.len(), 400);
    assert_eq!(leaves.iter().filter(|l| l.contains("\"third ")).count(), 0);
}
