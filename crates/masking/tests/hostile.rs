//! Hostile shapes of input (issue 15): nesting as deep as a policy may
//! allow, on threads with small stacks; PII and secrets used as JSON keys.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_masking::policy::MAX_DEPTH_LIMIT;
use cairn_masking::{ContentType, MaskError, Masker, Policy, TokenKeys};

const ORIGIN: &str = "example.com/audit-log";

fn masker(policy: &str) -> Masker {
    let p = Policy::from_toml("test.toml", policy).unwrap();
    Masker::new(p, &TokenKeys::new(), ORIGIN).unwrap()
}

fn mask(m: &Masker, ev: &[u8]) -> Result<String, MaskError> {
    m.mask(ev, ContentType::Json, 1767225600000, &mut || [0x11u8; 16])
        .map(|o| String::from_utf8(o.leaf).unwrap())
}

/// `depth` levels: objects and arrays alternating, `{"a":[{"a":[…1…]}]}`
/// (the top level is always an object, as events must be).
fn nested(depth: usize) -> Vec<u8> {
    let mut s = Vec::with_capacity(depth * 6);
    for d in 0..depth {
        s.extend_from_slice(if d % 2 == 0 { b"{\"a\":" } else { b"[" });
    }
    s.push(b'1');
    for d in (0..depth).rev() {
        s.push(if d % 2 == 0 { b'}' } else { b']' });
    }
    s
}

/// Runs `f` on a new thread with `stack` bytes of stack.
fn on_stack<T: Send + 'static>(stack: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deepest_nesting_a_policy_allows_is_safe_on_small_stacks() {
    let policy = format!("version = 1\nmax_depth = {MAX_DEPTH_LIMIT}\n");
    // 256 KiB of stack (a Tokio worker has 2 MiB, rayon's 2 MiB): the walk
    // grows its own. Before the fix, the default 2 MiB overflowed at about
    // 9,000 levels and aborted the process.
    for stack in [256 * 1024, 2 * 1024 * 1024] {
        let m = masker(&policy);
        let (deepest, too_deep) = on_stack(stack, move || {
            (
                mask(&m, &nested(MAX_DEPTH_LIMIT)),
                mask(&m, &nested(MAX_DEPTH_LIMIT + 1)),
            )
        });
        let leaf = deepest.unwrap();
        // The value itself survives at the bottom, and every level closes.
        assert!(leaf.contains("{\"a\":[{\"a\":[1]}]}"), "stack {stack}");
        assert!(
            matches!(too_deep, Err(MaskError::TooDeep { limit }) if limit == MAX_DEPTH_LIMIT),
            "stack {stack}: {too_deep:?}"
        );
    }
}

#[test]
fn deep_arrays_and_objects_alone() {
    let m = masker(&format!("version = 1\nmax_depth = {MAX_DEPTH_LIMIT}\n"));
    let depth = MAX_DEPTH_LIMIT;
    // Arrays only, under one key.
    let mut ev = b"{\"x\":".to_vec();
    ev.extend(std::iter::repeat_n(b'[', depth - 1));
    ev.extend_from_slice(b"\"ana@example.com\"");
    ev.extend(std::iter::repeat_n(b']', depth - 1));
    ev.push(b'}');
    let leaf = on_stack(256 * 1024, move || mask(&m, &ev)).unwrap();
    assert!(
        !leaf.contains("ana@example.com"),
        "the email at the bottom is masked"
    );
    // Objects only.
    let m = masker(&format!("version = 1\nmax_depth = {MAX_DEPTH_LIMIT}\n"));
    let mut ev = Vec::new();
    for _ in 0..depth {
        ev.extend_from_slice(b"{\"k\":");
    }
    ev.extend_from_slice(b"true");
    ev.extend(std::iter::repeat_n(b'}', depth));
    let leaf = on_stack(256 * 1024, move || mask(&m, &ev)).unwrap();
    assert!(leaf.contains("{\"k\":true}}}"), "the bottom survives");
}

