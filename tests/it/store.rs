//! Tests: store. Real redb files in temporary directories, a second process
//! holding the lock, and `kill -9` in the middle of a stream of commits.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use dmagent::protocol::{
    CivilTime, ClientSettings, FileFilterItem, LinkFlags, MessageId, PackageInstructions,
    Parameter, Recurrence, RecurrenceBehavior, ReportSettings, ReportType, StartTime,
    StatusMessage,
};
use dmagent::store::{
    tables, CheckpointRecord, OutboxBody, Outcome, PackageRecord, PackageState, ServerValues,
    Store, StoreError, TaskId, TaskKind, TaskRecord, SCHEMA_VERSION,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Environment variable that turns [`writer_child`] into a writer.
const CHILD_ENV: &str = "DMAGENT_STORE_WRITER_CHILD_DB";

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state").join("client.redb")
}

fn civil() -> CivilTime {
    CivilTime {
        year: 2025,
        month: 3,
        day: 1,
        hour: 17,
        minute: 2,
        second: 11,
    }
}

fn status(package_id: &str, message: MessageId, report_id: &str) -> StatusMessage {
    StatusMessage {
        package_id: package_id.to_owned(),
        message_id: message,
        timestamp: civil(),
        parameters: vec![Parameter {
            name: "ReportID".to_owned(),
            value: report_id.to_owned(),
        }],
    }
}

fn instructions(id: &str) -> PackageInstructions {
    PackageInstructions {
        id: id.to_owned(),
        required: false,
        name: Some(format!("{id} name")),
        short_description: Some("viewer".to_owned()),
        long_description: Some("a longer description".to_owned()),
        package_size: Some(245_760),
        flags: Some(LinkFlags(LinkFlags::HIGH_BANDWIDTH | LinkFlags::CRADLED)),
        start_time: Some(StartTime {
            utc: true,
            time: civil(),
        }),
        recurrence: Some(Recurrence {
            interval: Duration::from_secs(86_400),
            behavior: RecurrenceBehavior::ExecuteOnly,
            local_destination: Some("\\Temp\\r".to_owned()),
            command_line: None,
        }),
        local_destination: Some("\\Temp".to_owned()),
        command_line: Some("install.sh --quiet".to_owned()),
        source_files: Some(true),
        hash: None,
        bandwidth_limit: Some(65_536),
        // X8 elements are kept with the record: the downloader checks them
        // on the stored instructions.
        signature: Some(dmagent::protocol::SignatureElement {
            algorithm: "Ed25519".to_owned(),
            key_id: "0123456789abcdef".to_owned(),
            value: "c2lnbmF0dXJl".to_owned(),
        }),
        package_signature: None,
        signing_key: Some(dmagent::protocol::KeyEndorsement {
            algorithm: "Ed25519".to_owned(),
            public_key: "a2V5".to_owned(),
            endorsed_by: "fedcba9876543210".to_owned(),
            value: "ZW5kb3JzZW1lbnQ=".to_owned(),
        }),
    }
}

fn package(id: &str) -> PackageRecord {
    let mut rec =
        PackageRecord::new(id, 1_700_000_000).with_instructions(instructions(id), 1_700_000_100);
    rec.accepted = true;
    rec.last_outcome = Some(Outcome {
        at_unix: 1_700_000_200,
        message_id: Some(11032),
        detail: "connection reset".to_owned(),
    });
    rec
}

fn checkpoint(id: &str, done: u64) -> CheckpointRecord {
    CheckpointRecord {
        package_id: id.to_owned(),
        url: format!("https://pkg.example.com/{id}.cab"),
        etag: Some("\"abc\"".to_owned()),
        bytes_done: done,
        total: Some(245_760),
        updated_unix: 1_700_000_300,
    }
}

fn report_settings(version: &str) -> ReportSettings {
    ReportSettings {
        version: Some(version.to_owned()),
        enabled: Some(true),
        interval: Some(Duration::from_secs(3600)),
        file_filters: vec![FileFilterItem {
            filter: "*.log".to_owned(),
            path: "\\Windows".to_owned(),
            recursive: Some(true),
            exclude_compressed: None,
            exclude_encrypted: Some(false),
        }],
        send_unchanged: None,
    }
}

