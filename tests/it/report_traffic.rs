//! The measurement behind BENCHMARKS.md's "Report traffic" section: one
//! simulated day (an injected clock stepped poll by poll) of a real agent
//! against a real dm-server, counting the request bodies the server
//! received, with reports sent at every interval (X9 `sendUnchanged`, the
//! old behaviour) and only when changed (the default). Not a check of the
//! suite: run it with
//!
//! ```sh
//! cargo test -p dmagent --test it report_traffic -- --ignored --nocapture
//! ```

use std::collections::BTreeMap;

use dm_server::http::received::Tally;
use dmagent::store::TaskId;

use crate::support::agent::{settings, TestAgent};
use crate::support::server::{self, TestServer};

/// The sample catalog's poll interval.
const POLL_SECS: u64 = 300;
const DAY_SECS: u64 = 86_400;

fn set_section(server: &TestServer, section: &str, body: &str) {
    let path = server.catalog.path().join("catalog.toml");
    let text = std::fs::read_to_string(&path).expect("read catalog");
    let start = text.find(&format!("[{section}]")).expect("section present");
    let end = text[start + 1..]
        .find("\n[")
        .map_or(text.len(), |i| start + 1 + i);
    let text = format!("{}[{section}]\n{body}\n{}", &text[..start], &text[end..]);
    std::fs::write(&path, text).expect("write catalog");
}

/// One day; `hourly` enables both inventories every hour (software over the
/// agent's plugin directory), otherwise the sample catalog's report settings
/// stand (machine inventory daily, software off).
fn one_day(hourly: bool, send_unchanged: bool) -> BTreeMap<String, Tally> {
    let server = server::start();
    // The packages' traffic does not depend on the report policy: left out.
    server::assign_only(server.catalog.path(), &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path(), &server.server.endpoint_url(), "DEV-TRAFFIC");
    let interval = if hourly {
        "0000-00-00 01:00:00"
    } else {
        "0000-00-01 00:00:00"
    };
    set_section(
        &server,
        "machine_inventory",
        &format!(
            "version = \"1\"\nenabled = true\ninterval = \"{interval}\"\nsend_unchanged = {send_unchanged}"
        ),
    );
    if hourly {
        set_section(
            &server,
            "software_inventory",
            &format!(
                "version = \"1\"\nenabled = true\ninterval = \"{interval}\"\n\
                 send_unchanged = {send_unchanged}\n\
                 file_filters = [{{ filter = \"*.so\", path = \"{}\", recursive = true }}]",
                settings.paths.plugin_dir.display()
            ),
        );
    }
    server.server.catalog().reload().expect("reload");
    let agent = TestAgent::start(dir, settings);
    let start = agent.clock_now();
    loop {
        let now = agent.clock_now();
        // The poll and any report due have run before the clock moves on,
        // as they would in the five real minutes between two polls.
        agent.wait_for("the poll and the reports due", |s| {
            s.tasks.iter().any(|t| t.id == TaskId::poll())
                && s.tasks.iter().all(|t| t.next_due_unix > now)
        });
        if now + POLL_SECS >= start + DAY_SECS {
            break;
        }
        agent.advance(POLL_SECS);
    }
    // Whatever the last step queued is delivered before counting.
    agent.wait_for("the report tasks to settle", |s| {
        s.tasks
            .iter()
            .filter(|t| t.id.as_str().starts_with("report:"))
            .all(|t| t.next_due_unix > agent.clock_now())
    });
    agent.wait_delivered();
    server.server.received()
}

fn reports(t: &BTreeMap<String, Tally>) -> (u64, u64) {
    t.iter()
        .filter(|(k, _)| k.starts_with("Report/"))
        .fold((0, 0), |(n, b), (_, t)| (n + t.requests, b + t.body_bytes))
}

fn total(t: &BTreeMap<String, Tally>) -> u64 {
    t.values().map(|t| t.body_bytes).sum()
}

#[test]
#[ignore = "a measurement (BENCHMARKS.md), not a check; run with --ignored --nocapture"]
fn report_traffic() {
    println!("| settings | reports | requests | report bytes | all request bytes |");
    println!("|---|---|---|---|---|");
    for (hourly, label) in [
        (
            false,
            "sample catalog (polls 5 min, machine inventory daily)",
        ),
        (true, "sample catalog, both inventories hourly"),
    ] {
        let every = one_day(hourly, true);
        let changed = one_day(hourly, false);
        for (policy, t) in [("every interval", &every), ("only when changed", &changed)] {
            let (n, bytes) = reports(t);
            println!("| {label} | {policy} | {n} | {bytes} | {} |", total(t));
        }
        let (_, every_bytes) = reports(&every);
        let (_, changed_bytes) = reports(&changed);
        println!(
            "| {label} | saving | | {} ({:.0} %) | |",
            every_bytes.saturating_sub(changed_bytes),
            100.0 * every_bytes.saturating_sub(changed_bytes) as f64 / every_bytes.max(1) as f64
        );
        for (k, v) in &changed {
            println!(
                "<!-- only when changed: {k}: {} requests, {} bytes -->",
                v.requests, v.body_bytes
            );
        }
        for (k, v) in &every {
            println!(
                "<!-- every interval: {k}: {} requests, {} bytes -->",
                v.requests, v.body_bytes
            );
        }
        assert!(changed_bytes <= every_bytes);
    }
}
