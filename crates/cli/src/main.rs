//! `cairn`: the command-line front end.

mod audit;
mod bench;
mod client;
mod conn;
mod import;
mod mask;
mod serve;
mod telemetry;
mod tlsgen;
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
    Serve(Box<serve::ServeArgs>),
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
    /// TLS certificates for a deployment without a PKI of its own.
    #[command(subcommand)]
    Tls(TlsCmd),
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
    /// The logs of a server: list them, freeze one.
    #[command(subcommand)]
    Log(client::LogCmd),
    /// Erase a data subject: destroy its key (admin token); the erasure
    /// record's receipt is printed.
    Erase(client::EraseArgs),
    /// Decrypt one encrypted field of one entry (reveal token); the access
    /// is recorded in the log first.
    Reveal(client::RevealArgs),
    /// Generate a key-encryption key for a subject key store (base64, to a
    /// new file with mode 0600).
    NewKek(serve::NewKekArgs),
    /// Rotate a subject key store's key-encryption key into a new folder
    /// (server stopped; docs/design/erasure.md).
    RewrapKeys(serve::RewrapArgs),
    /// Bulk-load events into a stopped log (masked, integrated, committed).
    Import(import::ImportArgs),
    /// Mask NDJSON events (one per line) from a file or stdin to stdout.
    Mask(mask::MaskArgs),
}

/// Logs go to stderr. `CAIRN_LOG` sets the filter (tracing's env-filter
/// syntax, default `info`); `CAIRN_LOG_FORMAT=json` gives one JSON object
/// per line.
///
/// With `CAIRN_OTLP_ENDPOINT` (e.g. `http://otel-collector:4317`), spans
/// are also exported over OTLP/gRPC, filtered by `CAIRN_OTLP_FILTER`
/// (default `info,cairn_server=debug,cairn_log=debug`: one span per RPC, sequencer batch and
/// witness request). The standard `OTEL_*` variables (service name, batch
/// delay, timeouts) apply. Span fields carry sizes, indexes and counts,
/// never event content.
fn init_logging() -> Option<telemetry::Otel> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if std::env::var("CAIRN_LOG_FORMAT").is_ok_and(|v| v == "json") {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter)
            .boxed()
    };
    let (otel, layer) = match telemetry::from_env() {
        Ok(Some((otel, layer))) => (Some(otel), Some(layer)),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("cairn: OpenTelemetry export disabled: {e:#}");
            (None, None)
        }
    };
    let mut layers = vec![fmt];
    layers.extend(layer);
    let _ = tracing_subscriber::registry().with(layers).try_init();
    otel
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Parse and validate a `serve` (or, with --witness, `witness`) config
    /// file; errors name the file, line and key.
    Check(serve::ConfigCheckArgs),
}

#[derive(Subcommand)]
enum TlsCmd {
    /// A private CA and a certificate for each --name (keys mode 0600).
    New(tlsgen::TlsNewArgs),
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Print a fresh token (stdout) and its token-file entry (stderr).
    New(serve::TokenNewArgs),
}

fn main() -> ExitCode {
    let otel = init_logging();
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
        Command::Serve(args) => serve::serve(*args),
        Command::Witness(args) => witness::witness(args),
        Command::Audit(args) => audit::audit(args),
        Command::Token(TokenCmd::New(args)) => serve::token_new(args),
        Command::Tls(TlsCmd::New(args)) => tlsgen::tls_new(args),
        Command::Config(ConfigCmd::Check(args)) => serve::config_check(args),
        Command::Keygen(args) => serve::keygen(args),
        Command::Append(args) => client::append(args),
        Command::Checkpoint(args) => client::checkpoint(args),
        Command::Prove(cmd) => client::prove(cmd),
        Command::Get(cmd) => client::get(cmd),
        Command::Verify(cmd) => client::verify(cmd),
        Command::Bench(args) => bench::bench(args),
        Command::Log(cmd) => client::log(cmd),
        Command::Erase(a) => client::erase(a),
        Command::Reveal(a) => client::reveal(a),
        Command::NewKek(a) => serve::new_kek(a),
        Command::RewrapKeys(a) => serve::rewrap_keys(a),
        Command::Import(args) => import::import(args),
        Command::Mask(args) => mask::run(args),
    };
    // Flush the spans still queued before the process ends.
    drop(otel);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cairn: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
