//! Running a log: open the store, load or create the key, start the
//! sequencer, serve gRPC and HTTP, shut down gracefully.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_core::cosignature::Cosigner;
use cairn_core::note::NoteSigner;
use cairn_log::{Hosted, Log, LogName, LogOptions, Registry};
use cairn_masking::{Masker, Policy, TokenKeys};
use cairn_storage::{LogStore, SharedLogStore, durable};
use cairn_storage_rocks::{RocksStore, StoreOptions};
use tokio::net::TcpListener;

use crate::auth::{AuthConfig, Authorizer};
use crate::sequencer::SequencerConfig;
use crate::service::{LogService, Logs};
use crate::witnessing::{Witnessing, WitnessingConfig};

/// One log's validated settings (a `[[log]]` table of the config file).
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// The log's name: the `log` field of requests, `/logs/<name>/`.
    pub name: LogName,
    /// RocksDB folder; also holds `log.key`, `log.vkey` and, once the log
    /// is frozen, `frozen.checkpoint`.
    pub data_dir: PathBuf,
    /// The log's origin (checkpoint origin line and key name).
    pub origin: String,
    /// Masking policy file; `None` for the built-in policy.
    pub policy: Option<PathBuf>,
    /// Token key file for `token` masks.
    pub key_file: Option<PathBuf>,
    /// The log's signing key (a Go-style private key file, mode 0600,
    /// named for the origin); `None`: `<data_dir>/log.key`, created on
    /// first start.
    pub signing_key: Option<PathBuf>,
    /// Batching.
    pub sequencer: SequencerConfig,
    /// Witnesses to submit checkpoints to, if any.
    pub witnessing: Option<WitnessingConfig>,
    /// Proof tile cache, in MiB (~24 KiB per expanded tile).
    pub tile_cache_mb: usize,
    /// The fork-guard file; `None`: `<data_dir>.guard` beside the folder.
    /// Keep it where a restore of the data does not bring it back (another
    /// volume: docs/operations.md).
    pub guard_file: Option<PathBuf>,
    /// Recreate a missing fork guard from the store (one start, after an
    /// operator checked the store is the log's latest state).
    pub rebuild_guard: bool,
    /// Frozen: the final checkpoint is the latest, appends are refused.
    pub frozen: bool,
    /// Freeze at this time (and start frozen after it).
    pub not_after: Option<SystemTime>,
    /// Appends per identity in this log, replacing the server-wide
    /// `append_rate` for it (needs a token file).
    pub quota: Option<crate::auth::Quota>,
    /// The subject key store for the `encrypt` action (a folder of its
    /// own, never inside `data_dir`: docs/design/erasure.md).
    pub subject_keys: Option<PathBuf>,
    /// The key-encryption key's file (mode 0600); `None`: the
    /// `CAIRN_KEK` environment variable.
    pub kek_file: Option<PathBuf>,
    /// Keep the log in an S3-compatible bucket instead of RocksDB in
    /// `data_dir` (which then holds only the key and the freeze marker):
    /// docs/design/object-storage.md.
    pub object_store: Option<ObjectStoreConfig>,
    /// The log's verifier key (`<origin>+<hash>+<key>`), for a read
    /// replica that has no signing key; `None`: derived from the signing
    /// key, or read from `<data_dir>/log.vkey`.
    pub verifier_key: Option<String>,
}

/// Where a log's bucket is (`store = "s3://bucket/prefix"`) and how to
/// reach it.
#[derive(Clone, Debug)]
pub struct ObjectStoreConfig {
    /// Bucket and prefix.
    pub location: cairn_storage_s3::S3Location,
    /// Endpoint, region, credentials.
    pub options: cairn_storage_s3::S3Options,
}

impl Default for LogConfig {
    /// The embedded default log: `default`, in `./cairn-data`, origin
    /// `localhost/cairn`, the built-in policy, no witnesses.
    fn default() -> Self {
        LogConfig {
            name: LogName::default_log(),
            data_dir: "./cairn-data".into(),
            origin: "localhost/cairn".into(),
            policy: None,
            key_file: None,
            signing_key: None,
            sequencer: SequencerConfig::default(),
            witnessing: None,
            tile_cache_mb: cairn_log::DEFAULT_TILE_CACHE_MB,
            guard_file: None,
            rebuild_guard: false,
            frozen: false,
            not_after: None,
            quota: None,
            subject_keys: None,
            kek_file: None,
            object_store: None,
            verifier_key: None,
        }
    }
}

