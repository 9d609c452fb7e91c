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
//! Batches (`--batch N`): each client sends `AppendBatch`es of N events
//! over one `AppendBatchStream`; an event's latency is from its batch's
//! send to the batch's answer. `--receipts full|proof|index` picks what
//! each receipt carries.
//!
//! Proofs (`--proofs`): `--clients` workers ask for inclusion proofs of
//! random entries (and, one request in four, consistency proofs from a
//! random older size) in the latest tree for `--duration` seconds.
//!
//! The report has the server's CPU per operation (with `--server-pid`)
//! and a timeline (per 250 ms: operations/s, p50 and p99 latency); with
//! `--out FILE`, the timeline is also drawn as `FILE.svg`.

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
    /// What each receipt carries.
    #[arg(long, value_enum, default_value = "full")]
    receipts: crate::client::ReceiptFormArg,
    /// Send `AppendBatch`es of this many events (at most 1,000) over one
    /// `AppendBatchStream` per client.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1000), conflicts_with_all = ["stream", "proofs"])]
    batch: Option<u16>,
    /// Send OTLP/gRPC log exports of this many records (each the same
    /// event as a log record's body) to the server's OTLP receiver, one
    /// export at a time per client.
    #[arg(long, conflicts_with_all = ["stream", "proofs", "batch"])]
    otlp: Option<u16>,
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

struct Tally {
    start: Instant,
    lat_us: Mutex<Vec<u64>>,
    /// Completion times (ms since start), beside `lat_us`.
    done_ms: Mutex<Vec<u32>>,
    errors: AtomicU64,
    bytes: AtomicU64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            start: Instant::now(),
            lat_us: Mutex::default(),
            done_ms: Mutex::default(),
            errors: AtomicU64::default(),
            bytes: AtomicU64::default(),
        }
    }
}

impl Tally {
    fn ok(&self, t0: Instant) {
        self.ok_n(t0, 1);
    }

    /// `n` operations sent at `t0` are done now.
    fn ok_n(&self, t0: Instant, n: usize) {
        let lat = t0.elapsed().as_micros() as u64;
        let at = u32::try_from(self.start.elapsed().as_millis()).unwrap_or(u32::MAX);
        let mut l = self.lat_us.lock().unwrap_or_else(|p| p.into_inner());
        let mut d = self.done_ms.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..n {
            l.push(lat);
            d.push(at);
        }
    }
}

/// Operations/s and latency per `step_ms` window, from completion times
/// and latencies (same order).
fn timeline(done_ms: &[u32], lat_us: &[u64], step_ms: u32) -> Vec<serde_json::Value> {
    let end = done_ms.iter().copied().max().unwrap_or(0);
    let windows = (end / step_ms + 1) as usize;
    let mut lats: Vec<Vec<u64>> = vec![Vec::new(); windows];
    for (d, l) in done_ms.iter().zip(lat_us) {
        if let Some(w) = lats.get_mut((d / step_ms) as usize) {
            w.push(*l);
        }
    }
    lats.into_iter()
        .enumerate()
        .map(|(i, mut w)| {
            w.sort_unstable();
            serde_json::json!({
                "t_s": (i as f64 + 1.0) * f64::from(step_ms) / 1000.0,
                "per_s": w.len() as f64 * 1000.0 / f64::from(step_ms),
                "p50_ms": percentile(&w, 0.50),
                "p99_ms": percentile(&w, 0.99),
            })
        })
        .collect()
}

