//! Field-name rules: a value is sensitive because of the key it sits under
//! (`password`, `dateOfBirth`, `card.holder`), whatever it looks like.
//!
//! Keys are normalized into lower-case words joined by `_`, across
//! snake_case, kebab-case, camelCase and spaces (`aws_secret_access_key`,
//! `dateOfBirth` → `_date_of_birth_`, `Full Name` → `_full_name_`), and one
//! Aho-Corasick pass looks for whole-word phrases, so `tokens_used` is not a
//! token but `csrfToken` is. The parent key is consulted for short keys, so
//! that `card: {holder, number}` reads as `card holder` and `card number`.
//! Normalizing happens in a stack buffer: no allocation per key.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::detect::Detector;

/// Phrases (normalized, `_`-delimited) and the detector each implies, in
/// priority order: the earliest listed phrase found in a key wins.
const PHRASES: &[(&str, Detector)] = &[
    ("_aws_secret_", Detector::AwsSecret),
    ("_secret_access_key_", Detector::AwsSecret),
    ("_api_key_", Detector::Password),
    ("_private_key_", Detector::Password),
    ("_client_secret_", Detector::Password),
    ("_set_cookie_", Detector::Password),
    ("_ssn_", Detector::Ssn),
    ("_social_security_", Detector::Ssn),
    ("_tax_id_", Detector::TaxId),
    ("_taxid_", Detector::TaxId),
    ("_tin_", Detector::TaxId),
    ("_vat_number_", Detector::TaxId),
    // National identifiers' field names. Free text is next: a context
    // pass over every string with nine digits cost 5–9% of masking
    // throughput (measured), so it waits for the context words to join
    // the trigger automaton.
    ("_national_id_", Detector::NationalId),
    ("_national_insurance_", Detector::NationalId),
    ("_nhs_number_", Detector::NationalId),
    ("_aadhaar_", Detector::NationalId),
    ("_bsn_", Detector::NationalId),
    ("_cpf_", Detector::NationalId),
    ("_pesel_", Detector::NationalId),
    ("_passport_number_", Detector::NationalId),
    ("_date_of_birth_", Detector::Dob),
    ("_birth_date_", Detector::Dob),
    ("_birthdate_", Detector::Dob),
    ("_birthday_", Detector::Dob),
    ("_dob_", Detector::Dob),
    ("_first_name_", Detector::Name),
    ("_firstname_", Detector::Name),
    ("_given_name_", Detector::Name),
    ("_last_name_", Detector::Name),
    ("_lastname_", Detector::Name),
    ("_family_name_", Detector::Name),
    ("_surname_", Detector::Name),
    ("_full_name_", Detector::Name),
    ("_fullname_", Detector::Name),
    ("_display_name_", Detector::Name),
    ("_displayname_", Detector::Name),
    ("_cardholder_", Detector::Name),
    ("_card_holder_", Detector::Name),
    ("_account_holder_", Detector::Name),
    ("_email_", Detector::Email),
    ("_e_mail_", Detector::Email),
    ("_phone_", Detector::Phone),
    ("_telephone_", Detector::Phone),
    ("_mobile_", Detector::Phone),
    ("_phonenumber_", Detector::Phone),
    ("_iban_", Detector::Iban),
    ("_card_number_", Detector::CreditCard),
    ("_cardnumber_", Detector::CreditCard),
    ("_credit_card_", Detector::CreditCard),
    ("_pan_", Detector::CreditCard),
    ("_password_", Detector::Password),
    ("_passwd_", Detector::Password),
    ("_pwd_", Detector::Password),
    ("_passphrase_", Detector::Password),
    ("_secret_", Detector::Password),
    ("_token_", Detector::Password),
    ("_authorization_", Detector::Password),
    ("_cookie_", Detector::Password),
    ("_apikey_", Detector::Password),
    ("_credential_", Detector::Password),
    ("_credentials_", Detector::Password),
    ("_privatekey_", Detector::Password),
    ("_otp_", Detector::Password),
    ("_pin_", Detector::Password),
];

/// The compiled phrase matcher.
#[derive(Clone, Debug)]
pub(crate) struct FieldRules {
    ac: AhoCorasick,
}

/// Memoized key + parent lengths at most this long.
const MEMO_KEY_MAX: usize = 96;
/// Memo entries per thread before it is cleared.
const MEMO_ENTRIES: usize = 4096;

/// What is known about one key (under one parent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyClass {
    /// The detector the field name implies.
    pub(crate) detector: Option<Detector>,
}

/// Memoized answers of [`FieldRules::classify`], one per thread (kept by
/// the masker's per-thread state).
///
/// Two levels. Events of one stream mostly have one shape, so the n-th key
/// of an event is usually the n-th key of the one before: `recent[n]`
/// holds that key, its parent and its answer, checked with two compares.
/// Behind it, a hash map of every key seen (bounded).
#[derive(Default)]
pub(crate) struct Memo {
    recent: Vec<Recent>,
    map: rustc_hash::FxHashMap<Box<[u8]>, KeyClass>,
    /// The map key being looked up (reused: key, a marker byte, parent).
    probe: Vec<u8>,
}

