//! The deployment files parse and say what they must: the compose file (a
//! log, two witnesses, an auditor, health checks) and the k8s manifests
//! (one-replica StatefulSet with data and fork-guard volumes, Service,
//! ConfigMap, Secrets) validate with a YAML parser (Python's PyYAML, which
//! scripts/deps.sh installs; missing under CI fails the test), the
//! Dockerfile builds with the CI-tested steps as a non-root image, and the
//! systemd units sandbox the service.
//!
//! Every shipped log config is authenticated and encrypted (issue 15, item
//! 7): the image's default config, the ConfigMap's, and the configs the
//! compose file's `keys` service writes (its script is run here, with the
//! real `cairn` binary) pass `cairn config check` with no security
//! warning, and keep the fork guard off the data volume.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a Python snippet that loads YAML; `None` when Python or PyYAML is
/// missing outside CI (under CI that fails the test).
fn python_yaml(script: &str) -> Option<String> {
    let have = Command::new("python3")
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !cairn_server::testing::require(have, "python3 with PyYAML (apt-get install python3-yaml)") {
        return None;
    }
    let out = common::succeed(
        Command::new("python3")
            .args(["-c", script])
            .current_dir(root()),
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// `cairn config check` on a serve config: passes, and says nothing about
/// security (a listener beyond loopback without tokens or without TLS).
fn check_secure(config: &std::path::Path) {
    let out = common::succeed(common::cairn().args(["config", "check"]).arg(config));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("SECURITY"), "{}: {err}", config.display());
}

#[test]
fn an_open_config_is_flagged_by_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("open.toml");
    std::fs::write(&config, "grpc_addr = \"0.0.0.0:7400\"\n").unwrap();
    let out = common::succeed(common::cairn().args(["config", "check"]).arg(&config));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SECURITY") && err.contains("no token file"),
        "{err}"
    );
}

/// The two-replica manifest for a log in a bucket (issue 19): a
/// Deployment of two (one writes, one is a warm standby), no liveness
/// probe (a standby is alive while it waits), readiness on
/// `/healthz/writer` (the writer only) and a read Service that includes
/// the standby, the S3 credentials
/// from a Secret, one shared signing key copied 0600; its config passes
/// `cairn config check` with nothing insecure.
#[test]
fn the_bucket_ha_manifest_validates() {
    let Some(out) = python_yaml(
        r#"
import yaml, json
docs = list(yaml.safe_load_all(open("deploy/k8s/cairn-bucket-ha.yaml")))
kinds = sorted(d["kind"] for d in docs)
assert kinds == ["ConfigMap", "Deployment", "Secret", "Secret", "Secret", "Secret", "Service", "Service"], kinds
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
dep = by[("Deployment", "cairn-ha")]["spec"]
assert dep["replicas"] == 2
pod = dep["template"]["spec"]
assert pod["securityContext"]["runAsNonRoot"] is True
c0 = pod["containers"][0]
assert "livenessProbe" not in c0
assert c0["readinessProbe"]["httpGet"]["path"] == "/healthz/writer"
assert by[("Service", "cairn-ha-read")]["spec"]["publishNotReadyAddresses"] is True
assert c0["envFrom"][0]["secretRef"]["name"] == "cairn-ha-s3"
assert "install -m 0600 /etc/cairn/key-secret/log.key" in pod["initContainers"][0]["command"][2]
print(json.dumps({"config": by[("ConfigMap", "cairn-ha-config")]["data"]["cairn.toml"],
                  "tokens": by[("Secret", "cairn-ha-tokens")]["stringData"]["tokens.toml"]}))
"#,
    ) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let config = v["config"].as_str().unwrap();
    for key in [
        "store = \"s3://",
        "etcd = ",
        "signing_key",
        "token_file",
        "tls_cert",
    ] {
        assert!(config.contains(key), "the HA config lacks {key}");
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, v["tokens"].as_str().unwrap()).unwrap();
    let path = dir.path().join("cairn.toml");
    std::fs::write(
        &path,
        config.replace("/etc/cairn/secret/tokens.toml", tokens.to_str().unwrap()),
    )
    .unwrap();
    check_secure(&path);
}

