//! Accepting connections, with the limits every listener enforces (the
//! log's and the witness's, gRPC and HTTP, plain and TLS).
//!
//! * **Connection cap** ([`Limits::max_connections`], per listener): a
//!   connection holds a slot from before its TLS handshake until it
//!   closes. At the cap, the listener stops accepting; new connections
//!   wait in the kernel's backlog (and time out there), so a flood of idle
//!   sockets costs a bounded number of file descriptors and tasks.
//! * **TLS handshakes** run in their own tasks, at most
//!   [`HANDSHAKE_TIMEOUT`] each, so a silent client never holds up the
//!   accept loop.
//! * **HTTP** ([`serve_http`]): a request's headers must arrive within
//!   [`Limits::header_timeout`] (slowloris), and an idle keep-alive
//!   connection is closed after the same time (hyper starts the timer again
//!   after each response).
//! * **gRPC** ([`grpc_builder`]): HTTP/2 keep-alive pings find dead peers,
//!   a cap on concurrent streams per connection, and a time limit on each
//!   call's handler (for streaming calls: until the response starts; the
//!   stream itself runs as long as both sides want).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits of one server's listeners. [`Limits::default`] is what `cairn
/// serve` and `cairn witness` use unless configured otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections per listener (default 1,024).
    pub max_connections: usize,
    /// HTTP: longest a client may take to send a request's headers, and
    /// longest an idle keep-alive connection stays open (default 10 s).
    pub header_timeout: Duration,
    /// gRPC: longest a call's handler may run before its response starts
    /// (default 60 s; must exceed the `wait_cosigned` wait).
    pub request_timeout: Duration,
    /// gRPC: concurrent streams per connection (default 256).
    pub max_concurrent_streams: u32,
    /// gRPC: HTTP/2 keep-alive ping interval (default 30 s); a peer that
    /// does not answer a ping within 10 s is disconnected.
    pub keepalive: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_concurrent_streams: 256,
            keepalive: Duration::from_secs(30),
        }
    }
}

/// An accepted connection, holding its slot under the connection cap.
pub struct Counted<T> {
    io: T,
    _slot: OwnedSemaphorePermit,
}

impl<T> Counted<T> {
    /// The connection.
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Counted<T> {
    type ConnectInfo = T::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Accepts on `tcp`, at most `max` connections open at once, and hands
/// out each once `handshake` (TLS, or nothing) has completed within
/// [`HANDSHAKE_TIMEOUT`]. The accept task ends when the receiver is
/// dropped.
pub(crate) fn accept<T, F, Fut>(
    tcp: TcpListener,
    max: usize,
    handshake: F,
) -> mpsc::Receiver<(Counted<T>, SocketAddr)>
where
    T: Send + 'static,
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = std::io::Result<T>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(Semaphore::new(max.max(1)));
    tokio::spawn(async move {
        loop {
            // A slot first: at the cap, stop accepting (the kernel's
            // backlog holds the rest).
            let slot = tokio::select! {
                s = slots.clone().acquire_owned() => match s {
                    Ok(s) => s,
                    Err(_) => return,
                },
                () = tx.closed() => return,
            };
            let (stream, addr) = tokio::select! {
                a = tcp.accept() => match a {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = tx.closed() => return,
            };
            // Without it, small answers wait ~40 ms on Nagle and delayed ACKs.
            let _ = stream.set_nodelay(true);
            let (tx, done) = (tx.clone(), handshake(stream));
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, done).await {
                    Ok(Ok(io)) => {
                        let _ = tx.send((Counted { io, _slot: slot }, addr)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%addr, "handshake failed: {e}"),
                    Err(_) => tracing::debug!(%addr, "handshake timed out"),
                }
            });
        }
    });
    rx
}

/// What an HTTP handler may learn of its connection: the verified client
/// certificate chain on TLS connections.
pub(crate) trait PeerInfo {
    fn peer(&self) -> crate::tls::PeerCerts;
}

impl PeerInfo for TcpStream {
    fn peer(&self) -> crate::tls::PeerCerts {
        crate::tls::PeerCerts(None)
    }
}

impl PeerInfo for tokio_rustls::server::TlsStream<TcpStream> {
    fn peer(&self) -> crate::tls::PeerCerts {
        crate::tls::PeerCerts(
            self.get_ref()
                .1
                .peer_certificates()
                .map(|c| Arc::new(c.iter().map(|d| d.clone().into_owned()).collect())),
        )
    }
}

/// Serves `router` over HTTP/1.1 on the connections from `conns`, with
/// the header timeout, until `shutdown` resolves; then stops accepting
/// and lets open requests finish (at most 10 s).
pub(crate) async fn serve_http<T>(
    mut conns: mpsc::Receiver<(Counted<T>, SocketAddr)>,
    router: axum::Router,
    limits: &Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) where
    T: PeerInfo + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let (conn, _addr) = tokio::select! {
            c = conns.recv() => match c {
                Some(c) => c,
                None => break,
            },
            () = &mut shutdown => break,
        };
        let peer = conn.get_ref().peer();
        let svc = hyper_util::service::TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let c = builder.serve_connection(TokioIo::new(conn), svc);
        let c = graceful.watch(c);
        tokio::spawn(async move {
            if let Err(e) = c.await {
                tracing::debug!("HTTP connection: {e}");
            }
        });
    }
    drop(conns);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open 10 s after shutdown began; closing them");
    }
}

/// A tonic server builder with the gRPC limits.
pub(crate) fn grpc_builder(limits: &Limits) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .timeout(limits.request_timeout)
        .max_concurrent_streams(Some(limits.max_concurrent_streams))
        .http2_keepalive_interval(Some(limits.keepalive))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
}
