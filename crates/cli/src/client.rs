//! Client commands: `append`, `checkpoint`, `prove`, `get entries`,
//! `verify receipt`. Exit codes: 0 ok, 1 verification failure, 2 usage or
//! connection error.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use cairn_api as pb;
use cairn_client::{LogVerifier, TrustPolicy};
use cairn_core::encoding::{decode_base64, encode_base64};
use cairn_core::note::NoteVerifier;
use clap::{Args, Subcommand};

use crate::conn::ServerArg;
use tokio_stream::StreamExt;

#[derive(Args)]
pub(crate) struct AppendArgs {
    /// NDJSON events, one per line; `-` or absent for stdin.
    input: Option<PathBuf>,
    /// Wait until a checkpoint covering each entry meets the log's witness
    /// quorum; receipts then carry `cosigned_checkpoint` and
    /// `cosigned_inclusion_proof`.
    #[arg(long)]
    wait_cosigned: bool,
    /// Stop at the first rejected line: events are then sent one at a
    /// time, so nothing after that line is appended. Without it, every
    /// good line is appended and each rejected one reported.
    #[arg(long, conflicts_with = "batch")]
    fail_fast: bool,
    /// What each receipt carries: `full` (with the tlog-proof text),
    /// `proof` (the proof; checkpoints sent once), `index` (index and
    /// leaf hash).
    #[arg(long, value_enum, default_value = "full")]
    receipts: ReceiptFormArg,
    /// Send the lines in batches of this many (at most 1,000) over
    /// AppendBatchStream: the fastest way in.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1000), conflicts_with = "wait_cosigned")]
    batch: Option<u16>,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(Args)]
pub(crate) struct CheckpointArgs {
    /// The newest checkpoint that met the log's witness quorum, with the
    /// witnesses' cosignature lines.
    #[arg(long)]
    cosigned: bool,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(Subcommand)]
pub(crate) enum ProveCmd {
    /// Inclusion of one entry.
    Inclusion {
        /// The entry's index.
        #[arg(long, conflicts_with = "leaf_hash")]
        index: Option<u64>,
        /// The entry's leaf hash (base64).
        #[arg(long)]
        leaf_hash: Option<String>,
        /// Tree size (default: the latest checkpoint).
        #[arg(long)]
        size: Option<u64>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Consistency between two tree sizes.
    Consistency {
        /// The older size.
        #[arg(long)]
        old: u64,
        /// The newer size (default: the latest checkpoint).
        #[arg(long)]
        new: Option<u64>,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Subcommand)]
pub(crate) enum GetCmd {
    /// Stored (masked) entries in `[start, end)`, one JSON object per line.
    Entries {
        /// First index.
        #[arg(long)]
        start: u64,
        /// One past the last index.
        #[arg(long)]
        end: u64,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Subcommand)]
pub(crate) enum VerifyCmd {
    /// Checks a receipt (`cairn append` output line) or a tlog-proof file
    /// offline against the log's verifier key.
    Receipt {
        /// The receipt or tlog-proof file; `-` for stdin.
        file: PathBuf,
        /// The log's verifier key (`name+hex+base64`, as in log.vkey).
        #[arg(long)]
        vkey: String,
        /// The entry's leaf hash (base64): needed for a tlog-proof, which
        /// does not carry the leaf.
        #[arg(long)]
        leaf_hash: Option<String>,
        /// C2SP tlog-policy file: the witness quorum the checkpoint must
        /// meet (a receipt's `cosigned_checkpoint` is then the one checked).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
}

/// The multi-threaded Tokio runtime every command runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn b64s(v: &[Vec<u8>]) -> Vec<String> {
    v.iter().map(|h| encode_base64(h)).collect()
}

/// The receipt forms `cairn append --receipts` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReceiptFormArg {
    /// Leaf, checkpoint, inclusion proof and tlog-proof text, per receipt.
    Full,
    /// Inclusion proof; the checkpoint sent once per stream or batch (the
    /// printed receipt is the same as with `full`, but for the leaf).
    Proof,
    /// Index and leaf hash only (fetch proofs later with `cairn prove`).
    Index,
}

