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

#[derive(Default)]
pub(crate) struct Clean {
    /// The masker whose answers the slots hold.
    owner: u64,
    slots: Vec<Vec<u8>>,
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
        if self.owner != owner || self.slots.len() != SLOTS {
            self.owner = owner;
            self.slots.clear();
            self.slots.resize_with(SLOTS, Vec::new);
        }
    }

    /// Whether `s` was scanned clean (by the owner). An empty slot
    /// answers only for the empty string, which is clean.
    pub(crate) fn contains(&self, s: &[u8]) -> bool {
        s.len() <= MAX_LEN
            && self
                .slots
                .get(Clean::slot(s))
                .is_some_and(|v| v.as_slice() == s)
    }

    /// Remembers that `s` was scanned clean.
    pub(crate) fn insert(&mut self, s: &[u8]) {
        if s.len() <= MAX_LEN
            && let Some(v) = self.slots.get_mut(Clean::slot(s))
        {
            v.clear();
            v.extend_from_slice(s);
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
