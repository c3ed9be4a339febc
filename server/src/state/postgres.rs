//! The PostgreSQL backend: one database that several `dm-server` replicas
//! share, so a device may poll one replica and report to another.
//!
//! Nothing is kept in memory between requests: each request reads what it
//! needs and commits what it changes before it is answered, so a replica
//! killed mid-request loses only that request (the device sends it again,
//! to any replica). What keeps replicas consistent is in the database:
//!
//! - a device record is changed under its row lock (`SELECT ... FOR
//!   UPDATE`), so two replicas' changes of one device never interleave;
//! - a `ReportID` is unique per device (a partial unique index), so a
//!   status message delivered twice is stored once whichever replicas took
//!   the two deliveries;
//! - inventories and file records are upserts by their key.
//!
//! A device record whose auth token did not change is committed with
//! `synchronous_commit = off`: PostgreSQL makes it visible at once and
//! durable within a fraction of a second (its WAL writer), the same bargain
//! as the embedded backend's write-behind. Enrolments (a new token),
//! status messages, inventories and files wait for the WAL flush.
//!
//! The interface is blocking, as the handlers run on blocking threads: the
//! backend owns a small tokio runtime for the client's connections and
//! blocks on it. Never call it from an async executor thread.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use dmagent::protocol::StatusMessage;
use serde::{de::DeserializeOwned, Serialize};
use tokio_postgres::NoTls;

use super::{DeviceRecord, FileRecord, InventoryRecord, StateError, StatusOutcome, StatusRecord};

/// The migrations in `server/migrations/`, in order: the schema version is
/// the number applied.
const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_initial.sql",
    include_str!("../../migrations/0001_initial.sql"),
)];

/// The schema version this server writes (and the newest it can read).
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Held (per transaction) while a replica migrates, so replicas starting
/// together apply each migration once. The number is arbitrary but fixed.
const MIGRATION_LOCK: i64 = 0x646d_7365_7276_6572; // "dmserver"

/// Connections per replica. Each request holds one for its few statements;
/// PostgreSQL's default `max_connections` (100) leaves room for six replicas.
const POOL_SIZE: usize = 16;

/// How long a request waits for a connection, or to make one, before it
/// fails with 500 (the device retries later) instead of hanging.
const POOL_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL store.
pub struct PostgresState {
    /// `None` only while dropping (see [`Drop`]).
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    dir: PathBuf,
    /// The database as shown in logs and errors: no password.
    shown: String,
}