fn server_values() -> ServerValues {
    ServerValues {
        timestamp: Some("1700000000".to_owned()),
        auth_token: Some("token-1".to_owned()),
        client_settings: Some(ClientSettings {
            version: Some("7".to_owned()),
            poll_server: Some("https://dm.example.com/poll".to_owned()),
            poll_interval: Some(Duration::from_secs(900)),
            failure_retry_count: Some(3),
            failure_retry_interval: Some(Duration::from_secs(60)),
        }),
        software_inventory: Some(report_settings("s1")),
        machine_inventory: Some(ReportSettings {
            file_filters: Vec::new(),
            ..report_settings("m1")
        }),
        file_collection: Some(report_settings("f1")),
        unreachable_since: Some(1_700_000_100),
    }
}

/// The whole file, to compare before and after.
fn bytes_of(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read database file")
}

#[test]
fn round_trip_of_every_table_survives_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir); // the `state/` directory does not exist yet
    let before = {
        let store = Store::open(&path)?;
        assert_eq!(store.schema_version()?, SCHEMA_VERSION);
        let empty = store.snapshot()?;
        assert!(empty.packages.is_empty() && empty.tasks.is_empty() && empty.outbox.is_empty());
        assert_eq!(empty.server, ServerValues::default());

        store.write(|tx| {
            tx.put_package(&package("A"))?;
            tx.put_package(&PackageRecord::new("B", 1_700_000_000))?;
            tx.put_task(&TaskRecord::poll(1_700_000_900, 900, 1_700_000_000))?;
            tx.put_task(&TaskRecord::download("A", 1_700_000_500, 6, 1_700_000_000))?;
            tx.put_task(&TaskRecord::report(
                ReportType::SoftwareInventory,
                1_700_003_600,
                3600,
                1_700_000_000,
            ))?;
            tx.put_checkpoint(&checkpoint("A", 131_072))?;
            let s1 = tx.enqueue(OutboxBody::Status(status(
                "A",
                MessageId::DOWNLOAD_STARTED,
                "r1",
            )))?;
            let s2 = tx.enqueue_at(
                OutboxBody::Report {
                    report_type: ReportType::MachineInventory,
                    xml: b"<Inventory/>".to_vec(),
                },
                1_700_000_400,
            )?;
            let s3 = tx.enqueue(OutboxBody::CollectedFile {
                path: "\\Windows\\a.log".to_owned(),
            })?;
            assert_eq!((s1, s2, s3), (1, 2, 3));
            tx.set_server_values(&server_values())?;
            Ok(())
        })?;
        store.snapshot()?
    };

    let store = Store::open(&path)?;
    let after = store.snapshot()?;
    assert_eq!(after, before);
    assert_eq!(after.next_outbox_seq, 4);

    // The convenience readers agree with the snapshot.
    assert_eq!(store.package("A")?, Some(package("A")));
    assert_eq!(
        store.package("B")?.map(|p| p.state),
        Some(PackageState::AwaitingInstructions)
    );
    assert_eq!(store.package("C")?, None);
    assert_eq!(store.packages()?.len(), 2);
    let ids: Vec<String> = store.tasks()?.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, ["download:A", "poll", "report:software"]);
    assert_eq!(
        store.task(TaskId::download("A"))?.map(|t| t.kind),
        Some(TaskKind::Download {
            package_id: "A".to_owned()
        })
    );
    assert_eq!(store.checkpoint("A")?, Some(checkpoint("A", 131_072)));
    assert_eq!(store.outbox_len()?, 3);
    assert_eq!(
        store.outbox(2)?.iter().map(|i| i.seq).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(store.outbox(10)?[1].queued_unix, 1_700_000_400);
    assert_eq!(store.server_values()?, server_values());
    Ok(())
}

#[test]
fn package_state_names() {
    let names: Vec<String> = PackageState::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "awaiting-instructions",
            "pending",
            "downloading",
            "downloaded",
            "installing",
            "installed",
            "failed"
        ]
    );
    assert_eq!(PackageState::Downloaded.ce_name(), "download success");
    assert_eq!(PackageState::Failed.ce_name(), "download failed");
    assert_eq!(PackageState::Downloading.ce_name(), "pending");
    assert_eq!(
        TaskId::report(ReportType::FileCollection).as_str(),
        "report:files"
    );
    assert_eq!(
        TaskId::report(ReportType::MachineInventory).as_str(),
        "report:machine"
    );
}

