//! The client database on redb (part B §7.1, §6, §8.4).
//!
//! One [`Store`] wraps one redb file; one process at a time may hold it.
//! Every state change is one durable write transaction, built in a closure:
//!
//! ```no_run
//! # use dmagent::store::{Store, PackageRecord, OutboxBody, StoreError};
//! # fn demo(store: &Store, rec: PackageRecord, body: OutboxBody) -> Result<(), StoreError> {
//! store.write(|tx| {
//!     tx.put_package(&rec)?;
//!     tx.enqueue(body)?;
//!     Ok(())
//! })?;
//! # Ok(()) }
//! ```
//!
//! The closure's `Ok` commits everything at once; its `Err` (or a panic)
//! aborts everything. Nothing is cached in memory: every read goes to the
//! file, so what the agent sees is what survives a crash.
//!
//! Tables ([`tables`]): `meta` (schema version, next outbox sequence),
//! `packages`, `package_index` (ID and state of every package, see
//! [`PackageStates`]), `tasks`, `checkpoints`, `outbox`, `server`,
//! `report_digests` (the last accepted report of each type).

mod error;
mod index;
mod overlay;
mod records;
mod schema;
pub mod tables;
mod tx;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use redb::{Database, Durability};

pub use error::StoreError;
pub use index::PackageStates;
pub use records::{
    AttemptKey, CheckpointRecord, OutboxBody, OutboxItem, Outcome, PackageRecord, PackageState,
    ServerValues, TaskId, TaskKind, TaskRecord,
};
pub use schema::SCHEMA_VERSION;
pub use tx::{After, HeldRead, ReadTx, Snapshot, WriteTx};

use error::RedbResultExt;

/// redb's page cache limit. redb's default (1 GiB, grown lazily) lets the
/// cache keep every page it ever touched resident, which a device cannot
/// afford. The cache fills up to this limit whenever all packages are read
/// (`dmagent status`), and the idle daemon keeps it: at 256 KiB an idle
/// daemon on 10,000 records stayed at 5.61 MB after one `status`, at 128 KiB
/// 5.37 MB (P3). Start-up on 10,000 records took ~7 ms longer (P9); the
/// per-poll read goes through the package index and did not change (P7).
const CACHE_BYTES: usize = 128 * 1024;

/// redb's region size for a new client database. A region's page allocator
/// is sized for a full region and stays in memory while the database is
/// open: 516 KiB at redb's default of 4 GiB, ~32 KiB at 256 MiB. The largest
/// value must fit in one region: a report of the plugins' largest output
/// (16 MiB, encoded as JSON numbers, up to 4 bytes per byte) is a quarter
/// of it. An existing file keeps the region size it was created with.
const REGION_BYTES: u64 = 256 * 1024 * 1024;

/// Largest encoded record the store writes. redb panics on a value that
/// does not fit in one region; half a region leaves room for its page
/// rounding. Larger records are refused with [`StoreError::InvalidRecord`].
pub(crate) const MAX_VALUE_BYTES: usize = (REGION_BYTES / 2) as usize;

