//! Fuzz-style property tests: no input panics; output is canonical JSON;
//! generated PII planted in random text never survives.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_masking::{ContentType, Masker, Policy, TokenKeys};
use proptest::prelude::*;

fn masker() -> &'static Masker {
    static M: std::sync::OnceLock<Masker> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        Masker::new(
            Policy::default_policy().unwrap(),
            &TokenKeys::new(),
            "p.example/log",
        )
        .unwrap()
    })
}

/// A masker for a policy given as TOML.
fn from_toml(file: &str, toml: &str) -> Masker {
    let p = Policy::from_toml(file, toml).unwrap();
    Masker::new(p, &TokenKeys::new(), "p.example/log").unwrap()
}

fn keep_all() -> &'static Masker {
    static M: std::sync::OnceLock<Masker> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        from_toml(
            "keep.toml",
            "version = 1\nmode = \"allowlist\"\n[[fields]]\npath = \"**\"\naction = \"keep\"\n",
        )
    })
}

/// A masker with a custom detector that flags what the default one keeps
/// ("ACME-" and six digits), to share a thread with the default masker.
fn custom() -> &'static Masker {
    static M: std::sync::OnceLock<Masker> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        from_toml(
            "custom.toml",
            "version = 1\n[[custom]]\nname = \"acme\"\npattern = 'ACME-[0-9]{6}'\naction = \"redact\"\n",
        )
    })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        (-1e12f64..1e12).prop_map(|f| serde_json::json!(f)),
        "\\PC{0,24}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map("\\PC{0,10}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects whose canonical form serde_json can write independently: keys
/// and strings over a small alphabet with characters that need escaping
/// (where byte order is UTF-16 order), integers, booleans and nulls, and
/// no PII for the default policy to find.
fn plain_object() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        (-1000i64..1000).prop_map(|n| serde_json::json!(n)),
        "[a-z \"\\\\\n\t\u{1}é]{0,10}".prop_map(serde_json::Value::String),
    ];
    // Keys the default policy treats as sensitive field names ("pwd",
    // "pin", "ssn"...) would be masked whatever their value: left out.
    let key = "[a-z\"\\\\\n ]{0,6}".prop_filter("a sensitive field name", |k: &String| {
        let ev = serde_json::to_vec(&serde_json::json!({ k.as_str(): 0 })).unwrap();
        masker()
            .mask(&ev, ContentType::Json, 0, &mut || [0u8; 16])
            .is_ok_and(|m| m.decisions.is_empty())
    });
    let inner_key = key.clone();
    let value = leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(inner_key.clone(), inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    proptest::collection::btree_map(key, value, 0..8)
        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
}

/// RFC 8785 form of a value from `plain_object`: sorted keys (byte order
/// is UTF-16 order for its alphabet), serde_json's escapes (the short
/// forms, then `\u00xx` in lower case, as RFC 8785 asks).
fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let sorted: std::collections::BTreeMap<&String, String> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let members: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        serde_json::Value::Array(a) => {
            format!(
                "[{}]",
                a.iter().map(canonical).collect::<Vec<_>>().join(",")
            )
        }
        other => serde_json::to_string(other).unwrap(),
    }
}

