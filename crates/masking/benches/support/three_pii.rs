//! The ~300-byte, 3-PII-value events of the masking benches (shared by
//! `cairn-masking`'s `mask` and `cairn-subjects`' `encrypt` benches).

/// ~300-byte events with 3 PII values each.
pub(crate) fn three_pii() -> Vec<Vec<u8>> {
    (0..2000u32)
        .map(|i| {
            format!(
                r#"{{"ts":"2026-03-13T20:03:{:02}Z","action":"user.update","request_id":"req_{:012x}","actor":{{"email":"user{i}@example.com","ip":"198.51.{}.{}","agent":"Mozilla/5.0 (X11; Linux x86_64)"}},"note":"callback to +44 20 7946 {:04} requested by support","result":"success","build":"7.14.{}","region":"eu-west-1"}}"#,
                i % 60,
                u64::from(i) * 7919,
                i % 256,
                (i * 7) % 256,
                i % 10000,
                i % 100
            )
            .into_bytes()
        })
        .collect()
}
