//! TLS for every listener (the log's gRPC and HTTP, the witness's gRPC and
//! `add-checkpoint`): rustls with the ring provider, mTLS when a client CA
//! is configured, one accept loop for all of them.
//!
//! Connections are accepted by [`crate::listen`]: handshakes run in their
//! own tasks (10 s limit), so a slow or silent client never holds up the
//! accept loop.
//!
//! **Certificate hot reload.** The certificate and key are served by
//! [`CertReloader`]: at most once a second, on a handshake, it looks at
//! the two files' modification times and, when either changed, loads the
//! pair again. A pair that fails to load (half-written, mismatched, key
//! readable by others) is logged and the previous one kept, so a rotation
//! never takes the listener down; writing the new files (rename into
//! place, key first) is all an operator does. The client CA is read at
//! start only.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::run::{ServeError, TlsFiles};

fn certs(p: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    CertificateDer::pem_file_iter(p)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServeError::Setup(format!("{}: {e}", p.display())))
}

/// Refuses a private key readable by group or others.
pub(crate) fn check_key_mode(key: &Path) -> Result<(), ServeError> {
    crate::run::check_secret_mode(key, "TLS key")
}

fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Arc<rustls::sign::CertifiedKey>, ServeError> {
    check_key_mode(key)?;
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError::Setup(format!("{}: {e}", key.display())))?;
    let ck = rustls::sign::CertifiedKey::from_der(certs(cert)?, der, provider).map_err(|e| {
        ServeError::Setup(format!("{} with {}: {e}", cert.display(), key.display()))
    })?;
    Ok(Arc::new(ck))
}

/// Serves the certificate and key from their files, reloading them when
/// they change (see the module docs).
#[derive(Debug)]
pub struct CertReloader {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    state: std::sync::Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    pair: Arc<rustls::sign::CertifiedKey>,
    stamps: (Option<std::time::SystemTime>, Option<std::time::SystemTime>),
    checked: std::time::Instant,
}

fn stamp(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl CertReloader {
    /// Loads the pair once (errors here stop the start-up).
    pub fn new(
        cert: &Path,
        key: &Path,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self, ServeError> {
        let pair = load_pair(cert, key, &provider)?;
        Ok(CertReloader {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            state: std::sync::Mutex::new(Loaded {
                pair,
                stamps: (stamp(cert), stamp(key)),
                checked: std::time::Instant::now(),
            }),
        })
    }

    /// The pair to serve now, reloaded first if the files changed.
    pub fn current(&self) -> Arc<rustls::sign::CertifiedKey> {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if st.checked.elapsed() >= Duration::from_secs(1) {
            st.checked = std::time::Instant::now();
            let now = (stamp(&self.cert), stamp(&self.key));
            if now != st.stamps {
                match load_pair(&self.cert, &self.key, &self.provider) {
                    Ok(pair) => {
                        st.pair = pair;
                        st.stamps = now;
                        tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    }
                    // Keep serving the old pair; try again on a later change.
                    Err(e) => {
                        st.stamps = now;
                        tracing::warn!(
                            "TLS certificate not reloaded, keeping the previous one: {e}"
                        );
                    }
                }
            }
        }
        st.pair.clone()
    }
}

impl rustls::server::ResolvesServerCert for CertReloader {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current())
    }
}

/// The rustls settings of a node's two listeners, sharing one reloading
/// certificate and one client verifier: gRPC (ALPN `h2`) and HTTP (ALPN
/// `http/1.1`).
pub struct ServerConfigs {
    /// For the gRPC listener.
    pub grpc: Arc<ServerConfig>,
    /// For the HTTP listener.
    pub http: Arc<ServerConfig>,
}

impl ServerConfigs {
    /// Both listeners' settings for `t` (`None`: no TLS).
    pub fn new(t: Option<&TlsFiles>) -> Result<Option<ServerConfigs>, ServeError> {
        let Some(t) = t else {
            return Ok(None);
        };
        let cfg = server_config(t)?;
        let with_alpn = |alpn: &[u8]| {
            let mut c = cfg.clone();
            c.alpn_protocols = vec![alpn.to_vec()];
            Arc::new(c)
        };
        Ok(Some(ServerConfigs {
            grpc: with_alpn(b"h2"),
            http: with_alpn(b"http/1.1"),
        }))
    }
}

/// The rustls server settings for `t` without ALPN: a reloading
/// certificate, and a client-certificate verifier when a client CA is set.
fn server_config(t: &TlsFiles) -> Result<ServerConfig, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = Arc::new(CertReloader::new(&t.cert, &t.key, provider.clone())?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Setup(format!("TLS: {e}")))?;
    let builder = match &t.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| ServeError::Setup(format!("{}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ServeError::Setup(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(builder.with_cert_resolver(resolver))
}

/// The client's certificate chain on an HTTPS connection (end-entity
/// first), verified by rustls against the client CA: the connect info of
/// every TLS connection, read by the authorizer for certificate identities.
#[derive(Clone, Debug, Default)]
pub struct PeerCerts(pub Option<Arc<Vec<CertificateDer<'static>>>>);
