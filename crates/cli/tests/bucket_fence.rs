//! Issue 19, the zombie: two `cairn serve` processes on one log in a
//! bucket (Ceph RGW from scripts/services.sh). The first is paused
//! (SIGSTOP) while the second takes over and appends; when the first
//! resumes it cannot extend the log or get a checkpoint stored: its next
//! batch loses the bucket's conditional writes, it stops writing for good
//! and says so (stderr, `/healthz`, `cairn_log_halted`). Every receipt it
//! gave before the pause is still in the log, at its index, with its leaf
//! hash; nothing it tried after is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{append_stdin, cairn, start};

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

fn receipts(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events(tag: &str, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"from\":\"{tag}\",\"i\":{i},\"email\":\"{tag}{i}@example.com\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn a_paused_writer_that_resumes_cannot_extend_the_log() {
    let Some((endpoint, bucket)) = cairn_server::testing::rgw() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let url = format!(
        "s3://{bucket}/test/zombie-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let serve = |dir: &std::path::Path| {
        start(
            cairn()
                .args(["serve", "--data-dir"])
                .arg(dir)
                .args(["--store", &url, "--s3-endpoint", &endpoint])
                .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]),
        )
    };
    // A writes 100 entries.
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let a = serve(&dir_a);
    let a_http = common::http_addr(&a.startup);
    let a_url = format!("http://127.0.0.1:{}", a.port);
    let out = append_stdin(&a_url, &events("a", 100));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = receipts(&out);
    assert_eq!(before.len(), 100);
    // A is paused past the point where B takes over, with the same key.
    signal(a.serving.0.id(), "-STOP");
    std::fs::create_dir_all(&dir_b).unwrap();
    for f in ["log.key", "log.vkey"] {
        std::fs::copy(dir_a.join(f), dir_b.join(f)).unwrap();
    }
    let b = serve(&dir_b);
    assert!(b.startup.contains("size 100"), "{}", b.startup);
    let b_url = format!("http://127.0.0.1:{}", b.port);
    let out = append_stdin(&b_url, &events("b", 50));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(receipts(&out).last().unwrap()["index"], 149);
    // A resumes and is asked to append: it is refused, and stops.
    signal(a.serving.0.id(), "-CONT");
    let out = append_stdin(&a_url, &events("zombie", 10));
    assert!(
        !out.status.success(),
        "a zombie appended: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(receipts(&out).is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        let (code, _, body) = common::http(a_http, "GET", "/healthz", "").unwrap();
        if code != 200 || Instant::now() > deadline {
            break (code, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(health.0, 503, "{health:?}");
    let (_, _, metrics) = common::http(a_http, "GET", "/metrics", "").unwrap();
    assert!(
        metrics.contains("cairn_log_halted{log=\"default\"} 1"),
        "{metrics}"
    );
    // It said why, loudly.
    let mut a = a;
    let _ = a.serving.0.kill();
    let _ = a.serving.0.wait();
    let mut said = String::new();
    a.stderr.read_to_string(&mut said).unwrap();
    assert!(said.contains("fence lost"), "{said}");
    // B goes on; the log holds A's 100 and B's 50, and nothing of the zombie.
    let out = append_stdin(&b_url, &events("b2", 5));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(receipts(&out).last().unwrap()["index"], 154);
    let got = cairn()
        .args([
            "get", "entries", "--server", &b_url, "--start", "0", "--end", "155",
        ])
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let text = String::from_utf8_lossy(&got.stdout);
    assert!(!text.contains("zombie"), "a zombie's entry is in the log");
    // Every receipt A gave before the pause is in B's log: its leaf hash
    // proves inclusion at its index in B's latest tree.
    for r in [&before[0], &before[57], &before[99]] {
        let out = cairn()
            .args(["prove", "inclusion", "--server", &b_url, "--leaf-hash"])
            .arg(r["leaf_hash"].as_str().unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let proof = String::from_utf8_lossy(&out.stdout);
        assert!(
            proof.contains(&format!("\"index\":{}", r["index"])),
            "entry {} moved: {proof}",
            r["index"]
        );
    }
    drop(b);
}
