//! Fault injection for tests: off unless configured.
//!
//! Set at start (`[faults]` in the `--config` file, or [`ServerConfig::faults`](crate::ServerConfig)),
//! at run time by `PUT`/`POST /admin/faults` with a JSON [`Faults`] body
//! (accepted from loopback peers only; `GET` returns the current set,
//! `DELETE` clears it), or in-process with [`FaultHandle::set`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The faults in force. Every field is off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Close the connection of a download after this many body bytes.
    pub cut_after_bytes: Option<u64>,
    /// How many downloads to cut (each cut counts one down); `None` = every download.
    pub cut_count: Option<u32>,
    /// Answer Range requests with 200 and the full body.
    pub ignore_range: bool,
    /// Answer the next N device or download requests with 503.
    pub unavailable_count: u32,
    /// `Retry-After` seconds sent with those 503s (default 1).
    pub retry_after_secs: Option<u64>,
    /// Delay every device and download response by this many milliseconds.
    pub delay_ms: u64,
    /// Package ID -> URL: the location response points there instead.
    pub relocate: BTreeMap<String, String>,
    /// Flip (XOR 0xFF) the byte at this offset of every download that covers it.
    pub flip_byte_at: Option<u64>,
    /// Package ID -> command line: the instruction response carries it
    /// instead of the catalog's, changed after signing (a server in the
    /// middle altering the post-install command).
    pub tamper_command: BTreeMap<String, String>,
    /// Abort the whole process (no reply, no cleanup, as `kill -9` would)
    /// once a device request's changes are committed: the replica that dies
    /// between storing and answering.
    pub abort_after_store: bool,
    /// Refuse (400) every Status document that carries a message about
    /// this package ID: a message the server cannot take.
    pub refuse_status_of: Option<String>,
}

/// Shared, mutable fault set.
#[derive(Debug, Clone, Default)]
pub struct FaultHandle(Arc<Mutex<Faults>>);

/// What a download stream should do, decided when the response starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct DownloadFaults {
    /// Stop after this many body bytes (of this response) and drop the connection.
    pub cut_after: Option<u64>,
    /// Absolute file offset whose byte is flipped.
    pub flip_at: Option<u64>,
    /// Serve Range requests as 200.
    pub ignore_range: bool,
}

impl FaultHandle {
    /// A handle holding `faults`.
    pub fn new(faults: Faults) -> Self {
        FaultHandle(Arc::new(Mutex::new(faults)))
    }

    fn lock(&self) -> MutexGuard<'_, Faults> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the fault set.
    pub fn set(&self, faults: Faults) {
        *self.lock() = faults;
    }

    /// The current fault set.
    pub fn get(&self) -> Faults {
        self.lock().clone()
    }

    /// Before answering a device or download request: the delay to apply and,
    /// if the request is to get a 503, its `Retry-After`.
    pub fn on_request(&self) -> (Option<Duration>, Option<u64>) {
        let mut f = self.lock();
        let delay = (f.delay_ms > 0).then(|| Duration::from_millis(f.delay_ms));
        let unavailable = if f.unavailable_count > 0 {
            f.unavailable_count -= 1;
            Some(f.retry_after_secs.unwrap_or(1))
        } else {
            None
        };
        (delay, unavailable)
    }

    /// The faults for one download response (consumes one `cut_count`).
    pub fn on_download(&self) -> DownloadFaults {
        let mut f = self.lock();
        let cut_after = match (f.cut_after_bytes, f.cut_count) {
            (Some(n), None) => Some(n),
            (Some(n), Some(c)) if c > 0 => {
                f.cut_count = Some(c - 1);
                Some(n)
            }
            _ => None,
        };
        DownloadFaults {
            cut_after,
            flip_at: f.flip_byte_at,
            ignore_range: f.ignore_range,
        }
    }

    /// The command line that replaces a package's after signing, if any.
    pub fn tampered_command(&self, package_id: &str) -> Option<String> {
        self.lock().tamper_command.get(package_id).cloned()
    }

    /// Whether to die now, a device request's changes being committed.
    pub fn abort_after_store(&self) -> bool {
        self.lock().abort_after_store
    }

    /// Whether a Status document with a message about `package_id` is to
    /// be refused.
    pub fn refuses_status_of(&self, package_id: &str) -> bool {
        self.lock().refuse_status_of.as_deref() == Some(package_id)
    }

    /// The relocated URL of a package, if any.
    pub fn relocated(&self, package_id: &str) -> Option<String> {
        self.lock().relocate.get(package_id).cloned()
    }
}
