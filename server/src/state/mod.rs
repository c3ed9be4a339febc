//! The server's state: per-device records, status history, inventories and
//! collected files, behind one interface with two backends chosen at start.
//!
//! - [`embedded`]: a redb file in the state directory (`<state>/state.redb`),
//!   the default: no setup, one server process. Device records are written
//!   behind (see its module doc) so a poll costs no fsync.
//! - [`postgres`]: a PostgreSQL database (`--database postgres://...`) that
//!   several `dm-server` processes share, so they behave as one server.
//!   Every change is committed before the request is answered; schema
//!   migrations are in `server/migrations/`.
//!
//! Collected files' bytes live under `<state>/files/` with either backend
//! (replicas share that directory); the records that name them are in the
//! store. Callers are blocking threads: no method may run on an async
//! executor thread (the PostgreSQL backend blocks on its own runtime).

mod embedded;
mod files;
mod postgres;

use std::path::Path;

use dmagent::protocol::{DeviceHeaders, DevicePoll, Parameter, StatusMessage};
use serde::{Deserialize, Serialize};

pub use embedded::{EmbeddedState, FLUSH_INTERVAL};
pub use files::{sanitize_component, stored_relative_path, FileNameError, INCOMING_PREFIX};
pub use postgres::{PostgresState, SCHEMA_VERSION};

/// A state error.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database failed.
    #[error("state database: {0}")]
    Db(Box<redb::Error>),
    /// A stored value could not be (de)serialised.
    #[error("state value: {0}")]
    Json(#[from] serde_json::Error),
    /// File I/O.
    #[error("state files: {0}")]
    Io(#[from] std::io::Error),
    /// PostgreSQL failed (connecting, a query, the pool).
    #[error("state database (PostgreSQL): {0}")]
    Postgres(String),
    /// The database's schema is not one this server can use.
    #[error("state database schema: {0}")]
    Schema(String),
    /// `--database` is not a URL this server can use.
    #[error("--database: {0}")]
    Url(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(impl From<$t> for StateError {
        fn from(e: $t) -> Self { StateError::Db(Box::new(e.into())) }
    })*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What the server knows of one device, from its last poll.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The device ID (`X-Device-UUID`, else `Identification/ID`).
    pub id: String,
    /// The last `DevicePoll` document as decoded.
    pub poll: Option<DevicePoll>,
    /// The standard headers of the last poll.
    pub headers: DeviceHeaders,
    /// `X-Device-Action` as sent on the last poll (empty if missing).
    pub action_header: String,
    /// `User-Agent` of the last poll.
    pub user_agent: Option<String>,
    /// Peer address of the last poll.
    pub remote_addr: Option<String>,
    /// First poll (RFC 3339 UTC).
    pub first_seen: String,
    /// Last poll (RFC 3339 UTC).
    pub last_seen: String,
    /// Number of polls.
    pub poll_count: u64,
    /// The `X-Device-Timestamp` issued on the last poll.
    pub issued_timestamp: Option<String>,
    /// The device's auth token (when auth is on: issued at enrolment).
    pub auth_token: Option<String>,
    /// The device has sent `auth_token` on a poll: until then a poll
    /// without a token is answered with the same token again (the reply
    /// that carried it may have been lost), after that it is refused.
    #[serde(default)]
    pub token_presented: bool,
}

impl DeviceRecord {
    /// `DeviceName` of the last poll.
    pub fn name(&self) -> Option<&str> {
        self.poll
            .as_ref()
            .and_then(|p| p.identification.device_name.as_deref())
    }

    /// `Platform` of the last poll.
    pub fn platform(&self) -> Option<&str> {
        self.poll
            .as_ref()
            .and_then(|p| p.identification.platform.as_deref())
    }
}

/// One stored `StatusMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    /// Arrival order (server-wide).
    pub seq: u64,
    /// `@packageID`.
    pub package_id: String,
    /// `@messageID`.
    pub message_id: u32,
    /// `@timestamp` as reported.
    pub timestamp: String,
    /// The parameters in document order.
    pub parameters: Vec<Parameter>,
    /// The `ReportID` parameter, if any.
    pub report_id: Option<String>,
    /// Receive time (RFC 3339 UTC).
    pub received_at: String,
}

/// The latest software or machine inventory of a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryRecord {
    /// `software` or `machine`.
    pub kind: String,
    /// Receive time (RFC 3339 UTC).
    pub received_at: String,
    /// The decoded document as JSON (`FileReport` or `Inventory`).
    pub document: serde_json::Value,
}

/// One collected file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The path the device sent (percent-decoded).
    pub original_path: String,
    /// Where it is stored, relative to the state directory.
    pub stored_path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Receive time (RFC 3339 UTC).
    pub received_at: String,
}

/// The outcome of storing a `Status` document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusOutcome {
    /// Messages stored.
    pub stored: usize,
    /// Messages dropped as duplicates of an earlier `ReportID`.
    pub duplicates: usize,
}

/// The server's state store: one of the two backends.
#[derive(Debug)]
pub enum State {
    /// redb in the state directory.
    Embedded(EmbeddedState),
    /// A shared PostgreSQL database.
    Postgres(PostgresState),
}

