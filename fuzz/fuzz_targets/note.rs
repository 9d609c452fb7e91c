//! Signed notes, checkpoints and tlog-proofs: parsing never panics, and
//! whatever parses re-serializes to the same bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(n) = cairn_core::Note::parse(data) {
        assert_eq!(n.to_string().as_bytes(), data);
        let _ = cairn_core::Checkpoint::parse(n.text());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = cairn_core::TlogProof::parse(s);
        let _ = cairn_core::TilePath::parse(s);
    }
});
