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
pub mod schedule;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use foldhash::fast::RandomState;

use crate::protocol::{Connection, DevicePoll, Identification, ManagementSystem, PackageList};
use crate::store::{PackageState, PackageStates};

/// What one poll response asks of the client database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconcile {
    /// Package IDs to send an instruction request for, in list order.
    pub request: Vec<String>,
    /// Stored package IDs to remove (record, task, checkpoint, partial files).
    pub remove: Vec<String>,
}

/// Package IDs compare exactly, except GUID-shaped ones, which compare
/// case-insensitively (part A §5.5).
pub fn same_package(a: &str, b: &str) -> bool {
    a == b || (is_guid(a) && is_guid(b) && a.eq_ignore_ascii_case(b))
}

/// `8-4-4-4-12` hex digits, optionally inside braces.
fn is_guid(id: &str) -> bool {
    let id = id.trim_start_matches('{').trim_end_matches('}');
    id.len() == 36
        && id.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A package ID as [`same_package`] sees it: a GUID in upper case, any
/// other ID as it is. Two IDs are the same package exactly when their keys
/// are equal, so the comparison can use hash tables instead of comparing
/// every pair.
fn key(id: &str) -> Cow<'_, str> {
    if has_ascii_lowercase(id) && is_guid(id) {
        Cow::Owned(id.to_ascii_uppercase())
    } else {
        Cow::Borrowed(id)
    }
}

/// Whether `s` has a byte in `a..=z`, eight bytes at a time (package IDs
/// are mostly upper case: this is what most of them cost).
fn has_ascii_lowercase(s: &str) -> bool {
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
    let bytes = s.as_bytes();
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
/// table once, and each listed ID is looked up once.
pub fn reconcile(stored: &PackageStates, listed: Option<&PackageList>) -> Reconcile {
    let Some(listed) = listed else {
        return Reconcile::default();
    };
    let stored: Vec<(&str, PackageState)> = stored.iter().collect();
    // The first stored record of each ID (IDs that differ only in the case
    // of a GUID are one package), and for every record the index of that
    // first one.
    // foldhash: a seeded hash several times cheaper than SipHash on IDs.
    let mut first: HashMap<Cow<'_, str>, usize, RandomState> =
        HashMap::with_capacity_and_hasher(stored.len(), RandomState::default());
    let first_of: Vec<usize> = stored
        .iter()
        .enumerate()
        .map(|(i, &(id, _))| *first.entry(key(id)).or_insert(i))
        .collect();
    let mut listed_stored = vec![false; stored.len()];
    let mut listed_new: HashSet<Cow<'_, str>, RandomState> = HashSet::default();
    let mut request = Vec::new();
    for id in listed.iter() {
        if id.is_empty() {
            continue;
        }
        let key = key(id);
        match first.get(&key) {
            None => {
                if listed_new.insert(key) {
                    request.push(id.to_owned());
                }
            }
            Some(&i) => {
                if std::mem::replace(&mut listed_stored[i], true) {
                    continue; // listed twice
                }
                let (stored_id, state) = stored[i];
                // Instructions never arrived, or the download failed for
                // good: ask again (once per poll).
                if matches!(
                    state,
                    PackageState::AwaitingInstructions | PackageState::Failed
                ) {
                    request.push(stored_id.to_owned());
                }
            }
        }
    }
    let remove = stored
        .iter()
        .zip(&first_of)
        .filter(|(_, &f)| !listed_stored[f])
        .map(|(&(id, _), _)| id.to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Reconcile { request, remove }
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
        assert_eq!(r.request, ["NEW"]);
        assert_eq!(r.remove, ["GONE"]);
    }

    #[test]
    fn absent_list_changes_nothing_and_empty_list_removes_everything() {
        let db = db([stored("A", PackageState::Installed)]);
        assert_eq!(reconcile(&db, None), Reconcile::default());
        let r = reconcile(&db, Some(&PackageList::new()));
        assert_eq!(r.remove, ["A"]);
        assert!(r.request.is_empty());
    }

    #[test]
    fn duplicates_are_ignored_and_guids_compare_case_insensitively() {
        let guid = "9A437CA5-5B17-4486-9E87-260742074A72";
        let db = db([stored(&guid.to_lowercase(), PackageState::Installed)]);
        let r = reconcile(&db, Some(&listed(&[guid, guid, "x", "x"])));
        assert_eq!(r.request, ["x"]);
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
        assert_eq!(r.request, ["F", "W"]);
        assert!(r.remove.is_empty());
    }

    /// The comparison as part A §5.5 words it, pair by pair: the reference
    /// the hash-table version must agree with.
    fn reconcile_pairwise(stored: &[(String, PackageState)], listed: &PackageList) -> Reconcile {
        let mut seen: Vec<&str> = Vec::new();
        let mut request = Vec::new();
        for id in listed.iter() {
            if id.is_empty() || seen.iter().any(|s| same_package(s, id)) {
                continue;
            }
            seen.push(id);
            match stored
                .iter()
                .find(|(stored_id, _)| same_package(stored_id, id))
            {
                None => request.push(id.to_owned()),
                Some((stored_id, PackageState::AwaitingInstructions | PackageState::Failed)) => {
                    request.push(stored_id.clone())
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
                    has_ascii_lowercase(&s),
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
                assert_eq!(key(a) == key(b), same_package(a, b), "{a} {b}");
            }
        }
    }
}
