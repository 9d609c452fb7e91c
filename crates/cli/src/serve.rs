//! `cairn serve` and `cairn keygen`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cairn_server::{LogConfig, SequencerConfig, ServeConfig, Server};
use clap::Args;

/// Flags override `CAIRN_*` environment variables, which override the
/// config file (`--config`), which overrides the embedded defaults.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// TOML config file with any of the settings below (same names, with
    /// `_` for `-`), e.g. `origin = "audit.example.com/log"`.
    #[arg(long, env = "CAIRN_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder (RocksDB, `log.key`, `log.vkey`); created if missing.
    /// [default: ./cairn-data]
    #[arg(long, env = "CAIRN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// gRPC listen address. [default: 127.0.0.1:7400]
    #[arg(long, env = "CAIRN_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// HTTP (C2SP tlog-tiles, /metrics, /healthz) listen address.
    /// [default: 127.0.0.1:7480]
    #[arg(long, env = "CAIRN_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// The log's origin: the checkpoint origin line and the key name.
    /// [default: localhost/cairn]
    #[arg(long, env = "CAIRN_ORIGIN")]
    origin: Option<String>,
    /// Masking policy (TOML). [default: the built-in policy]
    #[arg(long, env = "CAIRN_POLICY")]
    policy: Option<PathBuf>,
    /// Token key file for `token` masks.
    #[arg(long, env = "CAIRN_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Subject key store for `encrypt` masks: a folder of its own, never
    /// inside the data folder (docs/design/erasure.md).
    #[arg(long, env = "CAIRN_SUBJECT_KEYS")]
    subject_keys: Option<PathBuf>,
    /// Key-encryption key file (base64 of 32 bytes, mode 0600) for the
    /// subject key store. [default: the CAIRN_KEK variable]
    #[arg(long, env = "CAIRN_KEK_FILE")]
    kek_file: Option<PathBuf>,
    /// Largest batch, in entries. [default: 16384]
    #[arg(long, env = "CAIRN_MAX_BATCH")]
    max_batch: Option<usize>,
    /// Longest a batch stays open, in milliseconds. [default: 2]
    #[arg(long, env = "CAIRN_MAX_BATCH_AGE_MS")]
    max_batch_age_ms: Option<u64>,
    /// The fork-guard file: keep it on storage that a restore of the data
    /// folder does not roll back. [default: <data-dir>.guard]
    #[arg(long, env = "CAIRN_GUARD_FILE")]
    guard_file: Option<PathBuf>,
    /// Keep the log in an S3-compatible bucket: `s3://bucket/prefix`
    /// (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). The
    /// data folder then holds only the signing key and the freeze marker.
    /// [default: RocksDB in the data folder]
    #[arg(long, env = "CAIRN_STORE", value_name = "URL")]
    store: Option<String>,
    /// The S3 endpoint for --store (e.g. http://127.0.0.1:7780 for a
    /// local Ceph RGW). [default: AWS, or AWS_ENDPOINT]
    #[arg(long, env = "CAIRN_S3_ENDPOINT", value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The S3 region for --store. [default: AWS_REGION, or us-east-1]
    #[arg(long, env = "CAIRN_S3_REGION")]
    s3_region: Option<String>,
    /// etcd client URL(s), comma-separated: elect one writer among the
    /// `cairn serve` processes sharing these logs in a bucket; the others
    /// wait as standbys and take over when its lease lapses.
    #[arg(long, env = "CAIRN_ETCD", value_name = "URLS")]
    etcd: Option<String>,
    /// The etcd election's name. [default: cairn/<the first log's store URL>]
    #[arg(long, env = "CAIRN_ETCD_ELECTION")]
    etcd_election: Option<String>,
    /// The etcd lease's TTL, in seconds: a dead leader is replaced after
    /// about this long. [default: 5]
    #[arg(long, env = "CAIRN_ETCD_LEASE_TTL")]
    etcd_lease_ttl: Option<i64>,
    /// Serve logs in a bucket as a read replica: follow what their writer
    /// commits and serve checkpoints, proofs, entries and tiles; never
    /// write (appends get FAILED_PRECONDITION). Needs each log's verifier
    /// key (--verifier-key, `verifier_key`, or log.vkey in the data folder).
    #[arg(long, env = "CAIRN_READ_ONLY")]
    read_only: bool,
    /// The log's verifier key (the line in the writer's log.vkey), for a
    /// read replica without the signing key.
    #[arg(long, env = "CAIRN_VERIFIER_KEY", value_name = "VKEY")]
    verifier_key: Option<String>,
    /// How often a standby or read replica reads the bucket for new
    /// batches, in milliseconds. [default: 500]
    #[arg(long, env = "CAIRN_FOLLOW_INTERVAL_MS")]
    follow_interval_ms: Option<u64>,
    /// Recreate a missing fork guard from the store's latest checkpoint.
    /// Only once, and only after checking that the store is the log's
    /// latest state: a restored backup without its guard looks the same.
    #[arg(long, env = "CAIRN_REBUILD_GUARD")]
    rebuild_guard: bool,
    /// Appends waiting to be written, in MiB of masked entries; beyond
    /// it unary appends get RESOURCE_EXHAUSTED and streams wait.
    /// [default: 128]
    #[arg(long, env = "CAIRN_QUEUE_MB")]
    queue_mb: Option<usize>,
    /// Proof tile cache in MiB (~16 KiB per expanded tile; random proofs
    /// over n entries touch n/256 level-0 tiles). [default: 128]
    #[arg(long, env = "CAIRN_TILE_CACHE_MB")]
    tile_cache_mb: Option<usize>,
    /// Token file (TOML, SHA-256 hashes of bearer tokens with scopes; see
    /// `cairn token new`). Without it the log is open to every client.
    #[arg(long, env = "CAIRN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// With a token file: reads (checkpoints, proofs, entries, tiles) need
    /// a token with the `read` scope too. [default: reads are public]
    #[arg(long, env = "CAIRN_PRIVATE_READS")]
    private_reads: bool,
    /// With a token file: appends per second per identity. [default: unlimited]
    #[arg(long, env = "CAIRN_APPEND_RATE")]
    append_rate: Option<f64>,
    /// With a token file: concurrent append streams per identity.
    /// [default: unlimited]
    #[arg(long, env = "CAIRN_MAX_STREAMS")]
    max_streams: Option<usize>,
    /// TLS certificate chain (PEM) for the gRPC and HTTP listeners.
    #[arg(long, env = "CAIRN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM; mode 0600).
    #[arg(long, env = "CAIRN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Client CA (PEM): require client certificates it signed (mTLS).
    #[arg(long, env = "CAIRN_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// CA certificates (PEM) that verify `https://` witness URLs.
    #[arg(long, env = "CAIRN_WITNESS_CA")]
    witness_ca: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Timeouts and caps of the listeners (`cairn serve` and `cairn witness`):
