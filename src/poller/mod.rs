//! The poller's decisions: compare the server's package list with the client
//! database, and turn an instruction response into a stored package and its
//! scheduled download event. Pure functions with an injected "now"; the HTTP
//! exchanges and store writes live in `actor.rs`.
//!
//! The comparison follows part A §5.5: request instructions for every listed
//! package the database lacks (and for failed ones, once per poll), remove
//! every stored package that is no longer listed, keep the rest. An absent
//! `ApplicablePackages` changes nothing; a present but empty one removes all.

pub mod actor;
mod package_table;
pub mod schedule;

use package_table::{Entry, PackageTable, Probe};
use std::borrow::Cow;

use crate::protocol::{Connection, DevicePoll, Identification, ManagementSystem, PackageList};
use crate::store::{PackageState, PackageStates};

/// What one poll response asks of the client database. Each list is one
/// buffer, as the poll's own list is: a first poll of a 10,000-package
/// catalog asks for 10,000 packages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconcile {
    /// Package IDs to send an instruction request for, in list order.
    pub request: PackageList,
    /// Stored package IDs to remove (record, task, checkpoint, partial
    /// files), in ID order.
    pub remove: PackageList,
}

/// Package IDs compare exactly, except GUID-shaped ones, which compare
/// case-insensitively (part A §5.5).
pub fn same_package(a: &str, b: &str) -> bool {
    same_id(a.as_bytes(), b.as_bytes())
}

/// [`same_package`] on the IDs' bytes.
#[inline(always)]
fn same_id(a: &[u8], b: &[u8]) -> bool {
    a == b || (is_guid(a) && is_guid(b) && a.eq_ignore_ascii_case(b))
}

/// `8-4-4-4-12` hex digits, optionally inside braces.
fn is_guid(id: &[u8]) -> bool {
    let mut id = id;
    while let [b'{', rest @ ..] = id {
        id = rest;
    }
    while let [rest @ .., b'}'] = id {
        id = rest;
    }
    id.len() == 36
        && id.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A package ID as [`same_package`] sees it: a GUID in upper case, any
/// other ID as it is. Two IDs are the same package exactly when their keys
/// are equal, so the comparison can use hash tables instead of comparing
/// every pair.
fn key(id: &[u8]) -> Cow<'_, [u8]> {
    if has_ascii_lowercase(id) && is_guid(id) {
        Cow::Owned(id.to_ascii_uppercase())
    } else {
        Cow::Borrowed(id)
    }
}

/// Whether `bytes` has one in `a..=z`, eight at a time (package IDs are
/// mostly upper case: this is what most of them cost).
fn has_ascii_lowercase(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = ONES * 0x7F;
    const HIGH: u64 = ONES * 0x80;
    // A byte's high bit set exactly where it is above 0x60 and below 0x7B
    // (the "has between" bit trick: no carries cross bytes).
    let between = |x: u64| {
        let low = x & LOW7;
        (ONES * (0x7F + 0x7B)).wrapping_sub(low)
            & !x
            & low.wrapping_add(ONES * (0x7F - 0x60))
            & HIGH
    };
    let mut rest = bytes;
    while let Some((word, after)) = rest.split_first_chunk::<8>() {
        if between(u64::from_le_bytes(*word)) != 0 {
            return true;
        }
        rest = after;
    }
    match bytes.last_chunk::<8>() {
        // The last eight bytes, overlapping ones already checked.
        Some(last) if !rest.is_empty() => between(u64::from_le_bytes(*last)) != 0,
        _ => rest.iter().any(u8::is_ascii_lowercase),
    }
}

