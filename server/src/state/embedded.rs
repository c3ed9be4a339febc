//! Per-device state on redb (`<state>/state.redb`; JSON values) plus the
//! collected files under `<state>/files/`.
//!
//! Device records (what a poll refreshes: last seen, poll count, the poll
//! document) are written behind: a poll changes the record in memory, where
//! every reader sees it at once, and a background thread writes every
//! changed record in one durable transaction each [`FLUSH_INTERVAL`] (and on
//! [`State::flush`], which the server calls when it stops). A crash loses at
//! most that interval of poll bookkeeping, which the devices' next polls
//! restore; one fsync'd transaction per poll capped the server at the disk's
//! fsync rate. Status messages, inventories and files are still committed
//! before the request is answered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use dmagent::protocol::StatusMessage;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};

use super::{DeviceRecord, FileRecord, InventoryRecord, StateError, StatusOutcome, StatusRecord};

const DEVICES: TableDefinition<'_, &str, &str> = TableDefinition::new("devices");
const STATUS: TableDefinition<'_, (&str, u64), &str> = TableDefinition::new("status");
const REPORT_IDS: TableDefinition<'_, (&str, &str), u64> = TableDefinition::new("report_ids");
const INVENTORIES: TableDefinition<'_, (&str, &str), &str> = TableDefinition::new("inventories");
const FILES: TableDefinition<'_, (&str, &str), &str> = TableDefinition::new("files");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// redb's page cache: the server's rows are small and read rarely.
const CACHE_BYTES: usize = 4 << 20;