/// flags, `CAIRN_*` variables, or a `[limits]` table in the config file.
#[derive(Args, serde::Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitArgs {
    /// Open connections per listener; beyond it new connections wait.
    /// [default: 1024]
    #[arg(long, env = "CAIRN_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// HTTP: milliseconds a client may take to send a request's headers
    /// (and an idle keep-alive connection stays open). [default: 10000]
    #[arg(long, env = "CAIRN_HEADER_TIMEOUT_MS")]
    header_timeout_ms: Option<u64>,
    /// gRPC: milliseconds a call may run before its response starts.
    /// [default: 60000]
    #[arg(long, env = "CAIRN_REQUEST_TIMEOUT_MS")]
    request_timeout_ms: Option<u64>,
    /// gRPC: concurrent streams per connection. [default: 256]
    #[arg(long, env = "CAIRN_MAX_CONCURRENT_STREAMS")]
    max_concurrent_streams: Option<u32>,
    /// gRPC: HTTP/2 keep-alive ping interval, ms. [default: 30000]
    #[arg(long, env = "CAIRN_KEEPALIVE_MS")]
    keepalive_ms: Option<u64>,
}

impl LimitArgs {
    /// Flags (and environment) over the file's `[limits]` over the defaults.
    pub(crate) fn resolve(self, file: Option<LimitArgs>) -> Result<cairn_server::listen::Limits> {
        let f = file.unwrap_or_default();
        let d = cairn_server::listen::Limits::default();
        let ms = |a: Option<u64>, b: Option<u64>, d: Duration, what: &str| -> Result<Duration> {
            match a.or(b) {
                None => Ok(d),
                Some(0) => bail!("{what} must be at least 1 ms"),
                Some(v) => Ok(Duration::from_millis(v)),
            }
        };
        let l = cairn_server::listen::Limits {
            max_connections: self
                .max_connections
                .or(f.max_connections)
                .unwrap_or(d.max_connections),
            header_timeout: ms(
                self.header_timeout_ms,
                f.header_timeout_ms,
                d.header_timeout,
                "header_timeout_ms",
            )?,
            request_timeout: ms(
                self.request_timeout_ms,
                f.request_timeout_ms,
                d.request_timeout,
                "request_timeout_ms",
            )?,
            max_concurrent_streams: self
                .max_concurrent_streams
                .or(f.max_concurrent_streams)
                .unwrap_or(d.max_concurrent_streams),
            keepalive: ms(
                self.keepalive_ms,
                f.keepalive_ms,
                d.keepalive,
                "keepalive_ms",
            )?,
        };
        if l.max_connections == 0 || l.max_concurrent_streams == 0 {
            bail!("max_connections and max_concurrent_streams must be at least 1");
        }
        Ok(l)
    }
}

