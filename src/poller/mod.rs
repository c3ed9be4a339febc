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

pub use package_join::same_package;
use package_join::Listing;

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

/// Compares `listed` (the poll response's `ApplicablePackages`, `None` when
/// the element was absent) with the `stored` packages (their IDs and
/// states, from the package index).
///
/// The join by package is [`package_join::join`], linear in the sizes of
/// both lists and reading both in place; what follows from the states is
/// decided here.
pub fn reconcile(stored: &PackageStates, listed: Option<&PackageList>) -> Reconcile {
    let Some(listed) = listed else {
        return Reconcile::default();
    };
    let Some(join) = package_join::join(stored.as_stored(), listed.as_listed()) else {
        // 2^30 packages or more: no document under the size cap lists them.
        return Reconcile::default();
    };
    let mut request = PackageList::new();
    for (k, listing) in join.listings().enumerate() {
        match listing {
            Listing::New => request.push(listed.get(k).unwrap_or_default()),
            // Instructions never arrived, or the download failed for
            // good: ask again (once per poll).
            // (The state is read as bytes: most packages are kept, and
            // their IDs need no UTF-8 check.)
            Listing::Stored(i) => {
                if let Some((_, PackageState::AwaitingInstructions | PackageState::Failed)) =
                    stored.get_bytes(i as usize)
                {
                    request.push(stored.get(i as usize).map_or("", |(id, _)| id));
                }
            }
            Listing::Repeat => {}
        }
    }
    let mut remove: Vec<&str> = (0..stored.len())
        .zip(join.kept())
        .filter(|&(_, &kept)| !kept)
        .filter_map(|(i, _)| stored.get(i).map(|(id, _)| id))
        .collect();
    remove.sort_unstable();
    remove.dedup();
    Reconcile {
        request,
        remove: remove.into_iter().collect(),
    }
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
    fn agrees_with_the_pairwise_comparison() {
        let ids = package_join::tricky_ids();
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
    }
}
