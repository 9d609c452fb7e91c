//! tlog-witness add-checkpoint bodies: parsing never panics, and a parsed
//! request encodes back to the same body.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(r) = cairn_client::AddCheckpoint::parse(data) {
        assert_eq!(r.encode().as_bytes(), data);
    }
});