/// A `[[witness]]` entry of the config file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWitness {
    /// A label for logs and metrics.
    name: String,
    /// The witness's cosignature verifier key (type 0x04).
    vkey: String,
    /// Its tlog-witness submission prefix, e.g. `http://w1.example:7380`.
    url: String,
}

/// A time in the config file: a TOML date-time or an RFC 3339 string.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum FileTime {
    Toml(toml::value::Datetime),
    Text(String),
}

impl FileTime {
    fn resolve(&self, what: &str) -> Result<std::time::SystemTime> {
        let text = match self {
            FileTime::Toml(d) => d.to_string(),
            FileTime::Text(s) => s.clone(),
        };
        let t = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{what}: {text:?} is not an RFC 3339 time with an offset (e.g. 2027-01-01T00:00:00Z): {e}"
                )
            })?;
        Ok(t.into())
    }
}

/// A `[[log]]` table: one log of a server that hosts several. Batching
/// and cache settings left out take the top-level value.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    name: String,
    origin: String,
    data_dir: PathBuf,
    policy: Option<PathBuf>,
    key_file: Option<PathBuf>,
    subject_keys: Option<PathBuf>,
    kek_file: Option<PathBuf>,
    signing_key: Option<PathBuf>,
    verifier_key: Option<String>,
    guard_file: Option<PathBuf>,
    store: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    max_batch: Option<usize>,
    max_batch_age_ms: Option<u64>,
    queue_mb: Option<usize>,
    tile_cache_mb: Option<usize>,
    #[serde(default)]
    witness: Vec<FileWitness>,
    witness_quorum: Option<usize>,
    #[serde(default)]
    frozen: bool,
    not_after: Option<FileTime>,
    append_rate: Option<f64>,
    append_burst: Option<f64>,
}

/// The config file: every setting optional.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    log: Vec<FileLog>,
    otlp_log: Option<String>,
    otlp_grpc_addr: Option<SocketAddr>,
    otlp_http_addr: Option<SocketAddr>,
    #[serde(default)]
    witness: Vec<FileWitness>,
    witness_quorum: Option<usize>,
    witness_interval_ms: Option<u64>,
    witness_timeout_ms: Option<u64>,
    witness_ca: Option<PathBuf>,
    cosign_wait_ms: Option<u64>,
    data_dir: Option<PathBuf>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    origin: Option<String>,
    policy: Option<PathBuf>,
    key_file: Option<PathBuf>,
    subject_keys: Option<PathBuf>,
    kek_file: Option<PathBuf>,
    signing_key: Option<PathBuf>,
    max_batch: Option<usize>,
    max_batch_age_ms: Option<u64>,
    guard_file: Option<PathBuf>,
    store: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    etcd: Option<String>,
    etcd_election: Option<String>,
    etcd_lease_ttl: Option<i64>,
    read_only: Option<bool>,
    verifier_key: Option<String>,
    follow_interval_ms: Option<u64>,
    queue_mb: Option<usize>,
    tile_cache_mb: Option<usize>,
    token_file: Option<PathBuf>,
    private_reads: Option<bool>,
    append_rate: Option<f64>,
    append_burst: Option<f64>,
    max_streams: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    limits: Option<LimitArgs>,
}

/// The object store a log is kept in, from `store` (`s3://bucket/prefix`)
/// and the S3 settings; `None` without `store` (RocksDB).
fn object_store(
    store: Option<&String>,
    endpoint: Option<&String>,
    region: Option<&String>,
) -> Result<Option<cairn_server::ObjectStoreConfig>> {
    // The S3 settings alone mean nothing (they may be set for the whole
    // server, or in the environment, for the logs that use a bucket).
    let Some(url) = store else {
        return Ok(None);
    };
    let location =
        cairn_storage_s3::S3Location::parse(url).map_err(|e| anyhow::anyhow!("store: {e}"))?;
    Ok(Some(cairn_server::ObjectStoreConfig {
        location,
        options: cairn_storage_s3::S3Options {
            endpoint: endpoint.cloned(),
            region: region.cloned(),
            credentials: None,
        },
    }))
}

