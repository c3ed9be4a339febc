//! The schema version and opening a database file safely.
//!
//! Opening happens in two steps. An existing file is first *probed*: opened
//! through [`ReadOnlyOverlay`] so that not one byte of it changes, and its
//! schema version read in a read transaction. Only when this agent
//! understands that version is the file opened for real (which rewrites the
//! redb header and repairs the file after a crash) and stamped.

use std::fs::File;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use redb::{Database, DatabaseError, StorageError, TableError};

use super::error::StoreError;
use super::overlay::ReadOnlyOverlay;
use super::tables::{META, META_SCHEMA_VERSION};

/// The schema version this agent writes and the newest it can read.
///
/// 1: the first. 2: adds `package_index` (built from `packages` on upgrade).
/// `report_digests` joined version 2 without a bump: a missing table reads
/// as empty, and agents that predate it never open it.
pub const SCHEMA_VERSION: u64 = 2;

/// Map an error of opening a database file.
pub(crate) fn open_error(path: &Path, err: DatabaseError) -> StoreError {
    match err {
        DatabaseError::Storage(StorageError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
            // redb's answer to a file without its magic number.
            StoreError::NotADatabase {
                path: path.to_path_buf(),
            }
        }
        other => StoreError::redb(path, other),
    }
}

/// Read the schema version of the existing, non-empty file at `path` without
/// changing the file. `Ok(None)`: a redb file without our `meta` stamp.
pub(crate) fn probe(path: &Path) -> Result<Option<u64>, StoreError> {
    let io_err = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let backend = ReadOnlyOverlay::new(file).map_err(|e| open_error(path, e))?;
    // redb asserts on some malformed headers; a damaged file must be an
    // error, not a crash of the agent.
    let read = catch_unwind(AssertUnwindSafe(|| -> Result<Option<u64>, StoreError> {
        let db = Database::builder()
            .create_with_backend(backend)
            .map_err(|e| open_error(path, e))?;
        let tx = db.begin_read().map_err(|e| StoreError::redb(path, e))?;
        let meta = match tx.open_table(META) {
            Ok(meta) => meta,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(StoreError::redb(path, e)),
        };
        let version = meta
            .get(META_SCHEMA_VERSION)
            .map_err(|e| StoreError::redb(path, e))?
            .map(|v| v.value());
        Ok(version)
    }));
    read.unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unreadable redb header".to_owned());
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        })
    })
}
