//! National identifiers' check digits as custom-detector validators
//! (issue 17): a policy names one (`validator = "nhs_number"`), and only
//! numbers whose check digit holds are masked, whatever their separators.
//! The known answers are the specifications' own examples
//! (`cairn_masking::checksum`'s unit tests cite each).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use cairn_masking::{ContentType, Masker, Policy};
use common::masker;

fn mask(m: &Masker, text: &str) -> String {
    let mut n = 0u8;
    let mut salts = move || {
        n = n.wrapping_add(1);
        [n; 16]
    };
    let out = m
        .mask(text.as_bytes(), ContentType::Text, 0, &mut salts)
        .unwrap();
    String::from_utf8(out.leaf).unwrap()
}

#[test]
fn custom_detectors_check_national_identifiers() {
    // (validator, pattern, valid as written in logs, same shape but a
    // wrong check digit). The built-in numeric detectors are kept out of
    // the way, so that only the custom one decides.
    let cases = [
        (
            "nhs_number",
            r"\b[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}\b",
            "943 476 5919",
            "943 476 5918",
        ),
        (
            "aadhaar",
            r"\b[0-9]{4} ?[0-9]{4} ?[0-9]{4}\b",
            "4991 1866 5246",
            "4991 1866 5247",
        ),
        ("bsn", r"\b[0-9]{9}\b", "111222333", "111222334"),
        (
            "cpf",
            r"\b[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}\b",
            "111.444.777-35",
            "111.444.777-36",
        ),
        (
            "cnpj",
            r"\b[0-9]{2}\.[0-9]{3}\.[0-9]{3}/[0-9]{4}-[0-9]{2}\b",
            "11.222.333/0001-81",
            "11.222.333/0001-82",
        ),
        ("pesel", r"\b[0-9]{11}\b", "44051401359", "44051401358"),
        (
            "dni_nie",
            r"\b[XYZ]?[0-9]{7,8}[A-Z]\b",
            "12345678Z",
            "12345678A",
        ),
        ("aba_routing", r"\b[0-9]{9}\b", "021000021", "021000022"),
        (
            "ca_sin",
            r"\b[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{3}\b",
            "046-454-286",
            "046-454-287",
        ),
        (
            "au_tfn",
            r"\b[0-9]{3} ?[0-9]{3} ?[0-9]{3}\b",
            "876 543 210",
            "876 543 211",
        ),
        (
            "au_medicare",
            r"\b[2-6][0-9]{3} ?[0-9]{5} ?[0-9]\b",
            "2123 45670 1",
            "2123 45671 1",
        ),
        (
            "de_tax_id",
            r"\b[0-9]{2} ?[0-9]{3} ?[0-9]{3} ?[0-9]{3}\b",
            "86 095 742 719",
            "86 095 742 718",
        ),
        (
            "fr_nir",
            r"\b[12] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}\b",
            "2 55 08 14 168 025 38",
            "2 55 08 14 168 025 39",
        ),
        (
            "sg_nric",
            r"\b[STFG][0-9]{7}[A-Z]\b",
            "S1234567D",
            "S1234567E",
        ),
        (
            "codice_fiscale",
            r"\b[A-Z]{6}[0-9]{2}[A-Z][0-9]{2}[A-Z][0-9]{3}[A-Z]\b",
            "RSSMRA85T10A562S",
            "RSSMRA85T10A562T",
        ),
    ];
    for (validator, pattern, good, bad) in cases {
        let policy = format!(
            "version = 1\n[detectors]\nphone = \"keep\"\ncredit_card = \"keep\"\nssn = \"keep\"\niban = \"keep\"\n[[custom]]\nname = \"id\"\npattern = '{pattern}'\nvalidator = \"{validator}\"\naction = \"redact\"\n"
        );
        let m = masker(&policy);
        let out = mask(&m, &format!("patient {good} seen; ref {bad} kept"));
        assert!(!out.contains(good), "{validator}: {good} leaked: {out}");
        assert!(out.contains("[REDACTED:id]"), "{validator}: {out}");
        assert!(
            out.contains(bad),
            "{validator}: {bad} (bad check digit) was masked: {out}"
        );
    }
}

#[test]
fn an_unknown_validator_is_refused_with_the_list() {
    let e = Policy::from_toml(
        "p.toml",
        "version = 1\n[[custom]]\nname = \"id\"\npattern = 'x'\nvalidator = \"nhs\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown validator \"nhs\""), "{e}");
    assert!(
        e.contains("nhs_number") && e.contains("codice_fiscale"),
        "{e}"
    );
}