/// One key remembered by its position in the event. Overwritten in place
/// when the position's key changes, so its strings keep their capacity.
#[derive(Default)]
struct Recent {
    /// The key's first 8 bytes (see `SortPrefix`): equal prefixes and
    /// lengths decide for keys of 8 bytes or fewer, most of them.
    prefix: u64,
    key: String,
    parent: String,
    has_parent: bool,
    class: KeyClass,
}

impl Recent {
    fn is(&self, key: &str, prefix: u64, parent: Option<&str>) -> bool {
        self.prefix == prefix
            && self.key.len() == key.len()
            && (key.len() <= 8 || self.key == key)
            && match parent {
                Some(p) => self.has_parent && self.parent == p,
                None => !self.has_parent,
            }
    }

    fn set(&mut self, key: &str, prefix: u64, parent: Option<&str>, class: KeyClass) {
        self.prefix = prefix;
        self.key.clear();
        self.key.push_str(key);
        self.parent.clear();
        self.parent.push_str(parent.unwrap_or(""));
        self.has_parent = parent.is_some();
        self.class = class;
    }
}

/// Keys remembered by position (events with more keys use the map alone
/// past this many).
const RECENT_MAX: usize = 256;

/// Longest key part considered (longer keys are truncated: a field name
/// that long is not a name anyone matches on).
const MAX: usize = 192;

/// Appends the normalized words of `key` to `buf` (each followed by `_`).
fn normalize(key: &str, buf: &mut [u8; MAX], len: &mut usize) {
    let mut prev_lower = false;
    let mut in_word = false;
    let mut push = |c: u8, len: &mut usize| {
        if *len < MAX {
            buf[*len] = c;
            *len += 1;
        }
    };
    for ch in key.chars() {
        if !ch.is_alphanumeric() {
            if in_word {
                push(b'_', len);
                in_word = false;
            }
            prev_lower = false;
            continue;
        }
        if ch.is_uppercase() && prev_lower && in_word {
            push(b'_', len);
        }
        prev_lower = ch.is_lowercase() || ch.is_ascii_digit();
        in_word = true;
        if ch.is_ascii() {
            push(ch.to_ascii_lowercase() as u8, len);
        } else {
            let mut tmp = [0u8; 4];
            for lc in ch.to_lowercase() {
                for &b in lc.encode_utf8(&mut tmp).as_bytes() {
                    push(b, len);
                }
            }
        }
    }
    if in_word {
        push(b'_', len);
    }
}

impl FieldRules {
    pub(crate) fn new() -> Result<Self, aho_corasick::BuildError> {
        // Leftmost-first: at one position the earlier-listed phrase wins
        // (`_aws_secret_` over `_secret_`); across positions, the lowest
        // phrase index among the matches.
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(PHRASES.iter().map(|(p, _)| p))?;
        Ok(FieldRules { ac })
    }

    fn best(&self, text: &[u8]) -> Option<Detector> {
        self.ac
            .find_iter(text)
            .map(|m| m.pattern().as_usize())
            .min()
            .map(|i| PHRASES[i].1)
    }

    /// The detector a field name implies, if any. `parent` is the key of
    /// the enclosing object (for `card.holder`, `card.number`).
    ///
    /// Events of one stream repeat the same keys, so answers are memoized
    /// per thread (the phrase table is built in, so one memo serves every
    /// masker). The memo is bounded: past [`MEMO_ENTRIES`] it is cleared, so
    /// a stream of ever-new keys costs one clear per few thousand keys and
    /// never more memory. Long keys skip it.
    ///
    /// `n` is the key's position in the event (0 for its first key);
    /// `prefix` its first 8 bytes, big-endian, zero-padded.
    pub(crate) fn classify(
        &self,
        memo: &mut Memo,
        n: usize,
        key: &str,
        prefix: u64,
        parent: Option<&str>,
    ) -> KeyClass {
        if let Some(r) = memo.recent.get(n)
            && r.is(key, prefix, parent)
        {
            return r.class;
        }
        let class = self.classify_hashed(memo, key, parent);
        if n < RECENT_MAX {
            // Positions are visited in order, so `n` is at most one past
            // the end (a longer event than any before).
            if n == memo.recent.len() {
                memo.recent.push(Recent::default());
            }
            if let Some(slot) = memo.recent.get_mut(n) {
                slot.set(key, prefix, parent, class);
            }
        }
        class
    }

    fn classify_hashed(&self, memo: &mut Memo, key: &str, parent: Option<&str>) -> KeyClass {
        let p = parent.unwrap_or("");
        if key.len() + p.len() > MEMO_KEY_MAX {
            return self.classify_uncached(key, parent);
        }
        let k = &mut memo.probe;
        k.clear();
        k.extend_from_slice(key.as_bytes());
        // 0xFF never occurs in UTF-8; 0xFE marks "no parent" apart from "".
        k.push(if parent.is_some() { 0xFF } else { 0xFE });
        k.extend_from_slice(p.as_bytes());
        if let Some(&d) = memo.map.get(k.as_slice()) {
            return d;
        }
        let d = self.classify_uncached(key, parent);
        if memo.map.len() >= MEMO_ENTRIES {
            memo.map.clear();
        }
        memo.map.insert(k.as_slice().into(), d);
        d
    }

