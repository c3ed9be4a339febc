//! The hash table [`reconcile`](super::reconcile) joins the two package
//! lists with: open addressing over one word per slot.
//!
//! Per poll it holds every stored package and every new listed one, 10,000
//! and more for a large catalog, and each poll builds it once and looks up
//! every listed ID. A `HashMap<Cow<str>, usize>` spends 32 bytes a slot and a
//! call per probe at the size-optimised level the agent ships with; here a
//! slot is a `u64` (32 bits of the hash and the entry), so the whole table
//! of a 10,000-package poll is 256 KiB and a probe is one load and one
//! compare. Strings are compared only when the 32 hash bits agree.

use foldhash::fast::RandomState;
use std::hash::BuildHasher;

/// What a slot names: a stored package (its index in the package index)
/// or a listed one the database lacks (its index in the poll's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    Stored(u32),
    Listed(u32),
}

const LISTED: u32 = 1 << 31;

/// Slots for at least `entries` entries, at most 80% full.
pub(super) struct PackageTable {
    /// A boxed slice, not a `Vec`: indexing a `Vec` is a call at the
    /// size-optimised level.
    slots: Box<[u64]>,
    mask: usize,
    /// Seeded per table: a server cannot choose IDs that collide.
    hasher: RandomState,
}

impl PackageTable {
    /// A table with room for `entries` entries. `None` past 2^31 entries,
    /// which no poll response under the size cap can list.
    pub(super) fn with_room(entries: usize) -> Option<Self> {
        if entries >= LISTED as usize {
            return None;
        }
        let slots = (entries + entries / 4 + 1).next_power_of_two();
        Some(PackageTable {
            slots: vec![0; slots].into_boxed_slice(),
            mask: slots - 1,
            hasher: RandomState::default(),
        })
    }

    /// The hash of a key (as [`super::key`] makes it).
    #[inline(always)]
    pub(super) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The entry with hash `hash` for which `same` holds, or else adds
    /// `new` (when it is `Some`) and returns `None`.
    #[inline(always)]
    pub(super) fn find_or_add(
        &mut self,
        hash: u64,
        new: Option<Entry>,
        mut same: impl FnMut(Entry) -> bool,
    ) -> Option<Entry> {
        let tag = hash >> 32;
        let mut at = hash as usize & self.mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                if let Some(new) = new {
                    let word = match new {
                        Entry::Stored(i) => i,
                        Entry::Listed(i) => i | LISTED,
                    };
                    self.slots[at] = (tag << 32) | (u64::from(word) + 1);
                }
                return None;
            }
            if slot >> 32 == tag {
                let word = (slot as u32).wrapping_sub(1);
                let entry = if word & LISTED == 0 {
                    Entry::Stored(word)
                } else {
                    Entry::Listed(word & !LISTED)
                };
                if same(entry) {
                    return Some(entry);
                }
            }
            at = (at + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_added_and_survives_colliding_hashes() {
        let mut t = PackageTable::with_room(8).expect("small");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        // Every entry on one hash: each lookup walks the same chain.
        for (i, _) in names.iter().enumerate() {
            let new = Entry::Stored(i as u32);
            assert_eq!(t.find_or_add(7, Some(new), |e| e == new), None);
        }
        for (i, _) in names.iter().enumerate() {
            let want = Entry::Stored(i as u32);
            assert_eq!(t.find_or_add(7, None, |e| e == want), Some(want));
        }
        assert_eq!(t.find_or_add(7, Some(Entry::Listed(3)), |_| false), None);
        assert_eq!(
            t.find_or_add(7, None, |e| e == Entry::Listed(3)),
            Some(Entry::Listed(3))
        );
        let other = (1 << 32) | 7;
        assert_eq!(
            t.find_or_add(other, None, |_| true),
            None,
            "other tag: no compare"
        );
    }

    #[test]
    fn never_full() {
        for n in [0, 1, 2, 3, 4, 100, 1000] {
            let t = PackageTable::with_room(n).expect("small");
            assert!(t.slots.len() * 4 >= n * 5, "{n}: {} slots", t.slots.len());
        }
        assert!(PackageTable::with_room(1 << 31).is_none());
    }
}