impl std::fmt::Debug for PostgresState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresState")
            .field("database", &self.shown)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn pg(e: tokio_postgres::Error) -> StateError {
    // The client's own Display says only "db error": the server's message
    // and SQLSTATE are what an operator needs.
    match e.as_db_error() {
        Some(db) => {
            StateError::Postgres(format!("{} (SQLSTATE {})", db.message(), db.code().code()))
        }
        None => match std::error::Error::source(&e) {
            Some(src) => StateError::Postgres(format!("{e}: {src}")),
            None => StateError::Postgres(e.to_string()),
        },
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StateError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg(e),
        other => StateError::Postgres(other.to_string()),
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StateError> {
    Ok(serde_json::to_string(v)?)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, StateError> {
    Ok(serde_json::from_str(s)?)
}

/// `user@host:port/dbname` of a client configuration (never the password).
fn describe(cfg: &tokio_postgres::Config) -> String {
    let host = cfg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        cfg.get_user().unwrap_or("?"),
        cfg.get_dbname().unwrap_or("?")
    )
}

/// Parses `--database`: a `postgres://` / `postgresql://` URL or a libpq
/// `key=value` string.
fn parse_url(url: &str) -> Result<tokio_postgres::Config, StateError> {
    let url = url.trim();
    let scheme = url.split_once("://").map(|(s, _)| s);
    if let Some(s) = scheme {
        if s != "postgres" && s != "postgresql" {
            return Err(StateError::Url(format!(
                "unsupported scheme {s:?}: give postgres://user:password@host:port/dbname"
            )));
        }
    }
    let mut cfg = tokio_postgres::Config::from_str(url).map_err(|e| {
        StateError::Url(format!(
            "{e}: give postgres://user:password@host:port/dbname"
        ))
    })?;
    if cfg.get_dbname().is_none() {
        return Err(StateError::Url(
            "no database name: give postgres://user:password@host:port/dbname".into(),
        ));
    }
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(POOL_TIMEOUT);
    }
    cfg.application_name("dm-server");
    Ok(cfg)
}

impl PostgresState {
    /// Connects to `url`, migrates its schema to [`SCHEMA_VERSION`] (or
    /// refuses a newer one) and keeps the collected files in `dir/files/`.
    pub fn open(dir: &Path, url: &str) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir.join("files"))?;
        let cfg = parse_url(url)?;
        let shown = describe(&cfg);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dm-state-pg")
            .enable_all()
            .build()?;
        let manager = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _in_rt = rt.enter();
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(POOL_TIMEOUT))
                .create_timeout(Some(POOL_TIMEOUT))
                .recycle_timeout(Some(POOL_TIMEOUT))
                .build()
                .map_err(|e| StateError::Postgres(e.to_string()))?
        };
        let state = PostgresState {
            rt: Some(rt),
            pool,
            dir: dir.to_owned(),
            shown,
        };
        state.block_on(state.migrate()).map_err(|e| match e {
            StateError::Postgres(m) => StateError::Postgres(format!("{}: {m}", state.shown)),
            other => other,
        })?;
        tracing::info!(database = %state.shown, schema = SCHEMA_VERSION, "state on PostgreSQL");
        Ok(state)
    }

    /// Creates database `name` on the server `admin_url` names (for tests
    /// and first-time setup; `name` must be a plain identifier).
    pub fn create_database(admin_url: &str, name: &str) -> Result<(), StateError> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StateError::Url(format!(
                "database name {name:?}: use lowercase letters, digits and '_'"
            )));
        }
        let cfg = parse_url(admin_url)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let (client, conn) = cfg.connect(NoTls).await.map_err(pg)?;
            let conn = tokio::spawn(conn);
            let done = client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .map_err(pg);
            drop(client);
            let _ = conn.await;
            done
        })
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            None => unreachable!("the runtime is taken only by drop"),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StateError> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Applies the migrations this database lacks, under an advisory lock.
    async fn migrate(&self) -> Result<(), StateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS dm_schema_version (version INTEGER NOT NULL)")
            .await
            .map_err(pg)?;
        let found: Option<i32> = tx
            .query_opt("SELECT max(version) FROM dm_schema_version", &[])
            .await
            .map_err(pg)?
            .and_then(|r| r.get(0));
        let found = found.unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(StateError::Schema(format!(
                "{} has schema version {found}, newer than this dm-server's {SCHEMA_VERSION}: \
                 run the dm-server that migrated it, or a newer one",
                self.shown
            )));
        }
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            tx.batch_execute(sql).await.map_err(|e| match pg(e) {
                StateError::Postgres(m) => StateError::Schema(format!("migration {name}: {m}")),
                other => other,
            })?;
            tracing::info!(migration = name, version = i + 1, "schema migrated");
        }
        tx.execute("DELETE FROM dm_schema_version", &[])
            .await
            .map_err(pg)?;
        tx.execute(
            "INSERT INTO dm_schema_version (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    /// The state directory (collected files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One `SELECT 1` round trip on a pooled connection.
    pub fn check(&self) -> Result<(), StateError> {
        self.block_on(async {
            let c = self.client().await?;
            c.batch_execute("SELECT 1").await.map_err(pg)
        })
    }

    /// The device record, if the device has polled.
    pub fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StateError> {
        self.block_on(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached("SELECT record FROM devices WHERE id = $1 AND record IS NOT NULL")
                .await
                .map_err(pg)?;
            let row = c.query_opt(&st, &[&id]).await.map_err(pg)?;
            row.map(|r| from_json(r.get::<_, &str>(0))).transpose()
        })
    }

    /// Every device, by ID.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, StateError> {
        self.block_on(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT record FROM devices WHERE record IS NOT NULL ORDER BY id",
                    &[],
                )
                .await
                .map_err(pg)?;
            rows.iter()
                .map(|r| from_json(r.get::<_, &str>(0)))
                .collect()
        })
    }

    /// Changes one record under its row lock; see [`super::State::try_update_device`].
    pub fn try_update_device<R, E, A>(
        &self,
        id: &str,
        check: impl FnOnce(&DeviceRecord) -> Result<A, E>,
    ) -> Result<R, E>
    where
        E: From<StateError>,
        A: FnOnce(&mut DeviceRecord) -> R,
    {
        self.block_on(self.try_update_device_async(id, check))
    }

    /// [`Self::try_update_device`] to be awaited, on any tokio runtime (the
    /// server's async threads await polls with it).
    pub async fn try_update_device_async<R, E, A>(
        &self,
        id: &str,
        check: impl FnOnce(&DeviceRecord) -> Result<A, E>,
    ) -> Result<R, E>
    where
        E: From<StateError>,
        A: FnOnce(&mut DeviceRecord) -> R,
    {
        {
            let c = self.client().await?;
            let select = c
                .prepare_cached("SELECT record FROM devices WHERE id = $1 FOR UPDATE")
                .await
                .map_err(pg)?;
            // Two round trips in all: the statements of each step go out
            // together (the client pipelines what is polled together). A
            // poll's record is committed without waiting for the WAL flush;
            // an enrolment switches that back on before it commits.
            let (begun, row) = futures_join(
                c.batch_execute("BEGIN; SET LOCAL synchronous_commit TO OFF"),
                c.query_opt(&select, &[&id]),
            )
            .await;
            let mut row = match begun.and(row) {
                Ok(r) => r,
                Err(e) => return Err(abandon(c, pg(e)).await.into()),
            };
            if row.is_none() {
                // A new device: the row makes concurrent first polls (on any
                // replica) wait for this one; a refusal rolls it back.
                let insert = match c
                    .prepare_cached("INSERT INTO devices (id) VALUES ($1) ON CONFLICT DO NOTHING")
                    .await
                {
                    Ok(st) => st,
                    Err(e) => return Err(abandon(c, pg(e)).await.into()),
                };
                let (inserted, again) =
                    futures_join(c.execute(&insert, &[&id]), c.query_opt(&select, &[&id])).await;
                row = match inserted.and(again) {
                    Ok(r) => r,
                    Err(e) => return Err(abandon(c, pg(e)).await.into()),
                };
            }
            let stored: Option<&str> = row.as_ref().and_then(|r| r.get(0));
            let mut rec = match stored.map(from_json::<DeviceRecord>).transpose() {
                Ok(Some(r)) => r,
                Ok(None) => DeviceRecord {
                    id: id.to_owned(),
                    ..DeviceRecord::default()
                },
                Err(e) => return Err(abandon(c, e).await.into()),
            };
            let apply = match check(&rec) {
                Ok(a) => a,
                Err(refused) => {
                    // The record (or the new row) stays as it was.
                    rollback(c).await;
                    return Err(refused);
                }
            };
            let token_before = rec.auth_token.clone();
            let r = apply(&mut rec);
            let json = match to_json(&rec) {
                Ok(j) => j,
                Err(e) => return Err(abandon(c, e).await.into()),
            };
            let update = match c
                .prepare_cached("UPDATE devices SET record = $2 WHERE id = $1")
                .await
            {
                Ok(st) => st,
                Err(e) => return Err(abandon(c, pg(e)).await.into()),
            };
            let durable = if rec.auth_token == token_before {
                ""
            } else {
                "SET LOCAL synchronous_commit TO ON; "
            };
            // A failed UPDATE makes the COMMIT a rollback.
            let commit = format!("{durable}COMMIT");
            let (updated, committed) =
                futures_join(c.execute(&update, &[&id, &json]), c.batch_execute(&commit)).await;
            if let Err(e) = updated.and(committed) {
                return Err(abandon(c, pg(e)).await.into());
            }
            Ok(r)
        }
    }

    /// Stores one `Status` document's messages in one transaction.
    pub fn add_status(
        &self,
        device: &str,
        messages: &[StatusMessage],
        received_at: &str,
    ) -> Result<StatusOutcome, StateError> {
        self.block_on(async {
            let mut out = StatusOutcome::default();
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(pg)?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO status (device_id, report_id, record) VALUES ($1, $2, $3) \
                     ON CONFLICT (device_id, report_id) WHERE report_id IS NOT NULL DO NOTHING",
                )
                .await
                .map_err(pg)?;
            for m in messages {
                let report_id = super::report_id(m);
                let rec = StatusRecord {
                    // The row's sequence number, filled in when read.
                    seq: 0,
                    package_id: m.package_id.clone(),
                    message_id: m.message_id.0,
                    timestamp: m.timestamp.to_string(),
                    parameters: m.parameters.clone(),
                    report_id: report_id.clone(),
                    received_at: received_at.to_owned(),
                };
                let json = to_json(&rec)?;
                // A ReportID stored before (or by a concurrent delivery,
                // once it commits) inserts nothing.
                match tx
                    .execute(&insert, &[&device, &report_id, &json])
                    .await
                    .map_err(pg)?
                {
                    0 => out.duplicates += 1,
                    _ => out.stored += 1,
                }
            }
            tx.commit().await.map_err(pg)?;
            Ok(out)
        })
    }

    /// The status history of a device, oldest first.
    pub fn statuses(&self, device: &str) -> Result<Vec<StatusRecord>, StateError> {
        self.block_on(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached("SELECT seq, record FROM status WHERE device_id = $1 ORDER BY seq")
                .await
                .map_err(pg)?;
            let rows = c.query(&st, &[&device]).await.map_err(pg)?;
            rows.iter()
                .map(|r| {
                    let mut rec: StatusRecord = from_json(r.get::<_, &str>(1))?;
                    rec.seq = u64::try_from(r.get::<_, i64>(0)).unwrap_or(0);
                    Ok(rec)
                })
                .collect()
        })
    }

    /// Replaces the device's latest inventory of `kind`.
    pub fn put_inventory(&self, device: &str, rec: &InventoryRecord) -> Result<(), StateError> {
        self.upsert(
            "INSERT INTO inventories (device_id, kind, record) VALUES ($1, $2, $3) \
             ON CONFLICT (device_id, kind) DO UPDATE SET record = EXCLUDED.record",
            device,
            &rec.kind,
            &to_json(rec)?,
        )
    }

    /// The device's latest inventories, by kind.
    pub fn inventories(&self, device: &str) -> Result<Vec<InventoryRecord>, StateError> {
        self.per_device(
            "SELECT record FROM inventories WHERE device_id = $1 ORDER BY kind",
            device,
        )
    }

    /// Records a collected file (replacing an earlier one of the same path).
    pub fn put_file(&self, device: &str, rec: &FileRecord) -> Result<(), StateError> {
        self.upsert(
            "INSERT INTO files (device_id, original_path, record) VALUES ($1, $2, $3) \
             ON CONFLICT (device_id, original_path) DO UPDATE SET record = EXCLUDED.record",
            device,
            &rec.original_path,
            &to_json(rec)?,
        )
    }

    /// The device's collected files, by original path.
    pub fn files(&self, device: &str) -> Result<Vec<FileRecord>, StateError> {
        self.per_device(
            "SELECT record FROM files WHERE device_id = $1 ORDER BY original_path",
            device,
        )
    }

    fn upsert(&self, sql: &str, device: &str, key: &str, json: &str) -> Result<(), StateError> {
        self.block_on(async {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await.map_err(pg)?;
            c.execute(&st, &[&device, &key, &json]).await.map_err(pg)?;
            Ok(())
        })
    }

    fn per_device<T: DeserializeOwned>(
        &self,
        sql: &str,
        device: &str,
    ) -> Result<Vec<T>, StateError> {
        self.block_on(async {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await.map_err(pg)?;
            let rows = c.query(&st, &[&device]).await.map_err(pg)?;
            rows.iter()
                .map(|r| from_json(r.get::<_, &str>(0)))
                .collect()
        })
    }
}

