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

fn keep_all() -> &'static Masker {
    static M: std::sync::OnceLock<Masker> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let p = Policy::from_toml(
            "keep.toml",
            "version = 1\nmode = \"allowlist\"\n[[fields]]\npath = \"**\"\naction = \"keep\"\n",
        )
        .unwrap();
        Masker::new(p, &TokenKeys::new(), "p.example/log").unwrap()
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
        let _ = masker().mask(&bytes, ContentType::Json, 0, &mut || [0u8; 16]);
        let _ = masker().mask(&bytes, ContentType::Text, 0, &mut || [0u8; 16]);
        let mut obj = b"{\"k\":\"".to_vec();
        obj.extend_from_slice(&bytes);
        obj.extend_from_slice(b"\"}");
        let _ = masker().mask(&obj, ContentType::Json, 0, &mut || [0u8; 16]);
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
}
