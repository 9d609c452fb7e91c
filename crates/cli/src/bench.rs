//! `cairn bench`: an open-loop load generator for appends. It sends unary
//! `Append`s at a fixed rate (whether or not earlier ones have returned, so
//! a slow server shows up as latency, not as a lower offered rate) and
//! reports the latency of durable receipts.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_server::pb;
use cairn_server::pb::log_client::LogClient;
use clap::Args;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// The log's gRPC address.
    #[arg(long, env = "CAIRN_SERVER", default_value = "http://127.0.0.1:7400")]
    server: String,
    /// Offered appends per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long to offer load, in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Approximate event size in bytes (each event carries an email).
    #[arg(long, default_value_t = 250)]
    event_size: usize,
    /// Offer the load over one `AppendStream` instead of unary `Append`s.
    #[arg(long)]
    stream: bool,
}

fn event(n: u64, pad: &str) -> pb::AppendRequest {
    pb::AppendRequest {
        event: format!(r#"{{"n":{n},"user":"u{n}@example.com","pad":"{pad}"}}"#).into_bytes(),
        content_type: pb::ContentType::Json as i32,
        policy: String::new(),
        idempotency_key: Vec::new(),
        wait_cosigned: false,
    }
}

/// Streaming mode: requests go out at the offered rate on one stream;
/// receipts come back in order, so each one's latency is its arrival time
/// minus its request's send time.
async fn bench_stream(
    mut client: LogClient<tonic::transport::Channel>,
    args: &BenchArgs,
    pad: String,
) -> Result<(Vec<u64>, u64, f64)> {
    let total = args.rate * args.duration;
    let sent_at: Arc<Mutex<Vec<Instant>>> =
        Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::AppendRequest>(65_536);
    let start = Instant::now();
    let rate = args.rate;
    let stamps = sent_at.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut sent = 0u64;
        while sent < total {
            tick.tick().await;
            let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
            while sent < due {
                stamps
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Instant::now());
                if tx.send(event(sent, &pad)).await.is_err() {
                    return;
                }
                sent += 1;
            }
        }
    });
    let mut receipts = client
        .append_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| anyhow::anyhow!("append stream: {} ({:?})", s.message(), s.code()))?
        .into_inner();
    let mut lat = Vec::with_capacity(total as usize);
    let mut errors = 0u64;
    let mut k = 0usize;
    while let Some(r) = tokio_stream::StreamExt::next(&mut receipts).await {
        let now = Instant::now();
        match r {
            Ok(_) => {
                let t0 = sent_at
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(k)
                    .copied();
                if let Some(t0) = t0 {
                    lat.push(now.duration_since(t0).as_micros() as u64);
                }
            }
            Err(_) => {
                errors += 1;
                break;
            }
        }
        k += 1;
    }
    Ok((lat, errors, start.elapsed().as_secs_f64()))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

pub(crate) fn bench(args: BenchArgs) -> Result<ExitCode> {
    if args.rate == 0 || args.duration == 0 {
        bail!("--rate and --duration must be positive");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let client = LogClient::connect(args.server.clone())
            .await
            .with_context(|| format!("connecting to {}", args.server))?;
        let pad = "x".repeat(args.event_size.saturating_sub(80));
        if args.stream {
            let (mut l, errors, elapsed) = bench_stream(client, &args, pad).await?;
            l.sort_unstable();
            println!(
                "{}",
                report(&args, args.rate * args.duration, &l, errors, elapsed)
            );
            return Ok(ExitCode::SUCCESS);
        }
        let latencies: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let total = args.rate * args.duration;
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        // One tick per millisecond; each sends its share of the rate.
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut sent = 0u64;
        while sent < total {
            tick.tick().await;
            let due = ((start.elapsed().as_secs_f64() * args.rate as f64) as u64).min(total);
            while sent < due {
                let mut c = client.clone();
                let (lat, err) = (latencies.clone(), errors.clone());
                let event = format!(r#"{{"n":{sent},"user":"u{sent}@example.com","pad":"{pad}"}}"#)
                    .into_bytes();
                tasks.push(tokio::spawn(async move {
                    let t = Instant::now();
                    let r = c
                        .append(pb::AppendRequest {
                            event,
                            content_type: pb::ContentType::Json as i32,
                            policy: String::new(),
                            idempotency_key: Vec::new(),
                            wait_cosigned: false,
                        })
                        .await;
                    match r {
                        Ok(_) => lat
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(t.elapsed().as_micros() as u64),
                        Err(_) => {
                            err.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }));
                sent += 1;
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let mut l = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
        l.sort_unstable();
        let errors = errors.load(std::sync::atomic::Ordering::Relaxed);
        println!("{}", report(&args, sent, &l, errors, elapsed));
        Ok(ExitCode::SUCCESS)
    })
}

fn report(
    args: &BenchArgs,
    sent: u64,
    sorted: &[u64],
    errors: u64,
    elapsed: f64,
) -> serde_json::Value {
    serde_json::json!({
        "mode": if args.stream { "stream" } else { "unary" },
        "offered_per_s": args.rate,
        "sent": sent,
        "ok": sorted.len(),
        "errors": errors,
        "elapsed_s": elapsed,
        "achieved_per_s": sorted.len() as f64 / elapsed,
        "latency_ms": {
            "p50": percentile(sorted, 0.50),
            "p90": percentile(sorted, 0.90),
            "p99": percentile(sorted, 0.99),
            "p999": percentile(sorted, 0.999),
            "max": percentile(sorted, 1.0),
        }
    })
}
