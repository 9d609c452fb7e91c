//! Strings a masker has scanned and found nothing in, remembered per
//! thread so that a repeated value is not scanned again.
//!
//! Audit events repeat most of their values: action names, result codes,
//! regions, user agents, service names. Scanning a string costs about 17
//! instructions a byte in the trigger pass alone, plus the detectors' set-up;
//! recognizing it again costs a hash and a compare.
//!
//! The cache is direct-mapped (a slot per hash, the newest string wins),
//! so its memory is bounded ([`SLOTS`] × [`MAX_LEN`] bytes) and a stream of
//! unique values costs one overwrite each. What it holds is only ever
//! strings with no detection, which the leaf carries verbatim anyway.
//!
//! A scan's answer depends on the string and the masker (its custom
//! detectors), nothing else: the cache is emptied when another masker
//! uses the thread.

use std::hash::Hasher;

/// Slots in the cache.
const SLOTS: usize = 512;
/// The longest string remembered, in bytes.
pub(crate) const MAX_LEN: usize = 64;

/// The strings are kept inline, one fixed-size slot each, so that a
/// lookup is a hash, a length check and a compare in one place (a vector
/// per slot cost a pointer chase and a cache miss per lookup).
pub(crate) struct Clean {
    /// The masker whose answers the slots hold (0: none yet).
    owner: u64,
    lens: Box<[u8; SLOTS]>,
    bytes: Box<[[u8; MAX_LEN]; SLOTS]>,
}

impl Default for Clean {
    fn default() -> Self {
        Clean {
            owner: 0,
            lens: Box::new([0; SLOTS]),
            bytes: Box::new([[0; MAX_LEN]; SLOTS]),
        }
    }
}

impl Clean {
    /// The slot for `s`.
    fn slot(s: &[u8]) -> usize {
        let mut h = rustc_hash::FxHasher::default();
        h.write(s);
        // The high bits mix best.
        (h.finish() >> 40) as usize % SLOTS
    }

    /// Readies the cache for `owner`'s answers, emptying it if it held
    /// another masker's.
    pub(crate) fn own(&mut self, owner: u64) {
        if self.owner != owner {
            self.owner = owner;
            self.lens.fill(0);
        }
    }

    /// Whether `s` was scanned clean (by the owner). An empty slot
    /// answers only for the empty string, which is clean.
    pub(crate) fn contains(&self, s: &[u8]) -> bool {
        if s.len() > MAX_LEN {
            return false;
        }
        let i = Clean::slot(s);
        // `i < SLOTS`, and `s` is no longer than a slot.
        usize::from(self.lens[i]) == s.len() && self.bytes[i].get(..s.len()) == Some(s)
    }

    /// Remembers that `s` was scanned clean.
    pub(crate) fn insert(&mut self, s: &[u8]) {
        if s.len() <= MAX_LEN {
            let i = Clean::slot(s);
            if let Some(dst) = self.bytes[i].get_mut(..s.len()) {
                dst.copy_from_slice(s);
                // At most MAX_LEN (64).
                self.lens[i] = s.len() as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_owner_and_forgets_on_change() {
        let mut c = Clean::default();
        c.own(1);
        assert!(!c.contains(b"object.read"));
        c.insert(b"object.read");
        assert!(c.contains(b"object.read"));
        assert!(!c.contains(b"object.reae"));
        // Too long to remember.
        let long = [b'a'; MAX_LEN + 1];
        c.insert(&long);
        assert!(!c.contains(&long));
        // Another masker: nothing carries over.
        c.own(2);
        assert!(!c.contains(b"object.read"));
    }
}
