//! C2SP tlog-proof parsing never panics, a parsed proof re-encodes to the
//! same text, and verification of anything parsed returns an error rather
//! than panicking (the fixed key below signed none of it).
#![no_main]
use std::sync::LazyLock;

use cairn_core::{Hash, NoteVerifier, TlogProof, WitnessPolicy};

static KEY: LazyLock<NoteVerifier> = LazyLock::new(|| {
    NoteVerifier::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        .unwrap()
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = TlogProof::parse(text) {
        assert_eq!(p.encode(), text);
        let policy = WitnessPolicy::default();
        assert!(p.verify(&Hash([0; 32]), None, &KEY, &policy).is_err());
    }
});