/// Compares `listed` (the poll response's `ApplicablePackages`, `None` when
/// the element was absent) with the `stored` packages (their IDs and
/// states, from the package index).
///
/// Linear in the sizes of both lists: the stored packages go into a hash
/// table once, by [`key`], and each listed ID is looked up once. A listed
/// ID is first looked up as it is, which is its key unless it is a GUID
/// with a lower-case letter: only an ID not found that way costs [`key`]
/// (a pass over its bytes) and a second lookup. Both lists are read in
/// place, by index, as bytes: a poll of 10,000 packages allocates the
/// table (128 KiB) and little else.
pub fn reconcile(stored: &PackageStates, listed: Option<&PackageList>) -> Reconcile {
    let Some(listed) = listed else {
        return Reconcile::default();
    };
    let Some(mut table) = PackageTable::with_room(stored.len() + listed.len()) else {
        // 2^30 packages or more: no document under the size cap lists them.
        return Reconcile::default();
    };
    // The first stored record of each ID (IDs that differ only in the case
    // of a GUID are one package), and for every record the index of that
    // first one.
    // Boxed slices: indexing a `Vec` is a call at the size-optimised level.
    let mut first_of: Box<[u32]> = vec![0; stored.len()].into_boxed_slice();
    for (i, first_of) in (0u32..).zip(first_of.iter_mut()) {
        let id = stored_id(stored, i);
        let mut probe = table.probe(table.hash(&key(id)));
        *first_of = match find(&table, &mut probe, stored, listed, id) {
            Some(Entry::Stored(j)) => j,
            _ => {
                table.add(&probe, Entry::Stored(i));
                i
            }
        };
    }
    let mut listed_stored: Box<[bool]> = vec![false; stored.len()].into_boxed_slice();
    let mut request = PackageList::new();
    for k in (0u32..).take(listed.len()) {
        let id = listed_id(listed, k);
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
                request.push(listed.get(k as usize).unwrap_or_default());
                continue;
            }
        }
        if let Some(Entry::Stored(i)) = found {
            if std::mem::replace(&mut listed_stored[i as usize], true) {
                continue; // listed twice
            }
            // Instructions never arrived, or the download failed for
            // good: ask again (once per poll).
            if let Some((_, PackageState::AwaitingInstructions | PackageState::Failed)) =
                stored.get_bytes(i as usize)
            {
                request.push(stored.get(i as usize).map_or("", |(id, _)| id));
            }
        }
    }
    let mut remove: Vec<&str> = (0..first_of.len())
        .zip(first_of.iter())
        .filter(|&(_, &f)| !listed_stored[f as usize])
        .filter_map(|(i, _)| stored.get(i).map(|(id, _)| id))
        .collect();
    remove.sort_unstable();
    remove.dedup();
    Reconcile {
        request,
        remove: remove.into_iter().collect(),
    }
}

/// Stored ID `i` (empty past the end).
#[inline(always)]
fn stored_id(stored: &PackageStates, i: u32) -> &[u8] {
    stored.get_bytes(i as usize).map_or(&[][..], |(id, _)| id)
}

/// Listed ID `k` (empty past the end).
#[inline(always)]
fn listed_id(listed: &PackageList, k: u32) -> &[u8] {
    listed.get_bytes(k as usize).unwrap_or_default()
}

/// The entry along `probe` that is the same package as `id`; `None`
/// leaves the probe at the empty slot where `id` would go.
#[inline(always)]
fn find(
    table: &PackageTable,
    probe: &mut Probe,
    stored: &PackageStates,
    listed: &PackageList,
    id: &[u8],
) -> Option<Entry> {
    while let Some(e) = table.next(probe) {
        let other = match e {
            Entry::Stored(j) => stored_id(stored, j),
            Entry::Listed(j) => listed_id(listed, j),
        };
        if same_id(other, id) {
            return Some(e);
        }
    }
    None
}

