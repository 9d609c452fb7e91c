//! Identifiers found by their own shape and check (MAC addresses, UK
//! NINOs, India PANs, Singapore NRICs, Italian codici fiscali, Korean
//! RRNs, crypto-wallet addresses), and identifiers found after a context
//! word (`passport`, `NHS`, `Aadhaar`, `PESEL`, `SWIFT`…), whose own shape
//! (a run of digits) is too common to take alone.
//!
//! The shapes are gated by the string's census (enough capitals, digits or
//! colons) and the context words are triggers in the automaton that runs
//! over every string anyway ([`crate::detect`]), so strings without them
//! pay nothing.

use std::ops::Range;

use crate::checksum;
use crate::detect::Detector;

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// No letter or digit at `i - 1`.
fn open_left(b: &[u8], i: usize) -> bool {
    i == 0 || !is_alnum(b[i - 1])
}

/// No letter or digit at `j`.
fn open_right(b: &[u8], j: usize) -> bool {
    b.get(j).is_none_or(|&c| !is_alnum(c))
}

// ------------------------------------------------------------ MAC

/// IEEE 802 MAC addresses: six hex pairs joined by `:` or `-` (IEEE Std
/// 802-2014, 8.1, "hexadecimal representation"), or Cisco's three groups
/// of four joined by `.`. All zeros and the broadcast address identify no
/// device and are left alone.
fn mac_at(b: &[u8], i: usize) -> Option<usize> {
    let hex = |k: usize| b.get(k).is_some_and(u8::is_ascii_hexdigit);
    if i > 0 && (is_alnum(b[i - 1]) || matches!(b[i - 1], b':' | b'-' | b'.')) {
        return None;
    }
    let end = if matches!(b.get(i + 2), Some(b':' | b'-')) {
        let sep = b[i + 2];
        let ok = (0..6).all(|k| hex(i + 3 * k) && hex(i + 3 * k + 1))
            && (0..5).all(|k| b.get(i + 3 * k + 2) == Some(&sep));
        // Not followed by more of the same (a seventh group) or a word.
        let more = b.get(i + 17) == Some(&sep) && b.get(i + 18).is_some_and(u8::is_ascii_hexdigit);
        (ok && !more && open_right(b, i + 17)).then_some(i + 17)?
    } else {
        let ok = (0..3).all(|k| (0..4).all(|d| hex(i + 5 * k + d)))
            && b.get(i + 4) == Some(&b'.')
            && b.get(i + 9) == Some(&b'.')
            && (0..3).any(|k| (0..4).any(|d| b[i + 5 * k + d].is_ascii_digit()));
        // A sentence's full stop may follow; a fourth group may not.
        let more = b.get(i + 14) == Some(&b'.') && b.get(i + 15).is_some_and(|&c| is_alnum(c));
        (ok && !more && open_right(b, i + 14)).then_some(i + 14)?
    };
    let mut zero = true;
    let mut bcast = true;
    for &c in b[i..end].iter().filter(|c| c.is_ascii_hexdigit()) {
        zero &= c == b'0';
        bcast &= c == b'f' || c == b'F';
    }
    (!zero && !bcast).then_some(end)
}

// ------------------------------------------------------- UK NINO

