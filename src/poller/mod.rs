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

use std::collections::BTreeSet;

use crate::protocol::PackageRef;
use crate::store::{PackageRecord, PackageState};

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

fn is_guid(id: &str) -> bool {
    let id = id.trim_start_matches('{').trim_end_matches('}');
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Compares `listed` (the poll response's `ApplicablePackages`, `None` when
/// the element was absent) with the `stored` packages.
pub fn reconcile(stored: &[PackageRecord], listed: Option<&[PackageRef]>) -> Reconcile {
    let Some(listed) = listed else {
        return Reconcile::default();
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut request = Vec::new();
    for package in listed {
        let id = package.id.as_str();
        if id.is_empty() || seen.iter().any(|s| same_package(s, id)) {
            continue;
        }
        seen.push(id);
        match stored.iter().find(|p| same_package(&p.id, id)) {
            None => request.push(id.to_owned()),
            // Instructions never arrived, or the download failed for good:
            // ask again (once per poll).
            Some(p)
                if matches!(
                    p.state,
                    PackageState::AwaitingInstructions | PackageState::Failed
                ) =>
            {
                request.push(p.id.clone());
            }
            Some(_) => {}
        }
    }
    let remove = stored
        .iter()
        .filter(|p| !seen.iter().any(|s| same_package(s, &p.id)))
        .map(|p| p.id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Reconcile { request, remove }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn stored(id: &str, state: PackageState) -> PackageRecord {
        let mut p = PackageRecord::new(id, NOW);
        p.state = state;
        p
    }

    fn listed(ids: &[&str]) -> Vec<PackageRef> {
        ids.iter()
            .map(|id| PackageRef {
                id: (*id).to_owned(),
            })
            .collect()
    }

    #[test]
    fn requests_missing_removes_unlisted_keeps_the_rest() {
        let db = [
            stored("A", PackageState::Installed),
            stored("B", PackageState::Pending),
            stored("GONE", PackageState::Installed),
        ];
        let r = reconcile(&db, Some(&listed(&["A", "B", "NEW"])));
        assert_eq!(r.request, ["NEW"]);
        assert_eq!(r.remove, ["GONE"]);
    }

    #[test]
    fn absent_list_changes_nothing_and_empty_list_removes_everything() {
        let db = [stored("A", PackageState::Installed)];
        assert_eq!(reconcile(&db, None), Reconcile::default());
        let r = reconcile(&db, Some(&[]));
        assert_eq!(r.remove, ["A"]);
        assert!(r.request.is_empty());
    }

    #[test]
    fn duplicates_are_ignored_and_guids_compare_case_insensitively() {
        let guid = "9A437CA5-5B17-4486-9E87-260742074A72";
        let db = [stored(&guid.to_lowercase(), PackageState::Installed)];
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
        let db = [
            stored("F", PackageState::Failed),
            stored("W", PackageState::AwaitingInstructions),
            stored("D", PackageState::Downloading),
        ];
        let r = reconcile(&db, Some(&listed(&["F", "W", "D"])));
        assert_eq!(r.request, ["F", "W"]);
        assert!(r.remove.is_empty());
    }
}
