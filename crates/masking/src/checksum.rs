//! Check-digit validators of national identifiers and bank codes, each
//! from its published specification (cited on each function, with the
//! specification's own example as a known answer in the tests).
//!
//! They take the identifier's characters with separators already removed
//! (digits, or upper-case letters and digits where the format has them)
//! and only say whether the check digit holds: the shape around it (field
//! names, context words, separators) is the detector's business. Custom
//! detectors name them as `validator = "…"` ([`crate::policy::Validator`]).

/// The digits of `s` as numbers, if `s` is exactly `n` ASCII digits.
fn digits<const N: usize>(s: &[u8]) -> Option<[u32; N]> {
    if s.len() != N || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = [0u32; N];
    for (o, c) in out.iter_mut().zip(s) {
        *o = u32::from(c - b'0');
    }
    Some(out)
}

/// Verhoeff's dihedral check digit (J. Verhoeff, *Error Detecting Decimal
/// Codes*, 1969), as India's Aadhaar numbers use it (UIDAI): the whole
/// number, check digit last, multiplies out to 0.
pub fn verhoeff(s: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut c = 0u8;
    for (i, &b) in s.iter().rev().enumerate() {
        c = D[usize::from(c)][usize::from(P[i % 8][usize::from(b - b'0')])];
    }
    c == 0
}

/// An Aadhaar number (UIDAI): 12 digits, not starting with 0 or 1,
/// Verhoeff check digit last.
pub fn aadhaar(s: &[u8]) -> bool {
    s.len() == 12 && !matches!(s[0], b'0' | b'1') && verhoeff(s)
}

/// An NHS number (NHS Data Dictionary, "NHS Number"): 10 digits; the
/// first nine weighted 10 down to 2, check = 11 − (sum mod 11), 11 → 0,
/// 10 never issued.
pub fn nhs_number(s: &[u8]) -> bool {
    let Some(d) = digits::<10>(s) else {
        return false;
    };
    let sum: u32 = d[..9].iter().zip((2..=10).rev()).map(|(x, w)| x * w).sum();
    match 11 - sum % 11 {
        11 => d[9] == 0,
        10 => false,
        c => d[9] == c,
    }
}

/// A Dutch BSN (burgerservicenummer; the "elfproef", Wet algemene
/// bepalingen burgerservicenummer): 9 digits, 9·d1 + 8·d2 + … + 2·d8 −
/// d9 ≡ 0 (mod 11), and not all zeros.
pub fn bsn(s: &[u8]) -> bool {
    let Some(d) = digits::<9>(s) else {
        return false;
    };
    let sum: i64 = d[..8]
        .iter()
        .zip((2..=9).rev())
        .map(|(x, w)| i64::from(*x) * w)
        .sum::<i64>()
        - i64::from(d[8]);
    sum != 0 && sum.rem_euclid(11) == 0
}

/// A Brazilian CPF (Receita Federal): 11 digits, two mod-11 check digits
/// (weights 10..2, then 11..2; remainder × 10 mod 11, 10 → 0); numbers of
/// one repeated digit are not issued.
pub fn cpf(s: &[u8]) -> bool {
    let Some(d) = digits::<11>(s) else {
        return false;
    };
    if d.iter().all(|&x| x == d[0]) {
        return false;
    }
    (9..=10).all(|n| {
        let sum: u32 = d[..n]
            .iter()
            .zip((2..=(n as u32 + 1)).rev())
            .map(|(x, w)| x * w)
            .sum();
        (sum * 10) % 11 % 10 == d[n]
    })
}

/// A Brazilian CNPJ (Receita Federal): 14 digits, two mod-11 check digits
/// (weights 5,4,3,2,9..2 then 6,5,4,3,2,9..2; remainder < 2 → 0, else 11 −
/// remainder).
pub fn cnpj(s: &[u8]) -> bool {
    const W: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
    let Some(d) = digits::<14>(s) else {
        return false;
    };
    if d.iter().all(|&x| x == d[0]) {
        return false;
    }
    [(12, &W[1..]), (13, &W[..])].iter().all(|&(n, w)| {
        let sum: u32 = d[..n].iter().zip(w).map(|(x, w)| x * w).sum();
        let r = sum % 11;
        d[n] == if r < 2 { 0 } else { 11 - r }
    })
}

/// A Polish PESEL (Ustawa o ewidencji ludności): 11 digits, weights
/// 1,3,7,9,1,3,7,9,1,3, check = (10 − sum mod 10) mod 10.
pub fn pesel(s: &[u8]) -> bool {
    const W: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let Some(d) = digits::<11>(s) else {
        return false;
    };
    let sum: u32 = d[..10].iter().zip(W).map(|(x, w)| x * w).sum();
    (10 - sum % 10) % 10 == d[10]
}

