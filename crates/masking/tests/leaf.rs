//! Known answers for leaf format v1 (docs/design/masking.md), and the
//! determinism and error rules around it. The digest, token and commitment
//! values were computed independently with Python's hashlib/hmac (the
//! script is in docs/design/masking.md), not by this crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_masking::{ContentType, MaskError, Masker, Policy, TokenKeys, verify_opening};

const ORIGIN: &str = "example.com/audit-log";
const DEFAULT_DIGEST: &str = "fab73935b6272e2b3f2287c222f89bf7490d43fe5f7d181cd5a5f87dbc4e0ca8";

fn default_masker() -> Masker {
    Masker::new(Policy::default_policy().unwrap(), &TokenKeys::new(), ORIGIN).unwrap()
}

fn mask(m: &Masker, ev: &str) -> Result<String, MaskError> {
    m.mask(ev.as_bytes(), ContentType::Json, 1767225600000, &mut || {
        [0x11u8; 16]
    })
    .map(|o| String::from_utf8(o.leaf).unwrap())
}

#[test]
fn default_policy_digest() {
    assert_eq!(default_masker().policy_digest(), DEFAULT_DIGEST);
}

#[test]
fn json_leaf_known_answer() {
    let ev = r#"{ "user": {"email": "jane.doe@example.com", "full_name": "Jane Doe"}, "ip": "203.0.113.9", "action": "login", "n": 1.50, "big": 12345678901234567890, "msg": "call +44 20 7946 0958" }"#;
    let want = concat!(
        r#"{"body":{"action":"login","big":12345678901234567890,"ip":"[REDACTED:ipv4]","msg":"call [REDACTED:phone]","n":1.5,"user":{"email":"[REDACTED:email]","full_name":"[REDACTED:name]"}},"#,
        r#""masked":[["/ip","ipv4","redact"],["/msg","phone","redact"],["/user/email","email","redact"],["/user/full_name","name","redact"]],"#,
        r#""policy":"fab73935b6272e2b3f2287c222f89bf7490d43fe5f7d181cd5a5f87dbc4e0ca8","ts":1767225600000,"v":1}"#
    );
    assert_eq!(mask(&default_masker(), ev).unwrap(), want);
}

#[test]
fn text_leaf_known_answer() {
    let m = default_masker();
    let out = m
        .mask(
            b"login failed for bob@example.com\tfrom 198.51.100.7",
            ContentType::Text,
            5,
            &mut || [0u8; 16],
        )
        .unwrap();
    let want = concat!(
        r#"{"body":"login failed for [REDACTED:email]\tfrom [REDACTED:ipv4]","#,
        r#""masked":[["","email","redact"],["","ipv4","redact"]],"#,
        r#""policy":"fab73935b6272e2b3f2287c222f89bf7490d43fe5f7d181cd5a5f87dbc4e0ca8","ts":5,"v":1}"#
    );
    assert_eq!(String::from_utf8(out.leaf).unwrap(), want);
}

