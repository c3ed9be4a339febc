//! The redb tables of the client database and how rows are encoded.
//!
//! Every value except in `meta` is the serde_json encoding of a record from
//! [`records`](super::records).

use std::path::Path;

use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{RedbResultExt, StoreError};

/// `meta`: name -> u64 (schema version, next outbox sequence).
pub const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("meta");
/// `packages`: package ID -> [`PackageRecord`](super::PackageRecord).
pub const PACKAGES: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("packages");
/// `package_index`: bucket -> the ID and state of each of its packages
/// (see [`index`](super::index)).
pub const PACKAGE_INDEX: TableDefinition<'static, u16, &'static [u8]> =
    TableDefinition::new("package_index");
/// `tasks`: task ID -> [`TaskRecord`](super::TaskRecord).
pub const TASKS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("tasks");
/// `checkpoints`: package ID -> [`CheckpointRecord`](super::CheckpointRecord).
pub const CHECKPOINTS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("checkpoints");
/// `outbox`: sequence -> [`OutboxItem`](super::OutboxItem).
pub const OUTBOX: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("outbox");
/// `server`: [`SERVER_KEY`] -> [`ServerValues`](super::ServerValues).
pub const SERVER: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("server");

/// `report_digests`: report type (`MachineInventory`, ...) -> SHA-256 (32
/// bytes) of the last report of that type the server accepted. Added within
/// schema 2: redb creates it on first write, readers take a missing table as
/// empty, and an agent that does not know it never opens it.
pub const REPORT_DIGESTS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("report_digests");

/// `meta` key of the schema version.
pub const META_SCHEMA_VERSION: &str = "schema_version";
/// `meta` key of the next outbox sequence number to hand out.
pub const META_NEXT_OUTBOX_SEQ: &str = "next_outbox_seq";
/// The one key of the `server` table.
pub const SERVER_KEY: &str = "values";

/// Encode a record for `table[key]`.
pub(crate) fn encode<T: Serialize>(
    table: &str,
    key: &dyn std::fmt::Display,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Encode {
        table: table.to_owned(),
        key: key.to_string(),
        source,
    })?;
    if bytes.len() > super::MAX_VALUE_BYTES {
        return Err(StoreError::InvalidRecord(format!(
            "{table}[{key}] encodes to {} bytes, more than the {} one record may take",
            bytes.len(),
            super::MAX_VALUE_BYTES
        )));
    }
    Ok(bytes)
}

/// Decode the record stored at `table[key]`.
pub(crate) fn decode<T: DeserializeOwned>(
    table: &str,
    key: &dyn std::fmt::Display,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Decode {
        table: table.to_owned(),
        key: key.to_string(),
        source,
    })
}

/// Read and decode one row of a string-keyed table.
pub(crate) fn get_str<T: DeserializeOwned>(
    path: &Path,
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key).at(path)? {
        Some(guard) => decode(name, &key, guard.value()).map(Some),
        None => Ok(None),
    }
}

/// Read and decode every row of a string-keyed table, in key order.
pub(crate) fn all_str<T: DeserializeOwned>(
    path: &Path,
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for row in table.iter().at(path)? {
        let (key, value) = row.at(path)?;
        out.push(decode(name, &key.value(), value.value())?);
    }
    Ok(out)
}

/// Decode the rows of a string-keyed table after `after` (from the first
/// if `None`), in key order, handing each to `f` until it returns `false`.
pub(crate) fn each_str_after<T: DeserializeOwned>(
    path: &Path,
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
    after: Option<&str>,
    mut f: impl FnMut(T) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    use std::ops::Bound;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    for row in table.range::<&str>((start, Bound::Unbounded)).at(path)? {
        let (key, value) = row.at(path)?;
        if !f(decode(name, &key.value(), value.value())?)? {
            break;
        }
    }
    Ok(())
}

/// Read and decode up to `limit` rows of a u64-keyed table, lowest key first.
pub(crate) fn first_u64<T: DeserializeOwned>(
    path: &Path,
    table: &impl ReadableTable<u64, &'static [u8]>,
    name: &str,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for row in table.iter().at(path)?.take(limit) {
        let (key, value) = row.at(path)?;
        out.push(decode(name, &key.value(), value.value())?);
    }
    Ok(out)
}