/// UK National Insurance numbers (HMRC National Insurance Manual
/// NIM39110): two prefix letters (not D, F, I, Q, U, V; the second not O;
/// not BG, GB, KN, NK, NT, TN, ZZ), six digits (as written, in pairs with
/// spaces or not), and a suffix A–D.
fn nino_at(b: &[u8], i: usize) -> Option<usize> {
    let (p0, p1) = (b[i], *b.get(i + 1)?);
    if !p0.is_ascii_uppercase() || !p1.is_ascii_uppercase() || !open_left(b, i) {
        return None;
    }
    if b"DFIQUV".contains(&p0) || b"DFIOQUV".contains(&p1) {
        return None;
    }
    if [*b"BG", *b"GB", *b"KN", *b"NK", *b"NT", *b"TN", *b"ZZ"].contains(&[p0, p1]) {
        return None;
    }
    let mut j = i + 2;
    let spaced = b.get(j) == Some(&b' ');
    for _ in 0..3 {
        if spaced {
            if b.get(j) != Some(&b' ') {
                return None;
            }
            j += 1;
        }
        if !(b.get(j)?.is_ascii_digit() && b.get(j + 1)?.is_ascii_digit()) {
            return None;
        }
        j += 2;
    }
    if spaced && b.get(j) == Some(&b' ') {
        j += 1;
    }
    if !matches!(b.get(j), Some(b'A'..=b'D')) || !open_right(b, j + 1) {
        return None;
    }
    Some(j + 1)
}

// ------------------------------------------------------- India PAN

/// India's Permanent Account Number (Income Tax Department, Notification
/// on PAN structure): five letters, four digits, a letter; the fourth
/// letter is the holder's type (P person, C company, H HUF, F firm, A
/// association, T trust, B body of individuals, L local authority, J
/// artificial juridical person, G government).
pub(crate) fn is_pan(t: &[u8]) -> bool {
    t.len() == 10
        && t[..5].iter().all(u8::is_ascii_uppercase)
        && b"PCHFATBLJG".contains(&t[3])
        && t[5..9].iter().all(u8::is_ascii_digit)
        && t[9].is_ascii_uppercase()
}

/// UK NINOs, India PANs, Singapore NRICs and Italian codici fiscali, in
/// one walk over the string's words.
/// The identifier that starts with the word `b[s..e]`, and its end.
fn letter_digit_id(b: &[u8], s: usize, e: usize) -> Option<usize> {
    let t = &b[s..e];
    let glued = (s > 0 && matches!(b[s - 1], b'_' | b'-' | b'/')) || b.get(e) == Some(&b'_');
    match t.len() {
        // A NINO, spaced ("AB 12 34 56 C") or not; else an NRIC.
        2 | 9 => {
            nino_at(b, s).or_else(|| (t.len() == 9 && !glued && checksum::sg_nric(t)).then_some(e))
        }
        10 if !glued && is_pan(t) => Some(e),
        16 if !glued && codice_fiscale_shape(t) && checksum::codice_fiscale(t) => Some(e),
        _ => None,
    }
}

/// Which shapes [`shapes`] looks for (from the string's census).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Want {
    /// NINO, PAN, NRIC, codice fiscale.
    pub ids: bool,
    /// Bitcoin addresses.
    pub wallets: bool,
    /// MAC addresses.
    pub mac: bool,
}

/// A letter or digit: one table load per byte.
static ALNUM: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).is_ascii_alphanumeric();
        i += 1;
    }
    t
};

/// One walk over the words of `b` for every shape in `want`: national
/// identifiers ([`letter_digit_ids`]'s), Bitcoin addresses
/// ([`bitcoin`]'s) and MAC addresses ([`mac_addresses`]'s), reported with
/// their detector.
pub(crate) fn shapes(b: &[u8], want: Want, f: &mut dyn FnMut(Range<usize>, Detector)) {
    let mut i = 0;
    let mut skip_to = 0;
    let n = b.len();
    while i < n {
        if !ALNUM[usize::from(b[i])] {
            i += 1;
            continue;
        }
        let s = i;
        while i < n && ALNUM[usize::from(b[i])] {
            i += 1;
        }
        if s < skip_to {
            continue;
        }
        let t = &b[s..i];
        let len = t.len();
        if want.mac
            && (len == 2 || len == 4)
            && matches!(b.get(i), Some(b':' | b'-' | b'.'))
            && let Some(end) = mac_at(b, s)
        {
            f(s..end, Detector::MacAddress);
            skip_to = end;
            continue;
        }
        if want.ids
            && matches!(len, 2 | 9 | 10 | 16)
            && let Some(end) = letter_digit_id(b, s, i)
        {
            f(s..end, Detector::NationalId);
            skip_to = end;
            continue;
        }
        if want.wallets && len >= 14 && wallet(b, s, t) {
            f(s..i, Detector::CryptoWallet);
        }
    }
}

