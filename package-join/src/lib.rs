//! The poller's comparison of a poll response's package list with the
//! stored packages (part A §5.5): which listed IDs are new, which stored
//! package each of the others is, and which stored packages the list no
//! longer names.
//!
//! A crate of its own only so that it can be built for speed: the agent
//! ships at the size-optimised level, where this join, run on every poll
//! over 10,000 packages and more, took an eighth longer (benchmark P7:
//! 0.41 against 0.36 ms, for 5.7 KiB more binary).
//! Its API is therefore not generic: generic code would be compiled at the
//! caller's level. The lists are passed as the buffers their owners keep
//! ([`Stored`], [`Listed`]); the decisions that need package states stay
//! with the caller.
#![forbid(unsafe_code)]

mod id;
mod table;

pub use id::{key, same_package, tricky_ids};

use std::borrow::Cow;

use id::same_id;
use table::{Entry, PackageTable, Probe};

/// The stored packages' IDs: ID `i` is `ids[ends[i - 1]..ends[i]]` (from
/// 0 for the first).
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub ids: &'a [u8],
    pub ends: &'a [u32],
}

impl<'a> Stored<'a> {
    /// ID `i` (empty past the end, or where `ends` is out of order).
    #[inline(always)]
    pub fn id(&self, i: u32) -> &'a [u8] {
        let i = i as usize;
        let start = match i.checked_sub(1) {
            Some(before) => self.ends.get(before).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(i).copied().unwrap_or(0);
        self.ids
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }
}

/// A poll's listed IDs: ID `k` is `text[start..end]` for `spans[k] =
/// (start, end)`, or `own[start & !OWN..end]` when `start` has [`OWN`] set.
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    pub text: &'a [u8],
    pub own: &'a [u8],
    pub spans: &'a [(u32, u32)],
}

/// The bit of a [`Listed`] span's start that puts the ID in `own`.
pub const OWN: u32 = 1 << 31;

impl<'a> Listed<'a> {
    /// ID `k` (empty past the end or where a span is out of range).
    #[inline(always)]
    pub fn id(&self, k: u32) -> &'a [u8] {
        let Some(&(start, end)) = self.spans.get(k as usize) else {
            return &[];
        };
        let (from, start) = if start & OWN == 0 {
            (self.text, start)
        } else {
            (self.own, start & !OWN)
        };
        from.get(start as usize..end as usize).unwrap_or_default()
    }
}

/// What one listed ID is, as [`join`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// The first listing of a package no stored ID is.
    New,
    /// The first listing of stored package `i` (the first stored ID of
    /// that package, when several are).
    Stored(u32),
    /// An empty ID, or a package listed before.
    Repeat,
}

/// The outcome of [`join`].
#[derive(Debug, Clone)]
pub struct Join {
    /// Per listed ID: [`NEW`], [`REPEAT`], or the stored index (a `u32`
    /// each, not an 8-byte [`Listing`]: its pages are fresh on every poll).
    listed: Box<[u32]>,
    /// Per stored ID: whether the list names its package.
    kept: Box<[bool]>,
}

const NEW: u32 = u32::MAX;
const REPEAT: u32 = u32::MAX - 1;

impl Join {
    /// What each listed ID is, in list order.
    pub fn listings(&self) -> impl ExactSizeIterator<Item = Listing> + '_ {
        self.listed.iter().map(|&m| match m {
            NEW => Listing::New,
            REPEAT => Listing::Repeat,
            i => Listing::Stored(i),
        })
    }

    /// Per stored ID, in stored order: whether the list names its package.
    pub fn kept(&self) -> &[bool] {
        &self.kept
    }
}