/// How long a changed device record may stay in memory only.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The embedded store.
#[derive(Debug)]
pub struct EmbeddedState {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    dir: PathBuf,
    pending: Mutex<Pending>,
    /// One flush at a time (the background thread, [`State::flush`]).
    flush_lock: Mutex<()>,
    /// Set to stop the background flusher; `wake` wakes it.
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Device records not yet committed, and those of the last flush.
#[derive(Debug, Default)]
struct Pending {
    /// Changed since the last flush began (newest wins).
    dirty: HashMap<String, DeviceRecord>,
    /// The last flush's records: being committed, or committed and kept
    /// until the next flush (or for one more interval when nothing changed),
    /// so a device that polls again soon is answered from memory. Never
    /// older than the database: a newer version would be in `dirty`.
    flushing: Arc<HashMap<String, DeviceRecord>>,
    /// Times `flushing` was replaced: a record read from the database while
    /// it was not pending may have been outdated by a flush meanwhile.
    flushes: u64,
}

impl Pending {
    fn get(&self, id: &str) -> Option<&DeviceRecord> {
        self.dirty.get(id).or_else(|| self.flushing.get(id))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StateError> {
    Ok(serde_json::to_string(v)?)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, StateError> {
    Ok(serde_json::from_str(s)?)
}

impl EmbeddedState {
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
        let inner = Arc::new(Inner {
            db,
            dir: dir.to_owned(),
            pending: Mutex::new(Pending::default()),
            flush_lock: Mutex::new(()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let bg = inner.clone();
        let flusher = std::thread::Builder::new()
            .name("dm-state-flush".into())
            .spawn(move || bg.flush_loop())?;
        Ok(EmbeddedState {
            inner,
            flusher: Mutex::new(Some(flusher)),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The device record, if the device has polled.
    pub fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StateError> {
        if let Some(rec) = lock(&self.inner.pending).get(id) {
            return Ok(Some(rec.clone()));
        }
        // Not pending: the database has the latest (a flush commits before
        // it stops holding its records).
        self.inner.stored_device(id)
    }

    /// Every device, by ID.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, StateError> {
        // Pending records first: what a flush takes out of them is committed
        // before the database is read below.
        let overlay: Vec<DeviceRecord> = {
            let p = lock(&self.inner.pending);
            let mut v: HashMap<&str, &DeviceRecord> =
                p.flushing.iter().map(|(k, r)| (k.as_str(), r)).collect();
            v.extend(p.dirty.iter().map(|(k, r)| (k.as_str(), r)));
            v.into_values().cloned().collect()
        };
        let tx = self.inner.db.begin_read()?;
        let t = tx.open_table(DEVICES)?;
        let mut out = std::collections::BTreeMap::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.insert(k.value().to_owned(), from_json(v.value())?);
        }
        for rec in overlay {
            out.insert(rec.id.clone(), rec);
        }
        Ok(out.into_values().collect())
    }

    /// Reads and changes one device record (a new record starts from
    /// `DeviceRecord { id, ..default }`); the change is visible to every
    /// reader at once and committed by the next flush, within
    /// [`FLUSH_INTERVAL`]. Returns the record as changed.
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
    /// the change to make. Both run under the lock of the pending records:
    /// keep them short.
    pub fn try_update_device<R, E, A>(
        &self,
        id: &str,
        check: impl FnOnce(&DeviceRecord) -> Result<A, E>,
    ) -> Result<R, E>
    where
        E: From<StateError>,
        A: FnOnce(&mut DeviceRecord) -> R,
    {
        // The stored record, and the count of flushes when it was read.
        let mut stored: Option<(u64, Option<DeviceRecord>)> = None;
        loop {
            let mut p = lock(&self.inner.pending);
            let pending = p.dirty.contains_key(id) || p.flushing.contains_key(id);
            if !pending && !matches!(&stored, Some((f, _)) if *f == p.flushes) {
                // Not pending: start from the stored record, read without the
                // lock held; read again if a flush completed meanwhile.
                let flushes = p.flushes;
                drop(p);
                stored = Some((flushes, self.inner.stored_device(id)?));
                continue;
            }
            let base = if pending {
                None
            } else {
                stored.take().and_then(|(_, r)| r)
            };
            return Self::apply(&mut p, id, base, check);
        }
    }

    /// [`Self::try_update_device`] without touching the disk: `None`, with
    /// `check` not run, when the record is not in memory.
    pub fn try_update_pending<R, E, A>(
        &self,
        id: &str,
        check: impl FnOnce(&DeviceRecord) -> Result<A, E>,
    ) -> Option<Result<R, E>>
    where
        A: FnOnce(&mut DeviceRecord) -> R,
    {
        let mut p = lock(&self.inner.pending);
        if !p.dirty.contains_key(id) && !p.flushing.contains_key(id) {
            return None;
        }
        Some(Self::apply(&mut p, id, None, check))
    }

    /// Checks and changes the pending record of `id`, else `base` (the
    /// stored record), and leaves the result pending.
    fn apply<R, E, A>(
        p: &mut Pending,
        id: &str,
        base: Option<DeviceRecord>,
        check: impl FnOnce(&DeviceRecord) -> Result<A, E>,
    ) -> Result<R, E>
    where
        A: FnOnce(&mut DeviceRecord) -> R,
    {
        if let Some(rec) = p.dirty.get_mut(id) {
            let apply = check(rec)?;
            return Ok(apply(rec));
        }
        let mut rec = match p.flushing.get(id) {
            Some(r) => r.clone(),
            None => base.unwrap_or_else(|| DeviceRecord {
                id: id.to_owned(),
                ..DeviceRecord::default()
            }),
        };
        let apply = check(&rec)?;
        let r = apply(&mut rec);
        p.dirty.insert(id.to_owned(), rec);
        Ok(r)
    }

    /// Commits every changed device record now (the server calls it when it
    /// stops; the background thread every [`FLUSH_INTERVAL`]).
    pub fn flush(&self) -> Result<(), StateError> {
        self.inner.flush()
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
        let tx = self.inner.db.begin_write()?;
        {
            let mut status = tx.open_table(STATUS)?;
            let mut ids = tx.open_table(REPORT_IDS)?;
            let mut meta = tx.open_table(META)?;
            let mut seq = meta.get("status_seq")?.map(|g| g.value()).unwrap_or(0);
            for m in messages {
                let report_id = super::report_id(m);
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
        let tx = self.inner.db.begin_read()?;
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
        let tx = self.inner.db.begin_write()?;
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
        let tx = self.inner.db.begin_read()?;
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

impl Inner {
    /// The committed record of `id`.
    fn stored_device(&self, id: &str) -> Result<Option<DeviceRecord>, StateError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(DEVICES)?;
        let v = t.get(id)?;
        v.map(|g| from_json(g.value())).transpose()
    }

    /// Commits the changed records in one transaction.
    fn flush(&self) -> Result<(), StateError> {
        let _one = lock(&self.flush_lock);
        let batch = {
            let mut p = lock(&self.pending);
            // The previous batch is committed (flushes run one at a time):
            // its records may leave memory now.
            let batch = Arc::new(std::mem::take(&mut p.dirty));
            if batch.is_empty() && p.flushing.is_empty() {
                return Ok(());
            }
            p.flushing = batch.clone();
            p.flushes += 1;
            batch
        };
        if batch.is_empty() {
            return Ok(());
        }
        let written = self.write(&batch);
        if written.is_err() {
            // Keep the records for the next flush; newer changes win.
            let mut p = lock(&self.pending);
            for (id, rec) in batch.iter() {
                p.dirty.entry(id.clone()).or_insert_with(|| rec.clone());
            }
            p.flushing = Arc::default();
            p.flushes += 1;
        }
        written
    }

    fn write(&self, batch: &HashMap<String, DeviceRecord>) -> Result<(), StateError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(DEVICES)?;
            for (id, rec) in batch {
                t.insert(id.as_str(), to_json(rec)?.as_str())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The background flusher: every [`FLUSH_INTERVAL`] until stopped.
    fn flush_loop(&self) {
        let mut stop = lock(&self.stop);
        while !*stop {
            stop = self
                .wake
                .wait_timeout(stop, FLUSH_INTERVAL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            if *stop {
                break;
            }
            drop(stop);
            if let Err(e) = self.flush() {
                tracing::error!(error = %e, "writing device records failed; retrying");
            }
            stop = lock(&self.stop);
        }
    }
}

impl Drop for EmbeddedState {
    /// Stops the flusher and commits what is pending.
    fn drop(&mut self) {
        *lock(&self.inner.stop) = true;
        self.inner.wake.notify_all();
        if let Some(t) = lock(&self.flusher).take() {
            let _ = t.join();
        }
        if let Err(e) = self.inner.flush() {
            tracing::error!(error = %e, "writing device records at shutdown failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type State = EmbeddedState;

    fn seen(state: &State, id: &str) -> Option<u64> {
        state.device(id).expect("read").map(|r| r.poll_count)
    }

    fn bump(state: &State, id: &str) -> u64 {
        state
            .update_device(id, |r| {
                r.poll_count += 1;
                r.poll_count
            })
            .expect("update")
            .1
    }

    #[test]
    fn written_behind_records_are_read_at_once_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = State::open(dir.path()).expect("open");
        assert_eq!(bump(&state, "A"), 1);
        assert_eq!(seen(&state, "A"), Some(1), "visible before any flush");
        state.flush().expect("flush");
        assert_eq!(seen(&state, "A"), Some(1), "read back from the database");
        assert_eq!(bump(&state, "A"), 2, "continues from the stored record");
        assert_eq!(bump(&state, "B"), 1);
        let ids: Vec<(String, u64)> = state
            .devices()
            .expect("devices")
            .into_iter()
            .map(|r| (r.id, r.poll_count))
            .collect();
        assert_eq!(ids, [("A".to_owned(), 2), ("B".to_owned(), 1)]);
        drop(state);
        let state = State::open(dir.path()).expect("reopen");
        assert_eq!(
            seen(&state, "A"),
            Some(2),
            "committed when the state closed"
        );
        assert_eq!(seen(&state, "B"), Some(1));
    }

    #[test]
    fn only_records_in_memory_are_updated_without_the_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = State::open(dir.path()).expect("open");
        let check =
            |_: &DeviceRecord| Ok::<_, StateError>(|r: &mut DeviceRecord| r.poll_count += 1);
        assert!(
            state.try_update_pending("A", check).is_none(),
            "never polled"
        );
        bump(&state, "A");
        assert!(state.try_update_pending("A", check).is_some());
        state.flush().expect("flush");
        assert!(
            state.try_update_pending("A", check).is_some(),
            "the last flush's records stay in memory"
        );
        state.flush().expect("flush");
        state.flush().expect("flush");
        assert!(
            state.try_update_pending("A", check).is_none(),
            "unchanged for a whole interval: only on disk"
        );
        assert_eq!(seen(&state, "A"), Some(3));
    }

    #[test]
    fn a_refused_update_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = State::open(dir.path()).expect("open");
        let refused: Result<(), StateError> = state.try_update_device("NEW", |_| {
            Err(StateError::Io(std::io::Error::other("refused")))
                .map(|()| |_: &mut DeviceRecord| ())
        });
        assert!(refused.is_err());
        assert_eq!(seen(&state, "NEW"), None, "no record for a refused device");
        bump(&state, "NEW");
        let refused: Result<(), StateError> = state.try_update_device("NEW", |_| {
            Err(StateError::Io(std::io::Error::other("refused")))
                .map(|()| |r: &mut DeviceRecord| r.poll_count = 99)
        });
        assert!(refused.is_err());
        assert_eq!(seen(&state, "NEW"), Some(1));
    }

    #[test]
    fn concurrent_updates_lose_no_poll_across_flushes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = Arc::new(State::open(dir.path()).expect("open"));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = state.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        bump(&s, "SHARED");
                        if i % 50 == 0 {
                            s.flush().expect("flush");
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(seen(&state, "SHARED"), Some(800));
        state.flush().expect("flush");
        assert_eq!(seen(&state, "SHARED"), Some(800));
    }
}
