//! Power loss: Cairn's files live on `cairn-powercut` (a FUSE file system
//! that keeps every write not yet synced apart, crates/powercut), and the
//! power is cut at random moments under load. After each cut the process
//! is killed, the file system is mounted again with only what was synced,
//! and the program restarts on it. Process crashes (`crash_torture.rs`)
//! keep the page cache; this does not.
//!
//! Scenarios (each cut either drops every unsynced operation or keeps a
//! random prefix of them, alternately):
//!
//! - **log**: `cairn serve` with four appending streams. After each cut the
//!   server starts without help; every acknowledged receipt is at its index
//!   with its leaf hash; every checkpoint ever returned is consistent with
//!   the recovered tree; the fork guard (read before the server starts) is
//!   never behind a checkpoint a client was given.
//! - **witness**: `cairn witness` cosigning a growing log. After each cut
//!   it keeps its key, holds at least the last size it cosigned, refuses a
//!   second root for that size (422), and keeps every split-view evidence
//!   record it answered for.
//! - **auditor**: `cairn audit` runs against a growing log, one after the
//!   other, some against a fork (exit 1, evidence file). After each cut the
//!   state file holds at least the last size an audit reported, and every
//!   evidence file an audit reported is there.
//! - **a lying disk** (`cairn-powercut --lie`: syncs answer success and do
//!   nothing): the log scenario must find the loss in every run where one
//!   was possible, so the checks above can fail.
//!
//! `CAIRN_POWER_CUTS` sets the total number of cuts over the three
//! scenarios (default 24: the CI run); `CAIRN_POWER_SEED` fixes the random
//! schedule. The long form (docs/testing.md):
//! `CAIRN_POWER_CUTS=200 cargo test --workspace --test power_loss -- --nocapture`
//!
//! Needs `/dev/fuse` and `fusermount3` (Debian's `fuse3`, installed by
//! scripts/deps.sh) and the `cairn-powercut` binary, which
//! `cargo test --workspace` builds beside `cairn`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../crates/cli/tests/common/mod.rs"]
mod common;
#[path = "support/log_checks.rs"]
mod log_checks;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_client::LogVerifier;
use cairn_core::{MemoryLog, NoteSigner, NoteVerifier};
use cairn_storage::guard::ForkGuard;
use common::{add_checkpoint_body, cairn, grow, post_add_checkpoint, try_start, try_start_witness};
use log_checks::{Seen, appender, check};

/// A small deterministic generator (xorshift64) for the schedule.
struct Rand(u64);
impl Rand {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn powercut_bin() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_cairn")).with_file_name("cairn-powercut")
}

/// Whether FUSE and the harness are here (a failure under CI if not).
fn fuse_here() -> bool {
    let fusermount = Command::new("fusermount3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    cairn_server::testing::require(
        Path::new("/dev/fuse").exists() && fusermount && powercut_bin().exists(),
        "FUSE (/dev/fuse; fusermount3 from Debian's fuse3) or the cairn-powercut binary (built by `cargo test --workspace`)",
    )
}

fn detach(mnt: &Path) {
    cairn_powercut::detach(mnt).unwrap_or_else(|e| panic!("{e}"));
}

/// A mounted `cairn-powercut`.
struct Disk {
    mnt: PathBuf,
    child: Option<(Child, ChildStdin, BufReader<ChildStdout>)>,
}

impl Disk {
    fn mount(backing: &Path, mnt: &Path, lie: bool, seed: u64) -> Disk {
        std::fs::create_dir_all(mnt).unwrap();
        let mut cmd = Command::new(powercut_bin());
        cmd.arg("--backing")
            .arg(backing)
            .arg("--mountpoint")
            .arg(mnt)
            .args(["--seed", &seed.to_string()]);
        if lie {
            cmd.arg("--lie");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.starts_with("ready"), "cairn-powercut: {line:?}");
        Disk {
            mnt: mnt.to_owned(),
            child: Some((child, stdin, out)),
        }
    }

