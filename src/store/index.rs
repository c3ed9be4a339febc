//! The package index: the ID and state of every stored package, packed into
//! at most [`BUCKETS`] rows of the `package_index` table.
//!
//! Each poll compares the server's package list with every stored package,
//! and needs only their IDs and states. Reading them from the `packages`
//! table means one B-tree entry and one JSON record (with the whole
//! instruction response) per package; for a catalog of 10,000 packages that
//! is ~100 times the cost of parsing the poll response itself. The index
//! holds the same facts in a few hundred small rows, written in the same
//! transaction as the record they describe
//! ([`WriteTx::put_package`](super::WriteTx::put_package),
//! [`WriteTx::remove_package`](super::WriteTx::remove_package)), so it can
//! never disagree with the `packages` table. A write rewrites one bucket:
//! ~1/256 of the index (about 1.5 KiB at 10,000 packages).
//!
//! Bucket value: the number of entries (u32, little endian); for each
//! entry in ID order its state code ([`PackageState::code`]) and the length
//! of its ID in bytes (u32, little endian); then all the IDs, concatenated
//! in the same order (UTF-8, checked once per bucket).

use super::records::PackageState;

/// Rows of the index; a package's row is [`bucket`] of its ID.
pub const BUCKETS: u32 = 256;

/// The bucket of a package ID: FNV-1a of its bytes, modulo [`BUCKETS`].
/// Stored in the file: never change it without rebuilding the index.
pub(crate) fn bucket(id: &str) -> u16 {
    let mut h: u32 = 0x811C_9DC5;
    for &b in id.as_bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % BUCKETS) as u16
}

/// Why a bucket value could not be read.
pub(crate) type Damage = &'static str;

/// One bucket value, read: the IDs (concatenated) and each entry's ID
/// length and state.
struct Bucket<'p> {
    ids: &'p str,
    entries: Vec<(usize, PackageState)>,
}

impl<'p> Bucket<'p> {
    fn read(packed: &'p [u8]) -> Result<Self, Damage> {
        if packed.is_empty() {
            return Ok(Bucket {
                ids: "",
                entries: Vec::new(),
            });
        }
        let (count, mut rest) = packed.split_first_chunk::<4>().ok_or("truncated")?;
        let count = u32::from_le_bytes(*count) as usize;
        if count > rest.len() / 5 {
            return Err("more entries than bytes");
        }
        let mut entries = Vec::with_capacity(count);
        let mut total: usize = 0;
        for _ in 0..count {
            let (&code, after) = rest.split_first().ok_or("truncated")?;
            let (len, after) = after.split_first_chunk::<4>().ok_or("truncated")?;
            let state = PackageState::from_code(code).ok_or("unknown package state code")?;
            let len = u32::from_le_bytes(*len) as usize;
            total = total.checked_add(len).ok_or("ID lengths overflow")?;
            entries.push((len, state));
            rest = after;
        }
        if rest.len() != total {
            return Err("ID bytes do not match the ID lengths");
        }
        let ids = std::str::from_utf8(rest).map_err(|_| "package IDs are not UTF-8")?;
        Ok(Bucket { ids, entries })
    }