#[test]
fn max_depth_above_the_limit_is_refused_by_validation() {
    let e = Policy::from_toml(
        "p.toml",
        &format!("version = 1\nmax_depth = {}\n", MAX_DEPTH_LIMIT + 1),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("max_depth") && e.contains("10000"), "{e}");
}

fn default_masker() -> Masker {
    Masker::new(Policy::default_policy().unwrap(), &TokenKeys::new(), ORIGIN).unwrap()
}

#[test]
fn secrets_and_pii_used_as_keys_are_masked() {
    let m = default_masker();
    for (ev, raw) in [
        (r#"{"AKIAIOSFODNN7EXAMPLE":1}"#, "AKIAIOSFODNN7EXAMPLE"),
        (r#"{"ana@example.com":{"role":"admin"}}"#, "ana@example.com"),
        (r#"{"users":{"+1 415 555 0172":true}}"#, "415 555 0172"),
        (
            r#"{"cards":{"4111111111111111":"visa"}}"#,
            "4111111111111111",
        ),
        // Short keys and keys with no suspicious character were passed
        // over before: an IBAN and a token-like secret.
        (
            r#"{"x":{"GB82WEST12345698765432":1}}"#,
            "GB82WEST12345698765432",
        ),
        (
            r#"{"ghp_16C7e42F292c6912E7710c838347Ae178B4a":"gh"}"#,
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        ),
    ] {
        let leaf = mask(&m, ev.as_bytes()).unwrap();
        assert!(!leaf.contains(raw), "{ev} -> {leaf}");
        assert!(leaf.contains("[REDACTED:"), "{ev} -> {leaf}");
    }
    // Twice the same key (a stream's repeated shape): masked both times,
    // numbered apart within one event.
    let ev = r#"{"a":{"ana@example.com":1},"b":{"ana@example.com":2}}"#;
    let first = mask(&m, ev.as_bytes()).unwrap();
    assert_eq!(first, mask(&m, ev.as_bytes()).unwrap());
    assert!(!first.contains("ana@example.com"), "{first}");
}

#[test]
fn keys_under_whole_value_rules_and_custom_detectors() {
    let m = masker(
        r#"
version = 1

[[fields]]
path = "secret"
action = "redact"

[[fields]]
path = "kept"
action = "keep"

[[custom]]
name = "employee_id"
pattern = "EMP-[0-9]{6}"
action = "redact"
"#,
    );
    // A key inside a value masked whole is scanned too.
    let leaf = mask(&m, br#"{"secret":{"ana@example.com":"x"}}"#).unwrap();
    assert!(!leaf.contains("ana@example.com"), "{leaf}");
    // Custom detectors run over keys.
    let leaf = mask(&m, br#"{"by":{"EMP-123456":"x"}}"#).unwrap();
    assert!(!leaf.contains("EMP-123456"), "{leaf}");
    assert!(leaf.contains("[REDACTED:employee_id]#"), "{leaf}");
    // A value the policy keeps whole keeps its keys: the operator's rule.
    let leaf = mask(&m, br#"{"kept":{"ana@example.com":"x"}}"#).unwrap();
    assert!(leaf.contains("ana@example.com"), "{leaf}");
}

/// Keys get the same detectors as values: every corpus PII value that the
/// detectors find as a value under a neutral field name (`note`) is found
/// as a key as well.
#[test]
fn every_corpus_pii_value_as_a_key_is_masked() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pii-labeled.ndjson"
    ))
    .unwrap();
    let m = default_masker();
    let mut checked = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for p in v["pii"].as_array().unwrap() {
            let value = p["value"].as_str().unwrap();
            let as_value = serde_json::json!({ "note": value }).to_string();
            if mask(&m, as_value.as_bytes()).unwrap().contains(value) {
                continue; // found by its field name only, not its content
            }
            let as_key = serde_json::json!({ "k": { value: 1 } }).to_string();
            let leaf = mask(&m, as_key.as_bytes()).unwrap();
            assert!(
                !leaf.contains(value),
                "{} as a key survived: {leaf}",
                p["type"]
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}
