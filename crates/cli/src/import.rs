//! `cairn import`: bulk-load events into a log's data folder while the
//! server is stopped (the store's folder lock keeps it that way).
//!
//! Every event goes through the same masking, integration and durable
//! commits as an append; only the batching differs (`--batch`, default
//! 65,536 entries, masked in parallel on every core). Per batch:
//!
//! 1. mask and hash every event (in parallel; a malformed event stops the
//!    import before anything of its batch is written, naming its line);
//! 2. integrate (cairn-core) and commit (one synced write). *Crash before
//!    the commit completes: the batch is gone; the import can be rerun
//!    from that line (the summary says which). Crash after: the batch is
//!    durable but not yet covered by a checkpoint; the next start (of the
//!    server, or of another import) signs it.*
//! 3. sign a checkpoint for the new size and store it, only now that the
//!    batch is durable.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use cairn_core::{Hash, leaf_hash};
use cairn_masking::ContentType;
use cairn_storage::{LogStore, NewEntry};
use cairn_storage_rocks::{RocksStore, StoreOptions};
use clap::Args;
use rayon::prelude::*;

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// NDJSON events, one per line; `-` for stdin. Omit with --synthetic.
    input: Option<PathBuf>,
    /// Generate this many synthetic events (as `cairn bench` does) instead
    /// of reading a file.
    #[arg(long, conflicts_with = "input")]
    synthetic: Option<u64>,
    /// Synthetic event size in bytes.
    #[arg(long, default_value_t = 250)]
    event_size: usize,
    /// The log's data folder (the server must be stopped).
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    data_dir: PathBuf,
    /// The log's fork-guard file, as `cairn serve` has it.
    /// [default: <data-dir>.guard]
    #[arg(long, env = "CAIRN_GUARD_FILE")]
    guard_file: Option<PathBuf>,
    /// The log's origin.
    #[arg(long, env = "CAIRN_ORIGIN", default_value = "localhost/cairn")]
    origin: String,
    /// Masking policy (TOML). [default: the built-in policy]
    #[arg(long, env = "CAIRN_POLICY")]
    policy: Option<PathBuf>,
    /// Token key file for `token` masks.
    #[arg(long, env = "CAIRN_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Entries per commit.
    #[arg(long, default_value_t = 65_536)]
    batch: usize,
    /// Flush and compact the store at the end, then report its size per
    /// column family and the bytes per entry outside the entries.
    #[arg(long)]
    compact: bool,
}