/// A Spanish DNI (Real Decreto 1553/2005, Ministerio del Interior): 8
/// digits and the letter `TRWAGMYFPDXBNJZSQVHLCKE`[n mod 23]; an NIE
/// (foreigners) is `X`, `Y` or `Z` (read as 0, 1, 2) then 7 digits and the
/// same letter.
pub fn dni_nie(s: &[u8]) -> bool {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    if s.len() != 9 {
        return false;
    }
    let lead = match s[0] {
        b'X' => Some(0),
        b'Y' => Some(1),
        b'Z' => Some(2),
        _ => None,
    };
    let body = match lead {
        Some(_) => &s[1..8],
        None => &s[..8],
    };
    if !body.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut n = lead.unwrap_or(0u32);
    for &c in body {
        n = n * 10 + u32::from(c - b'0');
    }
    LETTERS[(n % 23) as usize] == s[8]
}

/// An ABA routing transit number (American Bankers Association; Federal
/// Reserve Financial Services, "Routing number"): 9 digits, 3·(d1+d4+d7) +
/// 7·(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10).
pub fn aba_routing(s: &[u8]) -> bool {
    let Some(d) = digits::<9>(s) else {
        return false;
    };
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8];
    sum != 0 && sum.is_multiple_of(10)
}

/// A Canadian SIN (Employment and Social Development Canada): 9 digits,
/// Luhn. A first digit 8 marks a business number, not a person's SIN; 0
/// is kept for fictitious numbers (ESDC's own example starts with it), so
/// it is accepted.
pub fn ca_sin(s: &[u8]) -> bool {
    s.len() == 9 && s.iter().all(u8::is_ascii_digit) && s[0] != b'8' && crate::detect::luhn(s)
}

/// An Australian TFN (Australian Taxation Office): 9 digits, weights
/// 1,4,3,7,5,8,6,9,10, sum ≡ 0 (mod 11).
pub fn au_tfn(s: &[u8]) -> bool {
    const W: [u32; 9] = [1, 4, 3, 7, 5, 8, 6, 9, 10];
    let Some(d) = digits::<9>(s) else {
        return false;
    };
    let sum: u32 = d.iter().zip(W).map(|(x, w)| x * w).sum();
    sum != 0 && sum.is_multiple_of(11)
}

/// An Australian Medicare card number (Services Australia): 10 digits
/// (the 11th, the card's position, is optional), the first 2–6, weights
/// 1,3,7,9,1,3,7,9 over the first eight, sum mod 10 = the ninth.
pub fn au_medicare(s: &[u8]) -> bool {
    const W: [u32; 8] = [1, 3, 7, 9, 1, 3, 7, 9];
    let body = match s.len() {
        10 => s,
        11 => &s[..10],
        _ => return false,
    };
    let Some(d) = digits::<10>(body) else {
        return false;
    };
    if !s.iter().all(u8::is_ascii_digit) || !(2..=6).contains(&d[0]) {
        return false;
    }
    let sum: u32 = d[..8].iter().zip(W).map(|(x, w)| x * w).sum();
    sum % 10 == d[8]
}

/// A German tax identification number (Steuerliche Identifikationsnummer,
/// § 139b AO; check digit by ISO/IEC 7064 MOD 11,10): 11 digits, not
/// starting with 0.
pub fn de_tax_id(s: &[u8]) -> bool {
    let Some(d) = digits::<11>(s) else {
        return false;
    };
    if d[0] == 0 {
        return false;
    }
    let mut product = 10;
    for &x in &d[..10] {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    let check = match 11 - product {
        10 => 0,
        c => c,
    };
    check == d[10]
}

/// A French NIR (numéro de sécurité sociale; INSEE): 13 characters (digits,
/// with `2A`/`2B` for Corsica's departments, read as 19 and 18) and a
/// two-digit key = 97 − (the 13 as a number mod 97).
pub fn fr_nir(s: &[u8]) -> bool {
    if s.len() != 15 {
        return false;
    }
    let mut body = [0u8; 13];
    body.copy_from_slice(&s[..13]);
    match &body[5..7] {
        b"2A" => body[5..7].copy_from_slice(b"19"),
        b"2B" => body[5..7].copy_from_slice(b"18"),
        _ => {}
    }
    let (Some(n), Some(key)) = (number(&body), number(&s[13..])) else {
        return false;
    };
    97 - n % 97 == key
}

/// `s` as a decimal number, if it is all digits (and short enough).
fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, &c| n * 10 + u64::from(c - b'0')))
}