/// The DevicePoll document this agent sends: its identity, this machine's
/// platform, and the token and timestamp the server last issued.
pub fn device_poll(
    device_id: String,
    device_name: Option<String>,
    auth_token: Option<String>,
    timestamp: Option<String>,
) -> DevicePoll {
    DevicePoll {
        management_system: Some(ManagementSystem {
            name: Some("dmagent".to_owned()),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
        identification: Identification {
            id: device_id,
            device_name,
            platform: Some("Linux".to_owned()),
            processor: Some(std::env::consts::ARCH.to_owned()),
            code_page: Some(65001),
            system_default_lcid: Some(1033),
            ..Identification::default()
        },
        connection: Some(Connection {
            authorization_token: auth_token,
            timestamp,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn stored(id: &str, state: PackageState) -> (String, PackageState) {
        (id.to_owned(), state)
    }

    fn db<const N: usize>(packages: [(String, PackageState); N]) -> PackageStates {
        packages.into_iter().collect()
    }

    fn listed(ids: &[&str]) -> PackageList {
        ids.iter().collect()
    }

    #[test]
    fn requests_missing_removes_unlisted_keeps_the_rest() {
        let db = db([
            stored("A", PackageState::Installed),
            stored("B", PackageState::Pending),
            stored("GONE", PackageState::Installed),
        ]);
        let r = reconcile(&db, Some(&listed(&["A", "B", "NEW"])));
        assert_eq!(r.request, listed(&["NEW"]));
        assert_eq!(r.remove, listed(&["GONE"]));
    }

    #[test]
    fn absent_list_changes_nothing_and_empty_list_removes_everything() {
        let db = db([stored("A", PackageState::Installed)]);
        assert_eq!(reconcile(&db, None), Reconcile::default());
        let r = reconcile(&db, Some(&PackageList::new()));
        assert_eq!(r.remove, listed(&["A"]));
        assert!(r.request.is_empty());
    }

    #[test]
    fn duplicates_are_ignored_and_guids_compare_case_insensitively() {
        let guid = "9A437CA5-5B17-4486-9E87-260742074A72";
        let db = db([stored(&guid.to_lowercase(), PackageState::Installed)]);
        let r = reconcile(&db, Some(&listed(&[guid, guid, "x", "x"])));
        assert_eq!(r.request, listed(&["x"]));
        assert!(
            r.remove.is_empty(),
            "the GUID is the same package in another case"
        );
        assert!(
            !same_package("abc", "ABC"),
            "non-GUID IDs are case-sensitive"
        );
    }

    #[test]
    fn failed_and_instructionless_packages_are_requested_again() {
        let db = db([
            stored("F", PackageState::Failed),
            stored("W", PackageState::AwaitingInstructions),
            stored("D", PackageState::Downloading),
        ]);
        let r = reconcile(&db, Some(&listed(&["F", "W", "D"])));
        assert_eq!(r.request, listed(&["F", "W"]));
        assert!(r.remove.is_empty());
    }

    /// The comparison as part A §5.5 words it, pair by pair: the reference
    /// the hash-table version must agree with.
    fn reconcile_pairwise(stored: &[(String, PackageState)], listed: &PackageList) -> Reconcile {
        let mut seen: Vec<&str> = Vec::new();
        let mut request = PackageList::new();
        for id in listed.iter() {
            if id.is_empty() || seen.iter().any(|s| same_package(s, id)) {
                continue;
            }
            seen.push(id);
            match stored
                .iter()
                .find(|(stored_id, _)| same_package(stored_id, id))
            {
                None => request.push(id),
                Some((stored_id, PackageState::AwaitingInstructions | PackageState::Failed)) => {
                    request.push(stored_id)
                }
                Some(_) => {}
            }
        }
        let remove = stored
            .iter()
            .filter(|(id, _)| !seen.iter().any(|s| same_package(s, id)))
            .map(|(id, _)| id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Reconcile { request, remove }
    }

    #[test]
    fn lowercase_detection() {
        for b in 0..=255u8 {
            for pos in 0..17 {
                let mut s = vec![b'A'; 17];
                s[pos] = b;
                let s = String::from_utf8_lossy(&s);
                assert_eq!(
                    has_ascii_lowercase(s.as_bytes()),
                    s.bytes().any(|c| c.is_ascii_lowercase()),
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn agrees_with_the_pairwise_comparison() {
        let guid = "9a437ca5-5b17-4486-9e87-260742074a72";
        let ids = [
            guid.to_owned(),
            guid.to_uppercase(),
            format!("{{{guid}}}"),
            format!("{{{}}}", guid.to_uppercase()),
            format!("{{{{{guid}}}"),
            "9A437CA5-5B17-4486-9E87-260742074A7G".to_owned(),
            "abc".to_owned(),
            "ABC".to_owned(),
            "CEN00042".to_owned(),
            String::new(),
        ];
        let states = PackageState::ALL;
        // Every stored subset of the first few IDs against listed sequences
        // drawn from all of them, with duplicates.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for _ in 0..2000 {
            let db: Vec<(String, PackageState)> = (0..next(6))
                .map(|_| stored(&ids[next(ids.len() - 1)], states[next(states.len())]))
                .collect();
            let list: PackageList = (0..next(8)).map(|_| ids[next(ids.len())].clone()).collect();
            assert_eq!(
                reconcile(&db.iter().cloned().collect(), Some(&list)),
                reconcile_pairwise(&db, &list),
                "stored {db:?}, listed {list:?}"
            );
        }
        for a in &ids {
            for b in &ids {
                assert_eq!(
                    key(a.as_bytes()) == key(b.as_bytes()),
                    same_package(a, b),
                    "{a} {b}"
                );
            }
        }
    }
}