#[test]
fn remove_package_cascades_to_its_task_and_checkpoint() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    let store = Store::open(&path)?;
    store.write(|tx| {
        for id in ["A", "B"] {
            tx.put_package(&package(id))?;
            tx.put_task(&TaskRecord::download(id, 10, 0, 1))?;
            tx.put_checkpoint(&checkpoint(id, 42))?;
        }
        tx.put_task(&TaskRecord::poll(10, 900, 1))?;
        tx.enqueue(OutboxBody::Status(status(
            "A",
            MessageId::DOWNLOAD_FAILED,
            "r1",
        )))?;
        Ok(())
    })?;

    let removed = store.write(|tx| tx.remove_package("A"))?;
    assert_eq!(removed, Some(package("A")));
    assert_eq!(store.write(|tx| tx.remove_package("A"))?, None);
    drop(store);

    let store = Store::open(&path)?;
    let snap = store.snapshot()?;
    assert_eq!(snap.packages, vec![package("B")]);
    let tasks: Vec<String> = snap.tasks.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(tasks, ["download:B", "poll"]);
    assert_eq!(snap.checkpoints, vec![checkpoint("B", 42)]);
    // A queued report about the removed package is still delivered.
    assert_eq!(snap.outbox.len(), 1);
    Ok(())
}

#[derive(Debug)]
enum AppError {
    Store(StoreError),
    Refused,
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Store(e)
    }
}

#[test]
fn a_failed_closure_leaves_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    let store = Store::open(&path)?;
    let empty = store.snapshot()?;

    let err = store
        .write(|tx| {
            tx.put_package(&package("A"))?;
            tx.put_checkpoint(&checkpoint("A", 1))?;
            tx.enqueue(OutboxBody::Status(status(
                "A",
                MessageId::DOWNLOAD_STARTED,
                "r1",
            )))?;
            tx.set_server_values(&server_values())?;
            // Visible inside the transaction …
            assert_eq!(tx.package("A")?, Some(package("A")));
            assert_eq!(tx.outbox_len()?, 1);
            // … then a bad task aborts all of it.
            let mut bad = TaskRecord::poll(1, 1, 1);
            bad.id = TaskId::download("A");
            tx.put_task(&bad)
        })
        .expect_err("a mismatched task ID is refused");
    assert_eq!(err.kind(), "invalid-record");
    assert_eq!(store.snapshot()?, empty);

    // A closure's own error type aborts too.
    let res: Result<(), AppError> = store.write_with(|tx| {
        tx.put_package(&package("B"))?;
        Err(AppError::Refused)
    });
    assert!(matches!(res, Err(AppError::Refused)));
    assert_eq!(store.snapshot()?, empty);

    // So does a panic.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), StoreError> = store.write(|tx| {
            tx.put_package(&package("C"))?;
            panic!("crash inside a transaction");
        });
    }));
    assert!(panicked.is_err());
    assert_eq!(store.snapshot()?, empty);
    drop(store);

    let store = Store::open(&path)?;
    assert_eq!(store.snapshot()?, empty);
    if let Err(AppError::Store(e)) = store.write_with(|_| Ok::<(), AppError>(())) {
        return Err(e.into());
    }
    Ok(())
}

#[test]
fn the_largest_report_fits_and_a_larger_record_is_refused_not_a_panic() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(db_path(&dir))?;
    // The plugins' largest output (16 MiB), in bytes that encode as four
    // JSON characters each ("122,"): a 64 MiB record.
    let report = |bytes: usize| OutboxBody::Report {
        report_type: ReportType::SoftwareInventory,
        xml: vec![b'z'; bytes],
    };
    let seq = store.write(|tx| tx.enqueue(report(16 << 20)))?;
    let too_big = store.write(|tx| tx.enqueue(report(40 << 20)));
    match too_big {
        Err(StoreError::InvalidRecord(why)) => assert!(why.contains("outbox"), "{why}"),
        other => panic!("a 160 MiB record was not refused: {other:?}"),
    }
    // Nothing of the refused write was kept; the first is intact.
    let items = store.outbox(10)?;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].seq, seq);
    assert!(matches!(&items[0].body, OutboxBody::Report { xml, .. } if xml.len() == 16 << 20));
    Ok(())
}