/// Validated settings for `cairn serve`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The logs. Requests that name no log go to the one named `default`
    /// or, without one, to the first.
    pub logs: Vec<LogConfig>,
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// HTTP (tlog-tiles) listen address.
    pub http_addr: SocketAddr,
    /// Longest a `wait_cosigned` append waits for a quorum.
    pub cosign_wait: Duration,
    /// Bearer tokens, scopes and quotas; `None` for an open server.
    pub auth: Option<AuthConfig>,
    /// TLS for the gRPC and HTTP listeners (and mTLS with a client CA).
    pub tls: Option<TlsFiles>,
    /// Timeouts and caps of both listeners.
    pub limits: crate::listen::Limits,
    /// The log OTLP records go to when their resource has no `cairn.log`
    /// attribute (empty: the default log).
    pub otlp_log: String,
    /// A listener of its own for OTLP/gRPC (the OTLP default is
    /// 0.0.0.0:4317); OTLP is served on the main gRPC listener as well.
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// A listener of its own for OTLP/HTTP `/v1/logs` (OTLP default
    /// 0.0.0.0:4318); also on the main HTTP listener.
    pub otlp_http_addr: Option<SocketAddr>,
    /// Leadership through etcd, for logs in a bucket: until this process
    /// is elected its logs are warm standbys (they follow the bucket and
    /// serve reads); then it writes them. `run` stops with an error if the
    /// lease is lost ([`crate::leader`]).
    pub etcd: Option<crate::leader::EtcdConfig>,
    /// A read replica: every log is in a bucket another server writes;
    /// this one follows it and serves reads, and never writes.
    pub read_only: bool,
    /// How often a standby or read replica reads the bucket for the
    /// writer's new batches.
    pub follow_every: Duration,
}

impl Default for ServeConfig {
    /// The embedded defaults of `cairn serve`: one log ([`LogConfig`]'s
    /// default), gRPC on 127.0.0.1:7400, HTTP on 127.0.0.1:7480, no
    /// tokens, no TLS.
    fn default() -> Self {
        ServeConfig {
            logs: vec![LogConfig::default()],
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 7400)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 7480)),
            cosign_wait: Duration::from_secs(30),
            auth: None,
            tls: None,
            limits: crate::listen::Limits::default(),
            otlp_log: String::new(),
            otlp_grpc_addr: None,
            otlp_http_addr: None,
            etcd: None,
            read_only: false,
            follow_every: Duration::from_millis(500),
        }
    }
}

impl ServeConfig {
    /// The embedded defaults, with one log in `data_dir`.
    pub fn single(data_dir: impl Into<PathBuf>) -> Self {
        ServeConfig {
            logs: vec![LogConfig {
                data_dir: data_dir.into(),
                ..LogConfig::default()
            }],
            ..ServeConfig::default()
        }
    }

    /// The default log's settings (the one named `default`, or the first).
    pub fn default_log(&self) -> Option<&LogConfig> {
        self.logs
            .iter()
            .find(|l| l.name.as_str() == cairn_log::DEFAULT_LOG)
            .or(self.logs.first())
    }

    /// The default log's settings, to change them.
    pub fn default_log_mut(&mut self) -> Option<&mut LogConfig> {
        let i = self
            .logs
            .iter()
            .position(|l| l.name.as_str() == cairn_log::DEFAULT_LOG)
            .unwrap_or(0);
        self.logs.get_mut(i)
    }
}

/// PEM files for TLS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// Client CA: when set, clients must present a certificate it signed
    /// (mTLS); others fail the handshake.
    pub client_ca: Option<PathBuf>,
}

/// Serves a gRPC router (built with [`crate::listen::grpc_builder`]) on
/// `tcp`, over TLS when `tls` is set (with the same acceptor, reloading
/// certificate and client verification as the HTTP listeners), with the
/// connection cap, until `shutdown` resolves.
pub(crate) async fn serve_grpc(
    router: tonic::transport::server::Router,
    tcp: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: &crate::listen::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    use tokio_stream::StreamExt;
    let max = limits.max_connections;
    match tls {
        Some(cfg) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
            let conns = crate::listen::accept(tcp, max, move |s| acceptor.accept(s));
            let incoming = tokio_stream::wrappers::ReceiverStream::new(conns)
                .map(|(c, _)| Ok::<_, std::io::Error>(c));
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
        None => {
            let conns = crate::listen::accept(tcp, max, |s| async { Ok(s) });
            let incoming = tokio_stream::wrappers::ReceiverStream::new(conns)
                .map(|(c, _)| Ok::<_, std::io::Error>(c));
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
    }
    .map_err(|e| ServeError::Setup(format!("gRPC server: {e}")))
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Anything with a message that already says what and where.
    #[error("{0}")]
    Setup(String),
}

pub(crate) fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> ServeError + '_ {
    move |e| ServeError::Setup(format!("{what}: {e}"))
}

/// A key kept as a Go-style private key file with a verifier key beside it.
pub trait KeyFile: Sized {
    /// What the key is, for messages ("log signing key").
    const WHAT: &'static str;
    /// Parses the private key text.
    fn parse_private(text: &str) -> Result<Self, cairn_core::note::KeyError>;
    /// A new key from a seed.
    fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, cairn_core::note::KeyError>;
    /// The private key text.
    fn private_text(&self) -> String;
    /// The verifier key text.
    fn vkey_text(&self) -> String;
    /// The key name.
    fn key_name(&self) -> &str;
}

