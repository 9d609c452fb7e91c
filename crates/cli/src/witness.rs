//! `cairn witness`: run a C2SP tlog-witness with gossip.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use cairn_core::{KeyType, NoteVerifier};
use cairn_server::witness::{Peer, WitnessConfig, WitnessServer, WitnessedLog};
use clap::Args;

use crate::serve::{load_toml, shutdown_signal};

/// Flags override `CAIRN_WITNESS_*` environment variables, which override
/// the config file, which overrides the embedded defaults.
#[derive(Args)]
pub(crate) struct WitnessArgs {
    /// TOML config file: the settings below plus `[[log]]` (vkey, url) and
    /// `[[peer]]` (name, vkey, url) tables. See docs/design/witnessing.md.
    #[arg(long, env = "CAIRN_WITNESS_CONFIG")]
    config: Option<PathBuf>,
    /// State folder (`witness.key`, `witness.vkey`, `witness-state.json`,
    /// `evidence.jsonl`); created if missing. [default: ./cairn-witness]
    #[arg(long, env = "CAIRN_WITNESS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The witness's key name. [default: localhost/cairn-witness]
    #[arg(long, env = "CAIRN_WITNESS_NAME")]
    name: Option<String>,
    /// HTTP listen address (`POST /add-checkpoint`). [default: 127.0.0.1:7380]
    #[arg(long, env = "CAIRN_WITNESS_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// gRPC listen address (`cairn.v1.Witness`). [default: 127.0.0.1:7381]
    #[arg(long, env = "CAIRN_WITNESS_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// Time between gossip rounds, in milliseconds. [default: 5000]
    #[arg(long, env = "CAIRN_WITNESS_GOSSIP_INTERVAL_MS")]
    gossip_interval_ms: Option<u64>,
    /// A log to witness: `VKEY` or `VKEY@GRPC_URL` (the URL lets gossip
    /// fetch consistency proofs). Repeatable; adds to the config file's.
    #[arg(long = "log", value_name = "VKEY[@URL]")]
    logs: Vec<String>,
    /// A gossip peer: `VKEY@GRPC_URL` (named after its key). Repeatable.
    #[arg(long = "peer", value_name = "VKEY@URL")]
    peers: Vec<String>,
    /// TLS certificate chain (PEM) for the HTTP and gRPC listeners.
    #[arg(long, env = "CAIRN_WITNESS_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM; mode 0600).
    #[arg(long, env = "CAIRN_WITNESS_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Client CA (PEM): require client certificates it signed (mTLS).
    #[arg(long, env = "CAIRN_WITNESS_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// CA certificates (PEM) that verify `https://` peer and log URLs.
    #[arg(long, env = "CAIRN_WITNESS_TLS_CA")]
    tls_ca: Option<PathBuf>,
    #[command(flatten)]
    limits: crate::serve::LimitArgs,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    vkey: String,
    url: Option<String>,
    /// The log's name on a Cairn server that hosts several.
    #[serde(default)]
    name: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePeer {
    name: Option<String>,
    vkey: String,
    url: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    name: Option<String>,
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    gossip_interval_ms: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    limits: Option<crate::serve::LimitArgs>,
    #[serde(default)]
    log: Vec<FileLog>,
    #[serde(default)]
    peer: Vec<FilePeer>,
}

fn vkey(text: &str, want: KeyType, what: &str) -> Result<NoteVerifier> {
    let v = NoteVerifier::parse(text).map_err(|e| anyhow!("{what} {text:?}: {e}"))?;
    if v.key_type() != want {
        bail!("{what} {text:?}: wrong key type (need {want:?})");
    }
    Ok(v)
}

fn split_at_url(s: &str) -> (&str, Option<&str>) {
    match s.split_once('@') {
        Some((k, u)) => (k, Some(u)),
        None => (s, None),
    }
}

pub(crate) fn witness(args: WitnessArgs) -> Result<ExitCode> {
    let cfg = build(args)?;
    run(cfg)
}

/// Validates a witness config file as `cairn witness --config FILE` would.
pub(crate) fn witness_config(path: &std::path::Path) -> Result<WitnessConfig> {
    build(WitnessArgs {
        config: Some(path.to_path_buf()),
        data_dir: None,
        name: None,
        http_addr: None,
        grpc_addr: None,
        gossip_interval_ms: None,
        logs: vec![],
        peers: vec![],
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
        tls_ca: None,
        limits: Default::default(),
    })
}

fn build(args: WitnessArgs) -> Result<WitnessConfig> {
    let file: FileConfig = match &args.config {
        Some(p) => load_toml(p)?,
        None => FileConfig::default(),
    };
    let mut logs = Vec::new();
    for l in &file.log {
        logs.push(WitnessedLog {
            vkey: vkey(&l.vkey, KeyType::Ed25519, "log key")?,
            url: l.url.clone(),
            log: l.name.clone(),
        });
    }
    for l in &args.logs {
        let (k, url) = split_at_url(l);
        logs.push(WitnessedLog {
            vkey: vkey(k, KeyType::Ed25519, "--log")?,
            url: url.map(str::to_owned),
            log: String::new(),
        });
    }
    let mut peers = Vec::new();
    for p in &file.peer {
        let v = vkey(&p.vkey, KeyType::Cosignature, "peer key")?;
        peers.push(Peer {
            name: p.name.clone().unwrap_or_else(|| v.name().to_owned()),
            vkey: v,
            url: p.url.clone(),
        });
    }
    for p in &args.peers {
        let (k, url) = split_at_url(p);
        let v = vkey(k, KeyType::Cosignature, "--peer")?;
        let url = url.ok_or_else(|| anyhow!("--peer {p:?}: expected VKEY@URL"))?;
        peers.push(Peer {
            name: v.name().to_owned(),
            vkey: v,
            url: url.to_owned(),
        });
    }
    if logs.is_empty() {
        bail!("no logs to witness: give --log VKEY[@URL] or [[log]] in the config file");
    }
    let tls = crate::serve::tls_files(
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
        args.tls_client_ca.or(file.tls_client_ca),
    )?;
    let cfg = WitnessConfig {
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| "./cairn-witness".into()),
        name: args
            .name
            .or(file.name)
            .unwrap_or_else(|| "localhost/cairn-witness".into()),
        http_addr: args
            .http_addr
            .or(file.http_addr)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7380))),
        grpc_addr: args
            .grpc_addr
            .or(file.grpc_addr)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7381))),
        logs,
        peers,
        tls,
        tls_ca: args.tls_ca.or(file.tls_ca),
        limits: args.limits.resolve(file.limits)?,
        gossip_interval: Duration::from_millis(
            args.gossip_interval_ms
                .or(file.gossip_interval_ms)
                .unwrap_or(5000)
                .max(10),
        ),
    };
    Ok(cfg)
}

fn run(cfg: WitnessConfig) -> Result<ExitCode> {
    let rt = crate::client::runtime()?;
    rt.block_on(async move {
        let server = WitnessServer::bind(&cfg).await?;
        eprintln!(
            "cairn witness: {:?} in {}, {} log(s), {} peer(s)",
            cfg.name,
            cfg.data_dir.display(),
            cfg.logs.len(),
            cfg.peers.len()
        );
        eprintln!("cairn witness: verifier key {}", server.vkey);
        if let (Some(h), Some(g)) = (server.http_addr(), server.grpc_addr()) {
            let (http, tls) = crate::serve::schemes(cfg.tls.is_some());
            eprintln!("cairn witness: HTTP on {http}://{h}/add-checkpoint, gRPC on {g}{tls}");
        }
        server.run(shutdown_signal()).await?;
        eprintln!("cairn witness: stopped cleanly");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