#[test]
fn refused_items_are_counted_in_place_or_moved_to_the_end_unchanged() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    let store = Store::open(&path)?;
    store.write(|tx| {
        for i in 0..3 {
            tx.enqueue_at(
                OutboxBody::Status(status("A", MessageId(11030 + i), "r")),
                1_000 + u64::from(i),
            )?;
        }
        Ok(())
    })?;
    let before = store.outbox(10)?;
    store.write(|tx| tx.count_refusal(&[1, 2, 99]))?;
    let counted = store.outbox(10)?;
    assert_eq!(
        counted
            .iter()
            .map(|i| (i.seq, i.refused))
            .collect::<Vec<_>>(),
        [(1, 1), (2, 1), (3, 0)]
    );
    assert_eq!(store.write(|tx| tx.requeue_refused(1))?, Some(4));
    assert_eq!(
        store.write(|tx| tx.requeue_refused(1))?,
        None,
        "gone from 1"
    );
    drop(store);

    // Kept across a restart: at the end, counted twice, otherwise as queued.
    let store = Store::open(&path)?;
    let after = store.outbox(10)?;
    assert_eq!(
        after.iter().map(|i| (i.seq, i.refused)).collect::<Vec<_>>(),
        [(2, 1), (3, 0), (4, 2)]
    );
    assert_eq!(after[2].body, before[0].body);
    assert_eq!(after[2].queued_unix, before[0].queued_unix);
    assert_eq!(store.snapshot()?.next_outbox_seq, 5);
    Ok(())
}

#[test]
fn outbox_is_ordered_and_sequences_are_never_reused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    let store = Store::open(&path)?;
    let seqs = store.write(|tx| {
        (0..5)
            .map(|i| tx.enqueue(OutboxBody::Status(status("A", MessageId(11030 + i), "r"))))
            .collect::<Result<Vec<_>, _>>()
    })?;
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(store.write(|tx| tx.dequeue(&[1, 3, 5, 99]))?, 3);
    let left: Vec<u64> = store.outbox(10)?.iter().map(|i| i.seq).collect();
    assert_eq!(left, [2, 4]);
    // The latest item is gone, yet its number is not handed out again.
    assert_eq!(
        store.write(|tx| tx.enqueue(OutboxBody::CollectedFile { path: "f".into() }))?,
        6
    );
    assert_eq!(store.write(|tx| tx.dequeue(&[2, 4, 6]))?, 3);
    assert_eq!(store.outbox_len()?, 0);
    drop(store);

    let store = Store::open(&path)?;
    assert_eq!(store.snapshot()?.next_outbox_seq, 7);
    let seq = store.write(|tx| tx.enqueue(OutboxBody::CollectedFile { path: "g".into() }))?;
    assert_eq!(seq, 7);
    // Oldest first, whatever order they were queued in within one transaction.
    store.write(|tx| {
        for i in 0..20 {
            tx.enqueue(OutboxBody::CollectedFile {
                path: format!("f{i}"),
            })?;
        }
        Ok(())
    })?;
    let items = store.outbox(usize::MAX)?;
    assert_eq!(items.len(), 21);
    assert!(items.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        store.outbox(3)?.iter().map(|i| i.seq).collect::<Vec<_>>(),
        [7, 8, 9]
    );
    Ok(())
}

#[test]
fn newer_schema_is_refused_and_the_file_left_untouched() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    {
        let store = Store::open(&path)?;
        store.write(|tx| {
            tx.put_package(&package("A"))?;
            tx.enqueue(OutboxBody::CollectedFile { path: "f".into() })?;
            Ok(())
        })?;
    }
    // A newer agent stamped the file.
    {
        let db = redb::Database::create(&path)?;
        let tx = db.begin_write()?;
        tx.open_table(tables::META)?
            .insert(tables::META_SCHEMA_VERSION, SCHEMA_VERSION + 1)?;
        tx.commit()?;
    }
    let before = bytes_of(&path);

    for _ in 0..2 {
        let err = Store::open(&path).expect_err("a newer schema is refused");
        match &err {
            StoreError::NewerSchema {
                path: p,
                found,
                supported,
            } => {
                assert_eq!(p, &path);
                assert_eq!(*found, SCHEMA_VERSION + 1);
                assert_eq!(*supported, SCHEMA_VERSION);
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
        assert_eq!(err.kind(), "newer-schema");
        let text = err.to_string();
        assert!(text.contains("newer agent"), "{text}");
        assert!(text.contains("untouched"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(bytes_of(&path) == before, "the database file changed");
    }
    Ok(())
}

#[test]
fn newer_schema_after_a_crash_is_still_untouched() -> TestResult {
    // A file a newer agent left without closing (needs redb repair): probing it
    // must not repair it either.
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    drop(Store::open(&path)?);
    {
        let db = redb::Database::create(&path)?;
        let tx = db.begin_write()?;
        tx.open_table(tables::META)?
            .insert(tables::META_SCHEMA_VERSION, 99)?;
        tx.commit()?;
        // Snapshot the file while the database is still open (header says
        // "recovery required"), as a crash would leave it.
        let crashed = bytes_of(&path);
        drop(db);
        std::fs::write(&path, &crashed)?;
    }
    let before = bytes_of(&path);
    let err = Store::open(&path).expect_err("refused");
    assert_eq!(err.kind(), "newer-schema");
    assert!(bytes_of(&path) == before, "the database file changed");
    // Sanity: opening this file with plain redb does write to it, so the
    // check above is meaningful.
    drop(redb::Database::create(&path)?);
    assert!(
        bytes_of(&path) != before,
        "plain redb open left the file alone"
    );
    Ok(())
}

#[test]
fn a_file_that_is_not_a_database_gives_a_clear_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    for (name, content) in [
        (
            "text.redb",
            &b"[agent]\nthis is a TOML file, not a database\n"[..],
        ),
        ("short.redb", &b"x"[..]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content)?;
        let err = Store::open(&path).expect_err("not a database");
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
        assert_eq!(err.kind(), "not-a-database");
        assert_eq!(err.path(), Some(path.as_path()));
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("not a client database"), "{text}");
        assert_eq!(std::fs::read(&path)?, content, "the file changed");
    }
    // An empty file is a new database.
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"")?;
    assert_eq!(Store::open(&empty)?.schema_version()?, SCHEMA_VERSION);
    Ok(())
}

