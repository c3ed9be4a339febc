//! Tests: the full cycle under faults — a connection cut mid-download, a
//! flipped byte, a Range request answered with 200, the server down for a
//! while, and status messages the server refuses. The agent runs in-process
//! with an injected clock.

use dm_server::{Faults, ServerConfig};
use dmagent::store::{OutboxBody, PackageState, TaskId};
use sha2::{Digest, Sha256};

use crate::support::agent::{settings, TestAgent};
use crate::support::server::{assign_only, make_catalog, messages, pattern, BIG_LEN};

/// A server whose catalog assigns only `BIG` (1 MiB) to every device.
fn big_only(
    faults: Faults,
) -> (
    dm_server::RunningServer,
    tempfile::TempDir,
    tempfile::TempDir,
) {
    let catalog = make_catalog();
    assign_only(catalog.path(), &["BIG"]);
    let state = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(catalog.path(), state.path());
    config.workers = 1;
    config.faults = faults;
    (dm_server::start(config).expect("server"), catalog, state)
}

fn agent_for(server: &dm_server::RunningServer, device: &str) -> TestAgent {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path(), &server.endpoint_url(), device);
    TestAgent::start(dir, settings)
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The installed `BIG` file is exactly the catalog's bytes.
fn assert_big_intact(agent: &TestAgent) {
    let file = agent
        .package("BIG")
        .and_then(|p| p.downloaded_file)
        .expect("downloaded file");
    let bytes = std::fs::read(file).expect("read");
    assert_eq!(sha256(&bytes), sha256(&pattern(BIG_LEN)));
}

fn statuses(
    server: &dm_server::RunningServer,
    device: &str,
) -> Vec<dm_server::state::StatusRecord> {
    server.state().statuses(device).expect("statuses")
}

fn param<'a>(status: &'a dm_server::state::StatusRecord, name: &str) -> Option<&'a str> {
    status
        .parameters
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.as_str())
}

/// The first attempt at `BIG` fails (the injected cut); the retry, after the
/// catalog's one-minute FailureRetryInterval, installs the intact file.
fn install_after_one_failed_attempt(agent: &TestAgent) {
    agent.wait_for("the cut attempt to be recorded", |s| {
        s.tasks
            .iter()
            .any(|t| t.id == TaskId::download("BIG") && t.attempts == 1)
    });
    agent.advance(61);
    agent.wait_state("BIG", PackageState::Installed);
    assert_big_intact(agent);
}

#[test]
fn a_cut_connection_resumes_from_the_interrupted_byte() {
    let cut = 300_000;
    let (server, _catalog, _state) = big_only(Faults {
        cut_after_bytes: Some(cut),
        cut_count: Some(1),
        ..Faults::default()
    });
    let agent = agent_for(&server, "DEV-CUT");
    install_after_one_failed_attempt(&agent);
    let fetched = server.bytes_served();
    assert!(
        fetched <= BIG_LEN as u64 + 64 * 1024,
        "fetched {fetched} bytes for a {BIG_LEN}-byte package: more than 64 KiB again"
    );
    agent.wait_for("the reports", |_| statuses(&server, "DEV-CUT").len() == 4);
    let sent = statuses(&server, "DEV-CUT");
    let ids: Vec<u32> = sent.iter().map(|s| s.message_id).collect();
    assert_eq!(ids, [11030, 11032, 11030, 11031]);
    assert_eq!(param(&sent[1], "WillRetry"), Some("true"));
    assert_eq!(
        param(&sent[2], "Resume"),
        Some("true"),
        "the second start says it resumes"
    );
    let offset: u64 = param(&sent[2], "Offset")
        .and_then(|o| o.parse().ok())
        .expect("Offset");
    assert!(
        offset > 0 && offset <= cut,
        "resumed at {offset}, cut at {cut}"
    );
}

#[test]
fn a_flipped_byte_is_never_installed_and_the_download_is_retried() {
    let (server, _catalog, _state) = big_only(Faults {
        flip_byte_at: Some(500_000),
        ..Faults::default()
    });
    let agent = agent_for(&server, "DEV-FLIP");
    agent.wait_for("the digest mismatch report", |_| {
        statuses(&server, "DEV-FLIP")
            .iter()
            .any(|s| s.message_id == 11032)
    });
    let failed = statuses(&server, "DEV-FLIP")
        .into_iter()
        .find(|s| s.message_id == 11032)
        .expect("11032");
    assert!(
        param(&failed, "ErrorText").is_some_and(|t| t.contains("SHA-256 mismatch")),
        "{failed:?}"
    );
    let big = agent.package("BIG").expect("BIG");
    assert_ne!(big.state, PackageState::Installed);
    assert!(
        big.downloaded_file.is_none(),
        "nothing unverified is kept as the package file"
    );
    let dir = agent.package_dir("BIG");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "no partial or final file left: {leftovers:?}"
    );

    server.faults().set(Faults::default());
    // The catalog's FailureRetryInterval is one minute.
    agent.advance(61);
    agent.wait_state("BIG", PackageState::Installed);
    assert_big_intact(&agent);
}

