//! [`ReadTx`] and [`WriteTx`]: typed views of one redb transaction.

use std::path::Path;

use redb::{ReadableTable, ReadableTableMetadata, TableHandle};

use super::error::{RedbResultExt, StoreError};
use super::index::{self, PackageStates};
use super::records::{
    CheckpointRecord, OutboxBody, OutboxItem, PackageRecord, ServerValues, TaskId, TaskRecord,
};
use super::tables::{
    self, all_str, encode, first_u64, get_str, CHECKPOINTS, META, OUTBOX, PACKAGES, PACKAGE_INDEX,
    REPORT_DIGESTS, SERVER, TASKS,
};
use crate::protocol::ReportType;

/// Everything in the database, read in one transaction: a consistent picture
/// for `dmagent status` and for tests. `Default` is the empty database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Schema version stamped in the file.
    pub schema_version: u64,
    /// All packages, by ID.
    pub packages: Vec<PackageRecord>,
    /// All tasks, by ID.
    pub tasks: Vec<TaskRecord>,
    /// All download checkpoints, by package ID.
    pub checkpoints: Vec<CheckpointRecord>,
    /// The whole outbox, oldest first.
    pub outbox: Vec<OutboxItem>,
    /// The sequence number the next queued item will get.
    pub next_outbox_seq: u64,
    /// Server-issued values.
    pub server: ServerValues,
}

/// A read transaction: a consistent, immutable view of the database.
pub struct ReadTx<'s> {
    pub(crate) path: &'s Path,
    pub(crate) tx: &'s redb::ReadTransaction,
}

/// A read transaction that outlives one call: a consistent view read in
/// slices, each slice a short job on the database thread (`dmagent status`
/// streamed at the client's pace). While it is held redb keeps every page
/// it sees, so hold it for seconds, not hours.
pub struct HeldRead {
    pub(crate) path: std::path::PathBuf,
    pub(crate) tx: redb::ReadTransaction,
}

impl HeldRead {
    /// The view, for the getters.
    pub fn view(&self) -> ReadTx<'_> {
        ReadTx {
            path: &self.path,
            tx: &self.tx,
        }
    }
}

impl std::fmt::Debug for HeldRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldRead")
            .field("path", &self.path)
            .finish()
    }
}

/// Where a slice of [`ReadTx::packages_after`] and friends starts: after
/// this key, or at the first row.
pub type After<'a, K> = Option<&'a K>;

/// A write transaction. Everything done through it becomes visible and
/// durable together when [`Store::write`](super::Store::write)'s closure
/// returns `Ok`, or not at all.
pub struct WriteTx<'s> {
    pub(crate) path: &'s Path,
    pub(crate) tx: redb::WriteTransaction,
}

impl std::fmt::Debug for ReadTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadTx").field("path", &self.path).finish()
    }
}

impl std::fmt::Debug for WriteTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx").field("path", &self.path).finish()
    }
}

