//! Per-device state on redb (`<state>/state.redb`; JSON values) plus the
//! collected files under `<state>/files/`.

mod files;

use std::path::{Path, PathBuf};

use dmagent::protocol::{DeviceHeaders, DevicePoll, Parameter, StatusMessage};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub use files::{sanitize_component, stored_relative_path, FileNameError};

const DEVICES: TableDefinition<'_, &str, &str> = TableDefinition::new("devices");
const STATUS: TableDefinition<'_, (&str, u64), &str> = TableDefinition::new("status");
const REPORT_IDS: TableDefinition<'_, (&str, &str), u64> = TableDefinition::new("report_ids");
const INVENTORIES: TableDefinition<'_, (&str, &str), &str> = TableDefinition::new("inventories");
const FILES: TableDefinition<'_, (&str, &str), &str> = TableDefinition::new("files");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// redb's page cache: the server's rows are small and read rarely.
const CACHE_BYTES: usize = 4 << 20;

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

/// The server's state store.
#[derive(Debug)]
pub struct State {
    db: Database,
    dir: PathBuf,
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StateError> {
    Ok(serde_json::to_string(v)?)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, StateError> {
    Ok(serde_json::from_str(s)?)
}

impl State {
    /// Opens (creating) `<dir>/state.redb` and `<dir>/files/`.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir.join("files"))?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join("state.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(DEVICES)?;
        tx.open_table(STATUS)?;
        tx.open_table(REPORT_IDS)?;
        tx.open_table(INVENTORIES)?;
        tx.open_table(FILES)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(State {
            db,
            dir: dir.to_owned(),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device record, if the device has polled.
    pub fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StateError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(DEVICES)?;
        let v = t.get(id)?;
        v.map(|g| from_json(g.value())).transpose()
    }

    /// Every device, by ID.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, StateError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(DEVICES)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(from_json(v.value())?);
        }
        Ok(out)
    }

    /// Reads, changes and writes one device record in one transaction
    /// (a new record starts from `DeviceRecord { id, ..default }`).
    pub fn update_device<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut DeviceRecord) -> R,
    ) -> Result<(DeviceRecord, R), StateError> {
        let tx = self.db.begin_write()?;
        let (rec, r) = {
            let mut t = tx.open_table(DEVICES)?;
            let mut rec: DeviceRecord = match t.get(id)? {
                Some(g) => from_json(g.value())?,
                None => DeviceRecord {
                    id: id.to_owned(),
                    ..DeviceRecord::default()
                },
            };
            let r = f(&mut rec);
            t.insert(id, to_json(&rec)?.as_str())?;
            (rec, r)
        };
        tx.commit()?;
        Ok((rec, r))
    }

    /// Stores the messages of one `Status` document in one transaction; a
    /// message whose `ReportID` was seen before from this device is dropped.
    pub fn add_status(
        &self,
        device: &str,
        messages: &[StatusMessage],
        received_at: &str,
    ) -> Result<StatusOutcome, StateError> {
        let mut out = StatusOutcome::default();
        let tx = self.db.begin_write()?;
        {
            let mut status = tx.open_table(STATUS)?;
            let mut ids = tx.open_table(REPORT_IDS)?;
            let mut meta = tx.open_table(META)?;
            let mut seq = meta.get("status_seq")?.map(|g| g.value()).unwrap_or(0);
            for m in messages {
                let report_id = m
                    .parameters
                    .iter()
                    .find(|p| p.name.eq_ignore_ascii_case("ReportID"))
                    .map(|p| p.value.trim().to_owned())
                    .filter(|v| !v.is_empty());
                if let Some(rid) = &report_id {
                    if ids.get((device, rid.as_str()))?.is_some() {
                        out.duplicates += 1;
                        continue;
                    }
                }
                seq += 1;
                let rec = StatusRecord {
                    seq,
                    package_id: m.package_id.clone(),
                    message_id: m.message_id.0,
                    timestamp: m.timestamp.to_string(),
                    parameters: m.parameters.clone(),
                    report_id: report_id.clone(),
                    received_at: received_at.to_owned(),
                };
                status.insert((device, seq), to_json(&rec)?.as_str())?;
                if let Some(rid) = &report_id {
                    ids.insert((device, rid.as_str()), seq)?;
                }
                out.stored += 1;
            }
            meta.insert("status_seq", seq)?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// The status history of a device, oldest first.
    pub fn statuses(&self, device: &str) -> Result<Vec<StatusRecord>, StateError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(STATUS)?;
        let mut out = Vec::new();
        for row in t.range((device, 0)..=(device, u64::MAX))? {
            let (_, v) = row?;
            out.push(from_json(v.value())?);
        }
        Ok(out)
    }

    /// Replaces the device's latest inventory of `kind`.
    pub fn put_inventory(&self, device: &str, rec: &InventoryRecord) -> Result<(), StateError> {
        self.put_per_device(INVENTORIES, device, &rec.kind, rec)
    }

    /// The device's latest inventories (`machine`, `software`).
    pub fn inventories(&self, device: &str) -> Result<Vec<InventoryRecord>, StateError> {
        self.per_device(INVENTORIES, device)
    }

    /// Records a collected file (replacing an earlier one of the same path).
    pub fn put_file(&self, device: &str, rec: &FileRecord) -> Result<(), StateError> {
        self.put_per_device(FILES, device, &rec.original_path, rec)
    }

    /// The device's collected files, by original path.
    pub fn files(&self, device: &str) -> Result<Vec<FileRecord>, StateError> {
        self.per_device(FILES, device)
    }

    /// Writes one record keyed by `(device, key)` in its own transaction.
    fn put_per_device<T: Serialize>(
        &self,
        table: TableDefinition<'_, (&str, &str), &str>,
        device: &str,
        key: &str,
        rec: &T,
    ) -> Result<(), StateError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(table)?;
            t.insert((device, key), to_json(rec)?.as_str())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every record of `device` in a `(device, key)` table, by key.
    fn per_device<T: DeserializeOwned>(
        &self,
        table: TableDefinition<'_, (&str, &str), &str>,
        device: &str,
    ) -> Result<Vec<T>, StateError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table)?;
        let mut out = Vec::new();
        for row in t.range((device, "")..)? {
            let (k, v) = row?;
            if k.value().0 != device {
                break;
            }
            out.push(from_json(v.value())?);
        }
        Ok(out)
    }
}