#[test]
fn compose_and_k8s_manifests_validate() {
    let Some(out) = python_yaml(
        r#"
import yaml, json
c = yaml.safe_load(open("deploy/compose.yaml"))
s = c["services"]
assert set(s) == {"keys", "log", "w1", "w2", "auditor"}, s.keys()
assert s["log"]["depends_on"]["keys"]["condition"] == "service_completed_successfully"
for w in ("log", "w1", "w2"):
    assert "healthcheck" in s[w], w
assert s["auditor"]["depends_on"]["log"]["condition"] == "service_healthy"
assert "--follow" in s["auditor"]["command"]
assert "--server=https://log:7400" in s["auditor"]["command"]
assert any(v.startswith("guard:") for v in s["log"]["volumes"]), s["log"]["volumes"]
assert "guard" in c["volumes"]
docs = list(yaml.safe_load_all(open("deploy/k8s/cairn.yaml")))
kinds = sorted(d["kind"] for d in docs)
assert kinds == ["ConfigMap", "Secret", "Secret", "Service", "StatefulSet"], kinds
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
st = by[("StatefulSet", "cairn")]["spec"]
assert st["replicas"] == 1
assert sorted(v["metadata"]["name"] for v in st["volumeClaimTemplates"]) == ["data", "guard"]
pod = st["template"]["spec"]
assert pod["securityContext"]["runAsNonRoot"] is True
c0 = pod["containers"][0]
assert c0["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
assert "0600" in pod["initContainers"][0]["command"][2]
print(json.dumps({"config": by[("ConfigMap", "cairn-config")]["data"]["cairn.toml"],
                  "tokens": by[("Secret", "cairn-tokens")]["stringData"]["tokens.toml"],
                  "keys": s["keys"]["command"][0]}))
"#,
    ) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // The ConfigMap's config, with the Secret's token file and a TLS pair.
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, v["tokens"].as_str().unwrap()).unwrap();
    let k8s = v["config"].as_str().unwrap();
    for key in [
        "token_file",
        "tls_cert",
        "tls_key",
        "guard_file = \"/var/lib/cairn-guard/",
    ] {
        assert!(k8s.contains(key), "the ConfigMap's config lacks {key}");
    }
    let config = dir.path().join("cairn.toml");
    std::fs::write(
        &config,
        k8s.replace("/etc/cairn/secret/tokens.toml", tokens.to_str().unwrap()),
    )
    .unwrap();
    check_secure(&config);

    // The compose file's `keys` service, run for real in a temporary
    // folder (compose's `$$` is a `$`), then every config it wrote.
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let script = v["keys"]
        .as_str()
        .unwrap()
        .replace("$$", "$")
        .replace(
            "/var/lib/cairn-guard",
            dir.path().join("guard").to_str().unwrap(),
        )
        .replace("/var/lib/cairn", state.to_str().unwrap());
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cairn"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    common::succeed(
        Command::new("bash")
            .args(["-euc", &script])
            .env("PATH", path),
    );
    let log = std::fs::read_to_string(state.join("log/cairn.toml")).unwrap();
    for key in [
        "token_file",
        "tls_cert",
        "tls_key",
        "witness_ca",
        "guard_file",
    ] {
        assert!(
            log.contains(key),
            "the compose log config lacks {key}:\n{log}"
        );
    }
    assert!(!log.contains("http://"), "a plaintext URL:\n{log}");
    check_secure(&state.join("log/cairn.toml"));
    for w in ["w1", "w2"] {
        let wc = state.join(w).join("witness.toml");
        let text = std::fs::read_to_string(&wc).unwrap();
        assert!(
            text.contains("tls_cert") && !text.contains("http://"),
            "{text}"
        );
        common::succeed(
            common::cairn()
                .args(["config", "check", "--witness"])
                .arg(&wc),
        );
    }
    // Keys and tokens are for the cairn user alone.
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "tls/log.key",
        "tls/ca.key",
        "secrets/ingest.token",
        "log/data/log.key",
    ] {
        let mode = std::fs::metadata(state.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} has mode {mode:o}");
    }
    // The token file holds hashes only.
    let token = std::fs::read_to_string(state.join("secrets/ingest.token")).unwrap();
    let file = std::fs::read_to_string(state.join("log/tokens.toml")).unwrap();
    assert!(
        !file.contains(token.trim()) && file.matches("[[token]]").count() == 2,
        "{file}"
    );

    // The image's default config, with its secrets in place.
    let image = std::fs::read_to_string(root().join("deploy/docker/cairn.toml")).unwrap();
    assert!(
        image.contains("guard_file = \"/var/lib/cairn-guard/"),
        "{image}"
    );
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::copy(&tokens, secrets.join("cairn-tokens.toml")).unwrap();
    let config = dir.path().join("image.toml");
    std::fs::write(
        &config,
        image.replace("/run/secrets", secrets.to_str().unwrap()),
    )
    .unwrap();
    check_secure(&config);
    // ...and without them, the log refuses to start, naming the file.
    let out = common::cairn()
        .args(["config", "check"])
        .arg(root().join("deploy/docker/cairn.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/run/secrets/cairn-tokens.toml"), "{err}");
}