#[test]
fn a_second_open_in_this_process_is_locked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    let store = Store::open(&path)?;
    let err = Store::open(&path).expect_err("already open");
    assert!(
        matches!(&err, StoreError::Locked { path: p } if p == &path),
        "{err:?}"
    );
    assert_eq!(err.kind(), "locked");
    assert!(err.to_string().contains("already open"), "{err}");
    drop(store);
    Store::open(&path)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// A writer in another process.

/// A running [`writer_child`] process.
struct Writer {
    child: Child,
    /// The `N` of each `committed N` line, as the child prints them.
    commits: mpsc::Receiver<u64>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Writer {
    /// Start [`writer_child`] on `path`.
    fn spawn(path: &Path) -> Result<Writer, Box<dyn std::error::Error>> {
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "store::writer_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let (tx, commits) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("committed ") {
                    if let Ok(n) = n.trim().parse::<u64>() {
                        let _ = tx.send(n);
                    }
                }
            }
        });
        Ok(Writer {
            child,
            commits,
            reader: Some(reader),
        })
    }

    /// Wait for the next `committed N` line.
    fn next_commit(&self) -> Result<u64, Box<dyn std::error::Error>> {
        Ok(self
            .commits
            .recv_timeout(Duration::from_secs(30))
            .map_err(|e| format!("the child stopped reporting commits: {e}"))?)
    }

    /// SIGKILL the child, reap it, and return the commits it reported that
    /// were not yet taken with [`Writer::next_commit`].
    fn kill(mut self) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
        self.child.kill()?; // SIGKILL on Unix
        self.child.wait()?;
        if let Some(reader) = self.reader.take() {
            reader.join().map_err(|_| "reader thread panicked")?;
        }
        Ok(self.commits.try_iter().collect())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // A failed assertion must not leave the child running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child side: when [`CHILD_ENV`] names a database, commit forever, one
/// package + its status item + the counter per transaction.
#[test]
#[ignore = "child process of the kill -9 tests; does nothing without its environment variable"]
fn writer_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Store::open(&path).expect("child: open the store");
    let mut n: u64 = store
        .server_values()
        .expect("child: read the counter")
        .timestamp
        .map_or(0, |t| t.parse().expect("child: counter"));
    let mut out = std::io::stdout().lock();
    // Bounded: the parent kills us long before.
    for _ in 0..200_000 {
        n += 1;
        let id = format!("pkg-{n}");
        store
            .write(|tx| {
                let mut rec = PackageRecord::new(&id, n);
                rec.state = PackageState::Downloaded;
                tx.put_package(&rec)?;
                tx.enqueue(OutboxBody::Status(status(
                    &id,
                    MessageId::DOWNLOAD_SUCCEEDED,
                    &n.to_string(),
                )))?;
                tx.update_server_values(|v| v.timestamp = Some(n.to_string()))?;
                Ok(())
            })
            .expect("child: commit");
        writeln!(out, "committed {n}").expect("child: report");
        out.flush().expect("child: flush");
    }
}

/// When the parent kills the child.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// After this many `committed` lines.
    Commits(usize),
    /// After this long, whatever the child is doing (even starting up).
    Millis(u64),
}

fn random_below(bound: u64) -> u64 {
    use std::hash::BuildHasher;
    let seed =
        std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
    seed % bound.max(1)
}

