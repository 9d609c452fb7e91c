//! C2SP tlog-policy text: parsing never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = cairn_client::TrustPolicy::parse("fuzz", s);
    }
});
