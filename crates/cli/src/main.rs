//! `cairn`: the command-line front end.

mod audit;
mod bench;
mod client;
mod import;
mod mask;
mod serve;
mod witness;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: under load the server spent a fifth
/// of its CPU in glibc's allocator and its arena locks (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Cairn: a Merkle-tree transparency log for masked audit events.
#[derive(Parser)]
#[command(name = "cairn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the log: gRPC API, C2SP tlog-tiles over HTTP.
    Serve(serve::ServeArgs),
    /// Run a C2SP tlog-witness (HTTP add-checkpoint, gRPC, gossip).
    Witness(witness::WitnessArgs),
    /// Check that a log only ever grows (and, with --full, its entries).
    Audit(audit::AuditArgs),
    /// Validate a config file.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Bearer tokens for `serve --token-file`.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Generate a log signing key (or, with --witness, a cosigning key); prints the verifier key.
    Keygen(serve::KeygenArgs),
    /// Append NDJSON events through AppendStream; one JSON receipt per line.
    Append(client::AppendArgs),
    /// Print the latest signed checkpoint.
    Checkpoint(client::CheckpointArgs),
    /// Fetch an inclusion or consistency proof (JSON).
    #[command(subcommand)]
    Prove(client::ProveCmd),
    /// Fetch stored entries.
    #[command(subcommand)]
    Get(client::GetCmd),
    /// Verify offline.
    #[command(subcommand)]
    Verify(client::VerifyCmd),
    /// Load generator: appends (streams or unary) or proofs; JSON report.
    Bench(bench::BenchArgs),
    /// Bulk-load events into a stopped log (masked, integrated, committed).
    Import(import::ImportArgs),
    /// Mask NDJSON events (one per line) from a file or stdin to stdout.
    Mask(mask::MaskArgs),
}

/// Logs go to stderr. `CAIRN_LOG` sets the filter (tracing's env-filter
/// syntax, default `info`); `CAIRN_LOG_FORMAT=json` gives one JSON object
/// per line.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("CAIRN_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Parse and validate a `serve` (or, with --witness, `witness`) config
    /// file; errors name the file, line and key.
    Check(serve::ConfigCheckArgs),
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Print a fresh token (stdout) and its token-file entry (stderr).
    New(serve::TokenNewArgs),
}

fn main() -> ExitCode {
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr, 2.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Witness(args) => witness::witness(args),
        Command::Audit(args) => audit::audit(args),
        Command::Token(TokenCmd::New(args)) => serve::token_new(args),
        Command::Config(ConfigCmd::Check(args)) => serve::config_check(args),
        Command::Keygen(args) => serve::keygen(args),
        Command::Append(args) => client::append(args),
        Command::Checkpoint(args) => client::checkpoint(args),
        Command::Prove(cmd) => client::prove(cmd),
        Command::Get(cmd) => client::get(cmd),
        Command::Verify(cmd) => client::verify(cmd),
        Command::Bench(args) => bench::bench(args),
        Command::Import(args) => import::import(args),
        Command::Mask(args) => mask::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cairn: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