/// Check the invariants after a crash: every reported commit is there, nothing
/// is half there, the counter matches. Returns the counter.
fn check_after_crash(
    path: &Path,
    reported: &BTreeSet<u64>,
) -> Result<u64, Box<dyn std::error::Error>> {
    let store = Store::open(path)?;
    let snap = store.snapshot()?;
    let counter: u64 = snap.server.timestamp.as_deref().map_or(Ok(0), str::parse)?;

    let packages: BTreeSet<String> = snap.packages.iter().map(|p| p.id.clone()).collect();
    let expected: BTreeSet<String> = (1..=counter).map(|n| format!("pkg-{n}")).collect();
    assert_eq!(
        packages, expected,
        "packages are exactly pkg-1..=pkg-{counter}"
    );

    let mut outboxed = BTreeSet::new();
    for item in &snap.outbox {
        let OutboxBody::Status(msg) = &item.body else {
            panic!("unexpected outbox item {item:?}");
        };
        assert!(
            outboxed.insert(msg.package_id.clone()),
            "duplicate item for {}",
            msg.package_id
        );
    }
    assert_eq!(
        outboxed, expected,
        "every package has exactly its outbox item"
    );
    assert!(snap.outbox.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(snap.next_outbox_seq > snap.outbox.last().map_or(0, |i| i.seq));

    if let Some(&last) = reported.last() {
        assert!(
            last <= counter,
            "child reported {last} committed, store has {counter}"
        );
    }
    Ok(counter)
}

#[test]
fn kill_9_leaves_every_reported_commit_and_nothing_half_done() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    let plans = [
        KillAt::Commits(5),
        KillAt::Commits(37),
        KillAt::Commits(200),
        KillAt::Millis(random_below(400)),
        KillAt::Commits(1),
        KillAt::Millis(0),
        KillAt::Commits(60),
        KillAt::Millis(random_below(600)),
        KillAt::Commits(random_below(150) as usize + 1),
        KillAt::Millis(random_below(250)),
    ];
    let mut reported = BTreeSet::new();
    let mut counter = 0;
    for plan in plans {
        let writer = Writer::spawn(&path)?;
        match plan {
            KillAt::Commits(k) => {
                for _ in 0..k {
                    reported.insert(writer.next_commit()?);
                }
            }
            KillAt::Millis(ms) => thread::sleep(Duration::from_millis(ms)),
        }
        reported.extend(writer.kill()?);

        let now = check_after_crash(&path, &reported)?;
        assert!(
            now >= counter,
            "{plan:?}: the store went back from {counter} to {now}"
        );
        eprintln!("kill -9 {plan:?}: {now} commits in the store");
        counter = now;
    }
    assert!(
        counter >= 5 + 37 + 200 + 1 + 60,
        "too few commits: {counter}"
    );
    Ok(())
}

#[test]
fn a_database_held_by_another_process_is_locked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    let writer = Writer::spawn(&path)?;
    writer.next_commit()?;
    let result = Store::open(&path);
    writer.kill()?;
    let err = result.expect_err("the child holds the database");
    assert!(
        matches!(&err, StoreError::Locked { path: p } if p == &path),
        "{err:?}"
    );
    // Once the holder is gone, the database opens (and is repaired by redb).
    let store = Store::open(&path)?;
    assert!(store.packages()?.len() as u64 >= 1);
    Ok(())
}

// ---------------------------------------------------------------------------
// The store against a model, over random operation sequences with reopens.