/// A Singapore NRIC or FIN (Immigration & Checkpoints Authority): `S`,
/// `T`, `F` or `G`, 7 digits weighted 2,7,6,5,4,3,2 (plus 4 for `T` and
/// `G`), and a check letter from the series' table by the sum mod 11.
pub fn sg_nric(s: &[u8]) -> bool {
    const W: [u32; 7] = [2, 7, 6, 5, 4, 3, 2];
    if s.len() != 9 {
        return false;
    }
    let (offset, table): (u32, &[u8; 11]) = match s[0] {
        b'S' => (0, b"JZIHGFEDCBA"),
        b'T' => (4, b"JZIHGFEDCBA"),
        b'F' => (0, b"XWUTRQPNMLK"),
        b'G' => (4, b"XWUTRQPNMLK"),
        _ => return false,
    };
    let Some(d) = digits::<7>(&s[1..8]) else {
        return false;
    };
    let sum: u32 = d.iter().zip(W).map(|(x, w)| x * w).sum::<u32>() + offset;
    table[(sum % 11) as usize] == s[8]
}

/// An Italian codice fiscale (Decreto ministeriale 23 dicembre 1976): 16
/// characters, the last a check letter: the first 15 summed with the odd
/// positions' table and the even positions' values, mod 26, as a letter.
pub fn codice_fiscale(s: &[u8]) -> bool {
    /// Odd positions (1st, 3rd…): digits 0–9 then letters A–Z.
    const ODD: [u32; 36] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, // 0-9
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23, // A-Z
    ];
    if s.len() != 16
        || !s
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return false;
    }
    let index = |c: u8| -> usize {
        if c.is_ascii_digit() {
            usize::from(c - b'0')
        } else {
            10 + usize::from(c - b'A')
        }
    };
    let mut sum = 0u32;
    for (i, &c) in s[..15].iter().enumerate() {
        sum += if i % 2 == 0 {
            ODD[index(c)]
        } else if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A')
        };
    }
    s[15] == b'A' + (sum % 26) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check's name, the check, a valid example, and an invalid one.
    type Case = (&'static str, fn(&[u8]) -> bool, &'static str, &'static str);

    /// Each specification's example, and a one-digit change of it that
    /// must fail.
    #[test]
    fn known_answers_from_the_specifications() {
        let cases: &[Case] = &[
            // Verhoeff's worked example (236 → check digit 3).
            ("verhoeff", verhoeff, "2363", "2364"),
            // UIDAI's sample Aadhaar number.
            ("aadhaar", aadhaar, "499118665246", "499118665247"),
            // The NHS Data Dictionary's example number 943 476 5919.
            ("nhs", nhs_number, "9434765919", "9434765918"),
            // The BSN test numbers the Dutch government publishes for
            // software testing.
            ("bsn", bsn, "111222333", "111222334"),
            // Receita Federal's documentation example.
            ("cpf", cpf, "11144477735", "11144477736"),
            ("cnpj", cnpj, "11222333000181", "11222333000182"),
            // The PESEL of the statute's example (1944-05-14).
            ("pesel", pesel, "44051401359", "44051401358"),
            // The Ministerio del Interior's DNI example, and an NIE.
            ("dni", dni_nie, "12345678Z", "12345678A"),
            ("nie", dni_nie, "X1234567L", "X1234567M"),
            // Federal Reserve Bank of Boston; JPMorgan Chase.
            ("aba", aba_routing, "011000015", "011000016"),
            ("aba", aba_routing, "021000021", "021000022"),
            // Service Canada's fictitious example SIN 046 454 286.
            ("sin", ca_sin, "046454286", "046454287"),
            // An ATO-style valid TFN (weights sum to 154 = 14 × 11).
            ("tfn", au_tfn, "876543210", "876543211"),
            // Services Australia's test card 2123 45670 1.
            ("medicare", au_medicare, "2123456701", "2123456711"),
            // The BZSt's published example identification numbers.
            ("steuer-id", de_tax_id, "86095742719", "86095742718"),
            ("steuer-id", de_tax_id, "65929970489", "65929970488"),
            // INSEE's documentation example NIR with its key 38.
            ("nir", fr_nir, "255081416802538", "255081416802539"),
            // Corsica: 2A read as 19.
            ("nir", fr_nir, "184092A12345550", "184092A12345551"),
            // ICA's commonly used example NRIC.
            ("nric", sg_nric, "S1234567D", "S1234567E"),
            // The Agenzia delle Entrate's example, Mario Rossi.
            (
                "codice fiscale",
                codice_fiscale,
                "RSSMRA85T10A562S",
                "RSSMRA85T10A562T",
            ),
        ];
        for (name, f, good, bad) in cases {
            assert!(f(good.as_bytes()), "{name}: {good} must validate");
            assert!(!f(bad.as_bytes()), "{name}: {bad} must not validate");
        }
        // Shapes that are never issued.
        assert!(!cpf(b"11111111111"));
        assert!(!aadhaar(b"123456789012"));
        assert!(!ca_sin(b"846454286"));
        assert!(!au_medicare(b"1123456701"));
        assert!(!bsn(b"000000000"));
        assert!(!de_tax_id(b"06095742719"));
        assert!(!nhs_number(b"123456789"));
    }
}
