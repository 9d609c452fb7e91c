//! Strategies: what a sensitive value becomes.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::detect::Detector;

/// `[REDACTED:<detector>]`, appended to `dst`.
pub(crate) fn redact_into(dst: &mut String, detector: &str) {
    dst.push_str("[REDACTED:");
    dst.push_str(detector);
    dst.push(']');
}

/// Keeps `first` leading and `last` trailing characters, `*` for the rest.
/// Emails keep the first character of the local part and the domain
/// (`j***@example.com`); card numbers keep the last digits and drop their
/// separators (`************4242`).
pub(crate) fn partial(detector: Option<Detector>, value: &str, first: u8, last: u8) -> String {
    if detector == Some(Detector::Email)
        && let Some((local, domain)) = value.rsplit_once('@')
    {
        let head: String = local.chars().take(1).collect();
        return format!("{head}***@{domain}");
    }
    let chars: Vec<char> = if detector == Some(Detector::CreditCard) {
        value.chars().filter(char::is_ascii_digit).collect()
    } else {
        value.chars().collect()
    };
    let (f, l) = (usize::from(first), usize::from(last));
    if f + l >= chars.len() {
        return "*".repeat(chars.len().max(1));
    }
    let mut s = String::with_capacity(chars.len());
    s.extend(&chars[..f]);
    s.extend(std::iter::repeat_n('*', chars.len() - f - l));
    s.extend(&chars[chars.len() - l..]);
    s
}

/// `tok:<epoch>:<base64url(HMAC-SHA256(k, value))[..16 bytes]>` where `k`
/// is the (origin, detector, epoch) key.
pub(crate) fn token(key: &[u8; 32], epoch: u32, value: &str) -> String {
    let mac = crate::keys::hmac(key, &[value.as_bytes()]);
    format!(
        "tok:{epoch}:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac[..16])
    )
}

/// The commitment to `value` under `salt`:
/// `SHA-256("cairn-commit/v1" || 0x00 || salt || value)`, as `cmt:<base64>`.
pub fn commitment(salt: &[u8; 16], value: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"cairn-commit/v1\0");
    h.update(salt);
    h.update(value.as_bytes());
    format!(
        "cmt:{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    )
}

/// Checks an opening against a commitment string from a leaf.
pub fn verify_opening(commitment_str: &str, salt: &[u8; 16], value: &str) -> bool {
    // Not secret-dependent timing: the commitment and opening are both
    // held by the party verifying.
    commitment(salt, value) == commitment_str
}

/// IPv4 → /24, IPv6 → /48, date of birth → year, timestamp → day.
/// `None` when the value does not parse as the detector's kind.
pub(crate) fn generalize(detector: Detector, value: &str) -> Option<String> {
    match detector {
        Detector::Ipv4 => {
            let ip: std::net::Ipv4Addr = value.parse().ok()?;
            let o = ip.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        Detector::Ipv6 => {
            if let Ok(ip) = value.parse::<std::net::Ipv6Addr>() {
                let s = ip.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
                return Some(format!("{net}/48"));
            }
            // Truncated forms: keep the first three groups.
            let g: Vec<&str> = value.split(':').take(3).collect();
            (g.len() == 3 && g.iter().all(|x| !x.is_empty()))
                .then(|| format!("{}::/48", g.join(":").to_ascii_lowercase()))
        }
        Detector::Dob => {
            let y = value.get(..4)?;
            y.bytes().all(|b| b.is_ascii_digit()).then(|| y.to_owned())
        }
        _ => None,
    }
}

/// A timestamp generalized to its day (`2026-03-13T20:03:04Z` → `2026-03-13`).
pub fn day_of(value: &str) -> Option<&str> {
    let d = value.get(..10)?;
    let b = d.as_bytes();
    (b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit()))
    .then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials() {
        assert_eq!(
            partial(Some(Detector::Email), "jane.doe@example.com", 0, 4),
            "j***@example.com"
        );
        assert_eq!(
            partial(Some(Detector::CreditCard), "4242 4242 4242 4242", 0, 4),
            "************4242"
        );
        assert_eq!(partial(None, "abcdef", 1, 2), "a***ef");
        assert_eq!(partial(None, "ab", 1, 2), "**");
    }

    #[test]
    fn generalizations() {
        assert_eq!(
            generalize(Detector::Ipv4, "33.147.244.26").as_deref(),
            Some("33.147.244.0/24")
        );
        assert_eq!(
            generalize(Detector::Ipv6, "2a02:5e8d:9be6::3fa0").as_deref(),
            Some("2a02:5e8d:9be6::/48")
        );
        assert_eq!(
            generalize(Detector::Ipv6, "2001:db8:4823:6b40").as_deref(),
            Some("2001:db8:4823::/48")
        );
        assert_eq!(
            generalize(Detector::Dob, "1949-09-19").as_deref(),
            Some("1949")
        );
        assert_eq!(day_of("2026-03-13T20:03:04Z"), Some("2026-03-13"));
        assert_eq!(generalize(Detector::Email, "a@b.co"), None);
    }

    #[test]
    fn commitments_open() {
        let salt = [7u8; 16];
        let c = commitment(&salt, "501-54-0643");
        assert!(c.starts_with("cmt:"));
        assert!(verify_opening(&c, &salt, "501-54-0643"));
        assert!(!verify_opening(&c, &salt, "501-54-0644"));
        assert!(!verify_opening(&c, &[8u8; 16], "501-54-0643"));
    }
}