    fn iter(&self) -> impl Iterator<Item = Result<(&'p str, PackageState), Damage>> + '_ {
        let ids = self.ids;
        let mut start = 0;
        self.entries.iter().map(move |&(len, state)| {
            let end = start + len;
            let id = ids.get(start..end).ok_or("an ID splits a character")?;
            start = end;
            Ok((id, state))
        })
    }
}

fn write(entries: &[(&str, PackageState)]) -> Result<Vec<u8>, Damage> {
    let ids: usize = entries.iter().map(|(id, _)| id.len()).sum();
    let mut out = Vec::with_capacity(4 + 5 * entries.len() + ids);
    let count = u32::try_from(entries.len()).map_err(|_| "too many entries")?;
    out.extend_from_slice(&count.to_le_bytes());
    for (id, state) in entries {
        let len = u32::try_from(id.len()).map_err(|_| "package ID longer than 4 GiB")?;
        out.push(state.code());
        out.extend_from_slice(&len.to_le_bytes());
    }
    for (id, _) in entries {
        out.extend_from_slice(id.as_bytes());
    }
    Ok(out)
}

fn entries(packed: &[u8]) -> Result<Vec<(&str, PackageState)>, Damage> {
    Bucket::read(packed)?.iter().collect()
}

/// `packed` with `id` set to `state` (added in ID order if missing); `None`
/// when it already was.
pub(crate) fn upsert(
    packed: &[u8],
    id: &str,
    state: PackageState,
) -> Result<Option<Vec<u8>>, Damage> {
    let mut entries = entries(packed)?;
    match entries.binary_search_by(|(other, _)| (*other).cmp(id)) {
        Ok(i) if entries[i].1 == state => return Ok(None),
        Ok(i) => entries[i].1 = state,
        Err(i) => entries.insert(i, (id, state)),
    }
    write(&entries).map(Some)
}

/// `packed` without `id`; `None` when it was not there. An empty bucket
/// comes back empty (the caller removes the row).
pub(crate) fn remove(packed: &[u8], id: &str) -> Result<Option<Vec<u8>>, Damage> {
    let mut entries = entries(packed)?;
    match entries.binary_search_by(|(other, _)| (*other).cmp(id)) {
        Ok(i) => {
            entries.remove(i);
            if entries.is_empty() {
                Ok(Some(Vec::new()))
            } else {
                write(&entries).map(Some)
            }
        }
        Err(_) => Ok(None),
    }
}

/// Appends the entries of one bucket value to `out`: the IDs in one copy.
/// On damage `out` is left as it was.
pub(crate) fn read_into(packed: &[u8], out: &mut PackageStates) -> Result<(), Damage> {
    if packed.is_empty() {
        return Ok(());
    }
    let (count, rest) = packed.split_first_chunk::<4>().ok_or("truncated")?;
    let count = u32::from_le_bytes(*count) as usize;
    let (table, ids) = count
        .checked_mul(5)
        .and_then(|n| rest.split_at_checked(n))
        .ok_or("more entries than bytes")?;
    let ids = std::str::from_utf8(ids).map_err(|_| "package IDs are not UTF-8")?;
    let mark = out.ends.len();
    let base = out.ids.len();
    let mut end: usize = 0;
    // Fixed-size chunks, not slices of slices: at the size-optimised level
    // this loop runs once per stored package on every poll (benchmark P7).
    let mut table = table;
    while let Some((&[code, l0, l1, l2, l3], rest)) = table.split_first_chunk::<5>() {
        table = rest;
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        // `is_char_boundary` is false past the end too.
        match (PackageState::from_code(code), end.checked_add(len)) {
            (Some(state), Some(e)) if ids.is_char_boundary(e) => {
                end = e;
                let Some(at) = base.checked_add(end).and_then(|at| u32::try_from(at).ok()) else {
                    out.truncate(mark);
                    return Err("the index holds more than 4 GiB of IDs");
                };
                out.ends.push(at);
                out.states.push(state);
            }
            _ => {
                out.truncate(mark);
                return Err(
                    "bad entry (state code, or an ID past the end or splitting a character)",
                );
            }
        }
    }
    if end != ids.len() {
        out.truncate(mark);
        return Err("ID bytes do not match the ID lengths");
    }
    out.ids.push_str(ids);
    Ok(())
}

/// The ID and state of every stored package, as the package index has them
/// (grouped by bucket, not in ID order): what the poller compares a poll
/// response's package list with. All IDs share one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageStates {
    ids: String,
    /// End of each ID in `ids` (the poller's join reads these two as they
    /// are, [`package_join::Stored`]): 4 bytes each, as every page of this
    /// is a page fault on every poll (benchmark P7).
    ends: Vec<u32>,
    /// The state of each package.
    states: Vec<PackageState>,
}

impl PackageStates {
    /// Adds one package.
    ///
    /// # Panics
    ///
    /// Past 4 GiB of IDs in all (the store's own reads return an error
    /// instead).
    pub fn push(&mut self, id: &str, state: PackageState) {
        self.ids.push_str(id);
        let end = u32::try_from(self.ids.len()).expect("less than 4 GiB of package IDs");
        self.ends.push(end);
        self.states.push(state);
    }

    /// Drops the packages from `len` on (their IDs stay in `ids`, which
    /// only the caller's error path does).
    fn truncate(&mut self, len: usize) {
        self.ends.truncate(len);
        self.states.truncate(len);
    }