/// Both key kinds have the same API; one implementation serves both.
macro_rules! key_file {
    ($ty:ty, $what:literal) => {
        impl KeyFile for $ty {
            const WHAT: &'static str = $what;
            fn parse_private(text: &str) -> Result<Self, cairn_core::note::KeyError> {
                <$ty>::parse(text)
            }
            fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, cairn_core::note::KeyError> {
                <$ty>::from_seed(name, seed)
            }
            fn private_text(&self) -> String {
                self.to_private_key_string()
            }
            fn vkey_text(&self) -> String {
                self.verifier().to_string()
            }
            fn key_name(&self) -> &str {
                self.name()
            }
        }
    };
}

key_file!(NoteSigner, "log signing key");
key_file!(Cosigner, "witness cosigning key");

/// Reads a file that holds secrets (a signing key, masking keys),
/// refusing one that group or others can read: such a key may already be
/// in other hands.
pub fn read_secret(path: &Path, what: &str) -> Result<String, ServeError> {
    check_secret_mode(path, what)?;
    std::fs::read_to_string(path).map_err(setup(&path.display().to_string()))
}

/// Refuses a secret file that group or others can read.
pub(crate) fn check_secret_mode(path: &Path, what: &str) -> Result<(), ServeError> {
    let meta = std::fs::metadata(path).map_err(setup(&path.display().to_string()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(ServeError::Setup(format!(
            "refusing to start: the {what} {} is readable by group or others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        )));
    }
    Ok(())
}

/// Loads `<dir>/log.key`, or creates it (mode 0600) with `<dir>/log.vkey`.
/// Refuses a key file readable by group or others, or one for another origin.
pub fn load_or_create_key(dir: &Path, origin: &str) -> Result<NoteSigner, ServeError> {
    load_or_create(dir, "log", origin)
}

/// Loads a log signing key kept elsewhere than the data folder (it must
/// exist, be private, and be named for `origin`).
pub fn load_key(path: &Path, origin: &str) -> Result<NoteSigner, ServeError> {
    let text = read_secret(path, NoteSigner::WHAT)?;
    let key = NoteSigner::parse_private(text.trim())
        .map_err(|e| ServeError::Setup(format!("{}: {e}", path.display())))?;
    if key.key_name() != origin {
        return Err(ServeError::Setup(format!(
            "{} is the key of {:?}, but the origin configured is {origin:?}",
            path.display(),
            key.key_name()
        )));
    }
    Ok(key)
}

/// Loads `<dir>/<stem>.key`, or creates it (mode 0600) with
/// `<dir>/<stem>.vkey`. Refuses a key file readable by group or others, or
/// one with another name.
///
/// Both files and the folder are created durably
/// (`cairn_storage::durable`): a key whose name a power cut could take
/// away would come back as a new key, and every checkpoint signed before
/// would stop verifying. The verifier key is derived from the signing key,
/// so it is rewritten (durably) when it is missing or does not match.
pub fn load_or_create<K: KeyFile>(dir: &Path, stem: &str, name: &str) -> Result<K, ServeError> {
    let key_path = dir.join(format!("{stem}.key"));
    let key = if key_path.exists() {
        let text = read_secret(&key_path, K::WHAT)?;
        let key = K::parse_private(text.trim())
            .map_err(|e| ServeError::Setup(format!("{}: {e}", key_path.display())))?;
        if key.key_name() != name {
            return Err(ServeError::Setup(format!(
                "{} is the key of {:?}, but the name configured is {:?}; a key's name never changes (start anew in another folder instead)",
                key_path.display(),
                key.key_name(),
                name
            )));
        }
        key
    } else {
        durable::create_dir_all(dir).map_err(setup(&dir.display().to_string()))?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| ServeError::Setup(format!("OS random source: {e}")))?;
        let key = K::from_seed(name, &seed)
            .map_err(|e| ServeError::Setup(format!("{name:?} is not a valid key name: {e}")))?;
        let text = format!("{}\n", key.private_text());
        let created = durable::create_new(&key_path, text.as_bytes(), 0o600)
            .map_err(setup(&key_path.display().to_string()))?;
        if !created {
            // Another process created it meanwhile: use that one.
            return load_or_create(dir, stem, name);
        }
        key
    };
    let vkey_path = dir.join(format!("{stem}.vkey"));
    let vkey = format!("{}\n", key.vkey_text());
    if std::fs::read_to_string(&vkey_path).ok().as_deref() != Some(vkey.as_str()) {
        durable::replace(&vkey_path, vkey.as_bytes())
            .map_err(setup(&vkey_path.display().to_string()))?;
    }
    Ok(key)
}

/// The masker `cairn serve` (and `cairn import`) use: the policy file (or
/// the built-in policy) with the token key file (or none), for `origin`.
pub fn build_masker(
    policy: Option<&Path>,
    key_file: Option<&Path>,
    origin: &str,
) -> Result<Masker, ServeError> {
    let policy = match policy {
        None => Policy::default_policy().map_err(|e| ServeError::Setup(e.to_string()))?,
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(setup(&p.display().to_string()))?;
            Policy::from_toml(&p.display().to_string(), &text)
                .map_err(|e| ServeError::Setup(e.to_string()))?
        }
    };
    let keys = match key_file {
        None => TokenKeys::new(),
        Some(p) => {
            let text = read_secret(p, "masking key file")?;
            TokenKeys::from_toml(&p.display().to_string(), &text)
                .map_err(|e| ServeError::Setup(e.to_string()))?
        }
    };
    Masker::new(policy, &keys, origin).map_err(|e| ServeError::Setup(e.to_string()))
}

/// Serves `router` on `tcp` (with TLS when `tls` is set), with the
/// listener limits, until `shutdown` resolves.
pub(crate) async fn serve_http(
    tcp: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: axum::Router,
    limits: &crate::listen::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let max = limits.max_connections;
    match tls {
        Some(cfg) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
            let conns = crate::listen::accept(tcp, max, move |s| acceptor.accept(s));
            crate::listen::serve_http(conns, router, limits, shutdown).await;
        }
        None => {
            let conns = crate::listen::accept(tcp, max, |s| async { Ok(s) });
            crate::listen::serve_http(conns, router, limits, shutdown).await;
        }
    }
}

/// What is unsafe about where `cfg` listens: a listener beyond loopback
/// with no token file lets anyone who reaches it append permanent entries
/// (and read every one); one with tokens but no TLS sends them in the
/// clear. Said loudly at start-up; the shipped configs do neither.
pub fn exposure_warnings(cfg: &ServeConfig) -> Vec<String> {
    let mut out = Vec::new();
    for (what, addr) in [("gRPC", cfg.grpc_addr), ("HTTP", cfg.http_addr)] {
        if addr.ip().is_loopback() {
            continue;
        }
        if cfg.auth.is_none() {
            out.push(format!(
                "SECURITY: the {what} listener {addr} is reachable beyond this machine and no token file is configured: anyone who can reach it can append permanent entries and read every entry (set token_file; see docs/security.md)"
            ));
        } else if cfg.tls.is_none() {
            out.push(format!(
                "SECURITY: the {what} listener {addr} is reachable beyond this machine without TLS: bearer tokens and entries cross the network in the clear (set tls_cert and tls_key; see docs/security.md)"
            ));
        }
    }
    out
}

/// A bound, ready-to-run log server.
pub struct Server {
    grpc: TcpListener,
    http: TcpListener,
    /// OTLP's own listeners, when configured.
    otlp_grpc: Option<TcpListener>,
    otlp_http: Option<TcpListener>,
    logs: Logs,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    auth: Option<Arc<Authorizer>>,
    tls: Option<crate::tls::ServerConfigs>,
    limits: crate::listen::Limits,
    /// The verifier key of the default log (empty if it could not start).
    pub vkey: String,
    /// Campaigning (or elected) through etcd, when configured.
    leadership: Option<crate::leader::Campaign>,
}

/// What this process does with a log.
#[derive(Clone)]
enum Role {
    /// Writes it.
    Writer,
    /// Follows the bucket and serves reads; writes once `elected` is true.
    Standby(tokio::sync::watch::Receiver<bool>, Duration),
    /// Follows the bucket and serves reads; never writes.
    ReadOnly(Duration),
}

/// A log opened: the running log, its sequencer's task, its witnessing.
type Opened = (Arc<Log>, tokio::task::JoinHandle<()>, Option<Witnessing>);

/// Opens one log: its store (with its writer lease), its key, its masker,
/// its sequencer, and its witnessing. A standby or read replica follows
/// its bucket instead of opening it as the writer.
async fn open_log(
    cfg: &LogConfig,
    client: Option<&crate::outbound::HttpClient>,
    role: Role,
) -> Result<Opened, ServeError> {
    let masker = Arc::new(build_masker(
        cfg.policy.as_deref(),
        cfg.key_file.as_deref(),
        &cfg.origin,
    )?);
    let subjects = match &cfg.subject_keys {
        None => None,
        Some(dir) => Some(Arc::new(open_subjects(cfg, dir)?)),
    };
    let opts = |lease| LogOptions {
        sequencer: SequencerConfig {
            lease: Some(lease),
            ..cfg.sequencer.clone()
        },
        tile_cache_mb: cfg.tile_cache_mb,
        freeze_marker: Some(cfg.data_dir.join("frozen.checkpoint")),
        frozen: cfg.frozen,
        not_after: cfg.not_after,
        subjects: subjects.clone(),
    };
    let setup_err = |e: cairn_log::LogError| ServeError::Setup(e.to_string());
    // What the log is opened as: the store, its lease, and either the
    // writer's key or how it follows.
    // Built once per log at start-up and consumed at once: its size does
    // not matter.
    #[allow(clippy::large_enum_variant)]
    enum As {
        Writer(Arc<dyn LogStore>, NoteSigner),
        Follower(Arc<dyn SharedLogStore>, cairn_log::Follow),
    }
    let (lease, open_as) = match (&role, &cfg.object_store) {
        (Role::Writer, _) => {
            let (store, lease) = open_store(cfg)?;
            (lease, As::Writer(store, log_signer(cfg)?))
        }
        (Role::Standby(..) | Role::ReadOnly(_), None) => {
            return Err(ServeError::Setup(format!(
                "log {:?} is not in a bucket: a standby or read replica follows logs in a bucket (store = \"s3://…\")",
                cfg.name.as_str()
            )));
        }
        (Role::Standby(elected, every), Some(o)) => {
            durable::create_dir_all(&cfg.data_dir)
                .map_err(setup(&cfg.data_dir.display().to_string()))?;
            let signer = log_signer(cfg)?;
            let store = follow_store(cfg, o, *every, Some(elected)).await?;
            let lease = store.lease();
            let open_as = if store.is_writer() {
                // Elected before the bucket had a checkpoint: the writer
                // from the start.
                As::Writer(store, signer)
            } else {
                let follow = cairn_log::Follow {
                    every: *every,
                    verifier: signer.verifier(),
                    standby: Some((signer, elected.clone())),
                };
                As::Follower(store, follow)
            };
            (lease, open_as)
        }
        (Role::ReadOnly(every), Some(o)) => {
            let verifier = log_verifier(cfg)?;
            let store = follow_store(cfg, o, *every, None).await?;
            let lease = store.lease();
            let follow = cairn_log::Follow {
                every: *every,
                verifier,
                standby: None,
            };
            (lease, As::Follower(store, follow))
        }
    };
    let (log, task) = match open_as {
        As::Writer(store, signer) => Log::start(
            cfg.name.clone(),
            &cfg.origin,
            store,
            signer,
            masker,
            opts(lease),
        ),
        As::Follower(store, follow) => Log::follow(
            cfg.name.clone(),
            &cfg.origin,
            store,
            masker,
            opts(lease),
            follow,
        ),
    }
    .map_err(setup_err)?;
    let witnessing = match (&cfg.witnessing, client) {
        (Some(w), Some(client)) if !w.witnesses.is_empty() => {
            Some(Witnessing::start(w.clone(), log.clone(), client.clone()))
        }
        _ => None,
    };
    Ok((log, task, witnessing))
}

/// A store and its writer lease.
type StoreAndLease = (Arc<dyn LogStore>, Arc<dyn cairn_storage::WriterLease>);

/// A writer's store and its lease: the bucket, or RocksDB in the data
/// folder.
fn open_store(cfg: &LogConfig) -> Result<StoreAndLease, ServeError> {
    Ok(match &cfg.object_store {
        Some(o) => {
            // The data folder still holds the key and the freeze marker.
            durable::create_dir_all(&cfg.data_dir)
                .map_err(setup(&cfg.data_dir.display().to_string()))?;
            let s = cairn_storage_s3::BucketStore::open_s3(&o.location, &o.options)
                .map_err(|e| ServeError::Setup(format!("log {}: {e}", cfg.name)))?;
            let lease = s.lease();
            (Arc::new(s), lease)
        }
        None => {
            let mut so = StoreOptions::new(&cfg.data_dir);
            so.guard_path = cfg.guard_file.clone();
            so.rebuild_missing_guard = cfg.rebuild_guard;
            let rocks = RocksStore::open(so).map_err(|e| ServeError::Setup(e.to_string()))?;
            let lease = rocks.lease();
            (Arc::new(rocks), lease)
        }
    })
}

/// Opens a bucket to follow it, and waits until it holds a checkpoint
/// (its writer signs one when it first starts). A standby elected while
/// it waits promotes the store and returns it as the writer's.
async fn follow_store(
    cfg: &LogConfig,
    o: &ObjectStoreConfig,
    every: Duration,
    elected: Option<&tokio::sync::watch::Receiver<bool>>,
) -> Result<Arc<cairn_storage_s3::BucketStore>, ServeError> {
    let name = cfg.name.clone();
    let fail = move |e: cairn_storage::StoreError| ServeError::Setup(format!("log {name}: {e}"));
    let (loc, opts) = (o.location.clone(), o.options.clone());
    let store =
        tokio::task::spawn_blocking(move || cairn_storage_s3::BucketStore::follow_s3(&loc, &opts))
            .await
            .map_err(|e| ServeError::Setup(format!("opening the bucket: {e}")))?
            .map_err(&fail)?;
    let store = Arc::new(store);
    let mut said = false;
    loop {
        let s = store.clone();
        let has = tokio::task::spawn_blocking(move || {
            s.refresh()?;
            s.checkpoint(None).map(|c| c.is_some())
        })
        .await
        .map_err(|e| ServeError::Setup(format!("reading the bucket: {e}")))?
        .map_err(&fail)?;
        if has {
            return Ok(store);
        }
        if let Some(e) = elected
            && *e.borrow()
        {
            let s = store.clone();
            tokio::task::spawn_blocking(move || s.promote())
                .await
                .map_err(|e| ServeError::Setup(format!("taking over the bucket: {e}")))?
                .map_err(&fail)?;
            return Ok(store);
        }
        if !said {
            tracing::info!(
                log = cfg.name.as_str(),
                "the bucket holds no checkpoint yet: waiting for its writer (or for this standby to be elected)"
            );
            said = true;
        }
        tokio::time::sleep(every).await;
    }
}

/// The log's signing key: the configured file, or `<data_dir>/log.key`
/// (created on first start).
fn log_signer(cfg: &LogConfig) -> Result<NoteSigner, ServeError> {
    match &cfg.signing_key {
        None => load_or_create_key(&cfg.data_dir, &cfg.origin),
        Some(p) => load_key(p, &cfg.origin),
    }
}

/// A read replica's verifier key: `verifier_key`, else the signing key's,
/// else `<data_dir>/log.vkey`. Never creates a key.
fn log_verifier(cfg: &LogConfig) -> Result<cairn_core::NoteVerifier, ServeError> {
    let (text, from) = match (&cfg.verifier_key, &cfg.signing_key) {
        (Some(v), _) => (v.clone(), "verifier_key".to_owned()),
        (None, Some(p)) => return Ok(load_key(p, &cfg.origin)?.verifier()),
        (None, None) => {
            let p = cfg.data_dir.join("log.vkey");
            match std::fs::read_to_string(&p) {
                Ok(t) => (t, p.display().to_string()),
                Err(_) => {
                    return Err(ServeError::Setup(format!(
                        "log {:?}: a read replica needs the log's verifier key: set verifier_key (the line in the writer's log.vkey)",
                        cfg.name.as_str()
                    )));
                }
            }
        }
    };
    let v = cairn_core::NoteVerifier::parse(text.trim())
        .map_err(|e| ServeError::Setup(format!("{from}: {e}")))?;
    if v.name() != cfg.origin {
        return Err(ServeError::Setup(format!(
            "{from} is the key of {:?}, but the origin configured is {:?}",
            v.name(),
            cfg.origin
        )));
    }
    Ok(v)
}

/// Opens a log's subject key store with its KEK (file, or `CAIRN_KEK`).
/// The store must not live inside the log's data folder: erasure must
/// not depend on what a backup of the log keeps.
pub fn open_subjects(
    cfg: &LogConfig,
    dir: &Path,
) -> Result<cairn_subjects::SubjectStore, ServeError> {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let (d, data) = (abs(dir), abs(&cfg.data_dir));
    if d.starts_with(&data) || data.starts_with(&d) {
        return Err(ServeError::Setup(format!(
            "log \"{}\": subject_keys ({}) must be a folder of its own, neither inside nor around data_dir ({})",
            cfg.name,
            dir.display(),
            cfg.data_dir.display()
        )));
    }
    let kek = match &cfg.kek_file {
        Some(p) => cairn_subjects::LocalKek::from_file(p),
        None => match std::env::var(cairn_subjects::KEK_ENV) {
            Ok(v) => {
                cairn_subjects::LocalKek::from_base64(&zeroize::Zeroizing::new(v)).map_err(|e| {
                    cairn_subjects::Error::Kek(format!("{}: {e}", cairn_subjects::KEK_ENV))
                })
            }
            Err(_) => Err(cairn_subjects::Error::Kek(format!(
                "log \"{}\" has subject_keys but no key-encryption key: set kek_file, or {}",
                cfg.name,
                cairn_subjects::KEK_ENV
            ))),
        },
    }
    .map_err(|e| ServeError::Setup(e.to_string()))?;
    cairn_subjects::SubjectStore::open(dir, &cfg.origin, Box::new(kek))
        .map_err(|e| ServeError::Setup(e.to_string()))
}

/// Checks what can be checked before anything is opened: names, folders
/// and origins unique, witness quorums possible, the cosign wait shorter
/// than the request timeout.
fn check_config(cfg: &ServeConfig) -> Result<(), ServeError> {
    if cfg.logs.is_empty() {
        return Err(ServeError::Setup(
            "no logs configured: add a [[log]] table".into(),
        ));
    }
    if cfg.read_only && cfg.etcd.is_some() {
        return Err(ServeError::Setup(
            "read_only and etcd do not go together: a read replica never writes, so it does not campaign to".into(),
        ));
    }
    if cfg.read_only || cfg.etcd.is_some() {
        let what = if cfg.read_only {
            "a read replica (read_only)"
        } else {
            "a server elected through etcd"
        };
        if let Some(l) = cfg.logs.iter().find(|l| l.object_store.is_none()) {
            return Err(ServeError::Setup(format!(
                "log {:?} is not in a bucket: {what} serves only logs in a bucket (store = \"s3://…\"); a local log cannot be shared",
                l.name.as_str()
            )));
        }
    }
    for (i, l) in cfg.logs.iter().enumerate() {
        for o in &cfg.logs[..i] {
            let clash = if o.name == l.name {
                Some("name")
            } else if o.origin == l.origin {
                Some("origin")
            } else if o.data_dir == l.data_dir {
                Some("data folder")
            } else {
                None
            };
            if let Some(what) = clash {
                return Err(ServeError::Setup(format!(
                    "logs {:?} and {:?} have the same {what}: each log needs its own name, origin and data folder",
                    o.name.as_str(),
                    l.name.as_str()
                )));
            }
        }
        if l.quota.is_some() && cfg.auth.is_none() {
            return Err(ServeError::Setup(format!(
                "log {:?}: append_rate needs a token file: without one there are no identities to apply it to",
                l.name.as_str()
            )));
        }
        if let Some(w) = &l.witnessing
            && !w.witnesses.is_empty()
        {
            if cfg.cosign_wait >= cfg.limits.request_timeout {
                return Err(ServeError::Setup(format!(
                    "the cosigned-append wait ({:?}) must be shorter than the gRPC request timeout ({:?})",
                    cfg.cosign_wait, cfg.limits.request_timeout
                )));
            }
            if w.quorum == 0 || w.quorum > w.witnesses.len() {
                return Err(ServeError::Setup(format!(
                    "log {:?}: witness quorum {} must be between 1 and the number of witnesses ({})",
                    l.name.as_str(),
                    w.quorum,
                    w.witnesses.len()
                )));
            }
        }
    }
    Ok(())
}

impl Server {
    /// Opens every log and binds both listeners (port 0 picks a free
    /// port). With one log, a log that cannot start stops the server; with
    /// several, it is reported (error log, `/healthz`, `GET /logs`,
    /// `cairn_log_halted`) and answers `UNAVAILABLE`, and the others serve.
    pub async fn bind(cfg: &ServeConfig) -> Result<Server, ServeError> {
        check_config(cfg)?;
        // A standby campaigns in the background; its logs follow the
        // bucket and serve reads until it is elected.
        let leadership = match &cfg.etcd {
            Some(e) => Some(crate::leader::campaign(e).await?),
            None => None,
        };
        let role = match (&leadership, cfg.read_only) {
            (Some(c), _) => Role::Standby(c.elected.clone(), cfg.follow_every),
            (None, true) => Role::ReadOnly(cfg.follow_every),
            (None, false) => Role::Writer,
        };
        let default = cfg
            .default_log()
            .map(|l| l.name.clone())
            .unwrap_or_else(LogName::default_log);
        let mut registry = Registry::new(default.clone());
        let mut witnessing = std::collections::HashMap::new();
        let mut tasks = Vec::new();
        let mut vkey = String::new();
        for l in &cfg.logs {
            let client = match &l.witnessing {
                Some(w) if !w.witnesses.is_empty() => {
                    let out = crate::outbound::Outbound::new(w.ca.as_deref())?;
                    for x in &w.witnesses {
                        out.check_url(&x.url, &format!("witness {:?}", x.name))?;
                    }
                    Some(out.http_client()?)
                }
                _ => None,
            };
            let hosted = match open_log(l, client.as_ref(), role.clone()).await {
                Ok((log, task, w)) => {
                    tasks.push(task);
                    if let Some(w) = w {
                        witnessing.insert(l.name.clone(), w);
                    }
                    if l.name == default {
                        vkey = log.vkey().to_owned();
                    }
                    Hosted::Running(log)
                }
                Err(e) if cfg.logs.len() > 1 => {
                    tracing::error!(
                        log = l.name.as_str(),
                        error = %e,
                        "the log could not start; it answers UNAVAILABLE while the other logs serve (docs/operations.md)"
                    );
                    Hosted::Failed {
                        origin: l.origin.clone(),
                        reason: "its store or key could not be opened (see the server log)".into(),
                    }
                }
                Err(e) => return Err(e),
            };
            registry
                .insert(l.name.clone(), hosted)
                .map_err(ServeError::Setup)?;
        }
        let quotas = cfg
            .logs
            .iter()
            .filter_map(|l| Some((l.name.clone(), l.quota?)))
            .collect();
        if !cfg.otlp_log.is_empty() && !cfg.logs.iter().any(|l| l.name.as_str() == cfg.otlp_log) {
            return Err(ServeError::Setup(format!(
                "otlp_log {:?} is not a configured log",
                cfg.otlp_log
            )));
        }
        let logs = Logs::new(registry, witnessing, cfg.cosign_wait)
            .with_quotas(quotas)
            .with_otlp_log(&cfg.otlp_log);
        let auth = cfg.auth.clone().map(|a| Arc::new(Authorizer::new(a)));
        if let Some(a) = &cfg.auth {
            for name in a.log_names() {
                if !cfg.logs.iter().any(|l| l.name.as_str() == name) {
                    tracing::warn!(
                        log = name,
                        "the token file names a log that is not configured"
                    );
                }
            }
        }
        let tls = crate::tls::ServerConfigs::new(cfg.tls.as_ref())?;
        for warning in exposure_warnings(cfg) {
            tracing::warn!("{warning}");
        }
        let grpc = TcpListener::bind(cfg.grpc_addr)
            .await
            .map_err(setup(&format!("gRPC address {}", cfg.grpc_addr)))?;
        let http = TcpListener::bind(cfg.http_addr)
            .await
            .map_err(setup(&format!("HTTP address {}", cfg.http_addr)))?;
        let mut otlp = Vec::new();
        for (what, addr) in [
            ("OTLP/gRPC", cfg.otlp_grpc_addr),
            ("OTLP/HTTP", cfg.otlp_http_addr),
        ] {
            otlp.push(match addr {
                None => None,
                Some(a) => Some(
                    TcpListener::bind(a)
                        .await
                        .map_err(setup(&format!("{what} address {a}")))?,
                ),
            });
        }
        let otlp_http = otlp.pop().flatten();
        let otlp_grpc = otlp.pop().flatten();
        Ok(Server {
            grpc,
            http,
            otlp_grpc,
            otlp_http,
            logs,
            tasks,
            auth,
            tls,
            limits: cfg.limits.clone(),
            vkey,
            leadership,
        })
    }

    /// Elected through etcd (`true`), still a standby (`false`); `None`
    /// without etcd.
    pub fn elected(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        self.leadership.as_ref().map(|c| c.elected.clone())
    }

    /// The logs served.
    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.local_addr().ok()
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.local_addr().ok()
    }

    /// The bound OTLP/gRPC and OTLP/HTTP addresses, when configured.
    pub fn otlp_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        (
            self.otlp_grpc.as_ref().and_then(|l| l.local_addr().ok()),
            self.otlp_http.as_ref().and_then(|l| l.local_addr().ok()),
        )
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets the
    /// sequencer finish the queued batch and answer its waiters, and returns.
    /// A leader elected through etcd also stops when its leadership is
    /// lost, and returns why as an error.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Some(leadership) = self.leadership.take() else {
            return self.serve(shutdown).await;
        };
        let mut lost = leadership.lost.clone();
        let stop = async move {
            tokio::select! {
                () = shutdown => {}
                _ = lost.wait_for(Option::is_some) => {}
            }
        };
        self.serve(stop).await?;
        match leadership.lost.borrow().clone() {
            Some(why) => Err(ServeError::Setup(format!(
                "lost leadership ({why}); stopped serving. The bucket's conditional writes fence this process anyway; restart it to stand by"
            ))),
            None => Ok(()),
        }
    }

    async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        // grpc.health.v1: SERVING for the log (and overall) while it runs.
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<crate::pb::log_server::LogServer<LogService>>()
            .await;
        // Per log, the service name `cairn.v1.Log/<name>`: NOT_SERVING
        // once it stops writing (a fatal store error; reads go on), or if
        // it could not start. The service as a whole (`cairn.v1.Log`)
        // turns NOT_SERVING when its default log does.
        for (name, hosted) in self.logs.registry.iter() {
            let service = format!("cairn.v1.Log/{name}");
            let is_default = name == self.logs.registry.default_name();
            let reporter = health_reporter.clone();
            match hosted {
                Hosted::Failed { .. } => {
                    reporter
                        .set_service_status(&service, tonic_health::ServingStatus::NotServing)
                        .await;
                    if is_default {
                        reporter
                            .set_not_serving::<crate::pb::log_server::LogServer<LogService>>()
                            .await;
                    }
                }
                Hosted::Running(l) => {
                    reporter
                        .set_service_status(&service, tonic_health::ServingStatus::Serving)
                        .await;
                    let mut halted = l.sequencer().halted();
                    tokio::spawn(async move {
                        if halted.wait_for(Option::is_some).await.is_ok() {
                            reporter
                                .set_service_status(
                                    &service,
                                    tonic_health::ServingStatus::NotServing,
                                )
                                .await;
                            if is_default {
                                reporter
                                    .set_not_serving::<crate::pb::log_server::LogServer<LogService>>()
                                    .await;
                            }
                        }
                    });
                }
            }
        }
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| ServeError::Setup(format!("gRPC reflection: {e}")))?;
        // One service (logs, credentials, quotas) behind every listener.
        let service = LogService::new(self.logs.clone(), self.auth.clone());
        let router = crate::listen::grpc_builder(&self.limits)
            .add_service(health)
            .add_service(reflection)
            .add_service(service.otlp())
            .add_service(service.clone().into_server());
        let (grpc_tls, http_tls) = self.tls.map(|t| (t.grpc, t.http)).unzip();
        let limits = self.limits;
        // OTLP's own listeners: only the OTLP service and route.
        let mut extra = Vec::new();
        if let Some(l) = self.otlp_grpc {
            let router = crate::listen::grpc_builder(&limits).add_service(service.otlp());
            let (tls, limits, stop) = (grpc_tls.clone(), limits.clone(), wait(stop_rx.clone()));
            extra.push(tokio::spawn(async move {
                serve_grpc(router, l, tls, &limits, stop).await
            }));
        }
        if let Some(l) = self.otlp_http {
            let router = crate::http::otlp_router(&service);
            let (tls, limits, stop) = (http_tls.clone(), limits.clone(), wait(stop_rx.clone()));
            extra.push(tokio::spawn(async move {
                serve_http(l, tls, router, &limits, stop).await;
                Ok(())
            }));
        }
        let grpc = serve_grpc(router, self.grpc, grpc_tls, &limits, wait(stop_rx.clone()));
        let router = crate::http::router_for(&service);
        let http = serve_http(self.http, http_tls, router, &limits, wait(stop_rx));
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let (g, ()) = tokio::join!(grpc, http);
        g?;
        for e in extra {
            e.await
                .map_err(|e| ServeError::Setup(format!("OTLP listener: {e}")))??;
        }
        // Both servers are down: each sequencer writes and answers what is
        // queued, then ends.
        for l in self.logs.registry.running() {
            l.sequencer().close().await;
        }
        drop(self.logs);
        for t in self.tasks {
            let _ = t.await;
        }
        Ok(())
    }
}
