//! Masking arbitrary bytes as JSON and as text never panics, and a masked
//! leaf is valid JSON.
#![no_main]
use std::sync::LazyLock;

use cairn_masking::{ContentType, Masker, Policy, TokenKeys};

static MASKER: LazyLock<Masker> = LazyLock::new(|| {
    Masker::new(Policy::default_policy().unwrap(), &TokenKeys::new(), "fuzz/log").unwrap()
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for ct in [ContentType::Json, ContentType::Text] {
        if let Ok(m) = MASKER.mask(data, ct, 0, &mut || [0u8; 16]) {
            assert!(m.leaf.starts_with(b"{\"body\":"));
            assert!(serde_json::from_slice::<serde_json::Value>(&m.leaf).is_ok());
        }
    }
});