/// Calls the same method on whichever backend this is.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            State::Embedded($s) => $call,
            State::Postgres($s) => $call,
        }
    };
}

impl State {
    /// Opens the store: PostgreSQL when `database` is given (migrating its
    /// schema, refusing a newer one), else the redb file in `dir`. `dir`
    /// keeps the collected files with either backend.
    pub fn open(dir: &Path, database: Option<&str>) -> Result<Self, StateError> {
        let state = match database {
            Some(url) => State::Postgres(PostgresState::open(dir, url)?),
            None => State::Embedded(EmbeddedState::open(dir)?),
        };
        match files::sweep_abandoned_uploads(&dir.join("files"), files::ABANDONED_AFTER) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "abandoned uploads removed"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep abandoned uploads"),
        }
        Ok(state)
    }

    /// `embedded` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            State::Embedded(_) => "embedded",
            State::Postgres(_) => "postgres",
        }
    }

    /// The state directory (collected files).
    pub fn dir(&self) -> &Path {
        dispatch!(self, s => s.dir())
    }

    /// Whether the store answers (PostgreSQL: a `SELECT 1` round trip).
    pub fn check(&self) -> Result<(), StateError> {
        match self {
            State::Embedded(_) => Ok(()),
            State::Postgres(s) => s.check(),
        }
    }

    /// The device record, if the device has polled.
    pub fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StateError> {
        dispatch!(self, s => s.device(id))
    }

    /// Every device, by ID.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, StateError> {
        dispatch!(self, s => s.devices())
    }

    /// Reads and changes one device record (a new record starts from
    /// `DeviceRecord { id, ..default }`). Returns the record as changed.
    pub fn update_device<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut DeviceRecord) -> R,
    ) -> Result<(DeviceRecord, R), StateError> {
        self.try_update_device(id, |_| {
            Ok::<_, StateError>(|rec: &mut DeviceRecord| {
                let r = f(rec);
                (rec.clone(), r)
            })
        })
    }

    /// Like [`Self::update_device`], in two steps: `check` sees the record
    /// and may refuse (the record then stays as it was), else it returns
    /// the change to make. No other change of this record comes between the
    /// two, on any replica: keep them short.
    pub fn try_update_device<R, E, A>(
        &self,
        id: &str,
        check: impl FnOnce(&DeviceRecord) -> Result<A, E>,
    ) -> Result<R, E>
    where
        E: From<StateError>,
        A: FnOnce(&mut DeviceRecord) -> R,
    {
        dispatch!(self, s => s.try_update_device(id, check))
    }

    /// [`Self::try_update_device`] without touching the disk or the
    /// network: `None`, with `check` not run, when the record is not in
    /// memory (always, on PostgreSQL). The async thread tries this first.
    pub fn try_update_pending<R, E, A>(
        &self,
        id: &str,
        check: impl FnOnce(&DeviceRecord) -> Result<A, E>,
    ) -> Option<Result<R, E>>
    where
        A: FnOnce(&mut DeviceRecord) -> R,
    {
        match self {
            State::Embedded(s) => s.try_update_pending(id, check),
            State::Postgres(_) => None,
        }
    }

    /// Commits every device record changed in memory (the embedded
    /// backend's write-behind; PostgreSQL commits each change at once).
    pub fn flush(&self) -> Result<(), StateError> {
        match self {
            State::Embedded(s) => s.flush(),
            State::Postgres(_) => Ok(()),
        }
    }

    /// Stores the messages of one `Status` document atomically; a message
    /// whose `ReportID` was stored before from this device is dropped.
    pub fn add_status(
        &self,
        device: &str,
        messages: &[StatusMessage],
        received_at: &str,
    ) -> Result<StatusOutcome, StateError> {
        dispatch!(self, s => s.add_status(device, messages, received_at))
    }

    /// The status history of a device, oldest first.
    pub fn statuses(&self, device: &str) -> Result<Vec<StatusRecord>, StateError> {
        dispatch!(self, s => s.statuses(device))
    }

    /// Replaces the device's latest inventory of `kind`.
    pub fn put_inventory(&self, device: &str, rec: &InventoryRecord) -> Result<(), StateError> {
        dispatch!(self, s => s.put_inventory(device, rec))
    }

    /// The device's latest inventories (`machine`, `software`).
    pub fn inventories(&self, device: &str) -> Result<Vec<InventoryRecord>, StateError> {
        dispatch!(self, s => s.inventories(device))
    }

    /// Records a collected file (replacing an earlier one of the same path).
    pub fn put_file(&self, device: &str, rec: &FileRecord) -> Result<(), StateError> {
        dispatch!(self, s => s.put_file(device, rec))
    }

    /// The device's collected files, by original path.
    pub fn files(&self, device: &str) -> Result<Vec<FileRecord>, StateError> {
        dispatch!(self, s => s.files(device))
    }
}

/// The `ReportID` parameter of a status message (trimmed), if any.
fn report_id(m: &StatusMessage) -> Option<String> {
    m.parameters
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case("ReportID"))
        .map(|p| p.value.trim().to_owned())
        .filter(|v| !v.is_empty())
}