    /// Cuts the power: `prefix` keeps a random prefix of the unsynced
    /// operations, else none. Returns the harness's report.
    fn cut(&mut self, prefix: bool) -> String {
        let (mut child, mut stdin, mut out) = self.child.take().unwrap();
        writeln!(stdin, "{}", if prefix { "cut-prefix" } else { "cut" }).unwrap();
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(child.wait().unwrap().success(), "cairn-powercut: {line}");
        detach(&self.mnt);
        line.trim().to_owned()
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if let Some((mut c, _, _)) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        detach(&self.mnt);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// What a run of the log scenario saw (summed over its logs).
#[derive(Debug, Default)]
struct LogRun {
    cuts: usize,
    acked: usize,
    checkpoints: usize,
    final_size: u64,
    /// Rounds whose cut could lose something (receipts came back).
    rounds_with_receipts: usize,
    /// Receipts returned while the disk was lying.
    lied_receipts: usize,
}

/// Cuts in one log's life: every restart reads the whole tree back, so a
/// long run is several logs (bounded work per cut) rather than one huge one.
const CUTS_PER_LOG: usize = 8;

/// The log scenario: `cuts` power cuts under load, over as many logs as
/// needed (at most [`CUTS_PER_LOG`] each). Sums what the logs saw, or
/// returns the first finding.
fn log_scenario(cuts: usize, rand: &mut Rand) -> Result<LogRun, (LogRun, String)> {
    let mut total = LogRun::default();
    let mut left = cuts;
    while left > 0 {
        let n = left.min(CUTS_PER_LOG);
        let run = log_life(n, rand, false)?;
        total.cuts += run.cuts;
        total.acked += run.acked;
        total.checkpoints += run.checkpoints;
        total.final_size += run.final_size;
        total.rounds_with_receipts += run.rounds_with_receipts;
        left -= n;
    }
    Ok(total)
}

/// One log's life: `cuts` power cuts under four appending streams. With
/// `lie`, every mount after the first is a lying disk. Returns what it saw,
/// or the first finding (with what was seen up to it).
fn log_life(cuts: usize, rand: &mut Rand, lie: bool) -> Result<LogRun, (LogRun, String)> {
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("backing");
    let mnt = tmp.path().join("mnt");
    // The data folder and its fork guard (`log.guard`, beside it) are both
    // on the cut file system.
    let data = mnt.join("log");
    let rt = runtime();
    let mut run = LogRun::default();
    let mut acked = Vec::new();
    let mut seen = Seen::default();
    let mut verifier: Option<LogVerifier> = None;
    for round in 0..=cuts {
        let mut disk = Disk::mount(&backing, &mnt, lie && round > 0, rand.next());
        // The guard never lags a checkpoint a client was given. (A finding
        // here is reported with what the server then shows, not instead.)
        let mut guard_finding: Option<String> = None;
        if round > 0 {
            let guarded = ForkGuard::new(ForkGuard::default_path(&data))
                .read()
                .map_err(|e| e.to_string())
                .and_then(|r| r.ok_or_else(|| "the fork guard is gone".to_owned()));
            guard_finding = match guarded {
                Ok(g) if g.size.0 >= seen.max_size() => None,
                Ok(g) => Some(format!(
                    "the fork guard holds size {}, but a client was given {}",
                    g.size,
                    seen.max_size()
                )),
                Err(e) => Some(e),
            };
        }
        let fail = |run: LogRun, e: String| {
            let all = match &guard_finding {
                Some(g) => format!("{g}; {e}"),
                None => e,
            };
            Err((run, format!("after cut {round}: {all}")))
        };
        let started = try_start(&mut common::quiet_serve(&data));
        let common::Started {
            serving,
            port,
            stderr,
            ..
        } = match started {
            Ok(s) => s,
            Err(e) => return fail(run, e),
        };
        common::drain(stderr);
        let server = format!("http://127.0.0.1:{port}");
        let v = verifier.get_or_insert_with(|| {
            let vkey = std::fs::read_to_string(data.join("log.vkey")).unwrap();
            LogVerifier::log_only(NoteVerifier::parse(vkey.trim()).unwrap())
        });
        match rt.block_on(check(&server, v, &acked, &mut seen)) {
            Ok(size) => run.final_size = size,
            Err(e) => return fail(run, e),
        }
        if guard_finding.is_some() {
            return fail(run, "the log itself checks out".to_owned());
        }
        if round == cuts {
            break;
        }
        // Load, then the cut at a random moment.
        let out = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..4)
            .map(|id| rt.spawn(appender(server.clone(), id, out.clone())))
            .collect();
        std::thread::sleep(Duration::from_millis(200 + rand.below(800)));
        // Every other cut keeps a random prefix; on the lying disk every
        // cut drops all (a prefix may happen to keep everything, and then
        // nothing was lost to catch).
        let report = disk.cut(!lie && round % 2 == 1);
        drop(serving); // SIGKILL
        for t in tasks {
            let _ = rt.block_on(t);
        }
        let got = std::mem::take(&mut *out.lock().unwrap());
        if let Err(e) = seen.add_receipts(v, &got) {
            return fail(run, e);
        }
        eprintln!("log, cut {}: {} receipts; {report}", round + 1, got.len());
        run.cuts += 1;
        run.rounds_with_receipts += usize::from(!got.is_empty());
        run.acked += got.len();
        if lie && round > 0 {
            run.lied_receipts += got.len();
        }
        acked.extend(got);
        run.checkpoints = seen.roots.len();
    }
    Ok(run)
}

const WITNESSED: &str = "example.com/witnessed";

/// The witness scenario: `cuts` power cuts while checkpoints stream in.
/// Returns the number of cosignatures and split views it answered.
fn witness_scenario(cuts: usize, rand: &mut Rand) -> (u64, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("backing");
    let mnt = tmp.path().join("mnt");
    let dir = mnt.join("witness");
    let mut log = MemoryLog::new(NoteSigner::from_seed(WITNESSED, &[1; 32]).unwrap());
    let log_vkey = log.verifier().to_string();
    let mut acked_max = 0u64;
    let mut cosigned = 0u64;
    let mut key: Option<String> = None;
    // The roots of the forks the witness answered 422 for (evidence).
    let mut split_views: Vec<String> = Vec::new();
    // Every checkpoint it cosigned, by size.
    let mut cosigned_notes: Vec<(u64, String)> = Vec::new();
    for round in 0..=cuts {
        let mut disk = Disk::mount(&backing, &mnt, false, rand.next());
        let (w, addr, vkey) =
            try_start_witness(&dir, &log_vkey).unwrap_or_else(|e| panic!("after cut {round}: {e}"));
        // Its key survives: the cosignatures it gave still verify.
        let first = key.get_or_insert_with(|| vkey.clone());
        assert_eq!(
            *first, vkey,
            "after cut {round}: the witness's key changed; its earlier cosignatures no longer verify"
        );
        // Every split view it answered for is on record.
        let evidence = std::fs::read_to_string(dir.join("evidence.jsonl")).unwrap_or_default();
        for root in &split_views {
            assert!(
                evidence.contains(root.as_str()),
                "after cut {round}: the split view with root {root} (answered 422) is not in evidence.jsonl"
            );
        }
        // It holds at least the last size it cosigned...
        let latest = match post_add_checkpoint(
            addr,
            &add_checkpoint_body(0, &[], &log.checkpoint().unwrap()),
        )
        .unwrap()
        {
            (409, _, b) => b.trim().parse::<u64>().unwrap(),
            (200, _, _) => log.size().0,
            other => panic!("after cut {round}: {other:?}"),
        };
        assert!(
            latest >= acked_max,
            "after cut {round}: the witness is at size {latest}, but it cosigned {acked_max}"
        );
        assert!(latest <= log.size().0);
        // An old checkpoint replayed is refused (409: it is past it)...
        let older: Vec<&(u64, String)> =
            cosigned_notes.iter().filter(|(s, _)| *s < latest).collect();
        if !older.is_empty() {
            let (size, note) = older[rand.below(older.len() as u64) as usize];
            let (code, _, body) =
                post_add_checkpoint(addr, &add_checkpoint_body(*size, &[], note)).unwrap();
            assert_eq!(
                code, 409,
                "after cut {round}: replaying size {size}: {body}"
            );
        }
        // ...and so is another root for the size it holds (422,
        // c2sp.org/tlog-witness).
        if latest > 0 {
            let mut fork = MemoryLog::new(NoteSigner::from_seed(WITNESSED, &[1; 32]).unwrap());
            let forked = grow(&mut fork, latest, &format!("fork{round}-"));
            let (code, _, body) =
                post_add_checkpoint(addr, &add_checkpoint_body(latest, &[], &forked)).unwrap();
            assert_eq!(code, 422, "after cut {round}: a fork at {latest}: {body}");
            let root = forked.lines().nth(2).unwrap().to_owned();
            split_views.push(root);
        }
        if round == cuts {
            break;
        }
        // Stream growth at it; cut the power at a random moment.
        let acked = Arc::new(Mutex::new((latest, Vec::<(u64, String)>::new())));
        let stop = Arc::new(AtomicBool::new(false));
        let mut known = latest;
        let bodies: Vec<(u64, String, String)> = (0..400)
            .map(|_| {
                let cp = grow(&mut log, 1 + rand.below(50), "a");
                let size = log.size().0;
                let body = if known == 0 {
                    add_checkpoint_body(0, &[], &cp)
                } else {
                    add_checkpoint_body(known, &log.consistency(known, size).unwrap(), &cp)
                };
                known = size;
                (size, body, cp)
            })
            .collect();
        let (a2, s2) = (acked.clone(), stop.clone());
        let sender = std::thread::spawn(move || {
            for (size, body, note) in bodies {
                if s2.load(Ordering::SeqCst) {
                    return;
                }
                match post_add_checkpoint(addr, &body) {
                    Some((200, _, _)) => {
                        let mut a = a2.lock().unwrap();
                        a.0 = size;
                        a.1.push((size, note));
                    }
                    _ => return,
                }
            }
        });
        std::thread::sleep(Duration::from_millis(20 + rand.below(400)));
        let report = disk.cut(round % 2 == 1);
        drop(w);
        stop.store(true, Ordering::SeqCst);
        sender.join().unwrap();
        let (size, notes) = std::mem::take(&mut *acked.lock().unwrap());
        let n = notes.len() as u64;
        acked_max = size;
        cosigned += n;
        cosigned_notes.extend(notes);
        eprintln!(
            "witness, cut {}: {n} cosignatures, last at size {size}; {report}",
            round + 1
        );
    }
    (cosigned, split_views.len())
}

/// Runs `cairn audit` once: `Ok(size)` verified, `Err(stderr)` otherwise.
fn audit(server: &str, vkey: &Path, state: &Path, evidence: &Path) -> Result<u64, String> {
    let out = cairn()
        .args(["audit", "--server", server, "--vkey"])
        .arg(vkey)
        .arg("--state")
        .arg(state)
        .arg("--evidence")
        .arg(evidence)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(v["size"].as_u64().unwrap())
}

fn append_some(server: &str, tag: &str, n: usize) {
    let lines: String = (0..n)
        .map(|i| format!("{{\"event\":\"{tag}-{i}\"}}\n"))
        .collect();
    let out = common::append_stdin(server, lines.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The auditor scenario: the log and a fork of it (same key, other
/// entries) on an ordinary disk; the auditor's state and evidence on the
/// cut file system. Returns the audits that reported success and the
/// evidence files reported.
fn auditor_scenario(cuts: usize, rand: &mut Rand) -> (usize, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (real_dir, fork_dir) = (tmp.path().join("real"), tmp.path().join("fork"));
    std::fs::create_dir_all(&fork_dir).unwrap();
    // The fork: a second server with the same key.
    let common::Started {
        serving: real,
        port,
        stderr,
        ..
    } = common::serve(&real_dir);
    common::drain(stderr);
    let real_url = format!("http://127.0.0.1:{port}");
    let key = real_dir.join("log.key");
    std::fs::copy(&key, fork_dir.join("log.key")).unwrap();
    let common::Started {
        serving: fork,
        port,
        stderr,
        ..
    } = common::serve(&fork_dir);
    common::drain(stderr);
    let fork_url = format!("http://127.0.0.1:{port}");
    let vkey = real_dir.join("log.vkey");
    append_some(&fork_url, "fork", 50);
    let backing = tmp.path().join("backing");
    let mnt = tmp.path().join("mnt");
    let dir = mnt.join("auditor");
    let state = dir.join("state.json");
    let mut reported = 0u64;
    let mut evidence_files: Vec<PathBuf> = Vec::new();
    let mut audits = 0usize;
    for round in 0..=cuts {
        let mut disk = Disk::mount(&backing, &mnt, false, rand.next());
        // The auditor writes into a folder it is given: make it durably,
        // as an operator's provisioning would.
        cairn_storage::durable::create_dir_all(&dir).unwrap();
        if round > 0 {
            let kept: serde_json::Value = serde_json::from_slice(
                &std::fs::read(&state).unwrap_or_else(|e| {
                    panic!("after cut {round}: the audit state is gone ({e}), but audits reported size {reported}")
                }),
            )
            .unwrap_or_else(|e| panic!("after cut {round}: the audit state is torn: {e}"));
            assert!(
                kept["size"].as_u64() >= Some(reported),
                "after cut {round}: the audit state is behind the size {reported} an audit reported: {kept}"
            );
            for f in &evidence_files {
                assert!(
                    f.exists(),
                    "after cut {round}: the evidence file {} an audit reported is gone",
                    f.display()
                );
            }
        }
        if round == cuts {
            break;
        }
        // Audits one after the other while the log grows; the cut comes
        // at a random moment (an audit in flight then fails, and counts
        // for nothing).
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let (real2, fork2, state2, dir2) = (
            real_url.clone(),
            fork_url.clone(),
            state.clone(),
            dir.clone(),
        );
        let vkey2 = vkey.clone();
        let fork_round = round % 2 == 0;
        let worker = std::thread::spawn(move || {
            let mut done: Vec<(u64, Option<PathBuf>)> = Vec::new();
            for i in 0.. {
                if s2.load(Ordering::SeqCst) {
                    break;
                }
                append_some(&real2, &format!("r{round}-{i}"), 1 + i % 5);
                let ev = dir2.join(format!("evidence-{round}-{i}.json"));
                if fork_round && i == 2 {
                    // Against the fork: a finding, with its evidence file.
                    if audit(&fork2, &vkey2, &state2, &ev).is_err() && ev.exists() {
                        done.push((0, Some(ev)));
                    }
                } else if let Ok(size) = audit(&real2, &vkey2, &state2, &ev) {
                    done.push((size, None));
                }
            }
            done
        });
        std::thread::sleep(Duration::from_millis(300 + rand.below(1200)));
        let report = disk.cut(round % 2 == 1);
        stop.store(true, Ordering::SeqCst);
        let done = worker.join().unwrap();
        let n = done.len();
        for (size, ev) in done {
            match ev {
                Some(f) => evidence_files.push(f),
                None => {
                    reported = reported.max(size);
                    audits += 1;
                }
            }
        }
        eprintln!(
            "auditor, cut {}: {n} audits returned, last size {reported}; {report}",
            round + 1
        );
    }
    drop((real, fork));
    (audits, evidence_files.len())
}

#[test]
fn power_cuts_lose_nothing_acknowledged() {
    if !fuse_here() {
        return;
    }
    let total = common::env_number("CAIRN_POWER_CUTS", 24);
    let seed = common::env_seed("CAIRN_POWER_SEED");
    eprintln!("power loss: {total} cuts, CAIRN_POWER_SEED={seed}");
    let mut rand = Rand(seed);
    let (log_cuts, witness_cuts) = (total / 2, total * 3 / 10);
    let auditor_cuts = total - log_cuts - witness_cuts;
    let t = Instant::now();
    let run = log_scenario(log_cuts, &mut rand).unwrap_or_else(|(run, e)| {
        panic!("log scenario (CAIRN_POWER_SEED={seed}): {e}\n(seen before it: {run:?})")
    });
    assert!(
        run.rounds_with_receipts * 2 >= log_cuts,
        "only {} of {log_cuts} rounds acknowledged anything: the run proves little",
        run.rounds_with_receipts
    );
    eprintln!(
        "log: {} cuts, {} acknowledged appends all present, {} checkpoints consistent, {} entries in the final trees ({:?})",
        run.cuts,
        run.acked,
        run.checkpoints,
        run.final_size,
        t.elapsed()
    );
    let t = Instant::now();
    let (cosigned, split) = witness_scenario(witness_cuts, &mut rand);
    assert!(
        cosigned > 0,
        "no cosignature was returned in {witness_cuts} rounds"
    );
    eprintln!(
        "witness: {witness_cuts} cuts, {cosigned} cosignatures and {split} split-view answers kept, no second root cosigned ({:?})",
        t.elapsed()
    );
    let t = Instant::now();
    let (audits, evidence) = auditor_scenario(auditor_cuts, &mut rand);
    assert!(
        audits > 0,
        "no audit reported success in {auditor_cuts} rounds"
    );
    eprintln!(
        "auditor: {auditor_cuts} cuts, {audits} audits' state and {evidence} evidence files kept ({:?})",
        t.elapsed()
    );
    eprintln!(
        "power loss: {total} cuts, 0 acknowledged entries lost, 0 inconsistent checkpoints, 0 double cosignatures"
    );
}

/// The same log scenario on a disk that lies about syncs (after an honest
/// first mount), cutting with every unsynced write dropped: every run in
/// which entries were acknowledged on the lying disk must end in a finding.
#[test]
fn a_lying_disk_is_caught() {
    if !fuse_here() {
        return;
    }
    let mut rand = Rand(0x5eed_cafe | 1);
    let mut possible = 0;
    for run in 0..3 {
        match log_life(2, &mut rand, true) {
            Ok(r) => assert_eq!(
                r.lied_receipts, 0,
                "run {run}: a lying disk lost acknowledged entries and nothing noticed: {r:?}"
            ),
            Err((r, finding)) => {
                // Only a loss that could happen may be reported.
                assert!(
                    r.lied_receipts > 0,
                    "run {run}: a finding with nothing acknowledged on the lying disk: {finding}"
                );
                // The entry checks themselves catch it, not only the guard.
                assert!(
                    finding.contains("acknowledged entries are beyond the tree"),
                    "run {run}: {finding}"
                );
                eprintln!("run {run}: caught: {finding}");
                possible += 1;
            }
        }
    }
    assert!(
        possible > 0,
        "no run acknowledged anything: nothing was tested"
    );
}