/// Joins `listed` with `stored` by package ([`same_package`]).
///
/// Linear in the sizes of both lists: the stored IDs go into a hash table
/// once, by [`key`], and each listed ID is looked up once. A listed ID is
/// first looked up as it is, which is its key unless it is a GUID with a
/// lower-case letter: only an ID not found that way costs [`key`] (a pass
/// over its bytes) and a second lookup.
///
/// `None` from 2^30 IDs in all on, which no poll response under the size
/// cap lists.
///
/// Never inlined: inlined into a caller built at "z", its code would be
/// optimised as the caller's.
#[inline(never)]
pub fn join(stored: Stored<'_>, listed: Listed<'_>) -> Option<Join> {
    let stored_len = u32::try_from(stored.ends.len()).ok()?;
    let listed_len = u32::try_from(listed.spans.len()).ok()?;
    let mut table = PackageTable::with_room(stored.ends.len() + listed.spans.len())?;
    // The first stored ID of each package (IDs that differ only in the case
    // of a GUID are one package), and for every stored ID the index of that
    // first one.
    let mut first_of: Box<[u32]> = vec![0; stored.ends.len()].into_boxed_slice();
    for (i, first_of) in (0..stored_len).zip(first_of.iter_mut()) {
        let id = stored.id(i);
        let mut probe = table.probe(table.hash(&key(id)));
        *first_of = match find(&table, &mut probe, stored, listed, id) {
            Some(Entry::Stored(j)) => j,
            _ => {
                table.add(&probe, Entry::Stored(i));
                i
            }
        };
    }
    let mut listed_stored: Box<[bool]> = vec![false; stored.ends.len()].into_boxed_slice();
    let mut out: Box<[u32]> = vec![REPEAT; listed.spans.len()].into_boxed_slice();
    for (k, out) in (0..listed_len).zip(out.iter_mut()) {
        let id = listed.id(k);
        if id.is_empty() {
            continue;
        }
        let spelled = table.hash(id);
        let mut found = find(&table, &mut table.probe(spelled), stored, listed, id);
        if found.is_none() {
            // Not under its own spelling: look again under its key, and
            // add it there as new if it is not there either.
            let hash = match key(id) {
                Cow::Borrowed(_) => spelled,
                Cow::Owned(folded) => table.hash(&folded),
            };
            let mut probe = table.probe(hash);
            found = find(&table, &mut probe, stored, listed, id);
            if found.is_none() {
                table.add(&probe, Entry::Listed(k));
                *out = NEW;
                continue;
            }
        }
        if let Some(Entry::Stored(i)) = found {
            if let Some(seen) = listed_stored.get_mut(i as usize) {
                if !std::mem::replace(seen, true) {
                    *out = i;
                }
            }
        }
    }
    let kept = first_of
        .iter()
        .map(|&f| listed_stored.get(f as usize).copied().unwrap_or(false))
        .collect();
    Some(Join { listed: out, kept })
}

/// The entry along `probe` that is the same package as `id`; `None`
/// leaves the probe at the empty slot where `id` would go.
#[inline(always)]
fn find(
    table: &PackageTable,
    probe: &mut Probe,
    stored: Stored<'_>,
    listed: Listed<'_>,
    id: &[u8],
) -> Option<Entry> {
    while let Some(e) = table.next(probe) {
        let other = match e {
            Entry::Stored(j) => stored.id(j),
            Entry::Listed(j) => listed.id(j),
        };
        if same_id(other, id) {
            return Some(e);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Lists {
        stored_ids: String,
        ends: Vec<u32>,
        text: String,
        own: String,
        spans: Vec<(u32, u32)>,
    }

    /// Stored and listed IDs laid out as their owners keep them; every
    /// third listed ID is in `own`.
    fn lists(stored: &[&str], listed: &[&str]) -> Lists {
        let mut l = Lists {
            stored_ids: String::new(),
            ends: Vec::new(),
            text: String::new(),
            own: String::new(),
            spans: Vec::new(),
        };
        for id in stored {
            l.stored_ids.push_str(id);
            l.ends.push(l.stored_ids.len() as u32);
        }
        for (k, id) in listed.iter().enumerate() {
            let (buf, bit) = if k % 3 == 2 {
                (&mut l.own, OWN)
            } else {
                (&mut l.text, 0)
            };
            buf.push_str("<x>");
            let start = buf.len() as u32;
            buf.push_str(id);
            l.spans.push((start | bit, buf.len() as u32));
        }
        l
    }

    fn joined(stored: &[&str], listed: &[&str]) -> (Vec<Listing>, Vec<bool>) {
        let l = lists(stored, listed);
        let j = join(
            Stored {
                ids: l.stored_ids.as_bytes(),
                ends: &l.ends,
            },
            Listed {
                text: l.text.as_bytes(),
                own: l.own.as_bytes(),
                spans: &l.spans,
            },
        )
        .expect("small");
        (j.listings().collect(), j.kept().to_vec())
    }

    #[test]
    fn finds_stored_packages_new_ones_and_repeats() {
        use Listing::*;
        let guid = "9a437ca5-5b17-4486-9e87-260742074a72";
        let upper = guid.to_uppercase();
        let (listings, kept) = joined(
            &["A", guid, "GONE", &upper, "B"],
            &["B", "NEW", "", &upper, "A", "NEW", guid, "b", "B"],
        );
        assert_eq!(
            listings,
            [
                Stored(4),
                New,
                Repeat,
                Stored(1),
                Stored(0),
                Repeat,
                Repeat,
                New,
                Repeat
            ]
        );
        assert_eq!(kept, [true, true, false, true, true]);
    }

    #[test]
    fn ids_out_of_range_read_as_empty() {
        let text = b"abc";
        let j = join(
            Stored {
                ids: b"xy",
                ends: &[5, 1],
            },
            Listed {
                text,
                own: b"",
                spans: &[(1, 9), (OWN, 2), (0, 3)],
            },
        )
        .expect("small");
        assert_eq!(
            j.listings().collect::<Vec<_>>(),
            [Listing::Repeat, Listing::Repeat, Listing::New]
        );
        assert_eq!(j.kept(), [false, false]);
    }

    #[test]
    fn an_empty_list_keeps_nothing() {
        let (listings, kept) = joined(&["A", "B"], &[]);
        assert!(listings.is_empty());
        assert_eq!(kept, [false, false]);
    }
}
