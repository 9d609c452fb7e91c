//! `cairn audit`: check that a log only ever grows.
//!
//! Exit codes: 0 all good; 1 a verification failure (an evidence file is
//! written) or raw PII found by `--full`; 2 usage or connection errors.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use cairn_api as pb;
use cairn_client::audit::{AuditState, FullAudit, check_advance};
use cairn_client::evidence::{Evidence, EvidenceKind};
use cairn_client::{LogVerifier, TrustPolicy};
use cairn_core::checkpoint::VerifiedCheckpoint;
use cairn_core::{Hash, NoteVerifier};
use clap::Args;
use tokio_stream::StreamExt;

#[derive(Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    server: crate::conn::ServerArg,
    /// The log's verifier key, or a file holding it (e.g. log.vkey).
    #[arg(long)]
    vkey: String,
    /// State file holding the trusted checkpoint; created on first run,
    /// replaced atomically after each verified step.
    #[arg(long)]
    state: PathBuf,
    /// C2SP tlog-policy file: the witnesses and the quorum a checkpoint
    /// needs. Without it, the log's signature alone is checked.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Keep watching new checkpoints (WatchCheckpoints, or polling).
    #[arg(long)]
    follow: bool,
    /// Also download every entry, recompute the root, check leaf format v1
    /// and re-scan bodies for raw PII (reported by index, pointer and
    /// detector; never the value).
    #[arg(long)]
    full: bool,
    /// Where to write evidence on a verification failure.
    /// [default: <state>.evidence.json]
    #[arg(long)]
    evidence: Option<PathBuf>,
    /// Polling interval for --follow when watching is not possible, in ms.
    #[arg(long, default_value_t = 2000)]
    poll_ms: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Usage or connection trouble (exit 2) versus a finding (exit 1).
enum Stop {
    Usage(anyhow::Error),
    Failed(Box<Evidence>),
    Pii(usize),
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Self {
        Stop::Usage(e)
    }
}

fn status(s: tonic::Status) -> Stop {
    Stop::Usage(anyhow!("{} ({:?})", s.message(), s.code()))
}

struct Auditor {
    client: crate::conn::Client,
    verifier: LogVerifier,
    state_path: PathBuf,
    trusted: Option<AuditState>,
    cosigned: bool,
    full: Option<FullAudit>,
    pii_reported: usize,
    /// The log on the server (empty: its default log).
    log: String,
}

