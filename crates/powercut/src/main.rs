//! `cairn-powercut --backing DIR --mountpoint DIR [--lie] [--seed N]`
//!
//! Mounts, prints `ready` on standard output, then reads commands on
//! standard input, one per line:
//!
//! - `cut`: power cut; every operation not yet durable is lost;
//! - `cut-prefix`: power cut after the disk wrote back a random prefix of
//!   the pending operations, in order (the seed makes it repeatable);
//! - `stats`: prints the counters.
//!
//! After a cut it prints what it kept and exits at once, holding the lock,
//! so no operation completes after the cut; detach the dead mount with
//! `fusermount3 -u -z` before mounting again. End of input is a `cut`.

#![forbid(unsafe_code)]

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use cairn_powercut::{Cut, Stats};
use clap::Parser;

#[derive(Parser)]
#[command(about = "A FUSE file system that loses unsynced writes on command (a test tool)")]
struct Args {
    /// Folder that holds the durable state (created if missing).
    #[arg(long)]
    backing: PathBuf,
    /// Where to mount.
    #[arg(long)]
    mountpoint: PathBuf,
    /// Answer every sync with success and make nothing durable: a broken
    /// disk, for the test that the harness catches losses.
    #[arg(long)]
    lie: bool,
    /// Seed for `cut-prefix` (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
}

fn report(s: &Stats) -> String {
    format!(
        "{} file syncs, {} folder syncs, {} operations made durable",
        s.file_syncs, s.dir_syncs, s.synced_ops
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let given = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    // SplitMix64's finaliser, so that nearby seeds give unrelated cuts.
    let mut seed = given.wrapping_add(0x9e37_79b9_7f4a_7c15);
    seed = (seed ^ (seed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    seed = (seed ^ (seed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    seed = (seed ^ (seed >> 31)) | 1;
    let mounted = cairn_powercut::mount(&args.backing, &args.mountpoint, args.lie)
        .with_context(|| format!("mounting {}", args.mountpoint.display()))?;
    let mut out = std::io::stdout();
    writeln!(out, "ready (seed {given})")?;
    out.flush()?;
    let mut lines = std::io::stdin().lock().lines();
    loop {
        let cmd = match lines.next() {
            Some(l) => l?,
            None => "cut".to_owned(),
        };
        match cmd.trim() {
            "stats" => {
                let s = mounted
                    .state
                    .lock()
                    .map_err(|_| anyhow::anyhow!("state lock poisoned"))?
                    .stats();
                writeln!(out, "{}; {} pending", report(&s), s.pending_ops)?;
                out.flush()?;
            }
            c @ ("cut" | "cut-prefix") => {
                // Stop every operation for good: the lock is never released.
                let mut st = mounted
                    .state
                    .lock()
                    .map_err(|_| anyhow::anyhow!("state lock poisoned"))?;
                let pending = st.stats().pending_ops;
                let how = if c == "cut" {
                    Cut::DropAll
                } else {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    Cut::KeepPrefix((seed % (pending as u64 + 1)) as usize)
                };
                let s = st.stats();
                let (kept, total) = st.cut(how).context("writing the kept prefix")?;
                writeln!(
                    out,
                    "cut: kept {kept} of {total} pending operations; {}",
                    report(&s)
                )?;
                out.flush()?;
                std::process::exit(0);
            }
            "" => {}
            other => {
                writeln!(out, "unknown command {other:?} (cut, cut-prefix, stats)")?;
                out.flush()?;
            }
        }
    }
}