/// Reads a TOML config file; errors name the file and line.
pub(crate) fn load_toml<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let start = e.span().map_or(0, |s| s.start.min(text.len()));
        let line = text[..start].matches('\n').count() + 1;
        // Name the key on that line when there is one.
        let key = text
            .lines()
            .nth(line - 1)
            .and_then(|l| l.split_once('='))
            .map(|(k, _)| k.trim())
            .filter(|k| !k.is_empty() && !k.starts_with('#') && !k.starts_with('['));
        match key {
            Some(k) => anyhow::anyhow!("{}:{line}: key `{k}`: {}", path.display(), e.message()),
            None => anyhow::anyhow!("{}:{line}: {}", path.display(), e.message()),
        }
    })
}

pub(crate) fn serve(args: ServeArgs) -> Result<ExitCode> {
    let cfg = serve_config(args)?;
    run_server(cfg)
}

/// Flags over environment over the config file over the defaults,
/// validated into a [`ServeConfig`] (every referenced file is read).
pub(crate) fn serve_config(args: ServeArgs) -> Result<ServeConfig> {
    let file = match &args.config {
        Some(p) => load_toml(p)?,
        None => FileConfig::default(),
    };
    let witness_ca = args.witness_ca.clone().or(file.witness_ca.clone());
    let witnessing = |list: &[FileWitness],
                      quorum: Option<usize>|
     -> Result<Option<cairn_server::witnessing::WitnessingConfig>> {
        let mut witnesses = Vec::new();
        for w in list {
            let vkey = cairn_core::NoteVerifier::parse(&w.vkey)
                .map_err(|e| anyhow::anyhow!("witness {:?}: vkey: {e}", w.name))?;
            if vkey.key_type() != cairn_core::KeyType::Cosignature {
                bail!(
                    "witness {:?}: vkey must be a cosignature key (type 0x04)",
                    w.name
                );
            }
            witnesses.push(cairn_server::witnessing::WitnessEndpoint {
                name: w.name.clone(),
                vkey,
                url: w.url.clone(),
            });
        }
        Ok(
            (!witnesses.is_empty()).then(|| cairn_server::witnessing::WitnessingConfig {
                quorum: quorum.unwrap_or(witnesses.len()),
                witnesses,
                interval: Duration::from_millis(file.witness_interval_ms.unwrap_or(1000)),
                timeout: Duration::from_millis(file.witness_timeout_ms.unwrap_or(10_000)),
                ca: witness_ca.clone(),
            }),
        )
    };
    let d = ServeConfig::default();
    let dl = LogConfig::default();
    // Batching and cache: the log's own value, else flags, environment
    // and the top level, else the default.
    let sequencer = |max_batch: Option<usize>,
                     age: Option<u64>,
                     queue_mb: Option<usize>|
     -> Result<SequencerConfig> {
        let max_batch = max_batch
            .or(args.max_batch)
            .or(file.max_batch)
            .unwrap_or(dl.sequencer.max_batch);
        if max_batch == 0 {
            bail!("max_batch must be at least 1");
        }
        Ok(SequencerConfig {
            max_batch,
            max_age: age
                .or(args.max_batch_age_ms)
                .or(file.max_batch_age_ms)
                .map_or(dl.sequencer.max_age, Duration::from_millis),
            queue_bytes: match queue_mb.or(args.queue_mb).or(file.queue_mb) {
                None => dl.sequencer.queue_bytes,
                Some(0) => bail!("queue_mb must be at least 1"),
                Some(mb) => mb.saturating_mul(1 << 20),
            },
            ..dl.sequencer.clone()
        })
    };
    let tile_cache_mb = |own: Option<usize>| {
        own.or(args.tile_cache_mb)
            .or(file.tile_cache_mb)
            .unwrap_or(dl.tile_cache_mb)
    };
    let logs = if file.log.is_empty() {
        // One log: the top-level settings (the embedded default: `default`
        // in ./cairn-data).
        vec![LogConfig {
            name: dl.name.clone(),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir.clone())
                .unwrap_or(dl.data_dir.clone()),
            origin: args
                .origin
                .clone()
                .or(file.origin.clone())
                .unwrap_or(dl.origin.clone()),
            policy: args.policy.clone().or(file.policy.clone()),
            key_file: args.key_file.clone().or(file.key_file.clone()),
            signing_key: file.signing_key.clone(),
            sequencer: sequencer(None, None, None)?,
            witnessing: witnessing(&file.witness, file.witness_quorum)?,
            tile_cache_mb: tile_cache_mb(None),
            guard_file: args.guard_file.clone().or(file.guard_file.clone()),
            rebuild_guard: args.rebuild_guard,
            frozen: false,
            not_after: None,
            quota: None,
            subject_keys: args.subject_keys.clone().or(file.subject_keys.clone()),
            kek_file: args.kek_file.clone().or(file.kek_file.clone()),
            object_store: object_store(
                args.store.as_ref().or(file.store.as_ref()),
                args.s3_endpoint.as_ref().or(file.s3_endpoint.as_ref()),
                args.s3_region.as_ref().or(file.s3_region.as_ref()),
            )?,
            verifier_key: args.verifier_key.clone().or(file.verifier_key.clone()),
        }]
    } else {
        // Several logs: what names one log cannot be said once for all.
        let single = [
            (
                "data_dir",
                args.data_dir.is_some() || file.data_dir.is_some(),
            ),
            ("origin", args.origin.is_some() || file.origin.is_some()),
            ("policy", args.policy.is_some() || file.policy.is_some()),
            (
                "key_file",
                args.key_file.is_some() || file.key_file.is_some(),
            ),
            ("signing_key", file.signing_key.is_some()),
            (
                "verifier_key",
                args.verifier_key.is_some() || file.verifier_key.is_some(),
            ),
            (
                "subject_keys",
                args.subject_keys.is_some() || file.subject_keys.is_some(),
            ),
            (
                "kek_file",
                args.kek_file.is_some() || file.kek_file.is_some(),
            ),
            (
                "guard_file",
                args.guard_file.is_some() || file.guard_file.is_some(),
            ),
            (
                "witness",
                !file.witness.is_empty() || file.witness_quorum.is_some(),
            ),
            ("rebuild_guard", args.rebuild_guard),
            ("store", args.store.is_some() || file.store.is_some()),
        ];
        if let Some((k, _)) = single.iter().find(|(_, set)| *set) {
            bail!(
                "`{k}` is set for the whole server, but the config has [[log]] tables: set it in each [[log]] table instead"
            );
        }
        let mut logs = Vec::new();
        for l in &file.log {
            let name =
                cairn_log::LogName::new(&l.name).map_err(|e| anyhow::anyhow!("[[log]]: {e}"))?;
            let what = format!("[[log]] {:?}", l.name);
            logs.push(LogConfig {
                name,
                data_dir: l.data_dir.clone(),
                origin: l.origin.clone(),
                policy: l.policy.clone(),
                key_file: l.key_file.clone(),
                subject_keys: l.subject_keys.clone(),
                kek_file: l.kek_file.clone(),
                signing_key: l.signing_key.clone(),
                verifier_key: l.verifier_key.clone(),
                sequencer: sequencer(l.max_batch, l.max_batch_age_ms, l.queue_mb)
                    .with_context(|| what.clone())?,
                witnessing: witnessing(&l.witness, l.witness_quorum)
                    .with_context(|| what.clone())?,
                tile_cache_mb: tile_cache_mb(l.tile_cache_mb),
                guard_file: l.guard_file.clone(),
                object_store: object_store(
                    l.store.as_ref(),
                    l.s3_endpoint
                        .as_ref()
                        .or(args.s3_endpoint.as_ref())
                        .or(file.s3_endpoint.as_ref()),
                    l.s3_region
                        .as_ref()
                        .or(args.s3_region.as_ref())
                        .or(file.s3_region.as_ref()),
                )
                .with_context(|| what.clone())?,
                rebuild_guard: false,
                frozen: l.frozen,
                not_after: l
                    .not_after
                    .as_ref()
                    .map(|t| t.resolve(&format!("{what}: not_after")))
                    .transpose()?,
                quota: match (l.append_rate, l.append_burst) {
                    (None, None) => None,
                    (None, Some(_)) => bail!("{what}: append_burst needs append_rate"),
                    (Some(r), _) if !(r > 0.0 && r.is_finite()) => {
                        bail!("{what}: append_rate must be positive")
                    }
                    (Some(rate), burst) => Some(cairn_server::auth::Quota {
                        rate,
                        burst: burst.unwrap_or(rate.max(1.0)),
                    }),
                },
            });
        }
        logs
    };
    let auth = match args.token_file.clone().or(file.token_file.clone()) {
        None => {
            // Quotas and private reads belong to identities: without a
            // token file there are none, and the settings would do nothing.
            let set = [
                (
                    "private_reads",
                    args.private_reads || file.private_reads == Some(true),
                ),
                (
                    "append_rate",
                    args.append_rate.or(file.append_rate).is_some(),
                ),
                ("append_burst", file.append_burst.is_some()),
                (
                    "max_streams",
                    args.max_streams.or(file.max_streams).is_some_and(|n| n > 0),
                ),
            ];
            if let Some((name, _)) = set.iter().find(|(_, on)| *on) {
                bail!(
                    "{name} needs a token file (token_file, --token-file or CAIRN_TOKEN_FILE): without one there are no identities to apply it to"
                );
            }
            None
        }
        Some(p) => {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            let mut a = cairn_server::auth::AuthConfig::from_toml(&p.display().to_string(), &text)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            a.public_reads = !(args.private_reads || file.private_reads.unwrap_or(false));
            a.rate = args.append_rate.or(file.append_rate);
            if a.rate.is_some_and(|r| r <= 0.0) {
                bail!("append_rate must be positive");
            }
            a.burst = file
                .append_burst
                .unwrap_or_else(|| a.rate.map_or(1.0, |r| r.max(1.0)));
            a.max_streams = args.max_streams.or(file.max_streams).unwrap_or(0);
            Some(a)
        }
    };
    let tls = tls_files(
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
        args.tls_client_ca.or(file.tls_client_ca),
    )?;
    if let Some(o) = &file.otlp_log
        && !logs.iter().any(|l| l.name.as_str() == o)
    {
        bail!("otlp_log {o:?} is not a configured log");
    }
    let cfg = ServeConfig {
        logs,
        limits: args.limits.resolve(file.limits)?,
        tls,
        auth,
        cosign_wait: file
            .cosign_wait_ms
            .map_or(d.cosign_wait, Duration::from_millis),
        grpc_addr: args.grpc_addr.or(file.grpc_addr).unwrap_or(d.grpc_addr),
        http_addr: args.http_addr.or(file.http_addr).unwrap_or(d.http_addr),
        otlp_log: file.otlp_log.unwrap_or_default(),
        otlp_grpc_addr: file.otlp_grpc_addr,
        otlp_http_addr: file.otlp_http_addr,
        etcd: None,
        read_only: args.read_only || file.read_only.unwrap_or(false),
        follow_every: match args.follow_interval_ms.or(file.follow_interval_ms) {
            None => d.follow_every,
            Some(ms) if (10..=60_000).contains(&ms) => Duration::from_millis(ms),
            Some(ms) => bail!("follow_interval_ms is {ms}; it must be 10..=60000"),
        },
    };
    let etcd = args.etcd.or(file.etcd);
    let cfg = ServeConfig {
        etcd: match etcd {
            None => None,
            Some(urls) => {
                let ttl = args.etcd_lease_ttl.or(file.etcd_lease_ttl).unwrap_or(5);
                if !(1..=3600).contains(&ttl) {
                    bail!("etcd_lease_ttl must be 1..=3600 seconds");
                }
                let first = cfg.logs.iter().find_map(|l| l.object_store.as_ref());
                let Some(first) = first else {
                    bail!(
                        "`etcd` elects a writer for logs in a bucket, but no log has `store = \"s3://…\"`"
                    );
                };
                Some(cairn_server::leader::EtcdConfig {
                    endpoints: urls.split(',').map(|u| u.trim().to_owned()).collect(),
                    election: args
                        .etcd_election
                        .or(file.etcd_election)
                        .unwrap_or_else(|| {
                            format!(
                                "cairn/s3://{}/{}",
                                first.location.bucket, first.location.prefix
                            )
                        }),
                    ttl_s: ttl,
                })
            }
        },
        ..cfg
    };
    Ok(cfg)
}