impl Auditor {
    async fn fetch_checkpoint(&mut self) -> Result<String, Stop> {
        let r = self
            .client
            .get_checkpoint(pb::GetCheckpointRequest {
                cosigned: self.cosigned,
                log: self.log.clone(),
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().note)
    }

    /// Verifies `note` and its consistency with the trusted state; on
    /// success, makes it the trusted state.
    async fn step(&mut self, note: &str) -> Result<(), Stop> {
        let v: VerifiedCheckpoint =
            self.verifier
                .verify_checkpoint(note.as_bytes())
                .map_err(|e| {
                    Stop::Failed(Box::new(Evidence {
                        kind: EvidenceKind::BadCheckpoint,
                        origin: self.verifier.origin().to_owned(),
                        observed_at: now(),
                        source: "auditor".into(),
                        checkpoints: vec![note.to_owned()],
                        proof: vec![],
                        detail: format!("the log served a checkpoint that does not verify: {e}"),
                    }))
                })?;
        let proof = match &self.trusted {
            Some(t) if t.size > 0 && t.size < v.checkpoint.size.0 => {
                self.client
                    .get_consistency_proof(pb::GetConsistencyProofRequest {
                        old_size: t.size,
                        new_size: v.checkpoint.size.0,
                        log: self.log.clone(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner()
                    .proof
            }
            _ => Vec::new(),
        };
        let proof: Vec<Hash> = proof
            .iter()
            .map(|h| Hash::from_slice(h))
            .collect::<Result<_, _>>()
            .map_err(|_| Stop::Usage(anyhow!("the log sent a proof hash that is not 32 bytes")))?;
        check_advance(self.trusted.as_ref(), &v, note, &proof, now()).map_err(|f| {
            eprintln!("cairn audit: VERIFICATION FAILED: {}", f.error);
            Stop::Failed(Box::new(f.evidence))
        })?;
        if self.full.is_some() {
            self.full_audit(&v, note).await?;
        }
        let next = AuditState::from_verified(&v, note);
        next.save(&self.state_path)
            .map_err(|e| Stop::Usage(anyhow!("{e}")))?;
        let grew = self.trusted.as_ref().map_or(0, |t| t.size);
        println!(
            "{}",
            serde_json::json!({
                "verified": true,
                "size": v.checkpoint.size.0,
                "root": v.checkpoint.root.to_base64(),
                "previous_size": grew,
                "cosignatures": v.cosignatures.len(),
            })
        );
        self.trusted = Some(next);
        Ok(())
    }

    /// Downloads the entries the full audit has not seen yet, up to `v`'s
    /// size, and checks the recomputed root.
    async fn full_audit(&mut self, v: &VerifiedCheckpoint, note: &str) -> Result<(), Stop> {
        let Some(full) = self.full.as_mut() else {
            return Ok(());
        };
        let target = v.checkpoint.size.0;
        let start = full.count();
        let bar = (std::io::stderr().is_terminal() && target > start).then(|| {
            let b = indicatif::ProgressBar::new(target - start);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} entries {pos}/{len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        let mut at = start;
        while at < target {
            let end = (at + 65_536).min(target);
            let mut s = self
                .client
                .get_entries(pb::GetEntriesRequest {
                    start: at,
                    end,
                    log: self.log.clone(),
                })
                .await
                .map_err(status)?
                .into_inner();
            while let Some(e) = s.next().await {
                let e = e.map_err(status)?;
                full.push(e.index, &e.leaf)
                    .map_err(|err| Stop::Usage(anyhow!("{err}")))?;
                at = e.index + 1;
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
            if at < end {
                return Err(Stop::Usage(anyhow!(
                    "the log's entry stream ended early at {at}"
                )));
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let root = full.root().map_err(|e| Stop::Usage(anyhow!("{e}")))?;
        if root != v.checkpoint.root {
            return Err(Stop::Failed(Box::new(Evidence {
                kind: EvidenceKind::BadCheckpoint,
                origin: v.checkpoint.origin.clone(),
                observed_at: now(),
                source: "auditor --full".into(),
                checkpoints: vec![note.to_owned()],
                proof: vec![],
                detail: format!(
                    "the log's {} entries hash to root {}, but its signed checkpoint says {}",
                    target,
                    root.to_base64(),
                    v.checkpoint.root.to_base64()
                ),
            })));
        }
        for m in &full.malformed {
            eprintln!(
                "cairn audit: entry {} is not leaf format v1: {}",
                m.index, m.reason
            );
        }
        let mut out = std::io::stdout().lock();
        for f in full.findings.iter().skip(self.pii_reported) {
            let _ = writeln!(
                out,
                "{}",
                serde_json::json!({"privacy": "raw PII", "index": f.index, "pointer": f.pointer, "detector": f.detector})
            );
        }
        self.pii_reported = full.findings.len();
        eprintln!(
            "cairn audit: full audit of {target} entries: root matches; {} malformed, {} raw PII finding(s)",
            full.malformed.len(),
            full.findings.len()
        );
        Ok(())
    }

    async fn follow(&mut self, poll: Duration) -> Result<(), Stop> {
        loop {
            match self
                .client
                .watch_checkpoints(pb::WatchCheckpointsRequest {
                    log: self.log.clone(),
                })
                .await
            {
                Ok(stream) if !self.cosigned => {
                    let mut stream = stream.into_inner();
                    while let Some(cp) = stream.next().await {
                        let Ok(cp) = cp else { break };
                        if self.trusted.as_ref().is_some_and(|t| t.note == cp.note) {
                            continue;
                        }
                        self.step(&cp.note).await?;
                    }
                }
                _ => {
                    // Cosigned checkpoints are not pushed: poll.
                    tokio::time::sleep(poll).await;
                    let note = self.fetch_checkpoint().await?;
                    if self.trusted.as_ref().is_none_or(|t| t.note != note) {
                        self.step(&note).await?;
                    }
                    continue;
                }
            }
            tokio::time::sleep(poll).await;
        }
    }
}

fn read_vkey(arg: &str) -> Result<NoteVerifier> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))?
    } else {
        arg.to_owned()
    };
    NoteVerifier::parse(text.trim()).map_err(|e| anyhow!("--vkey: {e}"))
}

pub(crate) fn audit(args: AuditArgs) -> Result<ExitCode> {
    let evidence_path = args.evidence.clone().unwrap_or_else(|| {
        let mut p = args.state.as_os_str().to_owned();
        p.push(".evidence.json");
        PathBuf::from(p)
    });
    let rt = crate::client::runtime()?;
    let result = rt.block_on(run(args));
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Stop::Usage(e)) => Err(e),
        Err(Stop::Pii(n)) => {
            eprintln!("cairn audit: {n} raw PII finding(s) in stored entries (listed on stdout)");
            Ok(ExitCode::from(1))
        }
        Err(Stop::Failed(e)) => {
            let json = serde_json::to_vec_pretty(&e)?;
            cairn_client::fsutil::atomic_write(&evidence_path, &json)
                .with_context(|| format!("writing evidence to {}", evidence_path.display()))?;
            eprintln!(
                "cairn audit: VERIFICATION FAILED ({:?}): {}\ncairn audit: evidence written to {}",
                e.kind,
                e.detail,
                evidence_path.display()
            );
            Ok(ExitCode::from(1))
        }
    }
}

async fn run(args: AuditArgs) -> Result<(), Stop> {
    let log_key = read_vkey(&args.vkey)?;
    let policy = match &args.policy {
        None => TrustPolicy::log_only(log_key.clone()),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let pol =
                TrustPolicy::parse(&p.display().to_string(), &text).map_err(|e| anyhow!("{e}"))?;
            if !pol.logs.is_empty() && !pol.logs.iter().any(|l| l.verifier == log_key) {
                return Err(Stop::Usage(anyhow!(
                    "{}: the policy does not list the log key given with --vkey",
                    p.display()
                )));
            }
            pol
        }
    };
    let cosigned = !policy.needs_no_witness();
    let verifier = LogVerifier::new(log_key, policy);
    let trusted = AuditState::load(&args.state, &verifier).map_err(|e| anyhow!("{e}"))?;
    let client = args.server.connect().await?;
    let full = if args.full {
        Some(FullAudit::new(verifier.origin()).map_err(|e| anyhow!("{e}"))?)
    } else {
        None
    };
    let mut a = Auditor {
        client,
        verifier,
        state_path: args.state.clone(),
        trusted,
        cosigned,
        full,
        pii_reported: 0,
        log: args.server.log.clone(),
    };
    let note = a.fetch_checkpoint().await?;
    a.step(&note).await?;
    if args.follow {
        a.follow(Duration::from_millis(args.poll_ms.max(10)))
            .await?;
    }
    match &a.full {
        Some(f) if !f.findings.is_empty() => Err(Stop::Pii(f.findings.len())),
        _ => Ok(()),
    }
}
