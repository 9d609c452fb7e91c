//! Helpers shared by the CLI's black-box tests.
#![allow(dead_code, clippy::unwrap_used, missing_docs, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One HTTP/1.1 request with `Connection: close`: (status, content type,
/// body), or `None` if the connection fails.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    // Binary bodies (entry bundles) come back lossily as text.
    let resp = String::from_utf8_lossy(&raw);
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Some((status, ctype, body.to_owned()))
}

/// tlog-witness `POST /add-checkpoint`.
pub fn post_add_checkpoint(addr: SocketAddr, body: &str) -> Option<(u16, String, String)> {
    http(addr, "POST", "/add-checkpoint", body)
}

/// The `cairn` binary under test.
pub fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

/// A started `cairn serve`: the process, the gRPC port it bound (it is
/// given port 0 and reports the real one on stderr, so parallel tests never
/// race for a port), what it printed at start-up, and the rest of stderr.
pub struct Started {
    pub serving: Serving,
    pub port: u16,
    pub startup: String,
    pub stderr: BufReader<std::process::ChildStderr>,
}

pub fn start(cmd: &mut Command) -> Started {
    try_start(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// [`start`], with a server that exits during start-up as an error (its
/// output in the message) instead of a panic.
pub fn try_start(cmd: &mut Command) -> Result<Started, String> {
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let serving = Serving(child);
    let mut startup = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap_or(0);
        if n == 0 {
            return Err(format!("cairn serve exited during start-up: {startup}"));
        }
        startup.push_str(&line);
        if let Some(rest) = line.split("gRPC on 127.0.0.1:").nth(1) {
            let port = rest
                .split([',', ' '])
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            return Ok(Started {
                serving,
                port,
                startup,
                stderr,
            });
        }
    }
}

/// `cairn witness --name w.example.com` on a state folder, both listeners
/// on port 0, witnessing `log_vkey`: the process, its HTTP address and its
/// verifier key (read from its start-up lines; the rest of stderr is
/// drained), or why it did not start.
pub fn try_start_witness(
    dir: &std::path::Path,
    log_vkey: &str,
) -> Result<(Serving, SocketAddr, String), String> {
    let mut child = cairn()
        .args(["witness", "--name", "w.example.com", "--data-dir"])
        .arg(dir)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--log",
            log_vkey,
        ])
        .env("CAIRN_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning cairn witness: {e}"))?;
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let proc = Serving(child);
    let mut vkey = String::new();
    let mut said = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            return Err(format!("cairn witness exited during start-up: {said}"));
        }
        said.push_str(&line);
        if let Some(v) = line.strip_prefix("cairn witness: verifier key ") {
            vkey = v.trim().to_owned();
        }
        if let Some(rest) = line.split("HTTP on http://").nth(1) {
            let addr = rest.split('/').next().unwrap().parse().unwrap();
            drain(err);
            return Ok((proc, addr, vkey));
        }
    }
}

pub struct Serving(pub Child);
impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The HTTP address `cairn serve` printed at start-up.
pub fn http_addr(startup: &str) -> SocketAddr {
    startup
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .parse()
        .unwrap()
}

/// Reads a child's stderr to the end on a thread (so it never blocks on a
/// full pipe); join for the bytes.
pub fn drain(mut stderr: BufReader<std::process::ChildStderr>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    })
}

/// 32-byte proof hashes off the wire.
pub fn hashes(v: &[Vec<u8>]) -> Vec<cairn_core::Hash> {
    v.iter()
        .map(|h| cairn_core::Hash::from_slice(h).unwrap())
        .collect()
}

/// Runs a command, asserts it succeeded (showing its stderr otherwise), and
/// returns its output.
pub fn succeed(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `cairn serve` on a data folder, both listeners on port 0.
pub fn serve(data: &std::path::Path) -> Started {
    start(cairn().args(["serve", "--data-dir"]).arg(data).args([
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]))
}

/// `cairn serve` on a data folder, both listeners on port 0, logging only
/// errors and nothing on stdout (for the crash and power-loss loops).
pub fn quiet_serve(data: &std::path::Path) -> Command {
    let mut c = cairn();
    c.args(["serve", "--data-dir"])
        .arg(data)
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .env("CAIRN_LOG", "error")
        .stdout(Stdio::null());
    c
}

/// The signed note `cairn checkpoint` prints.
pub fn checkpoint_text(server: &str) -> String {
    String::from_utf8(succeed(cairn().args(["checkpoint", "--server", server])).stdout).unwrap()
}

/// `cairn append --server SERVER -` fed `input` on stdin: its output
/// (receipts on stdout, one per line).
pub fn append_stdin(server: &str, input: &[u8]) -> std::process::Output {
    let mut append = cairn()
        .args(["append", "--server", server, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    append.stdin.take().unwrap().write_all(input).unwrap();
    append.wait_with_output().unwrap()
}

/// A tlog-witness add-checkpoint request body.
pub fn add_checkpoint_body(old: u64, proof: &[cairn_core::Hash], note: &str) -> String {
    cairn_client::AddCheckpoint {
        old,
        proof: proof.to_vec(),
        note: note.to_owned(),
    }
    .encode()
}

/// Appends `n` leaves named `<tag><index>` to an in-memory log; its new
/// signed checkpoint.
pub fn grow(log: &mut cairn_core::MemoryLog, n: u64, tag: &str) -> String {
    let base = log.size().0;
    let leaves: Vec<String> = (0..n).map(|i| format!("{tag}{}", base + i)).collect();
    log.append(&leaves).unwrap()
}

/// A number from the environment variable `name`, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A random schedule's seed: the environment variable `name` (to replay a
/// run), or the clock. Never zero (xorshift's fixed point).
pub fn env_seed(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1
}
