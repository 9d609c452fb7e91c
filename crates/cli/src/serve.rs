//! `cairn serve` and `cairn keygen`.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cairn_server::{SequencerConfig, ServeConfig, Server};
use clap::Args;

/// Flags override `CAIRN_*` environment variables, which override the
/// embedded defaults.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Data folder (RocksDB, `log.key`, `log.vkey`); created if missing.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    data_dir: PathBuf,
    /// gRPC listen address.
    #[arg(long, env = "CAIRN_GRPC_ADDR", default_value = "127.0.0.1:7400")]
    grpc_addr: SocketAddr,
    /// HTTP (C2SP tlog-tiles, /metrics, /healthz) listen address.
    #[arg(long, env = "CAIRN_HTTP_ADDR", default_value = "127.0.0.1:7480")]
    http_addr: SocketAddr,
    /// The log's origin: the checkpoint origin line and the key name.
    #[arg(long, env = "CAIRN_ORIGIN", default_value = "localhost/cairn")]
    origin: String,
    /// Masking policy (TOML); default: the built-in policy.
    #[arg(long, env = "CAIRN_POLICY")]
    policy: Option<PathBuf>,
    /// Token key file for `token` masks.
    #[arg(long, env = "CAIRN_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Largest batch, in entries.
    #[arg(long, env = "CAIRN_MAX_BATCH", default_value_t = 4096)]
    max_batch: usize,
    /// Longest a batch stays open, in milliseconds.
    #[arg(long, env = "CAIRN_MAX_BATCH_AGE_MS", default_value_t = 2)]
    max_batch_age_ms: u64,
}

pub(crate) fn serve(args: ServeArgs) -> Result<ExitCode> {
    if args.max_batch == 0 {
        bail!("--max-batch must be at least 1");
    }
    let cfg = ServeConfig {
        data_dir: args.data_dir,
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        origin: args.origin,
        policy: args.policy,
        key_file: args.key_file,
        sequencer: SequencerConfig {
            max_batch: args.max_batch,
            max_age: Duration::from_millis(args.max_batch_age_ms),
            ..SequencerConfig::default()
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let server = Server::bind(&cfg).await?;
        eprintln!("cairn: log {:?} in {}", cfg.origin, cfg.data_dir.display());
        eprintln!("cairn: verifier key {}", server.vkey);
        if let (Some(g), Some(h)) = (server.grpc_addr(), server.http_addr()) {
            eprintln!("cairn: gRPC on {g}, HTTP (tlog-tiles) on http://{h}/checkpoint");
        }
        server.run(shutdown_signal()).await?;
        eprintln!("cairn: stopped cleanly");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
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
    eprintln!("cairn: shutting down: finishing queued appends");
}

#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// The log's origin (the key name).
    #[arg(long)]
    origin: String,
    /// Where to write the private key (mode 0600; never overwritten).
    #[arg(long, default_value = "log.key")]
    out: PathBuf,
}

pub(crate) fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
    let signer = cairn_core::NoteSigner::from_seed(&args.origin, &seed)
        .map_err(|e| anyhow::anyhow!("origin {:?}: {e}", args.origin))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.out)
        .with_context(|| format!("creating {} (it must not exist yet)", args.out.display()))?;
    writeln!(f, "{}", signer.to_private_key_string())?;
    f.sync_all()?;
    println!("{}", signer.verifier());
    Ok(ExitCode::SUCCESS)
}
