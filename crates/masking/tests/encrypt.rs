//! The `encrypt` action through the public API: subjects by pointer or by
//! value, erased subjects and missing subjects redacted (and the decision
//! says so), key store failures fail the event, and sealed values open
//! only for their origin, field and key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use cairn_masking::seal::{DataKey, KeyId, Sealed, SubjectKeyError, SubjectKeys, find_sealed};
use cairn_masking::{ContentType, MaskError, Policy};
use zeroize::Zeroizing;

mod common;
use common::masker;

/// Keys in memory: subject -> (id, key); `None` values are erased.
#[derive(Default)]
struct MemKeys {
    keys: HashMap<String, Option<(KeyId, [u8; 32])>>,
    asked: Vec<String>,
    fail: bool,
}

impl SubjectKeys for MemKeys {
    fn data_key(&mut self, subject: &str) -> Result<Option<(KeyId, DataKey)>, SubjectKeyError> {
        if self.fail {
            return Err(SubjectKeyError("disk on fire".into()));
        }
        self.asked.push(subject.to_owned());
        let n = self.keys.len() as u8;
        let e = self
            .keys
            .entry(subject.to_owned())
            .or_insert_with(|| Some((KeyId::from_bytes(&[n; 16]), [n.wrapping_add(1); 32])));
        Ok(e.as_ref().map(|(k, key)| (k.clone(), Zeroizing::new(*key))))
    }
}

fn salts() -> impl FnMut() -> [u8; 16] {
    let mut n = 0u8;
    move || {
        n = n.wrapping_add(1);
        [n; 16]
    }
}

#[test]
fn values_are_sealed_under_the_subject_named_by_the_pointer() {
    let m = masker("version = 1\nsubject = \"/actor/id\"\n[detectors]\nemail = \"encrypt\"\n");
    assert!(m.encrypts());
    let mut keys = MemKeys::default();
    let ev = br#"{"actor":{"id":"u-17"},"note":"mail ana@example.com or bo@example.com"}"#;
    let out = m
        .mask_sealed(ev, ContentType::Json, 1, &mut salts(), &mut keys)
        .unwrap();
    let leaf = String::from_utf8(out.leaf.clone()).unwrap();
    assert!(!leaf.contains("ana@") && !leaf.contains("bo@"), "{leaf}");
    assert_eq!(
        keys.asked,
        ["u-17"],
        "both under the actor's key, looked up once"
    );
    assert!(leaf.contains(r#"["/note","email","encrypt"]"#), "{leaf}");
    let v: serde_json::Value = serde_json::from_slice(&out.leaf).unwrap();
    let note = v["body"]["note"].as_str().unwrap();
    let found = find_sealed(note);
    assert_eq!(found.len(), 2);
    let key = [1u8; 32];
    let opened: Vec<String> = found
        .iter()
        .map(|(_, s)| {
            s.open(&key, "example.com/log", "/note")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(opened, ["ana@example.com", "bo@example.com"]);
    // Bound to the field and the log.
    assert!(
        found[0]
            .1
            .open(&key, "example.com/log", "/actor/id")
            .is_err()
    );
    assert!(found[0].1.open(&key, "other.example/log", "/note").is_err());
    // The same value twice seals differently (fresh nonces).
    assert_ne!(
        found[0].1,
        Sealed::parse(&note[found[1].0.clone()]).unwrap()
    );
}

#[test]
fn without_a_pointer_each_value_is_its_own_subject() {
    let m = masker("version = 1\n[detectors]\nemail = \"encrypt\"\n");
    let mut keys = MemKeys::default();
    m.mask_sealed(
        br#"{"a":"ana@example.com","b":"bo@example.com"}"#,
        ContentType::Json,
        1,
        &mut salts(),
        &mut keys,
    )
    .unwrap();
    assert_eq!(keys.asked, ["ana@example.com", "bo@example.com"]);
}

#[test]
fn a_missing_or_erased_subject_is_redacted_and_says_so() {
    let m = masker("version = 1\nsubject = \"/actor/id\"\n[detectors]\nemail = \"encrypt\"\n");
    let mut keys = MemKeys::default();
    // No subject in the event.
    let out = m
        .mask_sealed(
            br#"{"note":"ana@example.com"}"#,
            ContentType::Json,
            1,
            &mut salts(),
            &mut keys,
        )
        .unwrap();
    assert_eq!(out.body(), br#"{"note":"[REDACTED:email]"}"#);
    assert_eq!(out.decisions[0].action, "redact");
    // An erased subject.
    keys.keys.insert("u-1".into(), None);
    let out = m
        .mask_sealed(
            br#"{"actor":{"id":"u-1"},"note":"ana@example.com"}"#,
            ContentType::Json,
            1,
            &mut salts(),
            &mut keys,
        )
        .unwrap();
    assert!(String::from_utf8_lossy(out.body()).contains("[REDACTED:email]"));
    assert_eq!(out.decisions[0].action, "redact");
}

#[test]
fn a_key_store_failure_fails_the_event_without_content() {
    let m = masker("version = 1\n[detectors]\nemail = \"encrypt\"\n");
    let mut keys = MemKeys {
        fail: true,
        ..MemKeys::default()
    };
    let e = m
        .mask_sealed(
            br#"{"a":"ana@example.com"}"#,
            ContentType::Json,
            1,
            &mut salts(),
            &mut keys,
        )
        .unwrap_err();
    assert!(matches!(e, MaskError::SubjectKeys(_)));
    assert!(!e.to_string().contains("ana"));
    // And without a key store at all (`mask`): refused, not silently redacted.
    assert!(matches!(
        m.mask(
            br#"{"a":"ana@example.com"}"#,
            ContentType::Json,
            1,
            &mut salts()
        ),
        Err(MaskError::SubjectKeys(_))
    ));
}

#[test]
fn policies_name_encrypt_and_check_the_subject_pointer() {
    let p = Policy::from_toml(
        "p.toml",
        "version = 1\n[[fields]]\npath = \"**.diagnosis\"\naction = \"encrypt\"\n",
    )
    .unwrap();
    assert!(p.uses(|a| a == cairn_masking::Action::Encrypt));
    let e = Policy::from_toml("p.toml", "version = 1\nsubject = \"actor.id\"\n").unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (2, "subject"));
    assert!(e.message.contains("JSON pointer"), "{e}");
    // The subject pointer is part of the digest (the leaves name it).
    let a = Policy::from_toml("p.toml", "version = 1\n").unwrap();
    let b = Policy::from_toml("p.toml", "version = 1\nsubject = \"/a\"\n").unwrap();
    assert_ne!(a.digest_hex(), b.digest_hex());
}
