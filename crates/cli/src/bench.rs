//! `cairn bench`: a load generator.
//!
//! Appends (default): `--clients` concurrent `AppendStream`s (`--stream`)
//! or unary `Append` tasks, offered open-loop at `--rate` per second in
//! total (whether or not earlier ones have returned, so a slow server shows
//! up as latency, not as a lower offered rate), or as fast as the server
//! answers with `--rate 0`. Reports entries/s, MB/s, the latency of durable
//! receipts (p50/p90/p99/p999/max), and client and (with `--server-pid`)
//! server CPU, as one JSON object on stdout (and in `--out`).
//!
//! Proofs (`--proofs`): `--clients` workers ask for inclusion proofs of
//! random entries (and, one request in four, consistency proofs from a
//! random older size) in the latest tree for `--duration` seconds.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_api as pb;
use clap::Args;

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    server: crate::conn::ServerArg,
    /// Offered appends per second, in total; 0 for as fast as the server
    /// answers (closed loop; needs --count or --duration).
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long to offer load, in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Send exactly this many events instead (overrides --duration for
    /// appends).
    #[arg(long)]
    count: Option<u64>,
    /// Concurrent clients: streams with --stream, request tasks otherwise,
    /// workers with --proofs.
    #[arg(long, default_value_t = 1)]
    clients: u64,
    /// Approximate event size in bytes.
    #[arg(long, default_value_t = 250)]
    event_size: usize,
    /// PII values per event (emails, cards, SSNs, phones, IPs in turn).
    #[arg(long, default_value_t = 1)]
    pii_density: usize,
    /// Offer the load over `AppendStream`s instead of unary `Append`s.
    #[arg(long)]
    stream: bool,
    /// Measure proofs instead of appends.
    #[arg(long, conflicts_with = "stream")]
    proofs: bool,
    /// The server's process id, to report its CPU time (same machine).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also write the JSON report to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Spread the clients over these logs, in turn (comma-separated;
    /// `cairn log list`). [default: --log]
    #[arg(long, value_delimiter = ',')]
    logs: Vec<String>,
}

impl BenchArgs {
    /// The log client `id` appends to.
    fn log_for(&self, id: u64) -> String {
        if self.logs.is_empty() {
            return self.server.log.clone();
        }
        let i = usize::try_from(id).unwrap_or(0) % self.logs.len();
        self.logs.get(i).cloned().unwrap_or_default()
    }
}

const PII: &[&str] = &[
    "ana.lima@example.com",
    "4111 1111 1111 1111",
    "078-05-1120",
    "+44 20 7946 0958",
    "203.0.113.7",
];

