//! `cairn serve` as a real process, driven by the other `cairn` commands.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{append_stdin, cairn, start};

#[test]
fn serve_append_prove_verify_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut st = start(cairn().args(["serve", "--data-dir"]).arg(&data).args([
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]));
    let gp = st.port;
    let server = format!("http://127.0.0.1:{gp}");
    let vkey = std::fs::read_to_string(data.join("log.vkey")).unwrap();

    // Append three events through the stream; one receipt per line.
    let out = append_stdin(
        &server,
        b"{\"a\":1,\"email\":\"x@example.com\"}\n\n{\"a\":2}\n{\"a\":3}\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let receipts: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(receipts.len(), 3);
    assert_eq!(receipts[2]["index"], 2);

    // Offline verification of a receipt: ok, and a tampered one fails (exit 1).
    let line = serde_json::to_string(&receipts[0]).unwrap();
    let verify = |text: &str| {
        let mut v = cairn()
            .args(["verify", "receipt", "-", "--vkey", vkey.trim()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        v.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        v.wait_with_output().unwrap()
    };
    let ok = verify(&line);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut bad = receipts[0].clone();
    bad["index"] = serde_json::json!(1);
    assert_eq!(
        verify(&serde_json::to_string(&bad).unwrap()).status.code(),
        Some(1)
    );

    // checkpoint, prove, get.
    assert!(common::checkpoint_text(&server).starts_with("localhost/cairn\n3\n"));
    let p = cairn()
        .args(["prove", "inclusion", "--index", "0", "--server", &server])
        .output()
        .unwrap();
    let p: serde_json::Value = serde_json::from_slice(&p.stdout).unwrap();
    assert_eq!(p["tree_size"], 3);
    let c = cairn()
        .args(["prove", "consistency", "--old", "1", "--server", &server])
        .output()
        .unwrap();
    assert!(c.status.success());
    let e = cairn()
        .args([
            "get", "entries", "--start", "0", "--end", "2", "--server", &server,
        ])
        .output()
        .unwrap();
    let lines: Vec<String> = String::from_utf8(e.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("[REDACTED:email]") && !lines[0].contains("x@example.com"));
    // Out of range: exit 2 with the status named.
    let bad = cairn()
        .args(["prove", "inclusion", "--index", "99", "--server", &server])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("OutOfRange"));

    // SIGTERM: a clean stop, exit 0.
    Command::new("kill")
        .arg(st.serving.0.id().to_string())
        .status()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = st.serving.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let mut err = String::new();
    st.stderr.read_to_string(&mut err).unwrap();
    assert!(
        st.startup.contains("verifier key localhost/cairn+"),
        "{}",
        st.startup
    );
    assert!(err.contains("stopped cleanly"), "{err}");
}

#[test]
fn config_file_env_and_flags_layer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cairn.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\norigin = \"from-file.example/log\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    // The environment overrides the file.
    let st = start(
        cairn()
            .args(["serve", "--config"])
            .arg(&cfg)
            .env("CAIRN_ORIGIN", "from-env.example/log"),
    );
    let gp = st.port;
    let cp = cairn()
        .args(["checkpoint", "--server", &format!("http://127.0.0.1:{gp}")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8(cp.stdout)
            .unwrap()
            .starts_with("from-env.example/log\n0\n")
    );
    // A bad config file names the file and line.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "origin = \"x\"\nmax_batchh = 3\n").unwrap();
    let out = cairn()
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.toml:2"), "{err}");
}

#[test]
fn bench_reports_latency_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let st = start(
        cairn()
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]),
    );
    let gp = st.port;
    let server = format!("http://127.0.0.1:{gp}");
    let run = |extra: &[&str]| -> serde_json::Value {
        let out = common::succeed(cairn().args(["bench", "--server", &server]).args(extra));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    for mode in [&["--stream", "--clients", "2"][..], &[][..]] {
        let r = run(&[&["--rate", "300", "--duration", "1"][..], mode].concat());
        assert_eq!(r["ok"], 300, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        let p50 = r["latency_ms"]["p50"].as_f64().unwrap();
        let p99 = r["latency_ms"]["p99"].as_f64().unwrap();
        assert!(p50 > 0.0 && p99 >= p50, "{r}");
    }
    // Closed loop, denser PII, server CPU, and the JSON file.
    let out_file = dir.path().join("bench.json");
    let pid = st.serving.0.id().to_string();
    let r = run(&[
        "--stream",
        "--rate",
        "0",
        "--count",
        "500",
        "--pii-density",
        "3",
        "--server-pid",
        &pid,
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(r["ok"], 500, "{r}");
    assert!(r["mb_per_s"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["server_cpu_s"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["client_cpu_s"].as_f64().is_some(), "{r}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(saved["ok"], 500);
    // Proof mode on the log just built.
    let r = run(&["--proofs", "--clients", "2", "--duration", "1"]);
    assert_eq!(r["mode"], "proofs", "{r}");
    assert!(r["ok"].as_u64().unwrap() > 10, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
}

#[test]
fn import_then_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let import = |extra: &[&str], stdin: &[u8]| {
        let mut c = cairn()
            .args(["import", "--data-dir"])
            .arg(&data)
            .args(["--batch", "1000"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin).unwrap();
        c.wait_with_output().unwrap()
    };
    let out = import(&["--synthetic", "5000"], b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("5000 entries") && err.contains("size 5000"),
        "{err}"
    );
    // A file with a malformed third line: the error names the line, and
    // nothing of that batch is written.
    let out = import(
        &["-"],
        b"{\"a\":1,\"email\":\"x@example.com\"}\n{\"a\":2}\n{\"a\": oops secret@example.com}\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(!err.contains("secret@example.com"), "{err}");
    let out = import(
        &["-"],
        b"{\"a\":1,\"email\":\"x@example.com\"}\n\n{\"a\":2}\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server serves the imported log.
    let st = common::serve(&data);
    let server = format!("http://127.0.0.1:{}", st.port);
    assert!(common::checkpoint_text(&server).starts_with("localhost/cairn\n5002\n"));
    let e = cairn()
        .args([
            "get", "entries", "--start", "4990", "--end", "5002", "--server", &server,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(e.stdout).unwrap();
    assert_eq!(text.lines().count(), 12);
    assert!(!text.contains("ana.lima@example.com") && !text.contains("x@example.com"));
    assert!(text.contains("REDACTED"));
}

#[test]
fn config_check_names_file_line_and_key() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (file, extra) in [
        ("deploy/config/example.toml", &[][..]),
        ("deploy/config/witness.example.toml", &["--witness"][..]),
    ] {
        let out = cairn()
            .args(["config", "check"])
            .arg(root.join(file))
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        (
            "origin = \"a/b\"\nmax_batch = \"lots\"\n",
            ":2: key `max_batch`: invalid type",
        ),
        (
            "origin = \"a/b\"\n\nmax_bach = 5\n",
            ":3: key `max_bach`: unknown field",
        ),
        (
            "[[witness]]\nname = \"w\"\nvkey = \"nope\"\nurl = \"http://x\"\n",
            "witness \"w\": vkey",
        ),
        (
            "tls_cert = \"/nonexistent.pem\"\n",
            "tls_cert and tls_key go together",
        ),
        // Settings that need identities are refused without a token file
        // (issue 15, item 9), never silently ignored.
        ("private_reads = true\n", "private_reads needs a token file"),
        ("append_rate = 100.0\n", "append_rate needs a token file"),
        ("append_burst = 10.0\n", "append_burst needs a token file"),
        ("max_streams = 4\n", "max_streams needs a token file"),
        (
            "[limits]\nheader_timeout_ms = 0\n",
            "header_timeout_ms must be at least 1 ms",
        ),
        ("queue_mb = 0\n", "queue_mb must be at least 1"),
    ] {
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, text).unwrap();
        let out = cairn().args(["config", "check"]).arg(&p).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert!(err.contains(needle), "{text:?}: {err}");
        if needle.starts_with(':') {
            assert!(err.contains(&format!("{}{needle}", p.display())), "{err}");
        }
    }
}

/// `cairn append` with bad lines among good ones (issue 24): each rejected
/// line is reported by number with the server's reason (never its
/// content), every good line is appended with its receipt printed in
/// order, the summary counts both, and the exit status is 1. With
/// `--fail-fast` nothing after the first rejected line is appended.
#[test]
fn append_reports_bad_lines_by_number_and_keeps_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let input: &[u8] =
        b"{\"a\":1}\n[\"not\",\"an object\"]\n\n{\"a\":2}\nnot json at all\n{\"a\":3,\"b\":\xff\xfe}\n{\"a\":4}\n";
    for (fail_fast, appended) in [(false, 3usize), (true, 1)] {
        let data = dir.path().join(format!("data-{fail_fast}"));
        let st = start(cairn().args(["serve", "--data-dir"]).arg(&data).args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ]));
        let server = format!("http://127.0.0.1:{}", st.port);
        let mut cmd = cairn();
        cmd.args(["append", "--server", &server, "-"]);
        if fail_fast {
            cmd.arg("--fail-fast");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let receipts: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(receipts.len(), appended, "{err}");
        for (k, r) in receipts.iter().enumerate() {
            assert_eq!(r["index"], k as u64);
        }
        assert!(
            err.contains(
                "line 2: event rejected: a JSON event must be an object (InvalidArgument)"
            ),
            "{err}"
        );
        if fail_fast {
            assert!(!err.contains("line 5"), "{err}");
            assert!(err.contains("1 appended, 1 rejected"), "{err}");
        } else {
            assert!(err.contains("line 5: event rejected"), "{err}");
            assert!(err.contains("line 6: event rejected"), "{err}");
            assert!(err.contains("3 appended, 3 rejected"), "{err}");
        }
        // No content of a rejected line in the report.
        assert!(
            !err.contains("not json at all") && !err.contains("an object\""),
            "{err}"
        );
        let cp = cairn()
            .args(["checkpoint", "--server", &server])
            .output()
            .unwrap();
        let size = String::from_utf8(cp.stdout).unwrap();
        assert_eq!(size.lines().nth(1), Some(appended.to_string().as_str()));
        drop(st);
    }
}

/// `cairn append --batch N --receipts proof|index` (issue 18): batches
/// over AppendBatchStream; PROOF receipts print with their checkpoint and
/// verify offline with `cairn verify receipt`; INDEX receipts print index,
/// leaf hash and tree size; a bad line in a batch is reported by number.
#[test]
fn append_in_batches_with_receipt_forms() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let st = start(cairn().args(["serve", "--data-dir"]).arg(&data).args([
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]));
    let server = format!("http://127.0.0.1:{}", st.port);
    let vkey = std::fs::read_to_string(data.join("log.vkey")).unwrap();
    let mut input = String::new();
    for i in 0..250 {
        if i == 100 {
            input.push_str("[1]\n");
        } else {
            input.push_str(&format!("{{\"i\":{i},\"email\":\"u{i}@example.com\"}}\n"));
        }
    }
    for (form, verifiable) in [("proof", true), ("index", false)] {
        let mut child = cairn()
            .args([
                "append",
                "--server",
                &server,
                "--batch",
                "64",
                "--receipts",
                form,
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("line 101: event rejected"), "{err}");
        assert!(err.contains("249 appended, 1 rejected"), "{err}");
        let lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len(), 249);
        for line in [&lines[0], &lines[150], &lines[248]] {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["tree_size"].as_u64().unwrap() > v["index"].as_u64().unwrap());
            assert_eq!(v.get("checkpoint").is_some(), verifiable, "{line}");
            if verifiable {
                let mut check = cairn()
                    .args(["verify", "receipt", "-", "--vkey", vkey.trim()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                check
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(line.as_bytes())
                    .unwrap();
                let ok = check.wait_with_output().unwrap();
                assert!(
                    ok.status.success(),
                    "{}",
                    String::from_utf8_lossy(&ok.stderr)
                );
            }
        }
    }
    drop(st);
}

/// Issue 19 from the command line: `cairn serve --store s3://…` on the
/// Ceph RGW that scripts/services.sh runs. Appends, a restart that reopens
/// the log from the bucket (caches rebuilt), more appends on top, a
/// receipt that verifies offline; and the mistakes a user makes (a URL
/// that is not `s3://`, an endpoint nobody answers) are refused at start
/// with what is wrong.
#[test]
fn a_log_in_a_bucket_from_the_command_line() {
    let Some((endpoint, bucket)) = cairn_server::testing::rgw() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = format!(
        "s3://{bucket}/test/cli-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let serve = || {
        start(
            cairn()
                .args(["serve", "--data-dir"])
                .arg(&data)
                .args(["--store", &url, "--s3-endpoint", &endpoint])
                .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]),
        )
    };
    let st = serve();
    assert!(st.startup.contains(&url), "{}", st.startup);
    let server = format!("http://127.0.0.1:{}", st.port);
    let lines: String = (0..300)
        .map(|i| format!("{{\"i\":{i},\"email\":\"s3-{i}@example.com\"}}\n"))
        .collect();
    let out = append_stdin(&server, lines.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(st);
    // Reopened from the bucket: the history is there, and grows.
    let st = serve();
    assert!(st.startup.contains("size 300"), "{}", st.startup);
    let server = format!("http://127.0.0.1:{}", st.port);
    let out = append_stdin(&server, b"{\"after\":\"restart\"}\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let receipt = String::from_utf8(out.stdout).unwrap();
    let r: serde_json::Value = serde_json::from_str(receipt.lines().next().unwrap()).unwrap();
    assert_eq!(r["index"], 300);
    let vkey = std::fs::read_to_string(data.join("log.vkey")).unwrap();
    let mut v = cairn()
        .args(["verify", "receipt", "-", "--vkey", vkey.trim()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    v.stdin
        .take()
        .unwrap()
        .write_all(receipt.as_bytes())
        .unwrap();
    let ok = v.wait_with_output().unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    drop(st);
    // Mistakes, named.
    let fails = |store: &str, endpoint: &str| {
        let out = cairn()
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("other"))
            .args(["--store", store, "--s3-endpoint", endpoint])
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = fails("https://example.com/log", &endpoint);
    assert!(e.contains("not an s3:// URL"), "{e}");
    let e = fails(&format!("s3://{bucket}/x"), "http://127.0.0.1:9");
    assert!(e.contains("127.0.0.1:9"), "{e}");
}