mod model {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        PutPackage(u8),
        RemovePackage(u8),
        PutTask(u8),
        PutCheckpoint(u8, u64),
        Enqueue(u8),
        Dequeue(usize),
        SetServer(u8),
        /// A composite write whose closure fails.
        Aborted(u8),
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..4).prop_map(Op::PutPackage),
            2 => (0u8..4).prop_map(Op::RemovePackage),
            2 => (0u8..4).prop_map(Op::PutTask),
            2 => (0u8..4, 0u64..1000).prop_map(|(p, d)| Op::PutCheckpoint(p, d)),
            3 => (0u8..4).prop_map(Op::Enqueue),
            2 => (0usize..8).prop_map(Op::Dequeue),
            1 => (0u8..3).prop_map(Op::SetServer),
            1 => (0u8..4).prop_map(Op::Aborted),
            1 => Just(Op::Reopen),
        ]
    }

    #[derive(Debug, Default)]
    struct Model {
        packages: BTreeMap<String, PackageRecord>,
        tasks: BTreeMap<String, TaskRecord>,
        checkpoints: BTreeMap<String, CheckpointRecord>,
        outbox: BTreeMap<u64, OutboxBody>,
        next_seq: u64,
        server: ServerValues,
    }

    fn id(p: u8) -> String {
        format!("P{p}")
    }

    fn body(p: u8) -> OutboxBody {
        OutboxBody::Status(status(&id(p), MessageId::DOWNLOAD_STARTED, "r"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn store_matches_a_model(ops in proptest::collection::vec(op(), 1..40)) {
            let dir = tempfile::tempdir()?;
            let path = db_path(&dir);
            let mut store = Store::open(&path)?;
            let mut m = Model { next_seq: 1, ..Model::default() };
            for op in ops {
                match op {
                    Op::PutPackage(p) => {
                        let rec = package(&id(p));
                        store.write(|tx| tx.put_package(&rec))?;
                        m.packages.insert(id(p), rec);
                    }
                    Op::RemovePackage(p) => {
                        let removed = store.write(|tx| tx.remove_package(&id(p)))?;
                        prop_assert_eq!(removed, m.packages.remove(&id(p)));
                        m.tasks.remove(TaskId::download(&id(p)).as_str());
                        m.checkpoints.remove(&id(p));
                    }
                    Op::PutTask(p) => {
                        let rec = TaskRecord::download(&id(p), 5, 0, 1);
                        store.write(|tx| tx.put_task(&rec))?;
                        m.tasks.insert(rec.id.to_string(), rec);
                    }
                    Op::PutCheckpoint(p, done) => {
                        let rec = checkpoint(&id(p), done);
                        store.write(|tx| tx.put_checkpoint(&rec))?;
                        m.checkpoints.insert(id(p), rec);
                    }
                    Op::Enqueue(p) => {
                        let seq = store.write(|tx| tx.enqueue_at(body(p), 7))?;
                        prop_assert_eq!(seq, m.next_seq);
                        m.outbox.insert(seq, body(p));
                        m.next_seq += 1;
                    }
                    Op::Dequeue(k) => {
                        let seqs: Vec<u64> = m.outbox.keys().copied().skip(k).take(2).collect();
                        let n = store.write(|tx| tx.dequeue(&seqs))?;
                        prop_assert_eq!(n, seqs.len());
                        for s in seqs {
                            m.outbox.remove(&s);
                        }
                    }
                    Op::SetServer(v) => {
                        let values = ServerValues {
                            auth_token: Some(format!("t{v}")),
                            ..server_values()
                        };
                        store.write(|tx| tx.set_server_values(&values))?;
                        m.server = values;
                    }
                    Op::Aborted(p) => {
                        let res: Result<(), StoreError> = store.write(|tx| {
                            tx.put_package(&package(&id(p)))?;
                            tx.remove_package(&id((p + 1) % 4))?;
                            tx.enqueue(body(p))?;
                            tx.update_server_values(|v| v.timestamp = Some("x".into()))?;
                            Err(StoreError::InvalidRecord("refused".into()))
                        });
                        prop_assert!(res.is_err());
                    }
                    Op::Reopen => {
                        drop(store);
                        store = Store::open(&path)?;
                    }
                }
                let snap = store.snapshot()?;
                prop_assert_eq!(&snap.packages, &m.packages.values().cloned().collect::<Vec<_>>());
                prop_assert_eq!(&snap.tasks, &m.tasks.values().cloned().collect::<Vec<_>>());
                prop_assert_eq!(
                    &snap.checkpoints,
                    &m.checkpoints.values().cloned().collect::<Vec<_>>()
                );
                let outbox: Vec<(u64, OutboxBody)> =
                    snap.outbox.into_iter().map(|i| (i.seq, i.body)).collect();
                prop_assert_eq!(outbox, m.outbox.clone().into_iter().collect::<Vec<_>>());
                prop_assert_eq!(snap.next_outbox_seq, m.next_seq);
                prop_assert_eq!(&snap.server, &m.server);
            }
        }
    }
}

/// The ID and state of every package, as the `packages` table has them.
fn states_from_records(store: &Store) -> Result<BTreeMap<String, PackageState>, StoreError> {
    Ok(store
        .packages()?
        .into_iter()
        .map(|p| (p.id, p.state))
        .collect())
}

fn states_from_index(store: &Store) -> Result<BTreeMap<String, PackageState>, StoreError> {
    let states = store.package_states()?;
    let set: BTreeMap<_, _> = states.iter().map(|(id, s)| (id.to_owned(), s)).collect();
    assert_eq!(set.len(), states.len(), "no package twice in the index");
    Ok(set)
}

#[test]
fn the_package_index_follows_every_put_and_remove() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(db_path(&dir))?;
    assert!(store.package_states()?.is_empty());
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for round in 0..40 {
        store.write(|tx| {
            for _ in 0..25 {
                let id = format!("PKG-{}", next(300));
                if next(4) == 0 {
                    tx.remove_package(&id)?;
                } else {
                    let mut rec = package(&id);
                    rec.state = PackageState::ALL[next(7) as usize];
                    tx.put_package(&rec)?;
                }
            }
            Ok(())
        })?;
        // An aborted transaction leaves both as they were.
        let _ = store.write(|tx| {
            tx.put_package(&package(&format!("ABORTED-{round}")))?;
            tx.remove_package("PKG-1")?;
            Err::<(), _>(StoreError::InvalidRecord("abort".into()))
        });
        assert_eq!(states_from_index(&store)?, states_from_records(&store)?);
    }
    assert!(store.package_states()?.len() > 100);
    Ok(())
}