/// Event `n`: `pii` PII values in free text, padded to about `size` bytes.
pub(crate) fn event(n: u64, size: usize, pii: usize) -> pb::AppendRequest {
    let mut s = format!(r#"{{"n":{n},"action":"login""#);
    for k in 0..pii {
        s.push_str(&format!(
            r#","f{k}":"value {} here""#,
            PII[(n as usize + k) % PII.len()]
        ));
    }
    let pad = size.saturating_sub(s.len() + 10);
    s.push_str(&format!(r#","pad":"{}"}}"#, "x".repeat(pad)));
    pb::AppendRequest {
        event: s.into_bytes(),
        content_type: pb::ContentType::Json as i32,
        ..Default::default()
    }
}

/// CPU seconds (user + system) of a process, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[derive(Default)]
struct Tally {
    lat_us: Mutex<Vec<u64>>,
    errors: AtomicU64,
    bytes: AtomicU64,
}

impl Tally {
    fn ok(&self, t0: Instant) {
        self.lat_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(t0.elapsed().as_micros() as u64);
    }
}

/// Paces `total` sends at `rate`/s (0: no pacing): each call to
/// [`Pacer::next`] waits for the next millisecond tick and returns the
/// indices now due.
struct Pacer {
    start: Instant,
    tick: tokio::time::Interval,
    rate: u64,
    total: u64,
    sent: u64,
}

impl Pacer {
    fn new(total: u64, rate: u64) -> Self {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        Pacer {
            start: Instant::now(),
            tick,
            rate,
            total,
            sent: 0,
        }
    }

    async fn next(&mut self) -> Option<std::ops::Range<u64>> {
        if self.sent >= self.total {
            return None;
        }
        let due = if self.rate == 0 {
            (self.sent + 256).min(self.total)
        } else {
            self.tick.tick().await;
            ((self.start.elapsed().as_secs_f64() * self.rate as f64) as u64).min(self.total)
        };
        let r = self.sent..due;
        self.sent = due;
        Some(r)
    }
}

/// One stream: requests go out paced; receipts come back in order, so each
/// one's latency is its arrival time minus its request's send time.
async fn stream_client(
    mut client: crate::conn::Client,
    args: Arc<BenchArgs>,
    id: u64,
    total: u64,
    rate: u64,
    tally: Arc<Tally>,
) {
    let sent_at: Arc<Mutex<Vec<Instant>>> =
        Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    // Bounded by what a closed loop may have in flight.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::AppendRequest>(8192);
    let (stamps, t2, a2) = (sent_at.clone(), tally.clone(), args.clone());
    tokio::spawn(async move {
        let mut pacer = Pacer::new(total, rate);
        while let Some(due) = pacer.next().await {
            for i in due {
                let mut ev = event(id * 1_000_000_000 + i, a2.event_size, a2.pii_density);
                ev.log = a2.log_for(id);
                t2.bytes.fetch_add(ev.event.len() as u64, Ordering::Relaxed);
                stamps
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Instant::now());
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut receipts = match client
        .append_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(_) => {
            tally.errors.fetch_add(total, Ordering::Relaxed);
            return;
        }
    };
    let mut k = 0usize;
    while let Some(r) = tokio_stream::StreamExt::next(&mut receipts).await {
        let t0 = sent_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(k)
            .copied();
        match (r, t0) {
            (Ok(_), Some(t0)) => tally.ok(t0),
            _ => {
                tally.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        k += 1;
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

pub(crate) fn bench(args: BenchArgs) -> Result<ExitCode> {
    if args.duration == 0 && args.count.is_none() {
        bail!("--duration must be positive (or give --count)");
    }
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if args.rate == 0 && args.count.is_none() && !args.proofs {
        bail!("--rate 0 (as fast as possible) needs --count");
    }
    let rt = crate::client::runtime()?;
    let args = Arc::new(args);
    let report = rt.block_on(run(args.clone()))?;
    let text = serde_json::to_string(&report)?;
    println!("{text}");
    if let Some(p) = &args.out {
        std::fs::write(p, format!("{text}\n"))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(args: Arc<BenchArgs>) -> Result<serde_json::Value> {
    let client = args.server.connect().await?;
    let me = std::process::id().to_string();
    let server_pid = args.server_pid.map(|p| p.to_string());
    let cpu0 = (
        cpu_seconds(&me),
        server_pid.as_deref().and_then(cpu_seconds),
    );
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let (mode, sent) = if args.proofs {
        proofs(client, &args, tally.clone()).await?;
        ("proofs", 0)
    } else {
        let total = args.count.unwrap_or(args.rate * args.duration);
        let per = total / args.clients;
        let rate = args.rate / args.clients;
        let mut tasks = Vec::new();
        for id in 0..args.clients {
            let n = if id == 0 {
                total - per * (args.clients - 1)
            } else {
                per
            };
            let (c, a, t) = (client.clone(), args.clone(), tally.clone());
            if args.stream {
                tasks.push(tokio::spawn(stream_client(c, a, id, n, rate, t)));
            } else {
                tasks.push(tokio::spawn(unary_client(c, a, id, n, rate, t)));
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        (if args.stream { "stream" } else { "unary" }, total)
    };
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = (
        cpu_seconds(&me),
        server_pid.as_deref().and_then(cpu_seconds),
    );
    let mut l = std::mem::take(&mut *tally.lat_us.lock().unwrap_or_else(|p| p.into_inner()));
    l.sort_unstable();
    let bytes = tally.bytes.load(Ordering::Relaxed);
    let cpu = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    Ok(serde_json::json!({
        "mode": mode,
        "clients": args.clients,
        "offered_per_s": args.rate,
        "event_size": args.event_size,
        "pii_density": args.pii_density,
        "sent": sent,
        "ok": l.len(),
        "errors": tally.errors.load(Ordering::Relaxed),
        "elapsed_s": elapsed,
        "achieved_per_s": l.len() as f64 / elapsed,
        "mb_per_s": bytes as f64 / elapsed / 1e6,
        "client_cpu_s": cpu(cpu0.0, cpu1.0),
        "server_cpu_s": cpu(cpu0.1, cpu1.1),
        "latency_ms": {
            "p50": percentile(&l, 0.50),
            "p90": percentile(&l, 0.90),
            "p99": percentile(&l, 0.99),
            "p999": percentile(&l, 0.999),
            "max": percentile(&l, 1.0),
        }
    }))
}

/// Unary appends: one task per request, paced.
async fn unary_client(
    client: crate::conn::Client,
    args: Arc<BenchArgs>,
    id: u64,
    total: u64,
    rate: u64,
    tally: Arc<Tally>,
) {
    let mut tasks = Vec::with_capacity(total as usize);
    let mut pacer = Pacer::new(total, rate);
    while let Some(due) = pacer.next().await {
        for i in due {
            let mut ev = event(id * 1_000_000_000 + i, args.event_size, args.pii_density);
            ev.log = args.log_for(id);
            tally
                .bytes
                .fetch_add(ev.event.len() as u64, Ordering::Relaxed);
            let (mut c, t) = (client.clone(), tally.clone());
            tasks.push(tokio::spawn(async move {
                let t0 = Instant::now();
                match c.append(ev).await {
                    Ok(_) => t.ok(t0),
                    Err(_) => {
                        t.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        if rate == 0 {
            tokio::task::yield_now().await;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Proof mode: inclusion proofs of random entries, and one request in four
/// a consistency proof from a random older size, in the latest tree.
async fn proofs(
    mut client: crate::conn::Client,
    args: &BenchArgs,
    tally: Arc<Tally>,
) -> Result<()> {
    let size = client
        .get_checkpoint(pb::GetCheckpointRequest {
            log: args.server.log.clone(),
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow::anyhow!("{} ({:?})", s.message(), s.code()))?
        .into_inner()
        .size;
    if size < 2 {
        bail!("the log has {size} entries; proofs need at least 2");
    }
    let deadline = Instant::now() + Duration::from_secs(args.duration.max(1));
    let mut tasks = Vec::new();
    for w in 0..args.clients {
        let (mut c, t, lg) = (client.clone(), tally.clone(), args.server.log.clone());
        tasks.push(tokio::spawn(async move {
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (w + 1);
            let mut k = 0u64;
            while Instant::now() < deadline {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let t0 = Instant::now();
                let ok = if k % 4 == 3 {
                    c.get_consistency_proof(pb::GetConsistencyProofRequest {
                        old_size: 1 + x % (size - 1),
                        new_size: size,
                        log: lg.clone(),
                    })
                    .await
                    .is_ok()
                } else {
                    c.get_inclusion_proof(pb::GetInclusionProofRequest {
                        leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(x % size)),
                        tree_size: size,
                        log: lg.clone(),
                    })
                    .await
                    .is_ok()
                };
                if ok {
                    t.ok(t0);
                } else {
                    t.errors.fetch_add(1, Ordering::Relaxed);
                }
                k += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
