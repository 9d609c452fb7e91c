//! Outgoing connections: the log's submissions to witnesses (HTTP), a
//! witness's gossip to its peers and its proof requests to logs (gRPC).
//! `http://` URLs go in the clear; `https://` URLs are verified against the
//! configured trust roots (a PEM file of CA certificates) with rustls, and
//! an `https://` URL with no roots configured is a configuration error,
//! reported at start-up rather than on the first request.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::run::ServeError;

/// Longest a TCP (and TLS) connection to a peer, witness or log may take
/// to open.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest one outgoing gRPC call (gossip, a consistency proof) may take,
/// start to finish. A silent peer costs at most this much, and a gossip
/// round asks its peers concurrently, so one silent peer never delays the
/// others.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The HTTP(S) client used for witness submissions.
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Trust roots for `https://` peers; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Outbound {
    /// The CA certificates, if configured: as read (PEM, for tonic) and
    /// parsed once (for rustls).
    ca: Option<Arc<Roots>>,
}

#[derive(Debug)]
struct Roots {
    pem: Vec<u8>,
    certs: Vec<CertificateDer<'static>>,
}

impl Outbound {
    /// Reads the CA file (`None`: only `http://` URLs can be used).
    pub fn new(ca: Option<&Path>) -> Result<Self, ServeError> {
        let Some(p) = ca else {
            return Ok(Outbound::default());
        };
        let pem = std::fs::read(p)
            .map_err(|e| ServeError::Setup(format!("TLS CA file {}: {e}", p.display())))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServeError::Setup(format!("TLS CA file {}: {e}", p.display())))?;
        if certs.is_empty() {
            return Err(ServeError::Setup(format!(
                "TLS CA file {}: no certificates in it",
                p.display()
            )));
        }
        Ok(Outbound {
            ca: Some(Arc::new(Roots { pem, certs })),
        })
    }

    /// Checks that `url` can be reached with these settings.
    pub fn check_url(&self, url: &str, what: &str) -> Result<(), ServeError> {
        if url.starts_with("https://") {
            if self.ca.is_none() {
                return Err(ServeError::Setup(format!(
                    "{what} {url} is https but no TLS CA file is configured to verify it"
                )));
            }
        } else if !url.starts_with("http://") {
            return Err(ServeError::Setup(format!(
                "{what} {url}: the URL must start with http:// or https://"
            )));
        }
        Ok(())
    }

    /// A gRPC channel to `url` (TLS for `https://`).
    pub async fn channel(&self, url: &str) -> Result<Channel, String> {
        let ep = Endpoint::from_shared(url.to_owned()).map_err(|e| format!("{url}: {e}"))?;
        let ep = match (&self.ca, url.starts_with("https://")) {
            (Some(ca), true) => ep
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem)))
                .map_err(|e| format!("{url}: {e}"))?,
            (None, true) => return Err(format!("{url}: https needs a TLS CA file")),
            (_, false) => ep,
        };
        ep.tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .connect()
            .await
            .map_err(|e| format!("{url}: {e}"))
    }

    /// An HTTP client for `http://` and `https://` URLs.
    pub fn http_client(&self) -> Result<HttpClient, ServeError> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &self.ca {
            for c in &ca.certs {
                roots
                    .add(c.clone())
                    .map_err(|e| ServeError::Setup(format!("TLS CA: {e}")))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Setup(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        // Each request is bounded by its caller (the witness timeout).
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Client::builder(TokioExecutor::new()).build(connector))
    }
}