impl ReceiptFormArg {
    pub(crate) fn pb(self) -> i32 {
        match self {
            ReceiptFormArg::Full => pb::ReceiptForm::Full as i32,
            ReceiptFormArg::Proof => pb::ReceiptForm::Proof as i32,
            ReceiptFormArg::Index => pb::ReceiptForm::Index as i32,
        }
    }
}

/// One event read from the input, with its line number.
struct Line {
    no: u64,
    event: Vec<u8>,
}

/// Reads the input's non-blank lines (as bytes: a line that is not UTF-8
/// is the server's to refuse), in order.
fn read_lines(input: Box<dyn Read + Send>, mut each: impl FnMut(Line) -> bool) {
    let mut input = BufReader::new(input);
    let mut no = 0u64;
    loop {
        let mut buf = Vec::new();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        no += 1;
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if !each(Line { no, event: buf }) {
            break;
        }
    }
}

/// Writes one receipt as a JSON line: index, leaf hash, tree size, and,
/// when there are any, the checkpoint, the inclusion proof, the
/// cosigned checkpoint and the openings.
fn write_receipt(
    out: &mut impl Write,
    r: &pb::Receipt,
    checkpoint: Option<&pb::SignedCheckpoint>,
) -> Result<()> {
    // Written directly rather than through a `serde_json::Value`: this
    // runs once per appended event. Only notes need escaping; base64 and
    // numbers never do.
    write!(
        out,
        "{{\"index\":{},\"leaf_hash\":\"{}\",\"tree_size\":{}",
        r.index,
        encode_base64(&r.leaf_hash),
        r.checkpoint_size
    )?;
    if let Some(cp) = checkpoint {
        write!(out, ",\"checkpoint\":{}", serde_json::to_string(&cp.note)?)?;
    }
    if checkpoint.is_some() || !r.inclusion_proof.is_empty() {
        out.write_all(b",\"inclusion_proof\":[")?;
        for (i, h) in r.inclusion_proof.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(out, "{sep}\"{}\"", encode_base64(h))?;
        }
        out.write_all(b"]")?;
    }
    if let Some(c) = &r.cosigned_checkpoint {
        write!(
            out,
            ",\"cosigned_checkpoint\":{},\"cosigned_inclusion_proof\":{}",
            serde_json::to_string(&c.note)?,
            serde_json::to_string(&b64s(&r.cosigned_inclusion_proof))?
        )?;
    }
    if !r.openings.is_empty() {
        let openings: Vec<serde_json::Value> = r
            .openings
            .iter()
            .map(|o| serde_json::json!({"pointer": o.pointer, "detector": o.detector, "commitment": o.commitment, "salt": encode_base64(&o.salt), "value": o.value}))
            .collect();
        write!(out, ",\"openings\":{}", serde_json::Value::Array(openings))?;
    }
    out.write_all(b"}\n")?;
    Ok(())
}

/// Counts and reports the answers of `cairn append`, in input order.
struct Tally<W: Write> {
    out: W,
    appended: u64,
    rejected: u64,
    bar: Option<indicatif::ProgressBar>,
}

impl<W: Write> Tally<W> {
    /// One answer: a receipt (printed) or a refusal (reported by line).
    /// Returns whether it was appended.
    fn answer(
        &mut self,
        line: u64,
        r: &pb::Receipt,
        checkpoint: Option<&pb::SignedCheckpoint>,
    ) -> Result<bool> {
        if let Some(e) = &r.error {
            // The line number and the server's reason (no content).
            eprintln!(
                "cairn append: line {line}: {} ({:?})",
                e.message,
                tonic::Code::from(e.code)
            );
            self.rejected += 1;
            return Ok(false);
        }
        write_receipt(&mut self.out, r, checkpoint)?;
        self.appended += 1;
        if let Some(b) = &self.bar {
            b.set_message(format!("{} appended", self.appended));
            b.tick();
        }
        Ok(true)
    }

    fn stopped(&self, s: &tonic::Status) -> anyhow::Error {
        anyhow!(
            "append stopped after {} appended, {} rejected: {} ({:?})",
            self.appended,
            self.rejected,
            s.message(),
            s.code()
        )
    }
}