/// The getters, identical for both transaction kinds (redb's read-only and
/// writable tables share the `ReadableTable` trait).
macro_rules! getters {
    ($ty:ident) => {
        impl $ty<'_> {
            /// The schema version stamped in the file (0 if none).
            pub fn schema_version(&self) -> Result<u64, StoreError> {
                let meta = match self.tx.open_table(META) {
                    Ok(meta) => meta,
                    Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
                    Err(e) => return Err(StoreError::redb(self.path, e)),
                };
                let found = meta.get(tables::META_SCHEMA_VERSION).at(self.path)?;
                Ok(found.map_or(0, |v| v.value()))
            }

            /// The sequence number the next queued outbox item will get.
            pub fn next_outbox_seq(&self) -> Result<u64, StoreError> {
                let meta = self.tx.open_table(META).at(self.path)?;
                let stored = meta
                    .get(tables::META_NEXT_OUTBOX_SEQ)
                    .at(self.path)?
                    .map_or(1, |v| v.value());
                // Defensive: never hand out a number at or below one in use.
                let outbox = self.tx.open_table(OUTBOX).at(self.path)?;
                let after_last = outbox
                    .last()
                    .at(self.path)?
                    .map_or(1, |(k, _)| k.value().saturating_add(1));
                Ok(stored.max(after_last))
            }

            /// One package.
            pub fn package(&self, id: &str) -> Result<Option<PackageRecord>, StoreError> {
                let table = self.tx.open_table(PACKAGES).at(self.path)?;
                get_str(self.path, &table, PACKAGES.name(), id)
            }

            /// All packages, by ID.
            pub fn packages(&self) -> Result<Vec<PackageRecord>, StoreError> {
                let table = self.tx.open_table(PACKAGES).at(self.path)?;
                all_str(self.path, &table, PACKAGES.name())
            }

            /// Every package, by ID, decoded one at a time and handed to
            /// `f`: for callers that keep only a summary of each. Collecting
            /// 10,000 full records for `dmagent status` left ~15 MB behind in
            /// the allocator of an idle daemon.
            pub fn for_each_package(
                &self,
                mut f: impl FnMut(PackageRecord) -> Result<(), StoreError>,
            ) -> Result<(), StoreError> {
                let table = self.tx.open_table(PACKAGES).at(self.path)?;
                for row in table.iter().at(self.path)? {
                    let (key, value) = row.at(self.path)?;
                    f(tables::decode(
                        PACKAGES.name(),
                        &key.value(),
                        value.value(),
                    )?)?;
                }
                Ok(())
            }

            /// Packages in ID order from after `after`, handed to `f` one at
            /// a time until it returns `false`: one slice of a scan that
            /// resumes where the last one stopped.
            pub fn packages_after(
                &self,
                after: After<'_, str>,
                f: impl FnMut(PackageRecord) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let table = self.tx.open_table(PACKAGES).at(self.path)?;
                tables::each_str_after(self.path, &table, PACKAGES.name(), after, f)
            }

            /// Tasks in ID order from after `after` (see [`Self::packages_after`]).
            pub fn tasks_after(
                &self,
                after: After<'_, str>,
                f: impl FnMut(TaskRecord) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let table = self.tx.open_table(TASKS).at(self.path)?;
                tables::each_str_after(self.path, &table, TASKS.name(), after, f)
            }

            /// Outbox items, oldest first, from after sequence number `after`
            /// (see [`Self::packages_after`]).
            pub fn outbox_after(
                &self,
                after: After<'_, u64>,
                mut f: impl FnMut(OutboxItem) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                use std::ops::Bound;
                let table = self.tx.open_table(OUTBOX).at(self.path)?;
                let start = after.map_or(Bound::Unbounded, |&seq| Bound::Excluded(seq));
                for row in table
                    .range::<u64>((start, Bound::Unbounded))
                    .at(self.path)?
                {
                    let (key, value) = row.at(self.path)?;
                    if !f(tables::decode(OUTBOX.name(), &key.value(), value.value())?)? {
                        break;
                    }
                }
                Ok(())
            }

            /// The ID and state of every package, from the package index
            /// (one row per bucket instead of one record per package).
            pub fn package_states(&self) -> Result<PackageStates, StoreError> {
                let table = self.tx.open_table(PACKAGE_INDEX).at(self.path)?;
                // The rows first (a few hundred guards on cached pages), so
                // that the result is allocated once at its final size: no
                // growth, no copies, no fresh pages beyond the one buffer.
                let mut rows = Vec::new();
                for row in table.iter().at(self.path)? {
                    rows.push(row.at(self.path)?);
                }
                let mut out =
                    PackageStates::with_capacity(rows.iter().map(|(_, packed)| packed.value()));
                for (bucket, packed) in &rows {
                    index::read_into(packed.value(), &mut out)
                        .map_err(|damage| index_damage(self.path, bucket.value(), damage))?;
                }
                Ok(out)
            }

            /// One task.
            pub fn task(&self, id: impl AsRef<str>) -> Result<Option<TaskRecord>, StoreError> {
                let table = self.tx.open_table(TASKS).at(self.path)?;
                get_str(self.path, &table, TASKS.name(), id.as_ref())
            }

            /// All tasks, by ID.
            pub fn tasks(&self) -> Result<Vec<TaskRecord>, StoreError> {
                let table = self.tx.open_table(TASKS).at(self.path)?;
                all_str(self.path, &table, TASKS.name())
            }

            /// The download checkpoint of one package.
            pub fn checkpoint(
                &self,
                package_id: &str,
            ) -> Result<Option<CheckpointRecord>, StoreError> {
                let table = self.tx.open_table(CHECKPOINTS).at(self.path)?;
                get_str(self.path, &table, CHECKPOINTS.name(), package_id)
            }

            /// All download checkpoints, by package ID.
            pub fn checkpoints(&self) -> Result<Vec<CheckpointRecord>, StoreError> {
                let table = self.tx.open_table(CHECKPOINTS).at(self.path)?;
                all_str(self.path, &table, CHECKPOINTS.name())
            }

            /// Up to `limit` outbox items, oldest (lowest sequence) first.
            pub fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
                let table = self.tx.open_table(OUTBOX).at(self.path)?;
                first_u64(self.path, &table, OUTBOX.name(), limit)
            }

            /// How many items wait in the outbox.
            pub fn outbox_len(&self) -> Result<u64, StoreError> {
                let table = self.tx.open_table(OUTBOX).at(self.path)?;
                table.len().at(self.path)
            }

            /// The server-issued values (all `None` if none were stored yet).
            pub fn server_values(&self) -> Result<ServerValues, StoreError> {
                let table = self.tx.open_table(SERVER).at(self.path)?;
                Ok(
                    get_str(self.path, &table, SERVER.name(), tables::SERVER_KEY)?
                        .unwrap_or_default(),
                )
            }

            /// SHA-256 of the last `report` document the server accepted
            /// (`None` before the first, or after new report settings).
            pub fn report_digest(
                &self,
                report: ReportType,
            ) -> Result<Option<[u8; 32]>, StoreError> {
                let table = match self.tx.open_table(REPORT_DIGESTS) {
                    Ok(table) => table,
                    Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                    Err(e) => return Err(StoreError::redb(self.path, e)),
                };
                let found = table.get(report.as_str()).at(self.path)?;
                match found {
                    None => Ok(None),
                    Some(guard) => <[u8; 32]>::try_from(guard.value()).map(Some).map_err(|_| {
                        StoreError::Corrupt {
                            path: self.path.to_path_buf(),
                            detail: format!(
                                "report_digests[{report}] is {} bytes, not 32",
                                guard.value().len()
                            ),
                        }
                    }),
                }
            }

            /// Everything, from this one transaction.
            pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
                Ok(Snapshot {
                    schema_version: self.schema_version()?,
                    packages: self.packages()?,
                    tasks: self.tasks()?,
                    checkpoints: self.checkpoints()?,
                    outbox: self.outbox(usize::MAX)?,
                    next_outbox_seq: self.next_outbox_seq()?,
                    server: self.server_values()?,
                })
            }
        }
    };
}