/// Draws the timeline: operations/s above, p50 and p99 latency below.
fn plot(path: &std::path::Path, title: &str, tl: &[serde_json::Value]) -> Result<()> {
    use plotters::prelude::*;
    let get = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let pts =
        |k: &str| -> Vec<(f64, f64)> { tl.iter().map(|v| (get(v, "t_s"), get(v, k))).collect() };
    let (rate, p50, p99) = (pts("per_s"), pts("p50_ms"), pts("p99_ms"));
    let t_max = rate.last().map_or(1.0, |p| p.0).max(0.25);
    let r_max = rate.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let l_max = p99.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("plotting {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(300);
    let mut c = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..r_max)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("seconds")
        .y_desc("operations/s")
        .draw()
        .map_err(|e| err(&e))?;
    c.draw_series(LineSeries::new(rate, &BLUE))
        .map_err(|e| err(&e))?;
    let mut c = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..l_max)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("seconds")
        .y_desc("latency, ms")
        .draw()
        .map_err(|e| err(&e))?;
    c.draw_series(LineSeries::new(p50, &GREEN))
        .map_err(|e| err(&e))?
        .label("p50")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    c.draw_series(LineSeries::new(p99, &RED))
        .map_err(|e| err(&e))?
        .label("p99")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    c.configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
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
                ev.receipt_form = a2.receipts.pb();
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
            if let Some(size) = args.otlp {
                tasks.push(tokio::spawn(otlp_client(a, id, n, usize::from(size), t)));
            } else if let Some(size) = args.batch {
                tasks.push(tokio::spawn(batch_client(
                    c,
                    a,
                    id,
                    n,
                    (usize::from(size), rate),
                    t,
                )));
            } else if args.stream {
                tasks.push(tokio::spawn(stream_client(c, a, id, n, rate, t)));
            } else {
                tasks.push(tokio::spawn(unary_client(c, a, id, n, rate, t)));
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        let mode = if args.otlp.is_some() {
            "otlp"
        } else if args.batch.is_some() {
            "batch"
        } else if args.stream {
            "stream"
        } else {
            "unary"
        };
        (mode, total)
    };
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = (
        cpu_seconds(&me),
        server_pid.as_deref().and_then(cpu_seconds),
    );
    let mut l = std::mem::take(&mut *tally.lat_us.lock().unwrap_or_else(|p| p.into_inner()));
    let done = std::mem::take(&mut *tally.done_ms.lock().unwrap_or_else(|p| p.into_inner()));
    let tl = timeline(&done, &l, 250);
    drop(done);
    l.sort_unstable();
    let bytes = tally.bytes.load(Ordering::Relaxed);
    let cpu = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    let per_op = |c: Option<f64>| c.map(|c| c / (l.len().max(1) as f64) * 1e6);
    if let Some(out) = &args.out {
        let svg = out.with_extension("svg");
        let title = format!(
            "cairn bench: {mode}, {} clients{}",
            args.clients,
            args.batch
                .map_or(String::new(), |b| format!(", batches of {b}"))
        );
        plot(&svg, &title, &tl)?;
    }
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
        "client_cpu_us_per_op": per_op(cpu(cpu0.0, cpu1.0)),
        "server_cpu_us_per_op": per_op(cpu(cpu0.1, cpu1.1)),
        "receipts": format!("{:?}", args.receipts).to_lowercase(),
        "batch": args.batch,
        "latency_ms": {
            "p50": percentile(&l, 0.50),
            "p90": percentile(&l, 0.90),
            "p99": percentile(&l, 0.99),
            "p999": percentile(&l, 0.999),
            "max": percentile(&l, 1.0),
        },
        "timeline": tl,
    }))
}

