//! The hash table [`join`](crate::join) joins the two package
//! lists with: open addressing over one `u32` per slot.
//!
//! Per poll it holds every stored package and every new listed one, 10,000
//! and more for a large catalog, and each poll builds it once and looks up
//! every listed ID. A `HashMap<Cow<str>, usize>` spends 32 bytes a slot. Here
//! a slot is the entry's index and, in the bits the index leaves free, part of
//! its hash: 128 KiB for a poll of 10,000 listed and 10,000 stored packages,
//! with 16 hash bits, so that strings are compared only when those agree.
//! Every page of the table is a page fault on every poll (glibc gives the
//! freed heap back), so its size is time too (benchmark P7).

use foldhash::fast::RandomState;
use std::hash::BuildHasher;

/// What a slot names: a stored package (its index in the package index)
/// or a listed one the database lacks (its index in the poll's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    Stored(u32),
    Listed(u32),
}

/// Slots for at least `entries` entries, at most 80% full.
///
/// A slot is `0` when empty, else `tag << (bits + 1) | listed << bits |
/// (index + 1)`, where `bits` is the width of the largest `index + 1` and
/// `tag` the top `31 - bits` bits of the entry's hash.
pub(crate) struct PackageTable {
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
    pub(crate) fn with_room(entries: usize) -> Option<Self> {
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

    /// The hash of a key (as [`crate::key`] makes it).
    #[inline(always)]
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
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

    /// Starts a walk along the slots where entries with hash `hash` are.
    #[inline(always)]
    pub(crate) fn probe(&self, hash: u64) -> Probe {
        Probe {
            at: hash as usize & self.mask,
            tag: self.tag(hash),
        }
    }

    /// The next entry along `probe` whose hash may be the probe's (its tag
    /// bits agree), or `None` at the first empty slot, where the probe
    /// stays. A walk, not a search taking a predicate, so that the
    /// caller's comparison of candidates is its own code.
    #[inline(always)]
    pub(crate) fn next(&self, probe: &mut Probe) -> Option<Entry> {
        let listed = 1u32 << self.bits;
        let index = listed - 1;
        let tag_mask = !(listed | index);
        loop {
            let slot = self.slots[probe.at];
            if slot == 0 {
                return None;
            }
            probe.at = (probe.at + 1) & self.mask;
            if slot & tag_mask == probe.tag {
                let i = (slot & index) - 1;
                return Some(if slot & listed == 0 {
                    Entry::Stored(i)
                } else {
                    Entry::Listed(i)
                });
            }
        }
    }

    /// Adds `new` under the probe's hash: at the empty slot the walk ended
    /// at (or the first empty one after where it stopped).
    #[inline(always)]
    pub(crate) fn add(&mut self, probe: &Probe, new: Entry) {
        let listed = 1u32 << self.bits;
        let mut at = probe.at;
        while self.slots[at] != 0 {
            at = (at + 1) & self.mask;
        }
        self.slots[at] = probe.tag
            | match new {
                Entry::Stored(i) => i + 1,
                Entry::Listed(i) => listed | (i + 1),
            };
    }
}

/// Where a walk along one hash's slots is (see [`PackageTable::probe`]).
pub(crate) struct Probe {
    at: usize,
    /// The hash's tag bits, in place in a slot.
    tag: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry under `hash` for which `same` holds, or else adds `new`
    /// (when it is `Some`): how the comparison uses the table.
    fn find_or_add(
        t: &mut PackageTable,
        hash: u64,
        new: Option<Entry>,
        same: impl Fn(Entry) -> bool,
    ) -> Option<Entry> {
        let mut probe = t.probe(hash);
        while let Some(e) = t.next(&mut probe) {
            if same(e) {
                return Some(e);
            }
        }
        if let Some(new) = new {
            t.add(&probe, new);
        }
        None
    }

    #[test]
    fn finds_what_it_added_and_survives_colliding_hashes() {
        let mut t = PackageTable::with_room(9).expect("small");
        // Every entry on one hash: each lookup walks the same chain.
        for i in 0..8 {
            let new = Entry::Stored(i);
            assert_eq!(find_or_add(&mut t, 7, Some(new), |e| e == new), None);
        }
        for i in 0..8 {
            let want = Entry::Stored(i);
            assert_eq!(find_or_add(&mut t, 7, None, |e| e == want), Some(want));
        }
        assert_eq!(
            find_or_add(&mut t, 7, Some(Entry::Listed(8)), |_| false),
            None
        );
        assert_eq!(
            find_or_add(&mut t, 7, None, |e| e == Entry::Listed(8)),
            Some(Entry::Listed(8))
        );
        let other = 7 | (u64::MAX << 40);
        assert_eq!(
            find_or_add(&mut t, other, None, |_| true),
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
                assert_eq!(find_or_add(&mut t, hash, Some(e), |_| false), None);
                assert_eq!(
                    find_or_add(&mut t, hash, None, |x| x == e),
                    Some(e),
                    "{entries}"
                );
            }
        }
    }

    #[test]
    fn an_add_after_a_walk_that_stopped_early_overwrites_nothing() {
        let mut t = PackageTable::with_room(4).expect("small");
        for i in 0..3 {
            find_or_add(&mut t, 5, Some(Entry::Stored(i)), |_| false);
        }
        let mut probe = t.probe(5);
        assert_eq!(t.next(&mut probe), Some(Entry::Stored(0)));
        t.add(&probe, Entry::Listed(3));
        let mut all = Vec::new();
        let mut probe = t.probe(5);
        while let Some(e) = t.next(&mut probe) {
            all.push(e);
        }
        assert_eq!(
            all,
            [0, 1, 2]
                .map(Entry::Stored)
                .into_iter()
                .chain([Entry::Listed(3)])
                .collect::<Vec<_>>()
        );
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
