//! `cairn mask`: masked snapshots of NDJSON event files.
//!
//! Lines are read in blocks, masked in parallel on every core, and written
//! in input order. A malformed line is reported on stderr by its line
//! number (never its content) and skipped; the others continue, unless
//! `--fail-fast`. Exit status: 0 all lines masked, 1 some line failed,
//! 2 usage or I/O error.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use cairn_masking::{ContentType, Masker, Policy, TokenKeys};
use clap::Args;
use rayon::prelude::*;

/// Lines masked per parallel block.
const BLOCK: usize = 8192;

#[derive(Args)]
pub(crate) struct MaskArgs {
    /// NDJSON input file; `-` or absent for stdin.
    input: Option<PathBuf>,
    /// Masking policy (TOML). Default: the built-in policy.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Token key file (TOML), needed if the policy uses `token`.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Log origin that scopes tokens.
    #[arg(long, default_value = "cairn-mask")]
    origin: String,
    /// Print the full leaf record instead of the masked event.
    #[arg(long)]
    leaf: bool,
    /// Print per-detector counts to stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Stop at the first malformed line.
    #[arg(long)]
    fail_fast: bool,
}

fn load_masker(args: &MaskArgs) -> Result<Masker> {
    let policy = match &args.policy {
        None => Policy::default_policy()?,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading policy {}", p.display()))?;
            Policy::from_toml(&p.display().to_string(), &text)?
        }
    };
    let keys = match &args.key_file {
        None => TokenKeys::new(),
        Some(p) => {
            let text = cairn_server::read_secret(p, "masking key file")?;
            TokenKeys::from_toml(&p.display().to_string(), &text)?
        }
    };
    Ok(Masker::new(policy, &keys, &args.origin)?)
}

fn os_salt() -> [u8; 16] {
    let mut s = [0u8; 16];
    if getrandom::fill(&mut s).is_err() {
        // No OS randomness: refuse to make commitments that could be guessed.
        eprintln!("cairn: error: the operating system's random source failed");
        std::process::exit(2);
    }
    s
}

pub(crate) fn run(args: MaskArgs) -> Result<ExitCode> {
    let masker = load_masker(&args)?;
    let (input, size): (Box<dyn Read>, Option<u64>) = match &args.input {
        None => (Box::new(std::io::stdin().lock()), None),
        Some(p) if p.as_os_str() == "-" => (Box::new(std::io::stdin().lock()), None),
        Some(p) => {
            let f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
            let size = f.metadata().ok().map(|m| m.len());
            (Box::new(f), size)
        }
    };
    let progress = if std::io::stderr().is_terminal() {
        let bar = match size {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bar:30} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut stats: BTreeMap<String, u64> = BTreeMap::new();
    let (mut line_no, mut failed, mut ok) = (0u64, 0u64, 0u64);
    let mut block: Vec<Vec<u8>> = Vec::with_capacity(BLOCK);
    loop {
        block.clear();
        let mut eof = false;
        while block.len() < BLOCK {
            let mut line = Vec::new();
            let n = reader
                .read_until(b'\n', &mut line)
                .context("reading input")?;
            if n == 0 {
                eof = true;
                break;
            }
            if let Some(p) = &progress {
                p.inc(n as u64);
            }
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            block.push(line);
        }
        let results: Vec<_> = block
            .par_iter()
            .map(|line| {
                if line.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                Some(masker.mask(line, ContentType::Json, ts, &mut os_salt))
            })
            .collect();
        for r in results {
            line_no += 1;
            match r {
                None => {}
                Some(Ok(m)) => {
                    ok += 1;
                    if args.leaf {
                        out.write_all(&m.leaf)?;
                    } else {
                        out.write_all(m.body())?;
                    }
                    out.write_all(b"\n")?;
                    if args.stats {
                        for d in &m.decisions {
                            *stats.entry(d.detector.to_string()).or_default() += 1;
                        }
                    }
                }
                Some(Err(e)) => {
                    failed += 1;
                    // The error names an offset, never the line's content.
                    eprintln!("cairn mask: line {line_no}: {e}");
                    if args.fail_fast {
                        out.flush()?;
                        return Ok(ExitCode::from(1));
                    }
                }
            }
        }
        if eof {
            break;
        }
    }
    out.flush().context("writing output")?;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    if args.stats {
        eprintln!("masked {ok} events, {failed} failed");
        for (d, n) in &stats {
            eprintln!("{d:>16} {n}");
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