#[test]
fn a_range_request_answered_with_200_restarts_from_zero() {
    let cut = 300_000;
    let (server, _catalog, _state) = big_only(Faults {
        cut_after_bytes: Some(cut),
        cut_count: Some(1),
        ignore_range: true,
        ..Faults::default()
    });
    let agent = agent_for(&server, "DEV-200");
    install_after_one_failed_attempt(&agent);
    // The whole file came again after the cut: the 200 body was used from byte 0.
    assert_eq!(server.bytes_served(), cut + BIG_LEN as u64);
}

#[test]
fn while_the_server_is_down_work_parks_without_spending_retries() {
    let catalog = make_catalog();
    assign_only(catalog.path(), &["BIG"]);
    // BIG starts an hour after the injected epoch.
    let big = catalog.path().join("packages/big.toml");
    let text = std::fs::read_to_string(&big).expect("read");
    std::fs::write(
        &big,
        format!("{text}start_time = \"2025-01-01 01:00:00\"\n"),
    )
    .expect("write");
    let state = tempfile::tempdir().expect("tempdir");
    let config = ServerConfig::new(catalog.path(), state.path());
    let server = dm_server::start(config.clone()).expect("server");
    let addr = server.addr();
    let agent = agent_for(&server, "DEV-DOWN");
    agent.wait_for("BIG scheduled", |s| {
        s.tasks.iter().any(|t| t.id == TaskId::download("BIG"))
    });
    agent.wait_for("the poll to finish", |s| {
        s.tasks
            .iter()
            .any(|t| t.id == TaskId::poll() && t.next_due_unix > agent.clock_now())
    });
    server.stop();

    // BIG comes due with the server gone: parked, not failed.
    agent.advance(3600);
    agent.wait_for("the server to be marked unreachable", |s| {
        s.server.unreachable_since.is_some()
    });
    for _ in 0..8 {
        agent.advance(60);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let snapshot = agent.snapshot();
    for task in &snapshot.tasks {
        assert_eq!(
            task.attempts, 0,
            "{} spent a retry during the outage: {task:?}",
            task.id
        );
    }
    assert_ne!(
        agent.package("BIG").map(|p| p.state),
        Some(PackageState::Failed)
    );

    let mut config = config;
    config.listen = addr;
    let server = dm_server::start(config).expect("server back on the same address");
    agent.advance(60);
    agent.wait_state("BIG", PackageState::Installed);
    assert_big_intact(&agent);
    agent.wait_for("the reports", |_| statuses(&server, "DEV-DOWN").len() == 2);
}

#[test]
fn a_status_the_server_refuses_is_kept_and_holds_up_no_other() {
    let catalog = make_catalog();
    assign_only(catalog.path(), &["BIG", "DEMO-APP"]);
    let state = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(catalog.path(), state.path());
    config.workers = 1;
    config.faults = Faults {
        refuse_status_of: Some("BIG".into()),
        ..Faults::default()
    };
    let server = dm_server::start(config).expect("server");
    let agent = agent_for(&server, "DEV-REFUSED");
    agent.wait_state("BIG", PackageState::Installed);
    agent.wait_state("DEMO-APP", PackageState::Installed);

    // DEMO-APP's messages get through, though BIG's came first and every
    // one of those is refused.
    agent.wait_for("DEMO-APP's reports", |_| {
        messages(&server, "DEV-REFUSED", "DEMO-APP").ends_with(&[11031, 11035])
    });
    let held = agent.wait_for("only BIG's messages to be left", |s| {
        s.outbox.len() == 2
            && s.outbox.iter().all(|i| {
                matches!(&i.body, OutboxBody::Status(m) if m.package_id == "BIG") && i.refused > 0
            })
    });
    assert!(messages(&server, "DEV-REFUSED", "BIG").is_empty());
    let ids: Vec<u32> = held
        .outbox
        .iter()
        .map(|i| match &i.body {
            OutboxBody::Status(m) => m.message_id.0,
            other => panic!("a status, not {other:?}"),
        })
        .collect();
    assert_eq!(ids, [11030, 11031], "kept in the order they were queued");

    // Once the server takes them, the next poll's drain delivers them.
    server.faults().set(Faults::default());
    agent.advance(301);
    agent.wait_delivered();
    assert_eq!(messages(&server, "DEV-REFUSED", "BIG"), [11030, 11031]);
}