    /// Exactly the room the entries of these bucket values need (a damaged
    /// count claims no more than the value's bytes could hold).
    pub(crate) fn with_capacity<'p>(buckets: impl Iterator<Item = &'p [u8]>) -> Self {
        let (entries, ids) = buckets
            .map(|packed| {
                let count = packed
                    .first_chunk::<4>()
                    .map_or(0, |c| u32::from_le_bytes(*c) as usize)
                    .min(packed.len() / 5);
                (count, packed.len().saturating_sub(4 + 5 * count))
            })
            .fold((0, 0), |(e, i), (ce, ci)| (e + ce, i + ci));
        PackageStates {
            ids: String::with_capacity(ids),
            ends: Vec::with_capacity(entries),
            states: Vec::with_capacity(entries),
        }
    }

    /// How many packages.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The ID of package `i` as bytes, and its state (the comparison with
    /// a poll's list works on bytes: cutting a `str` checks for character
    /// boundaries, a call per ID at the size-optimised level).
    #[inline(always)]
    pub(crate) fn get_bytes(&self, i: usize) -> Option<(&[u8], PackageState)> {
        // Every end is in order and in range (`push` and `read_into` make
        // them): only `i` is checked.
        let state = *self.states.get(i)?;
        Some((self.as_stored().id(u32::try_from(i).ok()?), state))
    }

    /// The ID of package `i` and its state.
    pub fn get(&self, i: usize) -> Option<(&str, PackageState)> {
        // Every ID is the bytes of a `str` that `push` was given.
        let (id, state) = self.get_bytes(i)?;
        Some((std::str::from_utf8(id).ok()?, state))
    }

    /// The IDs as the poller's join reads them.
    pub(crate) fn as_stored(&self) -> package_join::Stored<'_> {
        package_join::Stored {
            ids: self.ids.as_bytes(),
            ends: &self.ends,
        }
    }

    /// ID and state of each package.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, PackageState)> + '_ {
        let mut start = 0;
        self.ends
            .iter()
            .zip(&self.states)
            .map(move |(&end, &state)| {
                let end = end as usize;
                let id = &self.ids[start..end];
                start = end;
                (id, state)
            })
    }
}

impl<S: AsRef<str>> FromIterator<(S, PackageState)> for PackageStates {
    fn from_iter<I: IntoIterator<Item = (S, PackageState)>>(iter: I) -> Self {
        let mut out = PackageStates::default();
        for (id, state) in iter {
            out.push(id.as_ref(), state);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(packed: &[u8]) -> Vec<(String, PackageState)> {
        entries(packed)
            .expect("valid")
            .into_iter()
            .map(|(id, s)| (id.to_owned(), s))
            .collect()
    }

    #[test]
    fn upsert_keeps_id_order_and_replaces_in_place() {
        use PackageState::*;
        let mut packed = Vec::new();
        for (id, state) in [
            ("b", Pending),
            ("a", Installed),
            ("c", Failed),
            ("é", Pending),
        ] {
            packed = upsert(&packed, id, state).expect("ok").expect("changed");
        }
        assert_eq!(upsert(&packed, "a", Installed), Ok(None), "unchanged");
        packed = upsert(&packed, "b", Installed)
            .expect("ok")
            .expect("changed");
        assert_eq!(
            ids(&packed),
            [
                ("a".to_owned(), Installed),
                ("b".to_owned(), Installed),
                ("c".to_owned(), Failed),
                ("é".to_owned(), Pending)
            ]
        );
        assert_eq!(remove(&packed, "x"), Ok(None));
        packed = remove(&packed, "b").expect("ok").expect("removed");
        assert_eq!(ids(&packed).len(), 3);
        for id in ["a", "c", "é"] {
            packed = remove(&packed, id).expect("ok").expect("removed");
        }
        assert!(packed.is_empty());
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let mut packed = upsert(&[], "abc", PackageState::Pending)
            .expect("ok")
            .expect("changed");
        let mut out = PackageStates::default();
        assert!(read_into(&packed[..packed.len() - 1], &mut out).is_err());
        assert!(read_into(&[1, 0, 0, 0, 9, 0, 0, 0, 0], &mut out).is_err());
        assert!(read_into(&[0xFF, 0xFF, 0xFF, 0xFF, 1], &mut out).is_err());
        assert!(read_into(&[1, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, b'a'], &mut out).is_err());
        // An ID that ends inside a character of the next.
        let two = write(&[("a", PackageState::Pending), ("é", PackageState::Pending)]).expect("ok");
        let mut split = two.clone();
        split[5] = 2; // "a" + first byte of "é"
        split[10] = 1; // "é" minus its first byte
        assert!(read_into(&split, &mut out).is_err());
        packed[9] = 0xFF;
        assert!(read_into(&packed, &mut out).is_err());
        assert!(out.is_empty(), "nothing read from damaged buckets");
        read_into(&two, &mut out).expect("valid");
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            [("a", PackageState::Pending), ("é", PackageState::Pending)]
        );
    }

    #[test]
    fn buckets_spread_and_stay_put() {
        // The function is part of the file format.
        assert_eq!(bucket(""), (0x811C_9DC5u32 % BUCKETS) as u16);
        assert_eq!(bucket("a"), (0xE40C_292Cu32 % BUCKETS) as u16);
        let used: std::collections::HashSet<u16> =
            (0..10_000).map(|i| bucket(&format!("PKG{i:05}"))).collect();
        assert_eq!(used.len(), BUCKETS as usize);
    }
}
