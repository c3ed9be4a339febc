//! The hash table [`reconcile`](super::reconcile) joins the two package
//! lists with: open addressing over one `u32` per slot.
//!
//! Per poll it holds every stored package and every new listed one, 10,000
//! and more for a large catalog, and each poll builds it once and looks up
//! every listed ID. A `HashMap<Cow<str>, usize>` spends 32 bytes a slot and a
//! call per probe at the size-optimised level the agent ships with. Here a
//! slot is the entry's index and, in the bits the index leaves free, part of
//! its hash: 128 KiB for a poll of 10,000 listed and 10,000 stored packages,
//! with 16 hash bits, so that strings are compared only when those agree.
//! Every page of the table is a page fault on every poll (glibc gives the
//! freed heap back), so its size is time too (benchmark P7).

use foldhash::fast::RandomState;
use std::hash::BuildHasher;

/// What a slot names: a stored package (its index in the package index)
/// or a listed one the database lacks (its index in the poll's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    Stored(u32),
    Listed(u32),
}

/// Slots for at least `entries` entries, at most 80% full.
///
/// A slot is `0` when empty, else `tag << (bits + 1) | listed << bits |
/// (index + 1)`, where `bits` is the width of the largest `index + 1` and
/// `tag` the top `31 - bits` bits of the entry's hash.
pub(super) struct PackageTable {
    /// A boxed slice, not a `Vec`: indexing a `Vec` is a call at the
    /// size-optimised level.
    slots: Box<[u32]>,
    mask: usize,
    /// Width of `index + 1`.
    bits: u32,
    /// Seeded per table: a server cannot choose IDs that collide.
    hasher: RandomState,
}

impl PackageTable {
    /// A table with room for `entries` entries. `None` from 2^30 entries on,
    /// which no poll response under the size cap can list.
    pub(super) fn with_room(entries: usize) -> Option<Self> {
        if entries >= 1 << 30 {
            return None;
        }
        let slots = (entries + entries / 4 + 1).next_power_of_two();
        Some(PackageTable {
            slots: vec![0; slots].into_boxed_slice(),
            mask: slots - 1,
            // `index + 1` is at most `entries`.
            bits: usize::BITS - entries.leading_zeros(),
            hasher: RandomState::default(),
        })
    }

    /// The hash of a key (as [`super::key`] makes it).
    #[inline(always)]
    pub(super) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The tag bits of `hash`, in place in a slot.
    #[inline(always)]
    fn tag(&self, hash: u64) -> u32 {
        // The top bits of the hash (the position comes from the low ones);
        // `bits + 1 <= 31`, so both shifts are in range.
        let top = (hash >> 33) as u32;
        (top >> self.bits) << (self.bits + 1)
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
        let tag = self.tag(hash);
        let listed = 1u32 << self.bits;
        let index = listed - 1;
        let tag_mask = !(listed | index);
        let mut at = hash as usize & self.mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                if let Some(new) = new {
                    self.slots[at] = tag
                        | match new {
                            Entry::Stored(i) => i + 1,
                            Entry::Listed(i) => listed | (i + 1),
                        };
                }
                return None;
            }
            if slot & tag_mask == tag {
                let i = (slot & index) - 1;
                let entry = if slot & listed == 0 {
                    Entry::Stored(i)
                } else {
                    Entry::Listed(i)
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
        let mut t = PackageTable::with_room(9).expect("small");
        // Every entry on one hash: each lookup walks the same chain.
        for i in 0..8 {
            let new = Entry::Stored(i);
            assert_eq!(t.find_or_add(7, Some(new), |e| e == new), None);
        }
        for i in 0..8 {
            let want = Entry::Stored(i);
            assert_eq!(t.find_or_add(7, None, |e| e == want), Some(want));
        }
        assert_eq!(t.find_or_add(7, Some(Entry::Listed(8)), |_| false), None);
        assert_eq!(
            t.find_or_add(7, None, |e| e == Entry::Listed(8)),
            Some(Entry::Listed(8))
        );
        let other = 7 | (u64::MAX << 40);
        assert_eq!(
            t.find_or_add(other, None, |_| true),
            None,
            "other tag: no compare"
        );
    }

    #[test]
    fn the_largest_index_and_the_listed_bit_fit_beside_the_tag() {
        for entries in [1, 2, 3, 4, 7, 8, 1000, 1 << 20] {
            let mut t = PackageTable::with_room(entries).expect("fits");
            let last = entries as u32 - 1;
            for (hash, e) in [(u64::MAX, Entry::Stored(last)), (0, Entry::Listed(last))] {
                assert_eq!(t.find_or_add(hash, Some(e), |_| false), None);
                assert_eq!(t.find_or_add(hash, None, |x| x == e), Some(e), "{entries}");
            }
        }
    }

    #[test]
    fn never_full() {
        for n in [0, 1, 2, 3, 4, 100, 1000] {
            let t = PackageTable::with_room(n).expect("small");
            assert!(t.slots.len() * 4 >= n * 5, "{n}: {} slots", t.slots.len());
        }
        assert!(PackageTable::with_room(1 << 30).is_none());
    }
}