fn os_salt(failed: &std::sync::atomic::AtomicBool) -> [u8; 16] {
    let mut s = [0u8; 16];
    if getrandom::fill(&mut s).is_err() {
        failed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    s
}

pub(crate) fn import(args: ImportArgs) -> Result<ExitCode> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let masker = Arc::new(
        cairn_server::build_masker(
            args.policy.as_deref(),
            args.key_file.as_deref(),
            &args.origin,
        )
        .map_err(|e| anyhow!("{e}"))?,
    );
    let mut so = StoreOptions::new(&args.data_dir);
    so.guard_path = args.guard_file.clone();
    let store = RocksStore::open(so).map_err(|e| anyhow!("{e}"))?;
    let signer = cairn_server::load_or_create_key(&args.data_dir, &args.origin)
        .map_err(|e| anyhow!("{e}"))?;
    let mut tree = store.load_state().map_err(|e| anyhow!("{e}"))?.tree;
    let start_size = tree.size().0;
    let lease = store.lease();
    let store = Arc::new(store);
    let pipeline = cairn_log::WritePipeline::new(store.clone(), Arc::new(signer), &args.origin)
        .with_lease(Some(lease));
    let mut lines: Box<dyn Iterator<Item = std::io::Result<Vec<u8>>>> =
        match (&args.input, args.synthetic) {
            (_, Some(n)) => {
                let size = args.event_size;
                Box::new(
                    (0..n).map(move |i| Ok(crate::bench::event(start_size + i, size, 2).event)),
                )
            }
            (None, None) => bail!("give an input file (or - for stdin), or --synthetic N"),
            (Some(p), None) => {
                let r: Box<dyn Read> = if p.as_os_str() == "-" {
                    Box::new(std::io::stdin())
                } else {
                    Box::new(
                        std::fs::File::open(p)
                            .with_context(|| format!("opening {}", p.display()))?,
                    )
                };
                Box::new(
                    BufReader::with_capacity(1 << 20, r)
                        .split(b'\n')
                        .filter(|l| {
                            l.as_ref()
                                .map_or(true, |l| !l.iter().all(u8::is_ascii_whitespace))
                        }),
                )
            }
        };
    let total_hint = args.synthetic;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = match total_hint {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} entries {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let started = Instant::now();
    let mut line_no = 0u64;
    let mut imported = 0u64;
    loop {
        let mut events = Vec::with_capacity(args.batch);
        for l in lines.by_ref().take(args.batch) {
            events.push(l.context("reading input")?);
        }
        if events.is_empty() {
            break;
        }
        let first_line = line_no + 1;
        line_no += events.len() as u64;
        // 1. Mask and hash in parallel.
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let salt_failed = std::sync::atomic::AtomicBool::new(false);
        let masked: Vec<Result<(Vec<u8>, Hash), String>> = events
            .par_iter()
            .enumerate()
            .map(|(i, ev)| {
                let m = masker
                    .mask(ev, ContentType::Json, ts, &mut || os_salt(&salt_failed))
                    .map_err(|e| format!("line {}: {e}", first_line + i as u64))?;
                if m.leaf.len() > cairn_core::tile::MAX_ENTRY_LEN {
                    return Err(format!(
                        "line {}: the masked entry is {} bytes; the limit is {}",
                        first_line + i as u64,
                        m.leaf.len(),
                        cairn_core::tile::MAX_ENTRY_LEN
                    ));
                }
                let h = leaf_hash(&m.leaf);
                Ok((m.leaf, h))
            })
            .collect();
        if salt_failed.load(std::sync::atomic::Ordering::SeqCst) {
            bail!("the operating system's random source failed; nothing of this batch was written");
        }
        let leaves = masked
            .into_iter()
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| {
                anyhow!("{e}; entries before line {first_line} were imported ({imported} this run)")
            })?;
        // 2. The one write pipeline, as `cairn serve`'s sequencer runs it:
        //    integrate, commit durably, then sign and store the checkpoint.
        let entries: Vec<NewEntry<'_>> = leaves
            .iter()
            .map(|(l, h)| NewEntry {
                data: l,
                leaf_hash: *h,
                idempotency: None,
            })
            .collect();
        let written = pipeline.write(&tree, &entries).map_err(|f| {
            anyhow!(
                "writing the batch from line {first_line}: {}{}",
                f.error,
                if f.entries_durable {
                    " (its entries are durable; the next start signs their checkpoint)"
                } else {
                    ""
                }
            )
        })?;
        if let Err(e) = written.guard {
            eprintln!("cairn import: warning: {e}");
        }
        tree = written.tree;
        imported += leaves.len() as u64;
        if let Some(b) = &bar {
            b.set_position(imported);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "cairn import: {imported} entries in {secs:.1} s ({:.0}/s); the log is at size {}",
        imported as f64 / secs.max(1e-9),
        tree.size()
    );
    if args.compact {
        let t = Instant::now();
        store.compact().map_err(|e| anyhow!("compacting: {e}"))?;
        let usage = store.disk_usage().map_err(|e| anyhow!("{e}"))?;
        let n = tree.size().0.max(1) as f64;
        let entries: u64 = usage
            .iter()
            .filter(|(c, _)| *c == "entries")
            .map(|(_, b)| b)
            .sum();
        let rest: u64 = usage
            .iter()
            .filter(|(c, _)| *c != "entries")
            .map(|(_, b)| b)
            .sum();
        let per_cf: Vec<String> = usage.iter().map(|(c, b)| format!("{c} {b}")).collect();
        eprintln!(
            "cairn import: compacted in {:.1} s; bytes per column family: {}; entries {:.1} B/entry, everything else {:.2} B/entry",
            t.elapsed().as_secs_f64(),
            per_cf.join(", "),
            entries as f64 / n,
            rest as f64 / n
        );
    }
    Ok(ExitCode::SUCCESS)
}
