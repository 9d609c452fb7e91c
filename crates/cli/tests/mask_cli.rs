//! `cairn mask` end to end: the real binary, real files and pipes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

#[test]
fn masks_lines_in_order_and_reports_bad_lines_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    let mut lines = Vec::new();
    for i in 0..20_000 {
        if i == 7 {
            lines.push(r#"{"user":"secret-person@example.com", broken"#.to_owned());
        } else {
            lines.push(format!(
                r#"{{"seq":{i},"email":"user{i}@example.com","ok":true}}"#
            ));
        }
    }
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = cairn()
        .args(["mask", "--stats"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad line makes the exit status 1"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let masked: Vec<&str> = stdout.lines().collect();
    assert_eq!(masked.len(), 19_999);
    // Same order, masked, one event per line.
    for (k, line) in masked.iter().enumerate() {
        let i = if k < 7 { k } else { k + 1 };
        assert_eq!(
            *line,
            format!(r#"{{"email":"[REDACTED:email]","ok":true,"seq":{i}}}"#)
        );
    }
    assert!(stderr.contains("line 8:"), "{stderr}");
    assert!(
        !stderr.contains("secret-person"),
        "errors never show content: {stderr}"
    );
    assert!(stderr.contains("email 19999"), "stats: {stderr}");
}

#[test]
fn leaf_mode_stdin_and_fail_fast() {
    let mut child = cairn()
        .args(["mask", "--leaf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"ip\":\"203.0.113.9\"}\n\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let leaf: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(leaf["body"]["ip"], "[REDACTED:ipv4]");
    assert_eq!(leaf["v"], 1);
    assert_eq!(leaf["policy"].as_str().unwrap().len(), 64);

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.ndjson");
    std::fs::write(&input, "not json\n{\"a\":1}\n").unwrap();
    let out = cairn()
        .args(["mask", "--fail-fast"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn policy_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n[detectors]\nemail = \"vaporize\"\n").unwrap();
    let out = cairn()
        .args(["mask", "--policy"])
        .arg(&policy)
        .arg("/dev/null")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("policy.toml:3:"), "{err}");
    assert!(err.contains("detectors.email"), "{err}");
    // Token policy without a key file is refused up front.
    std::fs::write(&policy, "version = 1\n[detectors]\nemail = \"token\"\n").unwrap();
    let out = cairn()
        .args(["mask", "--policy"])
        .arg(&policy)
        .arg("/dev/null")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("--key-file")
    );
    // A masking key file others can read is refused (issue 15, item 9),
    // like the log's key; mode 0600 is accepted.
    let keys = dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        "[[token_key]]\nepoch = 1\nkey = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let with_keys = || {
        cairn()
            .args(["mask", "--policy"])
            .arg(&policy)
            .arg("--key-file")
            .arg(&keys)
            .arg("/dev/null")
            .output()
            .unwrap()
    };
    let out = with_keys();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("readable by group or others"), "{err}");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = with_keys();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Usage errors exit 2; --help exits 0.
    assert_eq!(
        cairn()
            .args(["mask", "--bogus"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    let help = cairn().args(["mask", "--help"]).output().unwrap();
    assert!(help.status.success());
    assert!(
        String::from_utf8(help.stdout)
            .unwrap()
            .contains("--fail-fast")
    );
}