/// Rolls back the connection's open transaction and returns `e`; a
/// connection that cannot even roll back leaves the pool.
async fn abandon(c: deadpool_postgres::Object, e: StateError) -> StateError {
    rollback(c).await;
    e
}

async fn rollback(c: deadpool_postgres::Object) {
    if c.batch_execute("ROLLBACK").await.is_err() {
        drop(deadpool_postgres::Object::take(c));
    }
}

/// Polls two futures together: the client sends each statement when its
/// future is first polled, so both go out before either answer comes back.
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    use std::task::Poll;
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                ra = x;
                rb = y;
                Poll::Pending
            }
        }
    })
    .await
}

impl Drop for PostgresState {
    /// The last reference may go on an async thread (an actix worker
    /// stopping), where dropping a runtime the blocking way panics.
    fn drop(&mut self) {
        self.pool.close();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_checked_before_connecting() {
        for (url, says) in [
            ("mysql://u@h/db", "unsupported scheme \"mysql\""),
            ("postgres://u@h", "no database name"),
            ("postgres://u@h:notaport/db", "give postgres://"),
        ] {
            let e = parse_url(url).expect_err(url).to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(e.starts_with("--database"), "{url}: {e}");
        }
        let cfg = parse_url("postgres://dm:secret@db.example:6543/fleet").expect("valid");
        assert_eq!(describe(&cfg), "dm@db.example:6543/fleet", "no password");
        assert!(PostgresState::create_database("postgres://u@h/db", "Bad-Name").is_err());
    }
}