/// How long a failed write stays in `dmagent status` once writes work
/// again: a disk that is full for one large write and not for small ones
/// must not flicker out of sight.
const ERROR_SHOWN_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// The client database: one redb file, held exclusively by this process.
pub struct Store {
    /// `None` only between a failed reopen and the next attempt.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    /// A write failed (disk full, I/O error): redb refuses every later
    /// transaction of that `Database` ("previous I/O error"), so the file is
    /// opened again, as after a crash, before the next one.
    reopen: AtomicBool,
    /// The last write failure and when (`dmagent status`), until writes
    /// have worked for [`ERROR_SHOWN_FOR`] since.
    /// (when, what, whether a write has committed since).
    write_error: Mutex<Option<(std::time::Instant, String, bool)>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open the database at `path`, creating it (and its directory) if
    /// missing and stamping the schema version.
    ///
    /// Errors: [`StoreError::NewerSchema`] if a newer agent wrote the file
    /// (the file is left byte-for-byte untouched), [`StoreError::NotADatabase`]
    /// for a file that is not a redb database, [`StoreError::Locked`] if
    /// another process (or another `Store`) holds it.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let existing = match fs::metadata(&path) {
            Ok(meta) => meta.len() > 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_err(e)),
        };
        if existing {
            if let Some(found) = schema::probe(&path)? {
                check_version(&path, found)?;
            }
        }

        let db = open_database(&path)?;
        let store = Store {
            db: RwLock::new(Some(db)),
            path,
            reopen: AtomicBool::new(false),
            write_error: Mutex::new(None),
        };
        let stamped = store.schema_version()?;
        if stamped != SCHEMA_VERSION {
            store.write(|tx| {
                let found = tx.schema_version()?;
                check_version(tx.path, found)?;
                tx.initialize(SCHEMA_VERSION)?;
                // Version 2 added the package index.
                if found < 2 {
                    tx.rebuild_package_index()?;
                }
                // Future migrations from `found` to SCHEMA_VERSION go here.
                Ok(())
            })?;
            tracing::info!(path = %store.path.display(), from = stamped, to = SCHEMA_VERSION,
                "client database stamped");
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last write that failed, why and how long ago, until writes have
    /// worked for 30 s (the agent keeps retrying; nothing of that write
    /// happened).
    pub fn write_error(&self) -> Option<String> {
        let last = self.write_error.lock().ok()?;
        let (at, error, recovered) = last.as_ref()?;
        if *recovered && at.elapsed() >= ERROR_SHOWN_FOR {
            return None;
        }
        let since = if *recovered {
            "; writes work again since"
        } else {
            ""
        };
        Some(format!("{error} ({} s ago{since})", at.elapsed().as_secs()))
    }

    /// The open database, opened again first if a write failed.
    fn database(&self) -> Result<RwLockReadGuard<'_, Option<Database>>, StoreError> {
        if self.reopen.load(Ordering::SeqCst) {
            let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
            if self.reopen.swap(false, Ordering::SeqCst) || slot.is_none() {
                // redb holds a lock on the file: the old handle goes first.
                drop(slot.take());
                match open_database(&self.path) {
                    Ok(db) => {
                        tracing::info!(path = %self.path.display(), "client database opened again after a failed write");
                        *slot = Some(db);
                    }
                    Err(e) => {
                        self.reopen.store(true, Ordering::SeqCst);
                        return Err(e);
                    }
                }
            }
        }
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            return Err(self.closed());
        }
        Ok(guard)
    }

    fn closed(&self) -> StoreError {
        self.reopen.store(true, Ordering::SeqCst);
        StoreError::Io {
            path: self.path.clone(),
            source: io::Error::other("the client database could not be opened again"),
        }
    }

    fn failed_write(&self, e: StoreError) -> StoreError {
        tracing::error!(path = %self.path.display(), "client database write failed, nothing of it was kept: {e}");
        if let Ok(mut last) = self.write_error.lock() {
            *last = Some((std::time::Instant::now(), e.to_string(), false));
        }
        self.reopen.store(true, Ordering::SeqCst);
        e
    }

    /// Run `f` in one read transaction (a consistent view).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&ReadTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = self.database()?;
        let Some(db) = db.as_ref() else {
            return Err(self.closed());
        };
        let tx = db.begin_read().at(&self.path)?;
        f(&ReadTx {
            path: &self.path,
            tx: &tx,
        })
    }

    /// Begin a read transaction that the caller keeps across calls (see
    /// [`HeldRead`]). It also keeps the file's handle: a reopen after a
    /// failed write waits until it is dropped.
    pub fn hold_read(&self) -> Result<HeldRead, StoreError> {
        let db = self.database()?;
        let Some(db) = db.as_ref() else {
            return Err(self.closed());
        };
        Ok(HeldRead {
            path: self.path.clone(),
            tx: db.begin_read().at(&self.path)?,
        })
    }

    /// Run `f` in one write transaction and commit it durably if `f` returns
    /// `Ok`; abort everything `f` did if it returns `Err` or panics.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_with(f)
    }

    /// [`Store::write`] for closures with their own error type.
    pub fn write_with<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let db = self.database()?;
        let Some(db) = db.as_ref() else {
            return Err(self.closed().into());
        };
        let mut tx = db
            .begin_write()
            .at(&self.path)
            .map_err(|e| self.failed_write(e))?;
        tx.set_durability(Durability::Immediate);
        let mut wtx = WriteTx {
            path: &self.path,
            tx,
        };
        match f(&mut wtx) {
            Ok(value) => {
                crate::failpoint::crash_point("store.commit.before");
                wtx.tx
                    .commit()
                    .at(&self.path)
                    .map_err(|e| self.failed_write(e))?;
                crate::failpoint::crash_point("store.commit.after");
                if let Ok(mut last) = self.write_error.lock() {
                    if let Some((_, _, recovered @ false)) = last.as_mut() {
                        *recovered = true;
                        tracing::info!(path = %self.path.display(), "client database writes work again");
                    }
                }
                Ok(value)
            }
            Err(e) => {
                if let Err(abort) = wtx.tx.abort() {
                    tracing::warn!(path = %self.path.display(), error = %abort,
                        "aborting a client database transaction failed");
                }
                Err(e)
            }
        }
    }

    /// The schema version stamped in the file.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        self.read(|rx| rx.schema_version())
    }

    /// One package.
    pub fn package(&self, id: &str) -> Result<Option<PackageRecord>, StoreError> {
        self.read(|rx| rx.package(id))
    }

    /// All packages, by ID.
    pub fn packages(&self) -> Result<Vec<PackageRecord>, StoreError> {
        self.read(|rx| rx.packages())
    }

    /// The ID and state of every package, from the package index.
    pub fn package_states(&self) -> Result<PackageStates, StoreError> {
        self.read(|rx| rx.package_states())
    }

    /// One task.
    pub fn task(&self, id: impl AsRef<str>) -> Result<Option<TaskRecord>, StoreError> {
        self.read(|rx| rx.task(id))
    }

    /// All tasks, by ID.
    pub fn tasks(&self) -> Result<Vec<TaskRecord>, StoreError> {
        self.read(|rx| rx.tasks())
    }

    /// The download checkpoint of one package.
    pub fn checkpoint(&self, package_id: &str) -> Result<Option<CheckpointRecord>, StoreError> {
        self.read(|rx| rx.checkpoint(package_id))
    }

    /// All download checkpoints.
    pub fn checkpoints(&self) -> Result<Vec<CheckpointRecord>, StoreError> {
        self.read(|rx| rx.checkpoints())
    }

    /// Up to `limit` outbox items, oldest first.
    pub fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.read(|rx| rx.outbox(limit))
    }

    /// How many items wait in the outbox.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        self.read(|rx| rx.outbox_len())
    }

    /// The server-issued values.
    pub fn server_values(&self) -> Result<ServerValues, StoreError> {
        self.read(|rx| rx.server_values())
    }

    /// SHA-256 of the last `report` document the server accepted.
    pub fn report_digest(
        &self,
        report: crate::protocol::ReportType,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        self.read(|rx| rx.report_digest(report))
    }

    /// Everything, read in one transaction.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.read(|rx| rx.snapshot())
    }
}

/// Refuse a schema version newer than this agent's.
fn check_version(path: &Path, found: u64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn open_database(path: &Path) -> Result<Database, StoreError> {
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .set_region_size(REGION_BYTES)
        .create(path)
        .map_err(|e| schema::open_error(path, e))
}
