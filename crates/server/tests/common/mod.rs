//! Shared by the server's test binaries: a log service over a given store
//! on 127.0.0.1:0 (gRPC, and the HTTP router for health and metrics).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use cairn_core::note::NoteSigner;
use cairn_log::{Log, LogName, LogOptions};
use cairn_masking::{Masker, Policy, TokenKeys};
use cairn_server::auth::{AuthConfig, Authorizer};
use cairn_server::{LogService, Logs};
use cairn_storage::LogStore;
use cairn_storage_rocks::{Compression, RocksStore, StoreOptions};

const ORIGIN: &str = "hostile.cairn.test/log";

pub fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, &[21; 32]).unwrap()
}

pub fn rocks(dir: &std::path::Path) -> RocksStore {
    let mut o = StoreOptions::new(dir.join("data"));
    o.block_cache_bytes = 8 << 20;
    // Uncompressed, so a leak of raw bytes onto disk would be visible.
    o.compression = Compression::None;
    RocksStore::open(o).unwrap()
}

/// The log service (and the HTTP router, for health) over `store`, with
/// `auth`; returns the gRPC and HTTP addresses.
pub async fn serve(store: Arc<dyn LogStore>, auth: Option<AuthConfig>) -> (SocketAddr, SocketAddr) {
    serve_with(store, auth, LogOptions::default()).await
}

/// [`serve`] with the log's options (batching, queue limits), and the
/// OTLP receiver on the same gRPC listener.
pub async fn serve_with(
    store: Arc<dyn LogStore>,
    auth: Option<AuthConfig>,
    opts: LogOptions,
) -> (SocketAddr, SocketAddr) {
    let masker = Arc::new(
        Masker::new(Policy::default_policy().unwrap(), &TokenKeys::new(), ORIGIN).unwrap(),
    );
    let (log, _task) = Log::start(
        LogName::default_log(),
        ORIGIN,
        store,
        signer(),
        masker,
        opts,
    )
    .unwrap();
    let logs = Logs::single(log);
    let auth = auth.map(|a| Arc::new(Authorizer::new(a)));
    let svc = LogService::new(logs.clone(), auth.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc.otlp())
            .add_service(svc.into_server())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let router = cairn_server::http::router(logs, auth);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (grpc, http)
}

/// A GET with `Connection: close` (and a bearer token, if given); the
/// whole answer as text.
pub async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