/// A text event with nothing to mask is still written as an escaped JSON
/// string: quotes, backslashes and control characters included.
#[test]
fn text_leaf_without_detections_is_escaped() {
    let m = default_masker();
    let out = m
        .mask(
            b"say \"hi\"\tto C:\\temp",
            ContentType::Text,
            5,
            &mut || [0u8; 16],
        )
        .unwrap();
    assert_eq!(out.body(), br#""say \"hi\"\tto C:\\temp""#);
    let v: serde_json::Value = serde_json::from_slice(&out.leaf).unwrap();
    assert_eq!(v["body"], "say \"hi\"\tto C:\\temp");
}

/// Events over `MAX_EVENT` bytes are refused before any work.
#[test]
fn oversized_event_is_refused() {
    let big = vec![b' '; cairn_masking::MAX_EVENT + 1];
    let e = default_masker()
        .mask(&big, ContentType::Json, 0, &mut || [0u8; 16])
        .unwrap_err();
    assert_eq!(
        e,
        MaskError::TooLarge {
            limit: cairn_masking::MAX_EVENT
        }
    );
}

#[test]
fn token_and_commit_known_answers() {
    let policy = Policy::from_toml(
        "kat.toml",
        "version = 1\n[detectors]\nemail = \"token\"\nssn = \"commit\"\nipv4 = \"generalize\"\n",
    )
    .unwrap();
    let keys = TokenKeys::from_toml(
        "keys.toml",
        "[[token_key]]\nepoch = 1\nkey = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
    )
    .unwrap();
    let m = Masker::new(policy, &keys, ORIGIN).unwrap();
    let ev = r#"{"email":"jane.doe@example.com","note":"ssn 501-54-0643","ip":"33.147.244.26"}"#;
    let out = m
        .mask(ev.as_bytes(), ContentType::Json, 7, &mut || [0x11u8; 16])
        .unwrap();
    let body = std::str::from_utf8(out.body()).unwrap();
    assert_eq!(
        body,
        r#"{"email":"tok:1:uXdcRBY3GCQdCk1bWUZyPw","ip":"33.147.244.0/24","note":"ssn cmt:J2bD40JRgCUG1jh+LCx+5zUw703xEYwLLbXQh4k/ttI="}"#
    );
    // The opening goes back to the appender, and proves the one field.
    assert_eq!(out.openings.len(), 1);
    let o = &out.openings[0];
    assert_eq!((o.pointer.as_str(), o.detector.as_str()), ("/note", "ssn"));
    assert!(verify_opening(&o.commitment, &o.salt, &o.value));
    assert!(!verify_opening(&o.commitment, &o.salt, "501-54-0644"));
    // The opening's Debug output never shows the value.
    assert!(!format!("{o:?}").contains("501-54"));
    // Same key, same value, same token: joins work across events.
    let again = m
        .mask(
            br#"{"email":"jane.doe@example.com"}"#,
            ContentType::Json,
            8,
            &mut || [0u8; 16],
        )
        .unwrap();
    assert!(
        std::str::from_utf8(again.body())
            .unwrap()
            .contains("tok:1:uXdcRBY3GCQdCk1bWUZyPw")
    );
}

#[test]
fn leaf_is_deterministic_and_canonical() {
    let m = default_masker();
    let a = mask(
        &m,
        r#"{"b":1,"a":{"y":[1,2,{"q":null}],"x":"é\u00e9\/"},"c":true}"#,
    )
    .unwrap();
    let b = mask(
        &m,
        "{ \"c\" : true ,\n \"a\": {\"x\":\"éé/\", \"y\":[1, 2, {\"q\": null}]}, \"b\": 1 }",
    )
    .unwrap();
    assert_eq!(a, b, "key order and whitespace do not matter");
    assert!(
        a.starts_with(r#"{"body":{"a":{"x":"éé/","y":[1,2,{"q":null}]},"b":1,"c":true}"#),
        "{a}"
    );
    // One number form.
    let n = mask(
        &m,
        r#"{"a":1.0,"b":1e3,"c":-0,"d":0.1,"e":-1.25e-7,"f":100,"g":1E+2}"#,
    )
    .unwrap();
    assert!(
        n.contains(r#"{"a":1,"b":1000,"c":0,"d":0.1,"e":-1.25e-7,"f":100,"g":100}"#),
        "{n}"
    );
    // Control characters escaped, others literal.
    let s = mask(&m, r#"{"s":"tab\there \u0001 \"q\" \\ ✓"}"#).unwrap();
    assert!(s.contains(r#""s":"tab\there \u0001 \"q\" \\ ✓""#), "{s}");
    // RFC 8785 sorts keys by UTF-16 code units: U+FF61 (one unit) sorts
    // after U+1F600 (a surrogate pair starting 0xD83D).
    let k = mask(&m, r#"{"｡":1,"😀":2,"z":3}"#).unwrap();
    assert!(k.contains(r#"{"z":3,"😀":2,"｡":1}"#), "{k}");
}

#[test]
fn bad_input_gets_clear_errors_without_content() {
    let m = default_masker();
    let cases: &[(&[u8], &str)] = &[
        (b"{\"a\":1,\"a\":2}", "duplicate key"),
        (b"[1,2]", "must be an object"),
        (b"{\"a\":tru}", "invalid literal"),
        (b"{\"secret-value-here\"", "expected ':'"),
        (b"{\"a\":\"\\ud800\"}", "lone surrogate"),
        (b"{\"a\":01}", "expected ',' or '}'"),
        (b"{\"a\":1} x", "trailing characters"),
        (b"{\"a\":\"x\xff\"}", "not valid UTF-8"),
    ];
    for (ev, want) in cases {
        let e = m
            .mask(ev, ContentType::Json, 0, &mut || [0u8; 16])
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(want), "{msg} should mention {want}");
        assert!(!msg.contains("secret-value"), "error leaks content: {msg}");
    }
    let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let e = m
        .mask(deep.as_bytes(), ContentType::Json, 0, &mut || [0u8; 16])
        .unwrap_err();
    assert_eq!(e, MaskError::TooDeep { limit: 128 });
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(
        m.mask(deep.as_bytes(), ContentType::Json, 0, &mut || [0u8; 16])
            .unwrap_err(),
        MaskError::TooDeep { limit: 128 }
    );
}

#[test]
fn token_policy_without_key_is_refused() {
    let p = Policy::from_toml("p.toml", "version = 1\n[detectors]\nemail = \"token\"\n").unwrap();
    assert_eq!(
        Masker::new(p, &TokenKeys::new(), ORIGIN).unwrap_err(),
        MaskError::MissingTokenKey
    );
}

#[test]
fn key_file_errors_never_show_keys() {
    let e = TokenKeys::from_toml(
        "k.toml",
        "[[token_key]]\nepoch = 1\nkey = \"c2VjcmV0LWtleS1tYXRlcmlhbA==\"\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("32 bytes"));
    assert!(!e.to_string().contains("c2VjcmV0"));
    let e = TokenKeys::from_toml(
        "k.toml",
        "[[token_key]]\nepoch = 1\nkey = \"not base64 SECRETSTUFF!\"\n",
    )
    .unwrap_err();
    assert!(!e.to_string().contains("SECRETSTUFF"), "{e}");
    let keys = TokenKeys::from_toml("k.toml", "[[token_key]]\nepoch = 1\nkey = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n[[token_key]]\nepoch = 2\nkey = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n").unwrap();
    assert_eq!(keys.current().map(|k| k.0), Some(2));
    assert!(!format!("{keys:?}").contains("AAEC"));
}

#[test]
fn allowlist_mode_fails_closed() {
    let p = Policy::from_toml(
        "allow.toml",
        "version = 1\nmode = \"allowlist\"\nunlisted = \"drop\"\n[[fields]]\npath = \"action\"\naction = \"keep\"\n[[fields]]\npath = \"actor.**\"\naction = \"detect\"\n",
    )
    .unwrap();
    let m = Masker::new(p, &TokenKeys::new(), ORIGIN).unwrap();
    let out = m
        .mask(
            br#"{"action":"login","actor":{"email":"x.y@example.com","id":"u1"},"surprise":"anything","n":5}"#,
            ContentType::Json,
            0,
            &mut || [0u8; 16],
        )
        .unwrap();
    assert_eq!(
        std::str::from_utf8(out.body()).unwrap(),
        r#"{"action":"login","actor":{"email":"[REDACTED:email]","id":"u1"}}"#
    );
    let p = Policy::from_toml(
        "allow.toml",
        "version = 1\nmode = \"allowlist\"\n[[fields]]\npath = \"action\"\naction = \"keep\"\n",
    )
    .unwrap();
    let m = Masker::new(p, &TokenKeys::new(), ORIGIN).unwrap();
    let out = m
        .mask(
            br#"{"action":"x","other":"y","flag":true}"#,
            ContentType::Json,
            0,
            &mut || [0u8; 16],
        )
        .unwrap();
    assert_eq!(
        std::str::from_utf8(out.body()).unwrap(),
        r#"{"action":"x","flag":"[REDACTED:unlisted]","other":"[REDACTED:unlisted]"}"#
    );
}

#[test]
fn partial_and_custom_detectors() {
    let p = Policy::from_toml(
        "p.toml",
        "version = 1\n[detectors]\nemail = \"partial\"\ncredit_card = { action = \"partial\", keep_last = 4 }\n[[custom]]\nname = \"employee_id\"\npattern = \"EMP-[0-9]{6}\"\naction = \"redact\"\n[[custom]]\nname = \"acct\"\npattern = \"ACCT[0-9]{8}\"\nvalidator = \"luhn\"\n",
    )
    .unwrap();
    let m = Masker::new(p, &TokenKeys::new(), ORIGIN).unwrap();
    let out = m
        .mask(
            br#"{"m":"j.doe@example.com paid with 4242 4242 4242 4242 for EMP-123456, ACCT79927398 ACCT79927390"}"#,
            ContentType::Json,
            0,
            &mut || [0u8; 16],
        )
        .unwrap();
    assert_eq!(
        std::str::from_utf8(out.body()).unwrap(),
        r#"{"m":"j***@example.com paid with ************4242 for [REDACTED:employee_id], [REDACTED:acct] ACCT79927390"}"#
    );
}