fn luhn_complete(prefix: &str) -> String {
    let digits: Vec<u32> = prefix.bytes().map(|b| u32::from(b - b'0')).collect();
    for check in 0..10 {
        let mut sum = 0;
        let all: Vec<u32> = digits.iter().copied().chain([check]).collect();
        for (k, d) in all.iter().rev().enumerate() {
            let mut v = *d;
            if k % 2 == 1 {
                v *= 2;
                if v > 9 {
                    v -= 9;
                }
            }
            sum += v;
        }
        if sum % 10 == 0 {
            return format!("{prefix}{check}");
        }
    }
    unreachable!()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut obj = b"{\"k\":\"".to_vec();
        obj.extend_from_slice(&bytes);
        obj.extend_from_slice(b"\"}");
        // And whatever is accepted makes a leaf that is JSON (a text event
        // with quotes or control characters once did not).
        for (input, ct) in [
            (&bytes, ContentType::Json),
            (&bytes, ContentType::Text),
            (&obj, ContentType::Json),
        ] {
            if let Ok(m) = masker().mask(input, ct, 0, &mut || [0u8; 16]) {
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&m.leaf).is_ok());
            }
        }
    }

    /// Text dense in the pieces of numbers (prefixes, country-code
    /// starts, separators, extensions) goes through every number rule
    /// without a panic: "call 00 21  12345678" once indexed past the end
    /// of a two-digit country-code start.
    #[test]
    fn number_fragments_never_panic(parts in proptest::collection::vec(proptest::sample::select(vec![
        "0", "00", "011", "1", "2", "21", "44", "7", "9", "+", "(", ")", " ", "  ", "-", ".", "/",
        ":", "x", " ext. ", "tel:", ";ext=", "12345678", "4111", "a", "AB", "\n",
    ]), 0..40)) {
        let text = parts.concat();
        let m = masker().mask(text.as_bytes(), ContentType::Text, 0, &mut || [0u8; 16]);
        prop_assert!(m.is_ok_and(|m| serde_json::from_slice::<serde_json::Value>(&m.leaf).is_ok()));
    }

    #[test]
    fn arbitrary_json_gives_canonical_json(v in json_value()) {
        let obj = match v {
            serde_json::Value::Object(_) => v,
            other => serde_json::json!({ "v": other }),
        };
        let input = serde_json::to_vec(&obj).unwrap();
        let out = masker().mask(&input, ContentType::Json, 0, &mut || [0u8; 16]).unwrap();
        // Leaf and body are valid JSON.
        let leaf: serde_json::Value = serde_json::from_slice(&out.leaf).unwrap();
        prop_assert_eq!(leaf["v"].as_u64(), Some(1));
        // Canonical: re-reading the body with a keep-everything policy
        // reproduces it byte for byte.
        let kept = keep_all().mask(out.body(), ContentType::Json, 0, &mut || [0u8; 16]).unwrap();
        prop_assert_eq!(kept.body(), out.body());
        // And masking is stable: the masked body masks to itself.
        let again = masker().mask(out.body(), ContentType::Json, 0, &mut || [0u8; 16]).unwrap();
        prop_assert_eq!(again.body(), out.body());
    }

    #[test]
    fn planted_pii_never_survives(
        before in "[a-zA-Z ,.:;()=/-]{0,30}",
        after in "[a-zA-Z ,.:;()=/-]{0,30}",
        kind in 0usize..5,
        n in any::<u64>(),
    ) {
        let value = match kind {
            0 => format!("user{}.name@mail{}.example.com", n % 1000, n % 97),
            1 => luhn_complete(&format!("4{:014}", n % 100_000_000_000_000)),
            2 => format!("{:03}-{:02}-{:04}", 100 + n % 565, 10 + n % 89, 1000 + n % 8999),
            3 => format!("{}.{}.{}.{}", 1 + n % 223, n % 256, (n >> 8) % 256, 1 + (n >> 16) % 254),
            _ => format!("ghp_{:036}", n),
        };
        let text = format!("{before} {value} {after}");
        let ev = serde_json::to_vec(&serde_json::json!({ "m": text })).unwrap();
        let out = masker().mask(&ev, ContentType::Json, 0, &mut || [0u8; 16]).unwrap();
        let body = String::from_utf8(out.body().to_vec()).unwrap();
        prop_assert!(!body.contains(&value), "{} survived in {}", value, body);
        let t = masker().mask(text.as_bytes(), ContentType::Text, 0, &mut || [0u8; 16]).unwrap();
        prop_assert!(!String::from_utf8(t.body().to_vec()).unwrap().contains(&value));
    }

    /// The clean-string cache changes nothing: a value masks the same the
    /// first time, again on the same thread, and after another masker
    /// (with another idea of what is clean) has used the thread. PII and
    /// custom matches planted among repeated values never survive.
    #[test]
    fn repeated_values_mask_the_same(
        words in proptest::collection::vec("[a-z.-]{6,12}", 1..4),
        n in any::<u32>(),
    ) {
        let email = format!("user{n}@example.com");
        let acme = format!("ACME-{:06}", n % 1_000_000);
        let ev = |planted: &str| {
            let mut m = serde_json::Map::new();
            for (i, w) in words.iter().enumerate() {
                m.insert(format!("k{i}"), serde_json::json!(w));
            }
            m.insert("m".into(), serde_json::json!(planted));
            serde_json::to_vec(&m).unwrap()
        };
        let salt = &mut || [0u8; 16];
        for planted in [acme.as_str(), email.as_str(), acme.as_str()] {
            let e = ev(planted);
            let first = masker().mask(&e, ContentType::Json, 0, salt).unwrap();
            let second = masker().mask(&e, ContentType::Json, 0, salt).unwrap();
            prop_assert_eq!(&first.leaf, &second.leaf);
            let c1 = custom().mask(&e, ContentType::Json, 0, salt).unwrap();
            let again = masker().mask(&e, ContentType::Json, 0, salt).unwrap();
            let c2 = custom().mask(&e, ContentType::Json, 0, salt).unwrap();
            prop_assert_eq!(&first.leaf, &again.leaf);
            prop_assert_eq!(&c1.leaf, &c2.leaf);
            let custom_body = String::from_utf8(c1.body().to_vec()).unwrap();
            prop_assert!(!custom_body.contains(&acme) && !custom_body.contains(&email));
            let default_body = String::from_utf8(first.body().to_vec()).unwrap();
            prop_assert!(!default_body.contains(&email));
        }
    }

    /// Members that pass unchanged are copied from the event, in runs when
    /// they can be: whatever the key order, escapes and whitespace, the
    /// body is the canonical form serde_json writes independently.
    #[test]
    fn unchanged_objects_come_out_canonical(v in plain_object(), pretty in any::<bool>()) {
        let input = if pretty {
            serde_json::to_vec_pretty(&v).unwrap()
        } else {
            serde_json::to_vec(&v).unwrap()
        };
        let want = canonical(&v);
        for m in [masker(), keep_all()] {
            let out = m.mask(&input, ContentType::Json, 0, &mut || [0u8; 16]).unwrap();
            prop_assert_eq!(std::str::from_utf8(out.body()).unwrap(), want.as_str());
        }
    }

    /// The member order remembered from the event before is reused only
    /// when it still holds: a run of events over a two-letter key
    /// alphabet (so that the same prefixes come back at the same places,
    /// and keys longer than 8 bytes share prefixes) each comes out in
    /// canonical order.
    #[test]
    fn remembered_orders_follow_the_keys(
        events in proptest::collection::vec(
            proptest::collection::btree_map(
                "[ab]{1,10}",
                prop_oneof![
                    (0i64..9).prop_map(|n| serde_json::json!(n)),
                    proptest::collection::btree_map("[ab]{1,10}", 0i64..9, 0..4)
                        .prop_map(|m| serde_json::json!(m)),
                ],
                0..5,
            ),
            1..6,
        ),
        shuffle in any::<u64>(),
    ) {
        for (k, m) in events.iter().enumerate() {
            // Write the members in a rotated order, so that input order
            // differs from canonical order.
            let mut members: Vec<(&String, &serde_json::Value)> = m.iter().collect();
            if !members.is_empty() {
                let r = (shuffle as usize + k) % members.len();
                members.rotate_left(r);
            }
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), v))
                .collect();
            let input = format!("{{{}}}", body.join(","));
            let v: serde_json::Value = serde_json::from_str(&input).unwrap();
            let out = keep_all().mask(input.as_bytes(), ContentType::Json, 0, &mut || [0u8; 16]).unwrap();
            let want = canonical(&v);
            prop_assert_eq!(std::str::from_utf8(out.body()).unwrap(), want.as_str());
        }
    }
}
