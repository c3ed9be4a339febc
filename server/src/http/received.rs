//! What devices sent: requests and body bytes per message kind, counted as
//! the device endpoint reads them, so tests and the report-traffic figure of
//! BENCHMARKS.md can tell what reached the server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use dmagent::protocol::Action;
use serde::Serialize;

/// Requests and body bytes of one message kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Requests whose body was read.
    pub requests: u64,
    /// Their body bytes (an upload counts its `Content-Length`).
    pub body_bytes: u64,
}

/// The tallies by message kind: `Poll`, `Status`, `InstructionRequest`,
/// `LocationRequest`, `Report/SoftwareInventory`, `Report/MachineInventory`,
/// `Report/FileCollection`; `other` for a body without a usable action.
#[derive(Debug, Default)]
pub struct Received {
    tallies: Mutex<BTreeMap<String, Tally>>,
    duplicate_statuses: AtomicU64,
    /// Polls whose device record was not in memory (read from the database).
    polls_from_database: AtomicU64,
}

impl Received {
    /// Counts one request of `action` with a body of `bytes`.
    pub fn add(&self, action: Option<Action>, bytes: u64) {
        let key = match action {
            Some(Action::Report(report)) => format!("Report/{report}"),
            Some(other) => other.to_string(),
            None => "other".to_owned(),
        };
        if let Ok(mut map) = self.tallies.lock() {
            let tally = map.entry(key).or_default();
            tally.requests += 1;
            tally.body_bytes += bytes;
        }
    }

    /// Counts status messages dropped because their `ReportID` was stored
    /// before: a device sending again what it could not know arrived.
    pub fn add_duplicate_statuses(&self, count: usize) {
        self.duplicate_statuses
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Counts one poll that had to read its device record from the database
    /// (benchmark P8's rarely polling line checks that its polls do).
    pub fn add_poll_from_database(&self) {
        self.polls_from_database.fetch_add(1, Ordering::Relaxed);
    }

    /// Polls that read their device record from the database.
    pub fn polls_from_database(&self) -> u64 {
        self.polls_from_database.load(Ordering::Relaxed)
    }

    /// Status messages dropped as repeats of a stored `ReportID`.
    pub fn duplicate_statuses(&self) -> u64 {
        self.duplicate_statuses.load(Ordering::Relaxed)
    }

    /// A copy of every tally.
    pub fn snapshot(&self) -> BTreeMap<String, Tally> {
        self.tallies.lock().map(|m| m.clone()).unwrap_or_default()
    }
}