fn codice_fiscale_shape(t: &[u8]) -> bool {
    const MONTHS: &[u8] = b"ABCDEHLMPRST";
    let digitish = |c: u8| c.is_ascii_digit() || ((b'L'..=b'V').contains(&c) && c != b'O');
    t.len() == 16
        && t[..6].iter().all(u8::is_ascii_uppercase)
        && digitish(t[6])
        && digitish(t[7])
        && MONTHS.contains(&t[8])
        && digitish(t[9])
        && digitish(t[10])
        && t[11].is_ascii_uppercase()
        && t[12..15].iter().all(|&c| digitish(c))
        && t[15].is_ascii_uppercase()
}

// -------------------------------------------------------- Korea RRN

/// A Korean resident registration number as written, `YYMMDD-GNNNNNN`:
/// a valid month and day, and a sex/century digit 1–8 (Resident
/// Registration Act; 5–8 for foreign residents). Numbers issued since
/// October 2020 end in random digits, so the old check digit is not
/// required.
pub(crate) fn korean_rrn(d: &[u8]) -> bool {
    if d.len() != 13 || !d.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n = |i: usize| u32::from(d[i] - b'0') * 10 + u32::from(d[i + 1] - b'0');
    (1..=12).contains(&n(2)) && (1..=31).contains(&n(4)) && (b'1'..=b'8').contains(&d[6])
}