getters!(ReadTx);
getters!(WriteTx);

fn index_damage(path: &Path, bucket: u16, damage: index::Damage) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("package_index[{bucket}]: {damage}"),
    }
}

impl WriteTx<'_> {
    fn put_str<T: serde::Serialize>(
        &self,
        def: redb::TableDefinition<'static, &'static str, &'static [u8]>,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = encode(def.name(), &key, value)?;
        let mut table = self.tx.open_table(def).at(self.path)?;
        table.insert(key, bytes.as_slice()).at(self.path)?;
        Ok(())
    }

    fn remove_str(
        &self,
        def: redb::TableDefinition<'static, &'static str, &'static [u8]>,
        key: &str,
    ) -> Result<bool, StoreError> {
        let mut table = self.tx.open_table(def).at(self.path)?;
        let removed = table.remove(key).at(self.path)?.is_some();
        Ok(removed)
    }

    fn set_meta(&self, key: &str, value: u64) -> Result<(), StoreError> {
        let mut meta = self.tx.open_table(META).at(self.path)?;
        meta.insert(key, value).at(self.path)?;
        Ok(())
    }

    /// Insert or replace a package (keyed by `rec.id`), and its entry in
    /// the package index.
    pub fn put_package(&mut self, rec: &PackageRecord) -> Result<(), StoreError> {
        if rec.id.is_empty() {
            return Err(StoreError::InvalidRecord("package with an empty ID".into()));
        }
        self.put_str(PACKAGES, &rec.id, rec)?;
        self.update_index(&rec.id, |packed| index::upsert(packed, &rec.id, rec.state))
    }

    /// Rewrites the index bucket of `id` with `change` (`None`: unchanged).
    fn update_index(
        &self,
        id: &str,
        change: impl FnOnce(&[u8]) -> Result<Option<Vec<u8>>, index::Damage>,
    ) -> Result<(), StoreError> {
        let bucket = index::bucket(id);
        let mut table = self.tx.open_table(PACKAGE_INDEX).at(self.path)?;
        let changed = {
            let old = table.get(bucket).at(self.path)?;
            change(old.as_ref().map_or(&[][..], |g| g.value()))
                .map_err(|damage| index_damage(self.path, bucket, damage))?
        };
        match changed {
            Some(packed) if packed.is_empty() => {
                table.remove(bucket).at(self.path)?;
            }
            Some(packed) => {
                table.insert(bucket, packed.as_slice()).at(self.path)?;
            }
            None => {}
        }
        Ok(())
    }

    /// Rebuilds the package index from the `packages` table.
    pub(crate) fn rebuild_package_index(&mut self) -> Result<(), StoreError> {
        let packages = self.packages()?;
        let mut buckets: std::collections::BTreeMap<u16, Vec<(&str, _)>> = Default::default();
        for p in &packages {
            buckets
                .entry(index::bucket(&p.id))
                .or_default()
                .push((p.id.as_str(), p.state));
        }
        let mut table = self.tx.open_table(PACKAGE_INDEX).at(self.path)?;
        table.retain(|_, _| false).at(self.path)?;
        for (bucket, entries) in buckets {
            let mut packed = Vec::new();
            for (id, state) in entries {
                packed = index::upsert(&packed, id, state)
                    .map_err(|damage| index_damage(self.path, bucket, damage))?
                    .unwrap_or(packed);
            }
            table.insert(bucket, packed.as_slice()).at(self.path)?;
        }
        Ok(())
    }

    /// Remove a package together with its download task and its checkpoint
    /// (one state change). Returns the removed record, if there was one.
    /// Queued outbox items about it stay: the server still gets them.
    pub fn remove_package(&mut self, id: &str) -> Result<Option<PackageRecord>, StoreError> {
        let old = self.package(id)?;
        self.remove_str(PACKAGES, id)?;
        self.update_index(id, |packed| index::remove(packed, id))?;
        self.remove_str(TASKS, TaskId::download(id).as_str())?;
        self.remove_str(CHECKPOINTS, id)?;
        Ok(old)
    }

    /// Insert or replace a task (keyed by `rec.id`, which must equal
    /// `rec.kind.id()`).
    pub fn put_task(&mut self, rec: &TaskRecord) -> Result<(), StoreError> {
        let expected = rec.kind.id();
        if rec.id != expected {
            return Err(StoreError::InvalidRecord(format!(
                "task ID {} does not match its kind (expected {expected})",
                rec.id
            )));
        }
        self.put_str(TASKS, rec.id.as_str(), rec)
    }

    /// Remove a task; `true` if it existed.
    pub fn remove_task(&mut self, id: impl AsRef<str>) -> Result<bool, StoreError> {
        self.remove_str(TASKS, id.as_ref())
    }

    /// Insert or replace a download checkpoint (keyed by `rec.package_id`).
    pub fn put_checkpoint(&mut self, rec: &CheckpointRecord) -> Result<(), StoreError> {
        self.put_str(CHECKPOINTS, &rec.package_id, rec)
    }

    /// Remove a download checkpoint; `true` if it existed.
    pub fn remove_checkpoint(&mut self, package_id: &str) -> Result<bool, StoreError> {
        self.remove_str(CHECKPOINTS, package_id)
    }

    /// Queue an item for the server, stamped now; returns its sequence number.
    pub fn enqueue(&mut self, body: OutboxBody) -> Result<u64, StoreError> {
        self.enqueue_at(body, crate::clock::unix_now())
    }

    /// Queue an item for the server with an explicit queue time; returns its
    /// sequence number (monotonic, never reused).
    pub fn enqueue_at(&mut self, body: OutboxBody, queued_unix: u64) -> Result<u64, StoreError> {
        self.append_outbox(|seq| OutboxItem {
            seq,
            queued_unix,
            body,
            refused: 0,
        })
    }

    /// Writes `item(seq)` at the end of the outbox, under the next sequence
    /// number, and moves that number on.
    fn append_outbox(&mut self, item: impl FnOnce(u64) -> OutboxItem) -> Result<u64, StoreError> {
        let seq = self.next_outbox_seq()?;
        let next = seq
            .checked_add(1)
            .ok_or_else(|| StoreError::InvalidRecord("outbox sequence numbers exhausted".into()))?;
        self.put_outbox(&item(seq))?;
        self.set_meta(tables::META_NEXT_OUTBOX_SEQ, next)?;
        Ok(seq)
    }

    /// Writes `item` under its `seq`.
    fn put_outbox(&mut self, item: &OutboxItem) -> Result<(), StoreError> {
        let bytes = encode(OUTBOX.name(), &item.seq, item)?;
        let mut table = self.tx.open_table(OUTBOX).at(self.path)?;
        table.insert(item.seq, bytes.as_slice()).at(self.path)?;
        Ok(())
    }

    /// Counts one refusal by the server of each of these items, in place;
    /// items no longer there are skipped.
    pub fn count_refusal(&mut self, seqs: &[u64]) -> Result<(), StoreError> {
        for &seq in seqs {
            if let Some(item) = self.take_outbox(seq)? {
                self.put_outbox(&refused_once_more(item))?;
            }
        }
        Ok(())
    }

    /// Moves an item the server refused to the end of the outbox, its
    /// refusal counted (its queue time and content unchanged); returns its
    /// new sequence number, `None` if it is no longer there.
    pub fn requeue_refused(&mut self, seq: u64) -> Result<Option<u64>, StoreError> {
        let Some(item) = self.take_outbox(seq)? else {
            return Ok(None);
        };
        let item = refused_once_more(item);
        self.append_outbox(|seq| OutboxItem { seq, ..item })
            .map(Some)
    }

    /// Removes and returns outbox item `seq`.
    fn take_outbox(&mut self, seq: u64) -> Result<Option<OutboxItem>, StoreError> {
        let mut table = self.tx.open_table(OUTBOX).at(self.path)?;
        let removed = table.remove(seq).at(self.path)?;
        removed
            .map(|bytes| tables::decode(OUTBOX.name(), &seq, bytes.value()))
            .transpose()
    }

    /// Remove delivered items; returns how many existed.
    pub fn dequeue(&mut self, seqs: &[u64]) -> Result<usize, StoreError> {
        let mut table = self.tx.open_table(OUTBOX).at(self.path)?;
        let mut removed = 0;
        for &seq in seqs {
            if table.remove(seq).at(self.path)?.is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Record the digest of the `report` document the server just accepted.
    pub fn set_report_digest(
        &mut self,
        report: ReportType,
        digest: &[u8; 32],
    ) -> Result<(), StoreError> {
        let mut table = self.tx.open_table(REPORT_DIGESTS).at(self.path)?;
        table
            .insert(report.as_str(), digest.as_slice())
            .at(self.path)?;
        Ok(())
    }

    /// Forget the digest of `report` (its next report is sent whatever it holds).
    pub fn remove_report_digest(&mut self, report: ReportType) -> Result<bool, StoreError> {
        let mut table = self.tx.open_table(REPORT_DIGESTS).at(self.path)?;
        let removed = table.remove(report.as_str()).at(self.path)?.is_some();
        Ok(removed)
    }

    /// Replace the server-issued values.
    pub fn set_server_values(&mut self, values: &ServerValues) -> Result<(), StoreError> {
        self.put_str(SERVER, tables::SERVER_KEY, values)
    }

    /// Read, change and store the server-issued values; returns the new values.
    pub fn update_server_values(
        &mut self,
        change: impl FnOnce(&mut ServerValues),
    ) -> Result<ServerValues, StoreError> {
        let mut values = self.server_values()?;
        change(&mut values);
        self.set_server_values(&values)?;
        Ok(values)
    }

    /// Create missing tables and stamp the schema version (used at open).
    pub(crate) fn initialize(&mut self, version: u64) -> Result<(), StoreError> {
        self.tx.open_table(PACKAGES).at(self.path)?;
        self.tx.open_table(PACKAGE_INDEX).at(self.path)?;
        self.tx.open_table(TASKS).at(self.path)?;
        self.tx.open_table(CHECKPOINTS).at(self.path)?;
        self.tx.open_table(OUTBOX).at(self.path)?;
        self.tx.open_table(SERVER).at(self.path)?;
        self.tx.open_table(REPORT_DIGESTS).at(self.path)?;
        let next = self.next_outbox_seq()?;
        self.set_meta(tables::META_NEXT_OUTBOX_SEQ, next)?;
        self.set_meta(tables::META_SCHEMA_VERSION, version)
    }
}

/// `item` with one more refusal counted.
fn refused_once_more(item: OutboxItem) -> OutboxItem {
    OutboxItem {
        refused: item.refused.saturating_add(1),
        ..item
    }
}
