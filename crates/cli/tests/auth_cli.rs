//! Authorization and quotas on a real `cairn serve`: tokens made by
//! `cairn token new`, each scope rule over gRPC and HTTP, the append rate
//! limit and the stream cap (`RESOURCE_EXHAUSTED` with a retry hint), token
//! file errors naming file and line, and no token value in the logs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::{Read, Write};
use std::process::Stdio;

use cairn_server::pb;
use cairn_server::pb::log_client::LogClient;
use common::{cairn, http, start};
use tonic::Code;

/// `cairn token new`: (token, token-file entry).
fn new_token(name: &str, scopes: &str) -> (String, String) {
    let out = cairn()
        .args(["token", "new", "--name", name, "--scopes", scopes])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let err = String::from_utf8(out.stderr).unwrap();
    let entry = err[err.find("[[token]]").unwrap()..].to_owned();
    assert!(!entry.contains(&token), "the entry must hold only the hash");
    (token, entry)
}

fn req<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

/// Runs a client command against `server` with `token`, feeding `stdin`:
/// (exit code, stdout, stderr).
fn client(server: &str, args: &[&str], token: &str, stdin: &[u8]) -> (Option<i32>, String, String) {
    let mut child = cairn()
        .args(args)
        .args(["--server", server])
        .env("CAIRN_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn ev(i: u64) -> pb::AppendRequest {
    pb::AppendRequest {
        event: format!(r#"{{"i":{i}}}"#).into_bytes(),
        ..Default::default()
    }
}

#[test]
fn scopes_quotas_and_no_tokens_in_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let (ingest, e1) = new_token("ingest", "append");
    let (reader, e2) = new_token("auditor", "read");
    let (admin, e3) = new_token("ops", "admin");
    let tokens = tmp.path().join("tokens.toml");
    std::fs::write(&tokens, format!("{e1}\n{e2}\n{e3}")).unwrap();
    // A bad token file names the file and line.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[token]]\nname = \"x\"\nsha256 = \"abc\"\nscopes = [\"append\"]\n",
    )
    .unwrap();
    let out = cairn()
        .args(["serve", "--data-dir"])
        .arg(tmp.path().join("d0"))
        .arg("--token-file")
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml:1:") && err.contains("64 hex"),
        "{err}"
    );

    let common::Started {
        serving,
        port,
        stderr,
        startup,
    } = start(
        cairn()
            .args(["serve", "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .arg("--token-file")
            .arg(&tokens)
            .args([
                "--private-reads",
                "--append-rate",
                "20",
                "--max-streams",
                "1",
            ])
            .env("CAIRN_LOG", "trace")
            .stdout(Stdio::null()),
    );
    let http_addr = common::http_addr(&startup);
    let log = common::drain(stderr);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = LogClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        let code = |r: Result<tonic::Response<pb::Receipt>, tonic::Status>| {
            r.map(|_| Code::Ok).unwrap_or_else(|s| s.code())
        };
        // Append: only tokens with `append` (or `admin`).
        assert_eq!(
            code(c.append(req(ev(0), None)).await),
            Code::Unauthenticated
        );
        assert_eq!(
            code(c.append(req(ev(0), Some("not-a-token"))).await),
            Code::Unauthenticated
        );
        assert_eq!(
            code(c.append(req(ev(0), Some(&reader))).await),
            Code::PermissionDenied
        );
        assert_eq!(code(c.append(req(ev(0), Some(&ingest))).await), Code::Ok);
        assert_eq!(code(c.append(req(ev(1), Some(&admin))).await), Code::Ok);
        // Reads are private: `read` (or `admin`).
        let read = |t: Option<&str>| {
            let mut c = c.clone();
            let t = t.map(str::to_owned);
            async move {
                c.get_checkpoint(req(pb::GetCheckpointRequest::default(), t.as_deref()))
                    .await
                    .map(|_| Code::Ok)
                    .unwrap_or_else(|s| s.code())
            }
        };
        assert_eq!(read(None).await, Code::Unauthenticated);
        assert_eq!(read(Some(&ingest)).await, Code::PermissionDenied);
        assert_eq!(read(Some(&reader)).await, Code::Ok);
        assert_eq!(read(Some(&admin)).await, Code::Ok);
        // The rate limit: 20/s with a burst of 20.
        let mut limited = None;
        for i in 0..60 {
            if let Err(s) = c.append(req(ev(100 + i), Some(&ingest))).await {
                limited = Some(s);
                break;
            }
        }
        let s = limited.expect("the rate limit never answered");
        assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
        assert!(s.metadata().get("retry-after-ms").is_some(), "{s:?}");
        assert!(s.message().contains("retry in"), "{s:?}");
        // The stream cap: one open stream per identity.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(ev(500)).await.unwrap();
        let mut first = c
            .append_stream(req(
                tokio_stream::wrappers::ReceiverStream::new(rx),
                Some(&ingest),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            tokio_stream::StreamExt::next(&mut first)
                .await
                .unwrap()
                .is_ok()
        );
        let second = c
            .append_stream(req(tokio_stream::iter(vec![ev(501)]), Some(&ingest)))
            .await;
        assert_eq!(
            second.map(|_| Code::Ok).unwrap_or_else(|s| s.code()),
            Code::ResourceExhausted
        );
        drop(tx);
        while tokio_stream::StreamExt::next(&mut first).await.is_some() {}
    });
    // HTTP: tiles and /checkpoint need `read`, /metrics `admin`.
    let get = |path: &str, token: Option<&str>| {
        let mut s = std::net::TcpStream::connect(http_addr).unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        std::io::Write::write_all(
            &mut s,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut r = String::new();
        let _ = s.read_to_string(&mut r);
        r.split(' ').nth(1).unwrap().parse::<u16>().unwrap()
    };
    assert_eq!(get("/checkpoint", None), 401);
    assert_eq!(get("/checkpoint", Some(&ingest)), 403);
    assert_eq!(get("/checkpoint", Some(&reader)), 200);
    assert_eq!(get("/metrics", Some(&reader)), 403);
    assert_eq!(get("/metrics", Some(&admin)), 200);
    assert_eq!(http(http_addr, "GET", "/healthz", "").unwrap().0, 200);
    drop(serving);
    let logs = log.join().unwrap();
    let logs = String::from_utf8_lossy(&logs);
    assert!(logs.len() > 1000, "trace logs expected");
    for t in [&ingest, &reader, &admin] {
        assert!(!logs.contains(t.as_str()), "a token value reached the logs");
    }
}

/// The client commands reach a log that is authenticated and encrypted
/// (issue 15, item 7): `cairn tls new` makes the CA and the log's
/// certificate, `CAIRN_TLS_CA` verifies it and `CAIRN_TOKEN` authenticates
/// appends; without the CA an `https://` server is refused with a clear
/// message, and without the token the append is UNAUTHENTICATED.
#[test]
fn client_commands_over_tls_with_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = tmp.path().join("tls");
    common::succeed(
        cairn()
            .args(["tls", "new", "--name", "log.test", "--out"])
            .arg(&tls),
    );
    // Never overwritten.
    let again = cairn()
        .args(["tls", "new", "--name", "log.test", "--out"])
        .arg(&tls)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    let (ingest, entry) = new_token("ingest", "append");
    let tokens = tmp.path().join("tokens.toml");
    std::fs::write(&tokens, entry).unwrap();
    let common::Started {
        serving: _serving,
        port,
        stderr,
        ..
    } = start(
        cairn()
            .args(["serve", "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .arg("--token-file")
            .arg(&tokens)
            .arg("--tls-cert")
            .arg(tls.join("log.test.pem"))
            .arg("--tls-key")
            .arg(tls.join("log.test.key"))
            .stdout(Stdio::null()),
    );
    let _log = common::drain(stderr);
    let server = format!("https://localhost:{port}");
    let ca = tls.join("ca.pem");
    let append = |token: Option<&str>| {
        let mut cmd = cairn();
        cmd.args(["append", "--server", &server, "-"])
            .env("CAIRN_TLS_CA", &ca)
            .env_remove("CAIRN_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.env("CAIRN_TOKEN", t);
        }
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"{\"user\":\"ana@example.com\"}\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let ok = append(Some(&ingest));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8(ok.stdout).unwrap().lines().count(), 1);
    let denied = append(None);
    assert_eq!(denied.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Unauthenticated"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    // Reads are public, but the server is verified: the CA is needed.
    let no_ca = cairn()
        .args(["checkpoint", "--server", &server])
        .env_remove("CAIRN_TLS_CA")
        .output()
        .unwrap();
    assert_eq!(no_ca.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_ca.stderr).contains("--tls-ca"));
    let cp = common::succeed(
        cairn()
            .args(["checkpoint", "--server", &server, "--tls-ca"])
            .arg(&ca),
    );
    assert!(String::from_utf8_lossy(&cp.stdout).contains("\n1\n"));
}

/// Two logs from `[[log]]` tables, driven by the client commands: `--log`
/// picks the log, `cairn log list` shows both, a token scoped with
/// `cairn token new --logs` is refused on the other log, `cairn log
/// freeze` (admin) freezes one for good and appends to it then fail,
/// naming the log. Config mistakes are named by `cairn config check`.
#[test]
fn many_logs_from_config_and_the_log_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let (admin, e1) = new_token("ops", "admin");
    let out = cairn()
        .args([
            "token", "new", "--name", "a-only", "--scopes", "append", "--logs", "alpha",
        ])
        .output()
        .unwrap();
    let a_only = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let err = String::from_utf8(out.stderr).unwrap();
    let e2 = err[err.find("[[token]]").unwrap()..].to_owned();
    assert!(e2.contains("logs = [\"alpha\"]"), "{e2}");
    let tokens = tmp.path().join("tokens.toml");
    std::fs::write(&tokens, format!("{e1}\n{e2}")).unwrap();
    // alpha's signing key lives outside its data folder.
    let key = tmp.path().join("alpha.key");
    let out = cairn()
        .args(["keygen", "--origin", "alpha.example/log", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    let alpha_vkey = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let cfg = tmp.path().join("cairn.toml");
    let d = tmp.path().display();
    std::fs::write(
        &cfg,
        format!(
            "grpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\ntoken_file = \"{}\"\nmax_batch = 512\n\n[[log]]\nname = \"alpha\"\norigin = \"alpha.example/log\"\ndata_dir = \"{d}/alpha\"\nsigning_key = \"{d}/alpha.key\"\n\n[[log]]\nname = \"beta\"\norigin = \"beta.example/log\"\ndata_dir = \"{d}/beta\"\nnot_after = 2999-01-01T00:00:00Z\n",
            tokens.display()
        ),
    )
    .unwrap();
    let check = cairn()
        .args(["config", "check"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let st = start(cairn().args(["serve", "--config"]).arg(&cfg));
    assert!(st.startup.contains("log \"alpha\""), "{}", st.startup);
    assert!(st.startup.contains("log \"beta\""), "{}", st.startup);
    let server = format!("http://127.0.0.1:{}", st.port);
    let run = |args: &[&str], token: &str, stdin: &[u8]| client(&server, args, token, stdin);
    let events = b"{\"i\":1}\n{\"i\":2}\n{\"i\":3}\n";
    let (code, _, err) = run(&["append", "--log", "beta", "-"], &admin, events);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["append", "--log", "alpha", "-"], &a_only, b"{\"i\":1}\n");
    assert_eq!(code, Some(0), "{err}");
    let (code, cp, _) = run(&["checkpoint", "--log", "beta"], &admin, b"");
    assert_eq!(code, Some(0));
    assert!(cp.starts_with("beta.example/log\n3\n"), "{cp}");
    // Without --log: the first log (no log is named `default`).
    let (_, cp, _) = run(&["checkpoint"], &admin, b"");
    assert!(cp.starts_with("alpha.example/log\n1\n"), "{cp}");
    // The scoped token, on the other log.
    let (code, _, err) = run(&["append", "--log", "beta", "-"], &a_only, b"{\"i\":9}\n");
    assert_ne!(code, Some(0));
    assert!(err.contains("may not use log \"beta\""), "{err}");
    let (code, list, _) = run(&["log", "list"], &admin, b"");
    assert_eq!(code, Some(0));
    assert!(
        list.contains(&format!(
            "alpha (default)\twriting\tsize 1\talpha.example/log\t{alpha_vkey}"
        )),
        "{list}"
    );
    assert!(!tmp.path().join("alpha").join("log.key").exists());
    assert!(
        list.contains("beta\twriting\tsize 3\tbeta.example/log"),
        "{list}"
    );
    // Freezing needs admin; then beta is frozen for good.
    let (code, _, err) = run(&["log", "freeze", "beta"], &a_only, b"");
    assert_ne!(code, Some(0));
    assert!(err.contains("PermissionDenied"), "{err}");
    let (code, cp, err) = run(&["log", "freeze", "beta"], &admin, b"");
    assert_eq!(code, Some(0), "{err}");
    assert!(cp.starts_with("beta.example/log\n3\n"), "{cp}");
    assert!(err.contains("frozen at size 3"), "{err}");
    let (code, _, err) = run(&["append", "--log", "beta", "-"], &admin, events);
    assert_ne!(code, Some(0));
    assert!(err.contains("log \"beta\" is frozen at size 3"), "{err}");
    let (_, list, _) = run(&["log", "list", "--json"], &admin, b"");
    let beta: serde_json::Value = list
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["name"] == "beta")
        .unwrap();
    assert_eq!(beta["frozen"], true);
    assert_eq!(beta["size"], 3);
    drop(st);

    // Config mistakes, named.
    for (text, want) in [
        (
            "origin = \"x\"\n[[log]]\nname = \"a\"\norigin = \"a/log\"\ndata_dir = \"a\"\n",
            "set it in each [[log]] table",
        ),
        (
            "[[log]]\nname = \"Bad Name\"\norigin = \"a/log\"\ndata_dir = \"a\"\n",
            "log name \"Bad Name\"",
        ),
        (
            "[[log]]\nname = \"a\"\norigin = \"a/log\"\ndata_dir = \"a\"\nnot_after = \"tomorrow\"\n",
            "not_after: \"tomorrow\" is not an RFC 3339 time",
        ),
        (
            "[[log]]\nname = \"a\"\norigin = \"a/log\"\ndata_dir = \"a\"\nappend_rate = -1.0\n",
            "append_rate must be positive",
        ),
        (
            "otlp_log = \"nope\"\n[[log]]\nname = \"a\"\norigin = \"a/log\"\ndata_dir = \"a\"\n",
            "otlp_log \"nope\" is not a configured log",
        ),
    ] {
        let bad = tmp.path().join("bad.toml");
        std::fs::write(&bad, text).unwrap();
        let out = cairn()
            .args(["config", "check"])
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{text}: {err}");
    }
    // Two logs with one origin: refused when the server starts.
    let dup = tmp.path().join("dup.toml");
    std::fs::write(
        &dup,
        format!("grpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[[log]]\nname = \"a\"\norigin = \"same/log\"\ndata_dir = \"{d}/x1\"\n[[log]]\nname = \"b\"\norigin = \"same/log\"\ndata_dir = \"{d}/x2\"\n"),
    )
    .unwrap();
    let out = cairn()
        .args(["serve", "--config"])
        .arg(&dup)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("have the same origin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Erasure from the command line (issue 21): `cairn new-kek` (mode 0600,
/// refuses to overwrite), `serve --subject-keys --kek-file` with an
/// encrypting policy, `append`, `reveal` (the plaintext on stdout, the
/// access record on stderr; refused for an admin token), `erase` (the
/// record's receipt), then `reveal` answers "erased". The subject never
/// reaches the server's log output.
#[test]
fn erase_and_reveal_from_the_command_line() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (admin, e1) = new_token("ops", "admin,append");
    let (dpo, e2) = new_token("dpo", "reveal");
    let tokens = tmp.path().join("tokens.toml");
    std::fs::write(&tokens, format!("{e1}\n{e2}")).unwrap();
    let kek = tmp.path().join("kek");
    let out = cairn()
        .args(["new-kek", "--out"])
        .arg(&kek)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = cairn()
        .args(["new-kek", "--out"])
        .arg(&kek)
        .output()
        .unwrap();
    assert!(!again.status.success(), "new-kek must not overwrite a KEK");
    let policy = tmp.path().join("policy.toml");
    std::fs::write(
        &policy,
        "version = 1\nsubject = \"/user\"\n[detectors]\nemail = \"encrypt\"\n",
    )
    .unwrap();
    // Without a key store, an encrypting policy does not start.
    let out = cairn()
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(tmp.path().join("d0"))
        .arg("--policy")
        .arg(&policy)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no subject key store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server on this data folder, with a key store and its KEK.
    let serve = |keys: &str, kek: &std::path::Path| {
        start(
            cairn()
                .args([
                    "serve",
                    "--grpc-addr",
                    "127.0.0.1:0",
                    "--http-addr",
                    "127.0.0.1:0",
                ])
                .arg("--data-dir")
                .arg(tmp.path().join("data"))
                .arg("--policy")
                .arg(&policy)
                .arg("--subject-keys")
                .arg(tmp.path().join(keys))
                .arg("--kek-file")
                .arg(kek)
                .arg("--token-file")
                .arg(&tokens),
        )
    };
    let mut st = serve("keys", &kek);
    let server = format!("http://127.0.0.1:{}", st.port);
    let run = |args: &[&str], token: &str, stdin: &[u8]| client(&server, args, token, stdin);
    let canary = "zq.canary.person@example.com";
    let events = format!(
        "{{\"user\":\"{canary}\",\"action\":\"login\"}}\n{{\"user\":\"{canary}\",\"note\":\"again {canary}\"}}\n"
    );
    let (code, receipts, err) = run(&["append", "-"], &admin, events.as_bytes());
    assert_eq!(code, Some(0), "{err}");
    assert!(!receipts.contains(canary), "{receipts}");
    // Reveal: admin may not; the dpo may, with a purpose.
    let (code, _, err) = run(
        &[
            "reveal",
            "--index",
            "0",
            "--pointer",
            "/user",
            "--purpose",
            "x",
        ],
        &admin,
        b"",
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("PermissionDenied"), "{err}");
    let (code, plain, err) = run(
        &[
            "reveal",
            "--index",
            "1",
            "--pointer",
            "/note",
            "--purpose",
            "ticket 9",
        ],
        &dpo,
        b"",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(plain.trim(), format!("again {canary}"));
    let access: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(access["access_record"]["index"], 2);
    // Erase (subject from stdin, so it is not in the process list).
    let (code, out, err) = run(
        &["erase", "--subject-stdin", "--reason", "user asked"],
        &admin,
        format!("{canary}\n").as_bytes(),
    );
    assert_eq!(code, Some(0), "{err}");
    let erased: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(erased["existed"], true);
    assert_eq!(erased["erasure_record"]["index"], 3);
    let (code, _, err) = run(
        &[
            "reveal",
            "--index",
            "0",
            "--pointer",
            "/user",
            "--purpose",
            "x",
        ],
        &dpo,
        b"",
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("erased") && err.contains("index 3"), "{err}");
    // Nothing of the subject in the server's output.
    drop(st.serving);
    let mut rest = String::new();
    st.stderr.read_to_string(&mut rest).unwrap();
    let all = format!("{}{rest}", st.startup);
    assert!(!all.contains(canary), "{all}");
    assert!(all.contains("subject erased"), "{all}");

    // KEK rotation (server stopped): a new KEK, every key rewrapped into a
    // new folder; the server starts on it and the erased subject stays
    // erased.
    let kek2 = tmp.path().join("kek2");
    assert!(
        cairn()
            .args(["new-kek", "--out"])
            .arg(&kek2)
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = cairn()
        .args(["rewrap-keys", "--subject-keys"])
        .arg(tmp.path().join("keys"))
        .arg("--kek-file")
        .arg(&kek)
        .arg("--new-kek-file")
        .arg(&kek2)
        .arg("--out")
        .arg(tmp.path().join("keys2"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = serve("keys2", &kek2);
    let server = format!("http://127.0.0.1:{}", st.port);
    let (code, _, err) = client(
        &server,
        &[
            "reveal",
            "--index",
            "1",
            "--pointer",
            "/note",
            "--purpose",
            "x",
        ],
        &dpo,
        b"",
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("erased") && err.contains("index 3"), "{err}");
    // A new subject seals and reveals under the rotated store.
    let (code, _, err) = client(
        &server,
        &["append", "-"],
        &admin,
        b"{\"user\":\"x.other@example.com\"}\n",
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, plain, err) = client(
        &server,
        &[
            "reveal",
            "--index",
            "4",
            "--pointer",
            "/user",
            "--purpose",
            "x",
        ],
        &dpo,
        b"",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(plain.trim(), "x.other@example.com");
}