pub(crate) fn append(args: AppendArgs) -> Result<ExitCode> {
    let input: Box<dyn Read + Send> = match &args.input {
        None => Box::new(std::io::stdin()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin()),
        Some(p) => {
            Box::new(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?)
        }
    };
    let wait_cosigned = args.wait_cosigned;
    let log = args.server.log.clone();
    let fail_fast = args.fail_fast;
    let form = args.receipts;
    let batch = args.batch.map(usize::from);
    runtime()?.block_on(async move {
        let mut client = args.server.connect().await?;
        // The line number of every event sent, in order: answers come back
        // in request order, one each.
        let (lines_tx, lines_rx) = std::sync::mpsc::channel::<u64>();
        let mut tally = Tally {
            out: std::io::BufWriter::new(std::io::stdout().lock()),
            appended: 0,
            rejected: 0,
            bar: std::io::stderr()
                .is_terminal()
                .then(indicatif::ProgressBar::new_spinner),
        };
        if let Some(size) = batch {
            // Batches of up to `size` lines (and 4 MiB), over one
            // AppendBatchStream.
            let (tx, rx) = tokio::sync::mpsc::channel::<pb::AppendBatchRequest>(16);
            std::thread::spawn(move || {
                let new = || pb::AppendBatchRequest {
                    events: Vec::with_capacity(size),
                    log: log.clone(),
                    receipt_form: form.pb(),
                };
                let mut cur = new();
                let mut bytes = 0usize;
                let mut ok = true;
                read_lines(input, |l| {
                    if cur.events.len() == size || bytes + l.event.len() > (4 << 20) {
                        let full = std::mem::replace(&mut cur, new());
                        bytes = 0;
                        if tx.blocking_send(full).is_err() {
                            ok = false;
                            return false;
                        }
                    }
                    bytes += l.event.len();
                    cur.events.push(pb::AppendRequest {
                        event: l.event,
                        content_type: pb::ContentType::Json as i32,
                        ..Default::default()
                    });
                    lines_tx.send(l.no).is_ok()
                });
                if ok && !cur.events.is_empty() {
                    let _ = tx.blocking_send(cur);
                }
            });
            let mut responses = client
                .append_batch_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .map_err(|s| anyhow!("append: {} ({:?})", s.message(), s.code()))?
                .into_inner();
            while let Some(resp) = responses.next().await {
                let resp = resp.map_err(|s| tally.stopped(&s))?;
                for r in &resp.receipts {
                    let line = lines_rx.recv().unwrap_or(0);
                    let cp = resp
                        .checkpoints
                        .iter()
                        .find(|c| c.size == r.checkpoint_size && form != ReceiptFormArg::Index);
                    tally.answer(line, r, cp)?;
                }
            }
        } else {
            let (tx, rx) = tokio::sync::mpsc::channel::<pb::AppendRequest>(1024);
            // With --fail-fast, one event in flight: the next is sent only
            // once the previous one was appended.
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            std::thread::spawn(move || {
                read_lines(input, |l| {
                    let req = pb::AppendRequest {
                        event: l.event,
                        content_type: pb::ContentType::Json as i32,
                        wait_cosigned,
                        log: log.clone(),
                        receipt_form: form.pb(),
                        ..Default::default()
                    };
                    lines_tx.send(l.no).is_ok()
                        && tx.blocking_send(req).is_ok()
                        && (!fail_fast || go_rx.recv().is_ok())
                });
            });
            let mut receipts = client
                .append_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .map_err(|s| anyhow!("append: {} ({:?})", s.message(), s.code()))?
                .into_inner();
            let mut go = fail_fast.then_some(go_tx);
            // PROOF receipts leave out the checkpoint the stream sent last.
            let mut last_checkpoint: Option<pb::SignedCheckpoint> = None;
            while let Some(r) = receipts.next().await {
                let r = r.map_err(|s| tally.stopped(&s))?;
                let line = lines_rx.recv().unwrap_or(0);
                if let Some(cp) = &r.checkpoint {
                    last_checkpoint = Some(cp.clone());
                }
                let cp = match form {
                    ReceiptFormArg::Index => None,
                    _ => last_checkpoint.as_ref(),
                };
                if tally.answer(line, &r, cp)? {
                    if let Some(g) = &go {
                        let _ = g.send(());
                    }
                } else if fail_fast {
                    // The reader stops; nothing after this line was sent.
                    go = None;
                }
            }
            drop(go);
        }
        tally.out.flush()?;
        if let Some(b) = &tally.bar {
            b.finish_and_clear();
        }
        eprintln!(
            "cairn append: {} appended, {} rejected",
            tally.appended, tally.rejected
        );
        Ok(if tally.rejected == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

pub(crate) fn checkpoint(args: CheckpointArgs) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        let cp = args
            .server
            .connect()
            .await?
            .get_checkpoint(pb::GetCheckpointRequest {
                cosigned: args.cosigned,
                log: args.server.log.clone(),
            })
            .await
            .map_err(|s| anyhow!("{} ({:?})", s.message(), s.code()))?
            .into_inner();
        print!("{}", cp.note);
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn prove(cmd: ProveCmd) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            ProveCmd::Inclusion {
                index,
                leaf_hash,
                size,
                server,
            } => {
                let leaf = match (index, leaf_hash) {
                    (Some(i), None) => pb::get_inclusion_proof_request::Leaf::Index(i),
                    (None, Some(h)) => pb::get_inclusion_proof_request::Leaf::LeafHash(
                        decode_base64(&h).map_err(|_| anyhow!("--leaf-hash is not base64"))?,
                    ),
                    _ => return Err(anyhow!("give --index or --leaf-hash")),
                };
                let p = server.connect()
                    .await?
                    .get_inclusion_proof(pb::GetInclusionProofRequest {
                        leaf: Some(leaf),
                        tree_size: size.unwrap_or(0),
                        log: server.log.clone(),
                    })
                    .await
                    .map_err(|s| anyhow!("{} ({:?})", s.message(), s.code()))?
                    .into_inner();
                println!(
                    "{}",
                    serde_json::json!({"index": p.index, "tree_size": p.tree_size, "leaf_hash": encode_base64(&p.leaf_hash), "proof": b64s(&p.proof)})
                );
            }
            ProveCmd::Consistency { old, new, server } => {
                let p = server.connect()
                    .await?
                    .get_consistency_proof(pb::GetConsistencyProofRequest {
                        old_size: old,
                        new_size: new.unwrap_or(0),
                        log: server.log.clone(),
                    })
                    .await
                    .map_err(|s| anyhow!("{} ({:?})", s.message(), s.code()))?
                    .into_inner();
                println!(
                    "{}",
                    serde_json::json!({"old_size": p.old_size, "new_size": p.new_size, "proof": b64s(&p.proof)})
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn get(cmd: GetCmd) -> Result<ExitCode> {
    let GetCmd::Entries { start, end, server } = cmd;
    runtime()?.block_on(async move {
        let mut s = server
            .connect()
            .await?
            .get_entries(pb::GetEntriesRequest {
                start,
                end,
                log: server.log.clone(),
            })
            .await
            .map_err(|s| anyhow!("{} ({:?})", s.message(), s.code()))?
            .into_inner();
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        while let Some(e) = s.next().await {
            let e = e.map_err(|s| anyhow!("{} ({:?})", s.message(), s.code()))?;
            let leaf: serde_json::Value =
                serde_json::from_slice(&e.leaf).unwrap_or(serde_json::Value::Null);
            writeln!(
                out,
                "{}",
                serde_json::json!({"index": e.index, "leaf": leaf})
            )?;
        }
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn verify(cmd: VerifyCmd) -> Result<ExitCode> {
    let VerifyCmd::Receipt {
        file,
        vkey,
        leaf_hash: given_hash,
        policy,
    } = cmd;
    let vk = NoteVerifier::parse(vkey.trim()).map_err(|e| anyhow!("--vkey: {e}"))?;
    let verifier = match &policy {
        None => LogVerifier::log_only(vk),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            LogVerifier::new(
                vk,
                TrustPolicy::parse(&p.display().to_string(), &text).map_err(|e| anyhow!("{e}"))?,
            )
        }
    };
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
    }
    let result = if text.starts_with(cairn_core::tlog_proof::HEADER) {
        let Some(h) = given_hash else {
            return Err(anyhow!(
                "a tlog-proof does not carry the leaf: give --leaf-hash"
            ));
        };
        let lh = cairn_core::Hash::from_base64(&h).map_err(|e| anyhow!("--leaf-hash: {e}"))?;
        verifier
            .verify_tlog_proof(&text, &lh)
            .map(|_| ())
            .map_err(|e| anyhow!("{e}"))
    } else {
        verify_receipt_json(&text, &verifier)
    };
    match result {
        Ok(()) => {
            println!("ok");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("cairn verify: FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// A receipt line from `cairn append`: signature (and quorum), then
/// inclusion of the leaf. With a policy that needs witnesses, the
/// receipt's cosigned checkpoint and proof are the ones checked.
fn verify_receipt_json(text: &str, verifier: &LogVerifier) -> Result<()> {
    let j: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| anyhow!("not a receipt: {e}"))?;
    let field = |k: &str| j.get(k).ok_or_else(|| anyhow!("receipt has no {k:?}"));
    let (cp_field, proof_field) = if verifier.policy().needs_no_witness() {
        ("checkpoint", "inclusion_proof")
    } else {
        ("cosigned_checkpoint", "cosigned_inclusion_proof")
    };
    let note = field(cp_field)?
        .as_str()
        .ok_or_else(|| anyhow!("{cp_field} is not text"))?;
    let cp = verifier
        .verify_checkpoint(note.as_bytes())
        .map_err(|e| anyhow!("{e}"))?
        .checkpoint;
    let index = field("index")?
        .as_u64()
        .ok_or_else(|| anyhow!("bad index"))?;
    let lh = cairn_core::Hash::from_base64(field("leaf_hash")?.as_str().unwrap_or_default())
        .map_err(|e| anyhow!("leaf_hash: {e}"))?;
    let path = field(proof_field)?
        .as_array()
        .ok_or_else(|| anyhow!("{proof_field} is not a list"))?
        .iter()
        .map(|h| {
            cairn_core::Hash::from_base64(h.as_str().unwrap_or_default())
                .map_err(|e| anyhow!("proof: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    LogVerifier::verify_inclusion(&lh, cairn_core::LeafIndex(index), &cp, &path)
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum LogCmd {
    /// Every log of the server: name, state, size, origin, verifier key.
    List {
        /// One JSON object per log instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Freeze a log for good (admin token): its final checkpoint is the
    /// latest, appends are refused from now on, reads and proofs go on.
    Freeze {
        /// The log to freeze (named explicitly: there is no default).
        name: String,
        #[command(flatten)]
        server: ServerArg,
    },
}

fn log_state(l: &pb::LogInfo) -> String {
    if !l.unhealthy.is_empty() {
        format!("UNHEALTHY: {}", l.unhealthy)
    } else if l.frozen {
        "frozen".into()
    } else {
        "writing".into()
    }
}

/// `cairn log list|freeze`.
pub(crate) fn log(cmd: LogCmd) -> Result<ExitCode> {
    let status = |s: tonic::Status| anyhow!("{} ({:?})", s.message(), s.code());
    runtime()?.block_on(async move {
        match cmd {
            LogCmd::List { json, server } => {
                let logs = server
                    .connect()
                    .await?
                    .list_logs(pb::ListLogsRequest {})
                    .await
                    .map_err(status)?
                    .into_inner()
                    .logs;
                let mut out = std::io::stdout().lock();
                for l in &logs {
                    let size = l.checkpoint.as_ref().map(|c| c.size);
                    if json {
                        let v = serde_json::json!({
                            "name": l.name,
                            "origin": l.origin,
                            "vkey": l.vkey,
                            "size": size,
                            "frozen": l.frozen,
                            "unhealthy": (!l.unhealthy.is_empty()).then_some(&l.unhealthy),
                            "default": l.is_default,
                        });
                        writeln!(out, "{v}")?;
                    } else {
                        let mark = if l.is_default { " (default)" } else { "" };
                        writeln!(
                            out,
                            "{}{mark}\t{}\tsize {}\t{}\t{}",
                            l.name,
                            log_state(l),
                            size.map_or("-".into(), |s| s.to_string()),
                            l.origin,
                            l.vkey
                        )?;
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            LogCmd::Freeze { name, server } => {
                let l = server
                    .connect()
                    .await?
                    .freeze_log(pb::FreezeLogRequest { log: name })
                    .await
                    .map_err(status)?
                    .into_inner();
                let size = l.checkpoint.as_ref().map_or(0, |c| c.size);
                eprintln!(
                    "cairn log: {:?} is frozen at size {size}; its final checkpoint:",
                    l.name
                );
                print!("{}", l.checkpoint.map(|c| c.note).unwrap_or_default());
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// `cairn erase`: destroy a data subject's key (admin token).
#[derive(clap::Args)]
pub(crate) struct EraseArgs {
    /// The subject's identifier, as the policy's `subject` pointer finds it
    /// in events (or the encrypted value itself). Prefer
    /// `--subject-stdin`: a flag shows in the process list.
    #[arg(
        long,
        conflicts_with = "subject_stdin",
        required_unless_present = "subject_stdin"
    )]
    subject: Option<String>,
    /// Read the identifier from the first line of stdin.
    #[arg(long)]
    subject_stdin: bool,
    /// Why (required; recorded in the log, masked like an event).
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    server: ServerArg,
}

/// `cairn reveal`: decrypt one field of one entry (reveal token).
#[derive(clap::Args)]
pub(crate) struct RevealArgs {
    /// The entry's index.
    #[arg(long)]
    index: u64,
    /// JSON pointer to the field in the entry's body (as in its `masked`
    /// list); empty for a text event.
    #[arg(long, default_value = "")]
    pointer: String,
    /// Why (required; recorded in the log, masked like an event).
    #[arg(long)]
    purpose: String,
    #[command(flatten)]
    server: ServerArg,
}

fn receipt_summary(r: Option<&pb::Receipt>) -> serde_json::Value {
    match r {
        Some(r) => serde_json::json!({
            "index": r.index,
            "leaf_hash": encode_base64(&r.leaf_hash),
            "checkpoint_size": r.checkpoint.as_ref().map(|c| c.size),
            "tlog_proof": r.tlog_proof,
        }),
        None => serde_json::Value::Null,
    }
}

/// `cairn erase`: prints the erasure record's receipt (JSON).
pub(crate) fn erase(args: EraseArgs) -> Result<ExitCode> {
    let subject = zeroize::Zeroizing::new(match args.subject {
        Some(s) => s,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    });
    runtime()?.block_on(async move {
        let r = args
            .server
            .connect()
            .await?
            .erase(pb::EraseRequest {
                log: args.server.log.clone(),
                subject: subject.to_string(),
                reason: args.reason,
            })
            .await
            .map_err(|s| anyhow!("{} ({:?})", s.message(), s.code()))?
            .into_inner();
        let v = serde_json::json!({
            "subject_key_id": r.subject_key_id,
            "existed": r.existed,
            "erasure_record": receipt_summary(r.record.as_ref()),
        });
        println!("{v}");
        Ok(ExitCode::SUCCESS)
    })
}

/// `cairn reveal`: prints the plaintext (stdout) and the access record's
/// receipt (stderr, JSON).
pub(crate) fn reveal(args: RevealArgs) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        let r = args
            .server
            .connect()
            .await?
            .reveal(pb::RevealRequest {
                log: args.server.log.clone(),
                index: args.index,
                pointer: args.pointer,
                purpose: args.purpose,
            })
            .await
            .map_err(|s| anyhow!("{} ({:?})", s.message(), s.code()))?
            .into_inner();
        let plain = zeroize::Zeroizing::new(r.plaintext);
        eprintln!(
            "{}",
            serde_json::json!({ "access_record": receipt_summary(r.record.as_ref()) })
        );
        println!("{}", &*plain);
        Ok(ExitCode::SUCCESS)
    })
}
