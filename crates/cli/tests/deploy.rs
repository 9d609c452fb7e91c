//! The deployment files parse and say what they must: the compose file (a
//! log, two witnesses, an auditor, health checks) and the k8s manifests
//! (one-replica StatefulSet with a volume, Service, ConfigMap, Secret)
//! validate with a YAML parser (Python's PyYAML, which scripts/deps.sh
//! installs; missing under CI fails the test), the ConfigMap's config passes `cairn config check`, the
//! Dockerfile builds with the CI-tested steps as a non-root image, and the
//! systemd units sandbox the service.

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

#[test]
fn compose_and_k8s_manifests_validate() {
    let Some(out) = python_yaml(
        r#"
import yaml, json
c = yaml.safe_load(open("deploy/compose.yaml"))
s = c["services"]
assert set(s) == {"keys", "log", "w1", "w2", "auditor"}, s.keys()
assert s["log"]["depends_on"]["keys"]["condition"] == "service_completed_successfully"
for w in ("w1", "w2"):
    assert "healthcheck" in s[w]
assert s["auditor"]["depends_on"]["log"]["condition"] == "service_healthy"
assert "--follow" in s["auditor"]["command"]
docs = list(yaml.safe_load_all(open("deploy/k8s/cairn.yaml")))
kinds = {d["kind"]: d for d in docs}
assert set(kinds) == {"ConfigMap", "Secret", "Service", "StatefulSet"}, kinds.keys()
st = kinds["StatefulSet"]["spec"]
assert st["replicas"] == 1
assert st["volumeClaimTemplates"]
assert st["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
print(json.dumps({"config": kinds["ConfigMap"]["data"]["cairn.toml"],
                  "tokens": kinds["Secret"]["stringData"]["tokens.toml"]}))
"#,
    ) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, v["tokens"].as_str().unwrap()).unwrap();
    let config = dir.path().join("cairn.toml");
    std::fs::write(
        &config,
        v["config"]
            .as_str()
            .unwrap()
            .replace("/etc/cairn/secret/tokens.toml", tokens.to_str().unwrap()),
    )
    .unwrap();
    common::succeed(common::cairn().args(["config", "check"]).arg(&config));
}

#[test]
fn dockerfile_and_systemd_units() {
    let docker = std::fs::read_to_string(root().join("deploy/docker/Dockerfile")).unwrap();
    assert!(docker.contains("RUN bash deploy/docker/build-steps.sh"));
    assert!(docker.contains("USER cairn"));
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
