//! Tests: the agent's full cycle end to end — the real actors in-process with
//! an injected clock, the reference server over real HTTP on loopback, the
//! real redb file and the real plugins.

use std::collections::HashSet;
use std::path::Path;

use dmagent::control::Request;
use dmagent::daemon::store_actor::{execute, ControlContext};
use dmagent::store::{PackageState, TaskId};

use crate::support::agent::{settings, TestAgent};
use crate::support::server::{self, TestServer, BIG_LEN};

/// Status message IDs the server received for `package`, in order.
fn messages(server: &TestServer, device: &str, package: &str) -> Vec<u32> {
    server::messages(&server.server, device, package)
}

fn start_agent(server: &TestServer, device: &str) -> TestAgent {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path(), &server.server.endpoint_url(), device);
    TestAgent::start(dir, settings)
}

/// Waits until the package's event finished and is due again in the future
/// (moving the clock earlier would skip an occurrence as missed).
fn wait_rescheduled(agent: &TestAgent, package: &str) {
    let now = agent.clock_now();
    agent.wait_for("the next occurrence to be scheduled", |s| {
        s.tasks
            .iter()
            .any(|t| t.id == TaskId::download(package) && t.next_due_unix > now)
    });
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn a_fresh_device_reaches_its_assigned_package_set() {
    let server = server::start();
    let agent = start_agent(&server, "DEV-FRESH");
    for id in ["DEMO-APP", "DEMO-RECURRING", "BIG"] {
        agent.wait_state(id, PackageState::Installed);
    }
    // The archive handler unpacked the required package (X6 routing).
    assert!(
        agent.package_dir("demo-app").join("app").is_dir(),
        "app.tar.gz unpacked into demo-app/app"
    );
    // The optional package is known but not scheduled.
    let tools = agent
        .package("DEMO-TOOLS")
        .expect("optional package stored");
    assert_eq!(tools.state, PackageState::Pending);
    assert!(!tools.accepted);
    let snapshot = agent.wait_delivered();
    assert!(!snapshot
        .tasks
        .iter()
        .any(|t| t.id == TaskId::download("DEMO-TOOLS")));
    // Every phase reported, in order, each message once (ReportID dedup on the server).
    assert_eq!(
        messages(&server, "DEV-FRESH", "DEMO-APP"),
        [11030, 11031, 11035]
    );
    assert_eq!(messages(&server, "DEV-FRESH", "BIG"), [11030, 11031]);
    let statuses = server
        .server
        .state()
        .statuses("DEV-FRESH")
        .expect("statuses");
    let ids: HashSet<_> = statuses
        .iter()
        .map(|s| s.report_id.clone().expect("ReportID"))
        .collect();
    assert_eq!(
        ids.len(),
        statuses.len(),
        "every StatusMessage carries its own ReportID"
    );
    // The package file on disk is the verified one.
    let big = agent
        .package("BIG")
        .expect("BIG")
        .downloaded_file
        .expect("file");
    assert_eq!(std::fs::read(big).expect("read").len(), BIG_LEN);
}

#[test]
fn an_optional_package_waits_for_accept() {
    let server = server::start();
    let agent = start_agent(&server, "DEV-OPT");
    agent.wait_state("DEMO-APP", PackageState::Installed);
    assert_eq!(
        agent.package("DEMO-TOOLS").map(|p| p.state),
        Some(PackageState::Pending)
    );
    assert!(
        messages(&server, "DEV-OPT", "DEMO-TOOLS").is_empty(),
        "nothing downloaded before accept"
    );

    let context = ControlContext {
        settings: agent.settings.clone(),
        device_id: None,
        daemon_running: true,
        clock: std::sync::Arc::new(agent.clock.clone()),
    };
    let answer = execute(
        &agent.store,
        &context,
        &Request::Accept {
            package_id: "DEMO-TOOLS".into(),
        },
    );
    assert!(
        matches!(answer, dmagent::control::Response::Done { .. }),
        "{answer:?}"
    );
    agent.wake();
    agent.wait_state("DEMO-TOOLS", PackageState::Installed);
    agent.wait_for("its reports", |_| {
        messages(&server, "DEV-OPT", "DEMO-TOOLS").len() == 2
    });
    assert_eq!(messages(&server, "DEV-OPT", "DEMO-TOOLS"), [11030, 11031]);
}

#[test]
fn a_package_removed_from_the_catalog_is_dropped() {
    let server = server::start();
    let agent = start_agent(&server, "DEV-REMOVE");
    agent.wait_state("BIG", PackageState::Installed);
    server::assign_only(
        server.catalog.path(),
        &["DEMO-APP", "DEMO-TOOLS", "DEMO-RECURRING"],
    );
    server.server.catalog().reload().expect("reload");
    // The next poll (5 minutes later by the catalog's PollInterval) drops it.
    agent.advance(301);
    agent.wait_for("BIG to be dropped", |s| {
        !s.packages.iter().any(|p| p.id == "BIG")
    });
    let snapshot = agent.snapshot();
    assert!(!snapshot
        .tasks
        .iter()
        .any(|t| t.id == TaskId::download("BIG")));
    assert!(!snapshot.checkpoints.iter().any(|c| c.package_id == "BIG"));
    assert!(
        snapshot.packages.iter().any(|p| p.id == "DEMO-APP"),
        "the rest is kept"
    );
}

#[test]
fn a_recurring_execute_only_package_reruns_its_command_without_downloading() {
    let server = server::start();
    let agent = start_agent(&server, "DEV-RECUR");
    agent.wait_state("DEMO-RECURRING", PackageState::Installed);
    for id in ["DEMO-APP", "BIG"] {
        agent.wait_state(id, PackageState::Installed);
    }
    let log = agent.package_dir("demo-recurring").join("runs.log");
    assert_eq!(lines(&log), 1);
    let served = server.server.bytes_served();
    wait_rescheduled(&agent, "DEMO-RECURRING");
    // Its Recurrence/Interval is ten minutes.
    agent.advance(601);
    agent.wait_for("the second run", |_| lines(&log) == 2);
    wait_rescheduled(&agent, "DEMO-RECURRING");
    agent.advance(601);
    agent.wait_for("the third run", |_| lines(&log) == 3);
    agent.wait_for("the third run's report", |_| {
        messages(&server, "DEV-RECUR", "DEMO-RECURRING").len() == 5
    });
    assert_eq!(
        server.server.bytes_served(),
        served,
        "no byte downloaded again"
    );
    assert_eq!(
        messages(&server, "DEV-RECUR", "DEMO-RECURRING"),
        [11030, 11031, 11035, 11035, 11035]
    );
}

#[test]
fn the_server_changes_the_settings_and_the_poll_interval() {
    let server = server::start();
    let agent = start_agent(&server, "DEV-SETTINGS");
    let snapshot = agent.wait_for("the first poll's settings", |s| {
        s.server
            .client_settings
            .as_ref()
            .and_then(|c| c.version.as_deref())
            == Some("1")
    });
    let poll = snapshot
        .tasks
        .iter()
        .find(|t| t.id == TaskId::poll())
        .expect("poll task");
    assert_eq!(
        poll.period_secs,
        Some(300),
        "the catalog's PollInterval of 5 minutes"
    );
    // The settings are committed by the poll, its next occurrence a moment
    // later by the scheduler: moving the clock in between (a loaded machine)
    // would make the scheduler skip the poll due at +300 s as missed.
    let started = agent.clock_now();
    agent.wait_for("the next poll to be scheduled", |s| {
        s.tasks
            .iter()
            .any(|t| t.id == TaskId::poll() && t.next_due_unix > started)
    });

    let catalog = server.catalog.path().join("catalog.toml");
    let text = std::fs::read_to_string(&catalog).expect("read catalog");
    let text = text
        .replace(
            "version = \"1\"\npoll_interval = \"0000-00-00 00:05:00\"",
            "version = \"2\"\npoll_interval = \"0000-00-00 00:02:00\"",
        )
        .replace("failure_retry_count = 5", "failure_retry_count = 2");
    std::fs::write(&catalog, text).expect("write catalog");
    server.server.catalog().reload().expect("reload");
    // The first poll's outcome must be committed (the poll rescheduled)
    // before the clock moves, or it is rescheduled from the moved clock.
    let now = agent.clock_now();
    agent.wait_for("the first poll to be rescheduled", |s| {
        s.tasks
            .iter()
            .any(|t| t.id == TaskId::poll() && t.next_due_unix > now)
    });
    agent.advance(301);
    let snapshot = agent.wait_for("version 2 of the settings", |s| {
        s.server
            .client_settings
            .as_ref()
            .and_then(|c| c.version.as_deref())
            == Some("2")
    });
    let client = snapshot
        .server
        .client_settings
        .clone()
        .expect("client settings");
    assert_eq!(client.failure_retry_count, Some(2));
    let poll = agent
        .wait_for("the new poll interval", |s| {
            s.tasks
                .iter()
                .any(|t| t.id == TaskId::poll() && t.period_secs == Some(120))
        })
        .tasks
        .into_iter()
        .find(|t| t.id == TaskId::poll())
        .expect("poll task");
    // Obeyed: the next poll is two minutes after this one, not five.
    let polls_before = server
        .server
        .state()
        .device("DEV-SETTINGS")
        .expect("device")
        .map(|d| d.poll_count);
    assert!(poll.next_due_unix <= agent.clock_now() + 120);
    agent.advance(121);
    agent.wait_for("a poll two minutes later", |_| {
        server
            .server
            .state()
            .device("DEV-SETTINGS")
            .ok()
            .flatten()
            .map(|d| d.poll_count)
            > polls_before
    });
}

#[test]
fn a_docked_only_package_waits_for_a_docked_link() {
    let server = server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // A kiosk: the catalog assigns it the docked-only package (Flags 04 00 00 00).
    let mut settings = settings(dir.path(), &server.server.endpoint_url(), "KIOSK-7");
    settings.links.assume = dmagent::config::LinkAssume::Auto;
    let agent = TestAgent::start(dir, settings);
    agent.link_up("eth0");
    agent.wait_state("DEMO-APP", PackageState::Installed);
    let snapshot = agent.wait_for("the docked-only event to be scheduled", |s| {
        s.tasks
            .iter()
            .any(|t| t.id == TaskId::download("DEMO-DOCKED"))
    });
    let task = snapshot
        .tasks
        .iter()
        .find(|t| t.id == TaskId::download("DEMO-DOCKED"))
        .expect("task");
    assert_eq!(task.flags, 0x4);
    assert!(task.next_due_unix <= agent.clock_now(), "due, but parked");
    assert_eq!(
        agent.package("DEMO-DOCKED").map(|p| p.state),
        Some(PackageState::Pending)
    );
    assert!(messages(&server, "KIOSK-7", "DEMO-DOCKED").is_empty());
    assert_eq!(task.attempts, 0, "parking spends no retry");

    // The device is docked: a USB link appears.
    agent.link_up("usb0");
    agent.wait_state("DEMO-DOCKED", PackageState::Installed);
}
