//! The log's own records: an **erasure** (a subject's key was destroyed)
//! and an **access** (a sealed value was revealed). Both are ordinary v1
//! leaves whose body has one top-level member, [`RECORD_KEY`]:
//!
//! ```text
//! {"_cairn_record":{"by":"<who>","kind":"erasure","reason":"<text>","subject":"<key id>"}}
//! {"_cairn_record":{"by":"<who>","index":<n>,"kind":"access","pointer":"<ptr>","purpose":"<text>"}}
//! ```
//!
//! The free text (`by`, `reason`, `purpose`) is masked like any event, with
//! the built-in detectors ([`RECORD_POLICY`]), so a reason that names a
//! person is redacted before it reaches the leaf. Clients cannot append a
//! body with this member ([`is_reserved`]): only the server writes records.

use crate::{ContentType, MaskError, Masked, Masker, Policy, TokenKeys, seal::KeyId};

/// The reserved top-level member of a record's body.
pub const RECORD_KEY: &str = "_cairn_record";

/// The fixed policy records are masked with: every built-in detector
/// redacts, and the record's structural members are kept as they are.
pub const RECORD_POLICY: &str = r#"version = 1
mode = "detect"

[[fields]]
path = "_cairn_record.kind"
action = "keep"

[[fields]]
path = "_cairn_record.subject"
action = "keep"

[[fields]]
path = "_cairn_record.pointer"
action = "keep"
"#;

/// A record to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A subject's key was destroyed.
    Erasure {
        /// The subject's key id.
        subject: &'a KeyId,
        /// Who asked (the caller's identity name).
        by: &'a str,
        /// Why (free text; masked).
        reason: &'a str,
    },
    /// A sealed value was revealed.
    Access {
        /// The entry.
        index: u64,
        /// The field (a pointer into the entry's body).
        pointer: &'a str,
        /// Who asked.
        by: &'a str,
        /// Why (free text; masked).
        purpose: &'a str,
    },
}

/// The masker for records of the log `origin`.
pub fn record_masker(origin: &str) -> Result<Masker, MaskError> {
    let policy = Policy::from_toml("<records>", RECORD_POLICY)
        .map_err(|e| MaskError::Engine(e.to_string()))?;
    Masker::new(policy, &TokenKeys::new(), origin)
}

/// The record's masked leaf.
pub fn record_leaf(masker: &Masker, record: &Record<'_>, ts_ms: u64) -> Result<Masked, MaskError> {
    let body = match record {
        Record::Erasure {
            subject,
            by,
            reason,
        } => serde_json::json!({ RECORD_KEY: {
            "kind": "erasure", "subject": subject.as_str(), "by": by, "reason": reason,
        }}),
        Record::Access {
            index,
            pointer,
            by,
            purpose,
        } => serde_json::json!({ RECORD_KEY: {
            "kind": "access", "index": index, "pointer": pointer, "by": by, "purpose": purpose,
        }}),
    };
    let bytes = serde_json::to_vec(&body).map_err(|_| MaskError::NotAnObject)?;
    masker.mask(&bytes, ContentType::Json, ts_ms, &mut || [0u8; 16])
}

/// Whether a masked body (canonical JSON) has the reserved member at the
/// top level: such a client event is refused.
pub fn is_reserved(body: &[u8]) -> bool {
    // On every appended event: one precompiled substring search, and a
    // parse only for the rare body that has the member's name anywhere.
    static NEEDLE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"_cairn_record\":"));
    if NEEDLE.find(body).is_none() {
        return false;
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.contains_key(RECORD_KEY)))
        .unwrap_or(false)
}

/// A record as read back from a leaf's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParsedRecord {
    /// See [`Record::Erasure`].
    Erasure {
        /// The subject's key id.
        subject: KeyId,
    },
    /// See [`Record::Access`].
    Access {
        /// The entry revealed.
        index: u64,
        /// The field.
        pointer: String,
    },
}

/// Reads a record from a leaf's body: `Ok(None)` if the body is not a
/// record, `Err` if it is one but malformed (the auditor reports it).
pub fn parse_record(body: &serde_json::Value) -> Result<Option<ParsedRecord>, String> {
    let Some(r) = body.as_object().and_then(|o| o.get(RECORD_KEY)) else {
        return Ok(None);
    };
    let r = r.as_object().ok_or("a record is not an object")?;
    let s = |k: &str| -> Result<&str, String> {
        r.get(k)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("a record's {k:?} is missing or not a string"))
    };
    let keys: Vec<&str> = r.keys().map(String::as_str).collect();
    match s("kind")? {
        "erasure" => {
            if keys != ["by", "kind", "reason", "subject"] {
                return Err(format!("an erasure record has members {keys:?}"));
            }
            s("by")?;
            s("reason")?;
            let subject =
                KeyId::parse(s("subject")?).ok_or("an erasure record's subject is not a key id")?;
            Ok(Some(ParsedRecord::Erasure { subject }))
        }
        "access" => {
            if keys != ["by", "index", "kind", "pointer", "purpose"] {
                return Err(format!("an access record has members {keys:?}"));
            }
            s("by")?;
            s("purpose")?;
            let pointer = s("pointer")?.to_owned();
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err("an access record's pointer is not a JSON pointer".into());
            }
            let index = r
                .get("index")
                .and_then(serde_json::Value::as_u64)
                .ok_or("an access record's index is not a non-negative integer")?;
            Ok(Some(ParsedRecord::Access { index, pointer }))
        }
        other => Err(format!("unknown record kind {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_mask_their_free_text_and_parse_back() {
        let m = record_masker("example.com/log").unwrap();
        let kid = KeyId::from_bytes(&[5; 16]);
        let leaf = record_leaf(
            &m,
            &Record::Erasure {
                subject: &kid,
                by: "dpo",
                reason: "request from ana@example.com",
            },
            7,
        )
        .unwrap();
        let text = String::from_utf8(leaf.leaf.clone()).unwrap();
        assert!(!text.contains("ana@example.com"), "{text}");
        assert!(text.contains(kid.as_str()));
        let v: serde_json::Value = serde_json::from_slice(&leaf.leaf).unwrap();
        assert!(is_reserved(leaf.body()));
        assert_eq!(
            parse_record(&v["body"]).unwrap(),
            Some(ParsedRecord::Erasure { subject: kid })
        );
        let leaf = record_leaf(
            &m,
            &Record::Access {
                index: 12,
                pointer: "/user",
                by: "auditor",
                purpose: "incident 42",
            },
            8,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&leaf.leaf).unwrap();
        assert_eq!(
            parse_record(&v["body"]).unwrap(),
            Some(ParsedRecord::Access {
                index: 12,
                pointer: "/user".into()
            })
        );
    }

    #[test]
    fn only_a_top_level_member_is_reserved() {
        assert!(is_reserved(br#"{"_cairn_record":{}}"#));
        assert!(is_reserved(br#"{"a":1,"_cairn_record":1}"#));
        assert!(!is_reserved(br#"{"a":{"_cairn_record":1}}"#));
        assert!(!is_reserved(br#"{"a":"_cairn_record"}"#));
        let bad = serde_json::json!({ RECORD_KEY: { "kind": "erasure", "by": "x", "reason": "y", "subject": "nope" } });
        assert!(parse_record(&bad).is_err());
        assert_eq!(parse_record(&serde_json::json!({"a": 1})).unwrap(), None);
    }
}