/// Batches over one `AppendBatchStream`: `total` events in batches of
/// `size`, closed loop (up to 8 batches in flight, the server's window),
/// or with `rate` > 0 one batch every `size / rate` seconds (open loop).
async fn batch_client(
    mut client: crate::conn::Client,
    args: Arc<BenchArgs>,
    id: u64,
    total: u64,
    (size, rate): (usize, u64),
    tally: Arc<Tally>,
) {
    let sent_at: Arc<Mutex<std::collections::VecDeque<(Instant, usize)>>> = Arc::default();
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::AppendBatchRequest>(8);
    let (stamps, t2, a2) = (sent_at.clone(), tally.clone(), args.clone());
    tokio::spawn(async move {
        let mut tick = (rate > 0).then(|| {
            // The clients' ticks are spread over the period (client `id`
            // starts `id / clients` of a period late), as independent
            // producers would be: in phase, every client's batch would land
            // at once, and the figure would be a burst's, not a rate's.
            let period = Duration::from_secs_f64(size as f64 / rate as f64);
            let phase = period.mul_f64((id % a2.clients) as f64 / a2.clients.max(1) as f64);
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            t
        });
        let mut i = 0u64;
        while i < total {
            if let Some(t) = &mut tick {
                t.tick().await;
            }
            let n = (total - i).min(size as u64);
            let events: Vec<pb::AppendRequest> = (i..i + n)
                .map(|k| event(id * 1_000_000_000 + k, a2.event_size, a2.pii_density))
                .collect();
            let bytes: usize = events.iter().map(|e| e.event.len()).sum();
            t2.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            stamps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back((Instant::now(), events.len()));
            let req = pb::AppendBatchRequest {
                events,
                log: a2.log_for(id),
                receipt_form: a2.receipts.pb(),
            };
            if tx.send(req).await.is_err() {
                return;
            }
            i += n;
        }
    });
    let mut answers = match client
        .append_batch_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(_) => {
            tally.errors.fetch_add(total, Ordering::Relaxed);
            return;
        }
    };
    while let Some(r) = tokio_stream::StreamExt::next(&mut answers).await {
        let sent = sent_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        match (r, sent) {
            (Ok(resp), Some((t0, _))) => {
                let bad = resp.receipts.iter().filter(|r| r.error.is_some()).count();
                tally.ok_n(t0, resp.receipts.len() - bad);
                tally.errors.fetch_add(bad as u64, Ordering::Relaxed);
            }
            (_, sent) => {
                tally
                    .errors
                    .fetch_add(sent.map_or(1, |s| s.1) as u64, Ordering::Relaxed);
                break;
            }
        }
    }
}

/// OTLP/gRPC exports of `size` log records, one at a time (as an OTLP
/// exporter sends them); a record's latency is its export's.
async fn otlp_client(args: Arc<BenchArgs>, id: u64, total: u64, size: usize, tally: Arc<Tally>) {
    use cairn_api::opentelemetry::proto::collector::logs::v1 as collector;
    use cairn_api::opentelemetry::proto::common::v1 as common;
    use cairn_api::opentelemetry::proto::logs::v1 as logs;
    let channel = match args.server.channel().await {
        Ok(c) => c,
        Err(_) => {
            tally.errors.fetch_add(total, Ordering::Relaxed);
            return;
        }
    };
    let mut client = collector::logs_service_client::LogsServiceClient::new(channel);
    let mut i = 0u64;
    while i < total {
        let n = (total - i).min(size as u64);
        let records: Vec<logs::LogRecord> = (i..i + n)
            .map(|k| {
                let ev = event(id * 1_000_000_000 + k, args.event_size, args.pii_density);
                tally
                    .bytes
                    .fetch_add(ev.event.len() as u64, Ordering::Relaxed);
                logs::LogRecord {
                    time_unix_nano: 1_700_000_000_000_000_000 + k,
                    severity_number: 9,
                    body: Some(common::AnyValue {
                        value: Some(common::any_value::Value::StringValue(
                            String::from_utf8_lossy(&ev.event).into_owned(),
                        )),
                    }),
                    ..Default::default()
                }
            })
            .collect();
        let req = collector::ExportLogsServiceRequest {
            resource_logs: vec![logs::ResourceLogs {
                scope_logs: vec![logs::ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let t0 = Instant::now();
        match client.export(args.server.request(req)).await {
            Ok(r) => {
                let bad = r
                    .into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_log_records.max(0) as usize);
                tally.ok_n(t0, n as usize - bad.min(n as usize));
                tally.errors.fetch_add(bad as u64, Ordering::Relaxed);
            }
            Err(_) => {
                tally.errors.fetch_add(n, Ordering::Relaxed);
            }
        }
        i += n;
    }
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
            ev.receipt_form = args.receipts.pb();
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