/// A US ITIN (IRS, "Individual Taxpayer Identification Number"): nine
/// digits starting with 9, the middle group 50–65, 70–88, 90–92 or 94–99.
pub(crate) fn itin(d: &[u8]) -> bool {
    if d.len() != 9 || d[0] != b'9' || !d.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let g = u32::from(d[3] - b'0') * 10 + u32::from(d[4] - b'0');
    matches!(g, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

// ----------------------------------------------------- crypto wallets

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Bitcoin addresses: Base58Check P2PKH (`1…`) and P2SH (`3…`) with a
/// valid double-SHA-256 checksum (Bitcoin wiki, "Base58Check encoding"),
/// and SegWit Bech32/Bech32m addresses (`bc1…`, BIP 173 and BIP 350)
/// that decode (the `bech32` crate checks the checksum and the witness
/// program).
/// Whether the word `t`, at `s` in `b`, is a Bitcoin address.
fn wallet(b: &[u8], s: usize, t: &[u8]) -> bool {
    if !open_left(b, s) || (s > 0 && matches!(b[s - 1], b'_' | b'-' | b'/')) {
        return false;
    }
    if matches!(t[0], b'1' | b'3') && (26..=35).contains(&t.len()) {
        base58check(t)
    } else if t.len() <= 90 && t[..3].eq_ignore_ascii_case(b"bc1") {
        std::str::from_utf8(t).is_ok_and(|s| bech32::segwit::decode(s).is_ok())
    } else {
        false
    }
}

fn base58check(t: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    if !t.iter().all(|c| BASE58.contains(c))
        || !t.iter().any(u8::is_ascii_uppercase)
        || !t.iter().any(u8::is_ascii_lowercase)
    {
        return false;
    }
    let Ok(raw) = bs58::decode(t).into_vec() else {
        return false;
    };
    if raw.len() != 25 || !matches!(raw[0], 0x00 | 0x05) {
        return false;
    }
    let sum = Sha256::digest(Sha256::digest(&raw[..21]));
    sum[..4] == raw[21..]
}

/// Ethereum addresses: `0x` and 40 hex digits; in mixed case, only with
/// a valid EIP-55 checksum (the case of each letter is a bit of the
/// Keccak-256 of the lower-case address).
pub(crate) fn ethereum(b: &[u8], f: &mut dyn FnMut(Range<usize>)) {
    for x in memchr::memchr_iter(b'x', b) {
        let Some(p) = x.checked_sub(1).filter(|&p| b[p] == b'0') else {
            continue;
        };
        let end = p + 42;
        let Some(t) = b.get(p + 2..end) else { break };
        if !open_left(b, p) || !open_right(b, end) || !t.iter().all(u8::is_ascii_hexdigit) {
            continue;
        }
        let upper = t.iter().any(u8::is_ascii_uppercase);
        let lower = t.iter().any(u8::is_ascii_lowercase);
        if !(upper && lower) || eip55(t) {
            f(p..end);
        }
    }
}

fn eip55(t: &[u8]) -> bool {
    use sha3::{Digest, Keccak256};
    let lower = t.to_ascii_lowercase();
    let h = Keccak256::digest(&lower);
    t.iter().enumerate().all(|(i, &c)| {
        let nibble = (h[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0xF;
        !c.is_ascii_alphabetic() || (nibble >= 8) == c.is_ascii_uppercase()
    })
}

// ---------------------------------------------- after a context word

/// What a context word announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Passport,
    Nhs,
    Aadhaar,
    Pesel,
    Bsn,
    Cpf,
    Cnpj,
    CaSin,
    AuTfn,
    Medicare,
    DeTax,
    FrNir,
    EsDni,
    Aba,
    Swift,
}

/// Context words (lower case; matched case-insensitively) and what each
/// announces: each identifier's own name in its country's usage.
pub(crate) const CONTEXT: &[(&str, Family)] = &[
    ("passport", Family::Passport),
    ("reisepass", Family::Passport),
    ("passeport", Family::Passport),
    ("pasaporte", Family::Passport),
    ("nhs", Family::Nhs),
    ("aadhaar", Family::Aadhaar),
    ("aadhar", Family::Aadhaar),
    ("pesel", Family::Pesel),
    ("bsn", Family::Bsn),
    ("burgerservicenummer", Family::Bsn),
    ("cpf", Family::Cpf),
    ("cnpj", Family::Cnpj),
    ("social insurance", Family::CaSin),
    ("tax file number", Family::AuTfn),
    ("tfn", Family::AuTfn),
    ("medicare", Family::Medicare),
    ("steuer", Family::DeTax),
    ("idnr", Family::DeTax),
    ("insee", Family::FrNir),
    ("securite sociale", Family::FrNir),
    ("nir", Family::FrNir),
    ("dni", Family::EsDni),
    // With what follows them: "nie" and "nif" alone are inside common
    // words ("denied", "companies", "uniform"), and every trigger found
    // costs a search for its position.
    ("nie:", Family::EsDni),
    ("nie ", Family::EsDni),
    ("nie=", Family::EsDni),
    ("nif:", Family::EsDni),
    ("nif ", Family::EsDni),
    ("nif=", Family::EsDni),
    ("routing", Family::Aba),
    ("swift", Family::Swift),
    ("bic:", Family::Swift),
    ("bic=", Family::Swift),
    ("bic ", Family::Swift),
];

/// How far after its context word an identifier may start.
const WINDOW: usize = 40;

/// The identifiers announced by context words at `at` (start and end of
/// each word in `b`).
pub(crate) fn after_context(
    b: &[u8],
    at: &[(usize, usize)],
    f: &mut dyn FnMut(Range<usize>, bool),
) {
    for &(s, e) in at {
        if !open_left(b, s) {
            continue;
        }
        // The trigger is the word's first bytes (`TRIGGER_MAX`): the
        // whole word must be there.
        let trigger = &b[s..e];
        let Some(&(w, family)) = CONTEXT.iter().find(|(w, _)| {
            let w = w.as_bytes();
            w[..w.len().min(crate::vendors::TRIGGER_MAX)].eq_ignore_ascii_case(trigger)
                && b.get(s..s + w.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(w))
        }) else {
            continue;
        };
        let e = s + w.len();
        let word = &b[s..e];
        let end = (e + WINDOW).min(b.len());
        let mut i = e;
        // Whole words only: "nhs" in "nhsx" is not the word.
        if word.last().is_some_and(|&c| is_alnum(c)) && !open_right(b, e) {
            // Compound keys ("passportNumber", "nhs_no") are words too.
            if !(b[e].is_ascii_uppercase() || b[e] == b'_') {
                continue;
            }
        }
        while i < end {
            if !is_alnum(b[i]) {
                i += 1;
                continue;
            }
            let t0 = i;
            if let Some(r) = candidate(b, t0, family) {
                f(r, family == Family::Swift);
                break;
            }
            while i < b.len() && is_alnum(b[i]) {
                i += 1;
            }
        }
    }
}

/// The identifier of `family` starting at `i`, if one does.
fn candidate(b: &[u8], i: usize, family: Family) -> Option<Range<usize>> {
    if !open_left(b, i) {
        return None;
    }
    match family {
        Family::Passport => {
            let mut j = i;
            while j < b.len() && is_alnum(b[j]) {
                j += 1;
            }
            let t = &b[i..j];
            // 6–9 letters and digits with at least two digits (ICAO Doc
            // 9303 allows up to 9), in upper case where there are letters.
            let ok = (6..=9).contains(&t.len())
                && t.iter().filter(|c| c.is_ascii_digit()).count() >= 2
                && !t.iter().any(u8::is_ascii_lowercase);
            ok.then_some(i..j)
        }
        Family::Swift => {
            let mut j = i;
            while j < b.len() && is_alnum(b[j]) {
                j += 1;
            }
            swift_bic(&b[i..j]).then_some(i..j)
        }
        // An NIE: X, Y or Z, seven digits and the check letter, as one word.
        Family::EsDni if matches!(b[i].to_ascii_uppercase(), b'X' | b'Y' | b'Z') => {
            let t = b.get(i..i + 9)?;
            (checksum::dni_nie(&t.to_ascii_uppercase()) && open_right(b, i + 9)).then_some(i..i + 9)
        }
        _ => {
            // Digits with single separators (spaces, dashes, dots, a
            // slash), as people write them.
            let mut j = i;
            let mut digits = [0u8; 20];
            let mut n = 0;
            let mut last = i;
            while j < b.len() && n < 20 {
                let c = b[j];
                if c.is_ascii_digit() {
                    digits[n] = c;
                    n += 1;
                    j += 1;
                    last = j;
                } else if matches!(c, b' ' | b'-' | b'.' | b'/')
                    && b.get(j + 1).is_some_and(u8::is_ascii_digit)
                    && j > i
                {
                    j += 1;
                } else if family == Family::FrNir && n == 5 && matches!(c, b'A' | b'B') {
                    // Corsica: 2A / 2B in place of the department's digits.
                    digits[n] = c;
                    n += 1;
                    j += 1;
                    last = j;
                } else {
                    break;
                }
            }
            let d = &digits[..n];
            if family == Family::EsDni {
                // Eight digits and the check letter (DNI), glued or after
                // a space or dash.
                let mut k = last;
                if matches!(b.get(k), Some(b' ' | b'-')) {
                    k += 1;
                }
                let l = b.get(k).copied().unwrap_or(0).to_ascii_uppercase();
                let mut v = d.to_vec();
                v.push(l);
                return (n == 8 && checksum::dni_nie(&v) && open_right(b, k + 1))
                    .then_some(i..k + 1);
            }
            if !open_right(b, last) {
                return None;
            }
            let ok = match family {
                Family::Nhs => checksum::nhs_number(d),
                Family::Aadhaar => checksum::aadhaar(d),
                Family::Pesel => checksum::pesel(d),
                Family::Bsn => checksum::bsn(d),
                Family::Cpf => checksum::cpf(d),
                Family::Cnpj => checksum::cnpj(d),
                Family::CaSin => checksum::ca_sin(d),
                Family::AuTfn => checksum::au_tfn(d),
                Family::Medicare => checksum::au_medicare(d),
                Family::DeTax => checksum::de_tax_id(d),
                Family::FrNir => checksum::fr_nir(d),
                Family::Aba => checksum::aba_routing(d),
                Family::EsDni | Family::Passport | Family::Swift => false,
            };
            ok.then_some(i..last)
        }
    }
}

/// ISO 3166-1 alpha-2 country codes, for SWIFT/BIC's country field.
const ISO_3166: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

/// A SWIFT/BIC code (ISO 9362): four letters (the institution), an ISO
/// 3166-1 country code, two letters or digits (the location), and
/// optionally three more (the branch); upper case.
pub(crate) fn swift_bic(t: &[u8]) -> bool {
    (t.len() == 8 || t.len() == 11)
        && t[..6].iter().all(u8::is_ascii_uppercase)
        && t[6..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && ISO_3166.as_bytes().chunks(3).any(|cc| cc[..2] == t[4..6])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MAC: Want = Want {
        mac: true,
        wallets: false,
        ids: false,
    };
    const WALLETS: Want = Want {
        mac: false,
        wallets: true,
        ids: false,
    };
    const IDS: Want = Want {
        mac: false,
        wallets: false,
        ids: true,
    };

    /// What [`shapes`] finds in `s`, looking for `want` only.
    fn all(want: Want, s: &str) -> Vec<String> {
        let mut v = Vec::new();
        shapes(s.as_bytes(), want, &mut |r, _| v.push(s[r].to_string()));
        v
    }

    fn eth(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        ethereum(s.as_bytes(), &mut |r| v.push(s[r].to_string()));
        v
    }

    #[test]
    fn macs() {
        assert_eq!(all(MAC, "dev 00:1a:2b:3c:4d:5e up"), ["00:1a:2b:3c:4d:5e"]);
        assert_eq!(all(MAC, "hw=3C-52-82-0A-1B-2C;"), ["3C-52-82-0A-1B-2C"]);
        assert_eq!(all(MAC, "cisco 0019.e8a1.2b3c"), ["0019.e8a1.2b3c"]);
        // Not a MAC: all zeros, broadcast, too long, times, IPv6.
        assert!(all(MAC, "00:00:00:00:00:00 ff:ff:ff:ff:ff:ff").is_empty());
        assert!(all(MAC, "00:1a:2b:3c:4d:5e:6f 12:30:45 fe80::1:2:3:4").is_empty());
    }

    #[test]
    fn ninos_from_the_manual() {
        // HMRC's own example format (NIM39110): QQ 12 34 56 C.
        assert_eq!(all(IDS, "NI AB 12 34 56 C ok"), ["AB 12 34 56 C"]);
        assert_eq!(all(IDS, "ni=AB123456C"), ["AB123456C"]);
        // Prefixes never allocated, a bad suffix, glued.
        assert!(all(IDS, "GB123456C BG123456A AB123456E XAB123456C").is_empty());
        assert!(all(IDS, "DA123456A AO123456A").is_empty());
    }

    #[test]
    fn pans_by_shape() {
        assert_eq!(all(IDS, "pan ABCPD1234E filed"), ["ABCPD1234E"]);
        // The fourth letter must be a holder type.
        assert!(all(IDS, "ABCXD1234E ORDER12345").is_empty());
    }

    #[test]
    fn nric_and_codice_fiscale() {
        // ICA's check-letter table: S1234567D is the usual worked example.
        assert_eq!(all(IDS, "id S1234567D ok"), ["S1234567D"]);
        assert!(all(IDS, "id S1234567A ok").is_empty());
        // The Agenzia delle Entrate's example: RSSMRA85T10A562S.
        assert_eq!(all(IDS, "cf RSSMRA85T10A562S"), ["RSSMRA85T10A562S"]);
        assert!(all(IDS, "cf RSSMRA85T10A562T").is_empty());
    }

    #[test]
    fn korean_rrn_and_itin() {
        assert!(korean_rrn(b"9001011234568"));
        assert!(!korean_rrn(b"9013011234568")); // month 13
        assert!(!korean_rrn(b"9001019234568")); // sex digit 9
        // IRS: ITINs are 9XX-7X-XXXX, 9XX-8X-XXXX, … (not 9XX-93-XXXX).
        assert!(itin(b"912701234") && itin(b"900501234") && itin(b"999991234"));
        assert!(!itin(b"912931234") && !itin(b"912401234") && !itin(b"812701234"));
    }

    #[test]
    fn wallets() {
        // Bitcoin's genesis-block address, a BIP 173 test vector and a BIP 350 one.
        let v = all(
            WALLETS,
            "to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa and bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4 and bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        );
        assert_eq!(v.len(), 3, "{v:?}");
        // One character changed: the checksums fail.
        assert!(
            all(
                WALLETS,
                "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"
            )
            .is_empty()
        );
        // EIP-55's own test vectors.
        assert_eq!(
            eth("to 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed."),
            ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"]
        );
        assert_eq!(eth("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359").len(), 1);
        // Mixed case with a wrong checksum; a 64-hex transaction hash.
        assert!(eth("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").is_empty());
        assert!(
            eth("0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b").is_empty()
        );
    }

    #[test]
    fn swift_codes() {
        // ISO 9362 examples: Deutsche Bank Frankfurt, with and without a branch.
        assert!(swift_bic(b"DEUTDEFF") && swift_bic(b"DEUTDEFF500"));
        // "DISABLED" has no country BL... it does (Saint Barthélemy): it is
        // only ever taken after a context word. "PASSWORD": WO is no country.
        assert!(!swift_bic(b"PASSWORD") && !swift_bic(b"deutdeff") && !swift_bic(b"DEUTDEF"));
    }

    #[test]
    fn context_words_announce_identifiers() {
        let run = |s: &str, word: &str| {
            let st = s.to_ascii_lowercase().find(word).unwrap();
            let mut v = Vec::new();
            after_context(s.as_bytes(), &[(st, st + word.len())], &mut |r, _| {
                v.push(s[r].to_string())
            });
            v
        };
        assert_eq!(
            run("patient NHS number 943 476 5919 seen", "nhs"),
            ["943 476 5919"]
        );
        assert!(run("patient NHS number 943 476 5918 seen", "nhs").is_empty());
        assert_eq!(
            run("Aadhaar: 4991 1866 5246", "aadhaar"),
            ["4991 1866 5246"]
        );
        assert_eq!(
            run("passport no. X1234567 expires", "passport"),
            ["X1234567"]
        );
        assert!(run("passport expired yesterday", "passport").is_empty());
        assert_eq!(
            run("pay to SWIFT DEUTDEFF500 today", "swift"),
            ["DEUTDEFF500"]
        );
        assert_eq!(run("PESEL 44051401359", "pesel"), ["44051401359"]);
        assert_eq!(run("DNI 12345678Z", "dni"), ["12345678Z"]);
        // An NIE (Ministerio del Interior's example, X1234567L), after
        // "NIE" or "DNI/NIE"; the NIF of a person is the DNI.
        assert_eq!(run("NIE: X1234567L", "nie:"), ["X1234567L"]);
        assert_eq!(run("DNI/NIE x1234567l.", "dni"), ["x1234567l"]);
        assert!(run("NIE: X1234567M", "nie:").is_empty());
        assert_eq!(run("NIF 12345678-Z", "nif "), ["12345678-Z"]);
        assert_eq!(run("cpf 111.444.777-35", "cpf"), ["111.444.777-35"]);
        // The Federal Reserve's routing number check (weights 3, 7, 1):
        // 011000015 is the Federal Reserve Bank of Boston's.
        assert_eq!(
            run("ABA routing number 011000015 on file", "routing"),
            ["011000015"]
        );
        assert!(run("routing key 011000016", "routing").is_empty());
    }
}