#[test]
fn dockerfile_and_systemd_units() {
    let docker = std::fs::read_to_string(root().join("deploy/docker/Dockerfile")).unwrap();
    assert!(docker.contains("RUN bash deploy/docker/build-steps.sh"));
    assert!(docker.contains("USER cairn"));
    // The default command runs the shipped, secured config; data and guard
    // are separate volumes.
    assert!(docker.contains(r#"CMD ["serve", "--config", "/etc/cairn/cairn.toml"]"#));
    assert!(docker.contains("COPY deploy/docker/cairn.toml /etc/cairn/cairn.toml"));
    assert!(docker.contains(r#"VOLUME ["/var/lib/cairn", "/var/lib/cairn-guard"]"#));
    assert_eq!(
        docker.matches("\nFROM ").count() + usize::from(docker.starts_with("FROM")),
        2
    );
    let steps = std::fs::read_to_string(root().join("deploy/docker/build-steps.sh")).unwrap();
    assert!(steps.contains("--locked"));
    for unit in ["cairn.service", "cairn-witness.service"] {
        let u = std::fs::read_to_string(root().join("deploy/systemd").join(unit)).unwrap();
        for line in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=",
            "User=cairn",
        ] {
            assert!(u.contains(line), "{unit} lacks {line}");
        }
    }
}

/// The shipper configurations (issue 20) have the shape Cairn needs: OTLP
/// or NDJSON to the right paths, no compression, a bearer token from the
/// environment. The Collector's and Vector's own validators run when they
/// are installed (`otelcol validate`, `vector validate`).
#[test]
fn shipper_configs_have_the_shape_cairn_needs() {
    let dir = root().join("deploy/shippers");
    // Vector (TOML).
    let v: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.join("vector.toml")).unwrap()).unwrap();
    let sink = &v["sinks"]["cairn"];
    assert_eq!(sink["type"].as_str(), Some("http"));
    assert!(
        sink["uri"]
            .as_str()
            .unwrap()
            .ends_with("/logs/payments/append")
    );
    assert_eq!(sink["compression"].as_str(), Some("none"));
    assert_eq!(
        sink["framing"]["method"].as_str(),
        Some("newline_delimited")
    );
    assert_eq!(sink["encoding"]["codec"].as_str(), Some("json"));
    assert_eq!(sink["auth"]["strategy"].as_str(), Some("bearer"));
    assert!(sink["batch"]["max_events"].as_integer().unwrap() <= 1000);
    // Fluent Bit (classic format): the OUTPUT section.
    let fb = std::fs::read_to_string(dir.join("fluent-bit.conf")).unwrap();
    let output: std::collections::HashMap<String, String> = fb
        .split("[OUTPUT]")
        .nth(1)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    assert_eq!(output["name"], "opentelemetry");
    assert_eq!(output["logs_uri"], "/v1/logs");
    assert!(output["header"].starts_with("Authorization Bearer ${"));
    assert!(!output.contains_key("compress"));
    // The Collector (YAML).
    let Some(out) = python_yaml(
        r#"
import yaml
c = yaml.safe_load(open("deploy/shippers/otel-collector.yaml"))
e = c["exporters"]["otlp/cairn"]
assert e["compression"] == "none", e
assert e["headers"]["authorization"].startswith("Bearer ${env:"), e
assert c["processors"]["batch"]["send_batch_max_size"] <= 1000
p = c["service"]["pipelines"]["logs"]
assert p["exporters"] == ["otlp/cairn"], p
assert any(a["key"] == "cairn.log" for a in c["processors"]["resource/cairn"]["attributes"])
print("ok")
"#,
    ) else {
        return;
    };
    assert_eq!(out.trim(), "ok");
    for (tool, args, file) in [
        ("otelcol", ["validate", "--config"], "otel-collector.yaml"),
        ("vector", ["validate", "--no-environment"], "vector.toml"),
    ] {
        if Command::new(tool).arg("--version").output().is_ok() {
            let out = Command::new(tool)
                .args(args)
                .arg(dir.join(file))
                .env("CAIRN_TOKEN", "x")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{tool}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