#[test]
fn opening_a_version_1_database_builds_the_package_index() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    {
        let store = Store::open(&path)?;
        store.write(|tx| {
            for i in 0..50 {
                let mut rec = package(&format!("OLD-{i}"));
                rec.state = PackageState::ALL[i % 7];
                tx.put_package(&rec)?;
            }
            Ok(())
        })?;
    }
    // What a version-1 agent left: the records, no index.
    {
        let db = redb::Database::create(&path)?;
        let tx = db.begin_write()?;
        tx.delete_table(tables::PACKAGE_INDEX)?;
        tx.open_table(tables::META)?
            .insert(tables::META_SCHEMA_VERSION, 1)?;
        tx.commit()?;
    }
    let store = Store::open(&path)?;
    assert_eq!(store.schema_version()?, SCHEMA_VERSION);
    assert_eq!(store.package_states()?.len(), 50);
    assert_eq!(states_from_index(&store)?, states_from_records(&store)?);
    Ok(())
}

#[test]
fn report_digests_need_no_migration_of_a_schema_2_database() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = db_path(&dir);
    {
        let store = Store::open(&path)?;
        store.write(|tx| tx.put_package(&package("KEEP")))?;
    }
    // What a schema-2 agent before report digests left: no such table.
    {
        let db = redb::Database::create(&path)?;
        let tx = db.begin_write()?;
        tx.delete_table(tables::REPORT_DIGESTS)?;
        tx.commit()?;
    }
    let store = Store::open(&path)?;
    assert_eq!(store.schema_version()?, SCHEMA_VERSION);
    assert_eq!(store.report_digest(ReportType::MachineInventory)?, None);
    store.write(|tx| tx.set_report_digest(ReportType::MachineInventory, &[7; 32]))?;
    drop(store);
    let store = Store::open(&path)?;
    assert_eq!(
        store.report_digest(ReportType::MachineInventory)?,
        Some([7; 32])
    );
    assert_eq!(store.report_digest(ReportType::SoftwareInventory)?, None);
    assert!(store.package("KEEP")?.is_some());
    store.write(|tx| tx.remove_report_digest(ReportType::MachineInventory))?;
    assert_eq!(store.report_digest(ReportType::MachineInventory)?, None);
    Ok(())
}

/// A fleet-sized index: 10,000 GUIDs fill the `u16`-keyed index's 256 rows
/// into more leaves than one branch page of redb's debug layout check could
/// hold before vendor/redb was patched (it panicked in debug builds only).
#[test]
fn a_package_index_of_ten_thousand_guids_writes_and_reads_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(db_path(&dir))?;
    let mut x: u64 = 0x5EED;
    let ids: Vec<String> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!(
                "{:08X}-{:04X}-4{:03X}-8{:03X}-{:012X}",
                x >> 32,
                (x >> 16) & 0xFFFF,
                x & 0xFFF,
                (x >> 20) & 0xFFF,
                x & 0xFFFF_FFFF_FFFF
            )
        })
        .collect();
    store.write(|tx| {
        for id in &ids {
            tx.put_package(&PackageRecord::new(id.as_str(), 1_700_000_000))?;
        }
        Ok(())
    })?;
    let states = store.package_states()?;
    let mut read: Vec<&str> = states.iter().map(|(id, _)| id).collect();
    read.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    want.dedup();
    assert_eq!(read, want);
    Ok(())
}
