//! OpenTelemetry export: `cairn serve` with `CAIRN_OTLP_ENDPOINT` sends its
//! spans over OTLP/gRPC to a collector, here a real OTLP trace service
//! (opentelemetry-proto's generated server) on 127.0.0.1:0. The spans name
//! the RPC and the sequencer batch, carry service.name = cairn, and no
//! exported byte holds the appended PII.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::{append_stdin, cairn, start};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::mpsc;

struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(req.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[test]
fn spans_reach_an_otlp_collector_without_pii() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    let st = start(
        cairn()
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .env("CAIRN_OTLP_ENDPOINT", format!("http://127.0.0.1:{port}"))
            .env("OTEL_BSP_SCHEDULE_DELAY", "100"),
    );
    let server = format!("http://127.0.0.1:{}", st.port);
    let canary = "otel.canary.7c41@example.com";
    let out = append_stdin(
        &server,
        format!("{{\"user\":\"{canary}\",\"action\":\"login\"}}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Collect exports until both span kinds arrived (or give up).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut names = std::collections::BTreeSet::new();
    let mut service = None;
    let mut dump = String::new();
    while !(names.contains("cairn.v1.Log/AppendStream") && names.contains("cairn.sequencer.batch"))
    {
        assert!(Instant::now() < deadline, "spans seen so far: {names:?}");
        let got = rt
            .block_on(async { tokio::time::timeout(Duration::from_millis(500), rx.recv()).await });
        let Ok(Some(req)) = got else { continue };
        dump.push_str(&format!("{req:?}"));
        for rs in &req.resource_spans {
            if let Some(r) = &rs.resource {
                for kv in &r.attributes {
                    if kv.key == "service.name" {
                        service = Some(format!("{:?}", kv.value));
                    }
                }
            }
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    names.insert(s.name.clone());
                }
            }
        }
    }
    assert!(
        service.is_some_and(|s| s.contains("\"cairn\"")),
        "no service.name"
    );
    assert!(!dump.contains(canary), "PII in exported spans");
    assert!(!dump.contains("otel.canary"), "PII in exported spans");
    drop(st);
}