/// The TLS files of `serve` or `witness` (flag, environment or file,
/// already merged): a certificate and key go together.
pub(crate) fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
) -> Result<Option<cairn_server::TlsFiles>> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(cairn_server::TlsFiles {
            cert,
            key,
            client_ca,
        })),
        (None, None) => Ok(None),
        _ => bail!("tls_cert and tls_key go together"),
    }
}

/// For the start-up line: the HTTP scheme and the gRPC note.
pub(crate) fn schemes(tls: bool) -> (&'static str, &'static str) {
    if tls {
        ("https", " (TLS)")
    } else {
        ("http", "")
    }
}

fn run_server(cfg: ServeConfig) -> Result<ExitCode> {
    let rt = crate::client::runtime()?;
    rt.block_on(async move {
        let server = Server::bind(&cfg).await?;
        if let (Some(e), Some(mut elected)) = (&cfg.etcd, server.elected()) {
            let (name, at, ttl) = (e.election.clone(), e.endpoints.join(","), e.ttl_s);
            if !*elected.borrow() {
                eprintln!(
                    "cairn: standby: serving reads, following the bucket; waiting for leadership of {name:?} (etcd {at}, lease {ttl} s)"
                );
            }
            tokio::spawn(async move {
                if elected.wait_for(|v| *v).await.is_ok() {
                    eprintln!("cairn: elected: this process writes {name:?}");
                }
            });
        }
        if cfg.read_only {
            eprintln!("cairn: read replica: following the bucket, serving reads; appends are refused");
        }
        let default = cfg.default_log().map(|l| l.name.clone());
        for l in &cfg.logs {
            let hosted = server.logs().registry.get(l.name.as_str());
            let state = match hosted {
                Ok(log) if log.frozen().is_some() => {
                    format!("frozen at size {}", log.latest().size)
                }
                Ok(log) if log.role() != "writer" => {
                    format!("size {}, {}", log.latest().size, log.role())
                }
                Ok(log) => format!("size {}", log.latest().size),
                Err(_) => "NOT SERVING (see the error above)".into(),
            };
            let mark = if Some(&l.name) == default.as_ref() && cfg.logs.len() > 1 {
                " (default)"
            } else {
                ""
            };
            let place = match &l.object_store {
                Some(o) => format!(
                    "s3://{}/{} (key in {})",
                    o.location.bucket,
                    o.location.prefix,
                    l.data_dir.display()
                ),
                None => l.data_dir.display().to_string(),
            };
            eprintln!(
                "cairn: log {:?}{mark}: {:?} in {place}, {state}",
                l.name.as_str(),
                l.origin,
            );
        }
        eprintln!("cairn: verifier key {}", server.vkey);
        if let (Some(g), Some(h)) = (server.grpc_addr(), server.http_addr()) {
            let (http, tls) = schemes(cfg.tls.is_some());
            eprintln!("cairn: gRPC on {g}{tls}, HTTP (tlog-tiles) on {http}://{h}/checkpoint");
            if cfg.logs.len() > 1 {
                eprintln!(
                    "cairn: logs listed at {http}://{h}/logs, each under {http}://{h}/logs/<name>/"
                );
            }
            match server.otlp_addrs() {
                (None, None) => {
                    eprintln!("cairn: OTLP logs on the gRPC listener and at {http}://{h}/v1/logs")
                }
                (g, hh) => eprintln!(
                    "cairn: OTLP logs also on {}{}",
                    g.map_or(String::new(), |a| format!("gRPC {a} ")),
                    hh.map_or(String::new(), |a| format!("{http}://{a}/v1/logs"))
                ),
            }
        }
        server.run(shutdown_signal()).await?;
        eprintln!("cairn: stopped cleanly");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    eprintln!("cairn: shutting down");
}

#[derive(Args)]
pub(crate) struct ConfigCheckArgs {
    /// The config file.
    file: PathBuf,
    /// Check it as a `cairn witness` config instead of a `cairn serve` one.
    #[arg(long)]
    witness: bool,
}

/// `cairn config check`: parses and validates a config file as `serve`
/// (or `witness`) would, without starting anything. Errors name the file,
/// the line and the key; exit 2 on any error.
pub(crate) fn config_check(args: ConfigCheckArgs) -> Result<ExitCode> {
    if args.witness {
        crate::witness::witness_config(&args.file)?;
    } else {
        let mut sa = <ServeArgs as clap::FromArgMatches>::from_arg_matches(
            &<ServeArgs as clap::Args>::augment_args(clap::Command::new("check"))
                .get_matches_from(["check"]),
        )?;
        sa.config = Some(args.file.clone());
        let cfg = serve_config(sa)?;
        // What `serve` would warn about at start, said now.
        for w in cairn_server::exposure_warnings(&cfg) {
            eprintln!("cairn: warning: {w}");
        }
    }
    println!("{}: ok", args.file.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct TokenNewArgs {
    /// The identity (appears in logs and quotas).
    #[arg(long)]
    name: String,
    /// Comma-separated scopes: append, read, admin.
    #[arg(long, value_delimiter = ',', default_value = "append")]
    scopes: Vec<String>,
    /// Comma-separated logs the token may use. [default: every log]
    #[arg(long, value_delimiter = ',')]
    logs: Vec<String>,
}

/// `cairn token new`: a fresh random token, and the entry (holding only its
/// hash) to add to the token file.
pub(crate) fn token_new(args: TokenNewArgs) -> Result<ExitCode> {
    for s in &args.scopes {
        if !matches!(s.as_str(), "append" | "read" | "admin" | "reveal") {
            bail!("unknown scope {s:?} (append, read, admin, reveal)");
        }
    }
    for l in &args.logs {
        cairn_log::LogName::new(l).map_err(|e| anyhow::anyhow!("--logs: {e}"))?;
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
    let token: String = format!(
        "cairn_{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let scopes: Vec<String> = args.scopes.iter().map(|s| format!("{s:?}")).collect();
    eprintln!("cairn token: give this token to the client; it is shown once and stored nowhere:");
    println!("{token}");
    eprintln!("cairn token: add this entry to the token file:");
    let logs = if args.logs.is_empty() {
        String::new()
    } else {
        let l: Vec<String> = args.logs.iter().map(|s| format!("{s:?}")).collect();
        format!("logs = [{}]\n", l.join(", "))
    };
    eprintln!(
        "\n[[token]]\nname = {:?}\nsha256 = \"{}\"\nscopes = [{}]\n{logs}",
        args.name,
        cairn_server::auth::token_hash_hex(&token),
        scopes.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// The log's origin (the key name).
    #[arg(long)]
    origin: String,
    /// Where to write the private key (mode 0600; never overwritten).
    #[arg(long, default_value = "log.key")]
    out: PathBuf,
    /// A witness cosigning key (type 0x04, for `cairn witness`'s
    /// `witness.key`) instead of a log signing key; --origin is then the
    /// witness's name.
    #[arg(long)]
    witness: bool,
}

pub(crate) fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
    let (private, public) = if args.witness {
        let c = cairn_core::Cosigner::from_seed(&args.origin, &seed)
            .map_err(|e| anyhow::anyhow!("name {:?}: {e}", args.origin))?;
        (c.to_private_key_string(), c.verifier().to_string())
    } else {
        let s = cairn_core::NoteSigner::from_seed(&args.origin, &seed)
            .map_err(|e| anyhow::anyhow!("origin {:?}: {e}", args.origin))?;
        (s.to_private_key_string(), s.verifier().to_string())
    };
    crate::tlsgen::create(&args.out, &format!("{private}\n"), 0o600)?;
    println!("{public}");
    Ok(ExitCode::SUCCESS)
}

/// `cairn new-kek`.
#[derive(clap::Args)]
pub(crate) struct NewKekArgs {
    /// The file to create (refused if it exists).
    #[arg(long)]
    out: PathBuf,
}

/// `cairn new-kek`: a fresh random KEK in a new file, mode 0600.
pub(crate) fn new_kek(args: NewKekArgs) -> Result<ExitCode> {
    let kek = cairn_subjects::LocalKek::generate_base64()?;
    let text = zeroize::Zeroizing::new(format!("{}\n", kek.as_str()));
    crate::tlsgen::create(&args.out, &text, 0o600)?;
    eprintln!(
        "cairn new-kek: wrote {}; keep a copy apart from the subject key store (docs/design/erasure.md)",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `cairn rewrap-keys`.
#[derive(clap::Args)]
pub(crate) struct RewrapArgs {
    /// The subject key store to rotate (left as it is).
    #[arg(long)]
    subject_keys: PathBuf,
    /// Its current key-encryption key.
    #[arg(long)]
    kek_file: PathBuf,
    /// The new key-encryption key (`cairn new-kek`).
    #[arg(long)]
    new_kek_file: PathBuf,
    /// The new folder to write (refused if it exists).
    #[arg(long)]
    out: PathBuf,
}

/// `cairn rewrap-keys`: KEK rotation, with the server stopped.
pub(crate) fn rewrap_keys(args: RewrapArgs) -> Result<ExitCode> {
    let old = cairn_subjects::LocalKek::from_file(&args.kek_file)?;
    let new = cairn_subjects::LocalKek::from_file(&args.new_kek_file)?;
    let n = cairn_subjects::rewrap(&args.subject_keys, &old, &args.out, &new)?;
    eprintln!(
        "cairn rewrap-keys: {n} subject keys rewrapped into {}; point subject_keys and kek_file at it and the new KEK, start the server, then delete {}",
        args.out.display(),
        args.subject_keys.display()
    );
    Ok(ExitCode::SUCCESS)
}