    fn classify_uncached(&self, key: &str, parent: Option<&str>) -> KeyClass {
        KeyClass {
            detector: self.detector(key, parent),
        }
    }

    fn detector(&self, key: &str, parent: Option<&str>) -> Option<Detector> {
        let mut buf = [0u8; MAX];
        buf[0] = b'_';
        let mut len = 1;
        normalize(key, &mut buf, &mut len);
        if let Some(d) = self.best(&buf[..len]) {
            return Some(d);
        }
        // Short keys only make sense with their parent: keep the parent's
        // last two words, then the key's words.
        let words = buf[1..len].iter().filter(|&&c| c == b'_').count();
        let parent = parent?;
        if words > 2 || words == 0 {
            return None;
        }
        let mut pbuf = [0u8; MAX];
        pbuf[0] = b'_';
        let mut plen = 1;
        normalize(parent, &mut pbuf, &mut plen);
        // Start of the parent's last two words.
        let mut cut = 0;
        let mut seen = 0;
        for i in (0..plen.saturating_sub(1)).rev() {
            if pbuf[i] == b'_' {
                seen += 1;
                if seen == 2 {
                    cut = i;
                    break;
                }
            }
        }
        let mut joined = [0u8; MAX];
        let mut jlen = 0;
        for &c in pbuf[cut..plen].iter().chain(&buf[1..len]) {
            if jlen < MAX {
                joined[jlen] = c;
                jlen += 1;
            }
        }
        self.best(&joined[..jlen])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First 8 bytes, big-endian, zero-padded (as the walk passes them).
    fn prefix(k: &str) -> u64 {
        k.bytes()
            .take(8)
            .enumerate()
            .fold(0, |v, (i, c)| v | u64::from(c) << (56 - 8 * i))
    }

    fn c(k: &str, p: Option<&str>) -> Option<&'static str> {
        FieldRules::new()
            .unwrap()
            .classify(&mut Memo::default(), 0, k, prefix(k), p)
            .detector
            .map(Detector::name)
    }

    /// One memo, one position, keys that differ only past their first 8
    /// bytes, only in length, or only in parent: each gets its own answer.
    #[test]
    fn positional_memo_tells_keys_apart() {
        let rules = FieldRules::new().unwrap();
        let mut memo = Memo::default();
        let mut at0 = |k: &str, p: Option<&str>| {
            rules
                .classify(&mut memo, 0, k, prefix(k), p)
                .detector
                .map(Detector::name)
        };
        for _ in 0..2 {
            assert_eq!(at0("date_of_birth", None), Some("dob"));
            assert_eq!(at0("date_of_entry", None), None);
            assert_eq!(at0("email", None), Some("email"));
            assert_eq!(at0("emai", None), None);
            assert_eq!(at0("number", Some("card")), Some("credit_card"));
            assert_eq!(at0("number", Some("order")), None);
            assert_eq!(at0("number", None), None);
        }
    }

    #[test]
    fn field_names() {
        assert_eq!(c("nhsNumber", None), Some("national_id"));
        assert_eq!(c("passport_number", None), Some("national_id"));
        assert_eq!(c("passport_expiry", None), None);
        assert_eq!(c("PESEL", None), Some("national_id"));
        assert_eq!(c("business_id", None), None);
        assert_eq!(c("password", None), Some("password"));
        assert_eq!(c("newPassword", None), Some("password"));
        assert_eq!(c("csrf_token", None), Some("password"));
        assert_eq!(c("tokens_used", None), None);
        assert_eq!(c("aws_secret_access_key", None), Some("aws_secret"));
        assert_eq!(c("secretAccessKey", None), Some("aws_secret"));
        assert_eq!(c("aws_access_key_id", None), None);
        assert_eq!(c("dateOfBirth", None), Some("dob"));
        assert_eq!(c("date_of_birth", None), Some("dob"));
        assert_eq!(c("Full Name", None), Some("name"));
        assert_eq!(c("displayName", None), Some("name"));
        assert_eq!(c("holder", Some("card")), Some("name"));
        assert_eq!(c("number", Some("card")), Some("credit_card"));
        assert_eq!(c("number", Some("payment_card")), Some("credit_card"));
        assert_eq!(c("number", Some("order")), None);
        assert_eq!(c("e-mail", None), Some("email"));
        assert_eq!(c("user_email", None), Some("email"));
        assert_eq!(c("ssn", None), Some("ssn"));
        assert_eq!(c("tax_id", None), Some("tax_id"));
        assert_eq!(c("IBAN", None), Some("iban"));
        assert_eq!(c("Set-Cookie", None), Some("password"));
        assert_eq!(c("action", None), None);
        assert_eq!(c("pineapple", None), None);
        assert_eq!(c("EMAIL", None), Some("email"));
        assert_eq!(c(&"x".repeat(1000), Some(&"y".repeat(1000))), None);
    }
}
