//! Tests: `kill -9` of the real `dmagent run` binary mid-download,
//! mid-post-install and with messages in the outbox, then a restart on the
//! same state. No status message is lost, no post-install step completes
//! twice, and the download checkpoint is honoured.

use std::collections::HashSet;
use std::time::Duration;

use dm_server::{Faults, RunningServer, ServerConfig};

use crate::support::daemon::DaemonSetup;
use crate::support::server::{assign_only, make_catalog, messages, pattern};

const HUGE_LEN: usize = 4 << 20;

/// A catalog assigning only the packages written by `write` to every device.
fn server_with(
    packages: &[(&str, &str)],
    faults: Faults,
) -> (RunningServer, tempfile::TempDir, tempfile::TempDir) {
    let catalog = make_catalog();
    let ids: Vec<&str> = packages.iter().map(|(id, _)| *id).collect();
    assign_only(catalog.path(), &ids);
    std::fs::write(catalog.path().join("files/huge.bin"), pattern(HUGE_LEN)).expect("write");
    for (id, toml) in packages {
        std::fs::write(
            catalog
                .path()
                .join(format!("packages/{}.toml", id.to_lowercase())),
            toml,
        )
        .expect("write");
    }
    let state = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(catalog.path(), state.path());
    config.faults = faults;
    (dm_server::start(config).expect("server"), catalog, state)
}

/// Waits (bounded) until the file's text satisfies `done`, and returns it.
fn wait_for_file(path: &std::path::Path, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if done(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never got there: {text:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn report_ids_unique(server: &RunningServer, device: &str) {
    let statuses = server.state().statuses(device).expect("statuses");
    let ids: HashSet<_> = statuses.iter().map(|s| s.report_id.clone()).collect();
    assert_eq!(ids.len(), statuses.len(), "one stored message per ReportID");
}

fn package(status: &serde_json::Value, id: &str) -> serde_json::Value {
    status["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["id"] == id).cloned())
        .unwrap_or_default()
}

#[test]
fn kill_9_mid_download_resumes_from_the_checkpoint() {
    // 4 MiB at 1 MiB/s: checkpoints at every MiB while the test watches.
    let huge =
        "id = \"HUGE\"\nname = \"Huge\"\nfile = \"files/huge.bin\"\nbandwidth_limit = 1048576\n";
    let (server, _catalog, _state) = server_with(&[("HUGE", huge)], Faults::default());
    let setup = DaemonSetup::new(&server.endpoint_url(), "DEV-KILL-DL");
    let daemon = setup.start();
    setup.wait_for("2 MiB downloaded", |s| {
        package(s, "HUGE")["bytes_done"]
            .as_u64()
            .is_some_and(|b| b >= 2 << 20)
    });
    daemon.kill_9();
    // What the agent had received and written when it died (the page cache
    // survives a kill): everything past the resume offset is fetched again.
    let partial = setup.root().join("packages/HUGE/~PD-HUGE.part");
    let received = std::fs::metadata(&partial)
        .map(|m| m.len())
        .expect("partial data kept");

    let daemon = setup.start();
    setup.wait_for("HUGE installed", |s| {
        package(s, "HUGE")["state"] == "installed"
    });
    setup.wait_for("the reports", |s| {
        s["outbox"].as_array().is_some_and(Vec::is_empty)
    });
    let ids = messages(&server, "DEV-KILL-DL", "HUGE");
    assert_eq!(ids.iter().filter(|&&m| m == 11031).count(), 1, "{ids:?}");
    let offset = server
        .state()
        .statuses("DEV-KILL-DL")
        .expect("statuses")
        .into_iter()
        .filter(|s| s.message_id == 11030)
        .filter(|s| {
            s.parameters
                .iter()
                .any(|p| p.name == "Resume" && p.value == "true")
        })
        .find_map(|s| {
            s.parameters
                .iter()
                .find(|p| p.name == "Offset")
                .and_then(|p| p.value.parse::<u64>().ok())
        })
        .expect("the start after the restart says it resumes, and from where");
    let refetched = received.saturating_sub(offset);
    assert!(
        offset >= 1 << 20 && refetched <= (1 << 20) + 64 * 1024,
        "received {received} bytes before the kill, resumed at {offset}: {refetched} fetched again"
    );
    report_ids_unique(&server, "DEV-KILL-DL");
    drop(daemon);
}

#[test]
fn kill_9_mid_post_install_never_runs_the_step_twice() {
    let slow =
        "id = \"SLOW\"\nname = \"Slow step\"\nsource_files = false\nfile = \"files/tools.txt\"\n\
                destination = \"slow\"\n\
                command_line = \"/bin/sh -c 'echo start >> marks; sleep 2; echo done >> marks'\"\n";
    let (server, _catalog, _state) = server_with(&[("SLOW", slow)], Faults::default());
    let setup = DaemonSetup::new(&server.endpoint_url(), "DEV-KILL-PI");
    let daemon = setup.start();
    setup.wait_for("the step to start", |s| {
        package(s, "SLOW")["state"] == "installing"
    });
    daemon.kill_9();

    let daemon = setup.start();
    let status = setup.wait_for("the interrupted step to be reported", |s| {
        package(s, "SLOW")["state"] == "failed"
    });
    assert!(package(&status, "SLOW")["last_outcome"]
        .as_str()
        .is_some_and(|o| o.contains("not run a second time")));
    setup.wait_for("the reports", |s| {
        s["outbox"].as_array().is_some_and(Vec::is_empty)
    });
    // The step the kill interrupted outlives the agent (its process is not
    // the agent's) and completes once; the restarted agent never starts it again.
    let marks_path = setup.root().join("packages/slow/marks");
    let marks = wait_for_file(&marks_path, |m| m.lines().any(|l| l == "done"));
    assert_eq!(
        marks.lines().filter(|l| *l == "start").count(),
        1,
        "marks: {marks:?}"
    );
    assert_eq!(messages(&server, "DEV-KILL-PI", "SLOW"), [11036]);
    report_ids_unique(&server, "DEV-KILL-PI");
    drop(daemon);
}

#[test]
fn kill_9_with_messages_in_the_outbox_loses_none() {
    let big = "id = \"BIG\"\nname = \"Big\"\nfile = \"files/big.bin\"\n";
    // Every answer is late, so messages wait in the outbox when the kill comes.
    let (server, _catalog, _state) = server_with(
        &[("BIG", big)],
        Faults {
            delay_ms: 1500,
            ..Faults::default()
        },
    );
    let setup = DaemonSetup::new(&server.endpoint_url(), "DEV-KILL-OB");
    let daemon = setup.start();
    setup.wait_for("a message in the outbox", |s| {
        s["outbox"].as_array().is_some_and(|o| !o.is_empty())
    });
    daemon.kill_9();

    server.faults().set(Faults::default());
    let daemon = setup.start();
    setup.wait_for("BIG installed", |s| {
        package(s, "BIG")["state"] == "installed"
    });
    setup.wait_for("the outbox to drain", |s| {
        s["outbox"].as_array().is_some_and(Vec::is_empty)
    });
    let ids = messages(&server, "DEV-KILL-OB", "BIG");
    assert!(ids.contains(&11030) && ids.ends_with(&[11031]), "{ids:?}");
    report_ids_unique(&server, "DEV-KILL-OB");
    drop(daemon);
}
