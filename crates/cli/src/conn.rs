//! How the client commands reach a log: the address, a bearer token for a
//! log with a token file, and the CA that verifies an `https://` server.
//! One set of flags (and `CAIRN_*` variables) for every command.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use cairn_api::log_client::LogClient;
use clap::Args;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The default log address.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:7400";

/// Where the log is and how to reach it.
#[derive(Args, Clone, Debug)]
pub(crate) struct ServerArg {
    /// The log's gRPC address (`https://` for TLS).
    #[arg(long, env = "CAIRN_SERVER", default_value = DEFAULT_SERVER)]
    pub(crate) server: String,
    /// Bearer token, for a log with a token file (`cairn token new`).
    /// Prefer the variable: a flag shows in the process list.
    #[arg(long, env = "CAIRN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificates (PEM) that verify an `https://` server.
    #[arg(long, env = "CAIRN_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// The log, on a server that hosts several (`cairn log list`).
    /// [default: the server's default log]
    #[arg(long = "log", env = "CAIRN_LOG_NAME", default_value = "")]
    pub(crate) log: String,
}

/// A log client that sends the bearer token, if any, with every call.
pub(crate) type Client = LogClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer …` to every request.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            r.metadata_mut().insert("authorization", v.clone());
        }
        Ok(r)
    }
}

impl ServerArg {
    /// Connects (TLS for `https://`, verified against `--tls-ca`).
    pub(crate) async fn connect(&self) -> Result<Client> {
        let bearer = self.bearer()?;
        Ok(LogClient::with_interceptor(self.channel().await?, bearer))
    }

    /// The bearer token's header value, if a token is given.
    fn bearer(&self) -> Result<Bearer> {
        Ok(match &self.token {
            None => Bearer(None),
            Some(t) => Bearer(Some(
                format!("Bearer {}", t.trim())
                    .parse()
                    .context("the token holds characters a header cannot carry")?,
            )),
        })
    }

    /// `msg` as a request carrying the bearer token, if any (for clients
    /// of other services on the same connection, e.g. OTLP).
    pub(crate) fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Ok(Bearer(Some(v))) = self.bearer() {
            r.metadata_mut().insert("authorization", v);
        }
        r
    }

    /// A connection to the server (TLS for `https://`, verified against
    /// `--tls-ca`).
    pub(crate) async fn channel(&self) -> Result<Channel> {
        let server = &self.server;
        let mut ep = Endpoint::from_shared(server.clone())
            .with_context(|| format!("{server} is not a valid address"))?
            .tcp_nodelay(true)
            .connect_timeout(std::time::Duration::from_secs(10));
        if server.starts_with("https://") {
            let Some(ca) = &self.tls_ca else {
                bail!(
                    "{server} is https: give the CA that signed its certificate with --tls-ca (or CAIRN_TLS_CA)"
                );
            };
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            ep = ep
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
                .with_context(|| format!("TLS settings for {server}"))?;
        } else if self.tls_ca.is_some() {
            bail!("--tls-ca is given but {server} is not https://");
        }
        ep.connect()
            .await
            .with_context(|| format!("connecting to {server}"))
    }
}
