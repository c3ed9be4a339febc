//! Tests: step 5 of the mission end to end — report settings from the poll
//! response schedule report tasks, the collector plugins build the reports,
//! the reporter delivers them, the reference server stores them.

use dm_server::RunningServer;
use dmagent::protocol::ReportType;
use dmagent::store::TaskId;

use crate::support::agent::{settings, TestAgent};
use crate::support::server::{self, TestServer};

/// The latest inventory of `kind` (`machine`, `software`) the server holds
/// for `device`: when it arrived, and the document.
fn latest(server: &RunningServer, device: &str, kind: &str) -> Option<(String, serde_json::Value)> {
    server
        .state()
        .inventories(device)
        .expect("inventories")
        .into_iter()
        .find(|r| r.kind == kind)
        .map(|r| (r.received_at, r.document))
}

/// When the latest inventory of `kind` arrived.
fn arrived(server: &RunningServer, device: &str, kind: &str) -> Option<String> {
    latest(server, device, kind).map(|(at, _)| at)
}

fn start_agent(server: &TestServer, device: &str) -> TestAgent {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path(), &server.server.endpoint_url(), device);
    TestAgent::start(dir, settings)
}

/// Replaces one `[section]` of the test catalog's `catalog.toml` and reloads.
fn set_section(server: &TestServer, section: &str, body: &str) {
    let path = server.catalog.path().join("catalog.toml");
    let text = std::fs::read_to_string(&path).expect("read catalog");
    let start = text.find(&format!("[{section}]")).expect("section present");
    let end = text[start + 1..]
        .find("\n[")
        .map_or(text.len(), |i| start + 1 + i);
    let text = format!("{}[{section}]\n{body}\n{}", &text[..start], &text[end..]);
    std::fs::write(&path, text).expect("write catalog");
    server.server.catalog().reload().expect("reload");
}

fn item_names(document: &serde_json::Value) -> Vec<String> {
    document["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["name"].as_str().map(str::to_owned))
        .collect()
}

/// The properties of every item named `name`, as name → value maps.
fn item_properties(
    document: &serde_json::Value,
    name: &str,
) -> Vec<std::collections::BTreeMap<String, String>> {
    document["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["name"] == name)
        .map(|i| {
            i["properties"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    Some((
                        p["name"].as_str()?.to_owned(),
                        p["value"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .collect()
}

/// The `File` entry named `name` anywhere in a `FileReport` document.
fn find_file<'a>(value: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("name").and_then(|n| n.as_str()) == Some(name) && map.contains_key("size") {
                return Some(value);
            }
            map.values().find_map(|v| find_file(v, name))
        }
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_file(v, name)),
        _ => None,
    }
}

/// `MemTotal` of `/proc/meminfo`, in KB.
fn mem_total_kb() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("MemTotal")
}

#[test]
fn machine_inventory_arrives_follows_its_interval_and_stops_when_disabled() {
    // The sample catalog enables the machine inventory daily.
    let server = server::start();
    let agent = start_agent(&server, "DEV-MACHINE");
    agent.wait_for("the first machine inventory", |_| {
        arrived(&server.server, "DEV-MACHINE", "machine").is_some()
    });
    let (_, document) = latest(&server.server, "DEV-MACHINE", "machine").expect("inventory");
    let names = item_names(&document);
    for expected in [
        "Device_System",
        "Device_OS",
        "Device_Memory",
        "Device_FileSystem",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    // Values match the machine it ran on.
    let memory = document["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == "Device_Memory"))
        .expect("Device_Memory");
    let total: u64 = memory["properties"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "Total"))
        .and_then(|p| p["value"].as_str())
        .and_then(|v| v.parse().ok())
        .expect("Total");
    assert_eq!(
        total,
        mem_total_kb(),
        "Device_Memory/Total is MemTotal in KB"
    );
    // One Device_FileSystem per volume, sized as statvfs says (`df -k`).
    let volumes = item_properties(&document, "Device_FileSystem");
    assert!(!volumes.is_empty());
    for volume in &volumes {
        let name = volume.get("Name").expect("Name");
        let size: u64 = volume
            .get("Size")
            .and_then(|v| v.parse().ok())
            .expect("Size");
        let df = std::process::Command::new("df")
            .args(["-k", "--output=size"])
            .arg(name)
            .output()
            .expect("df");
        let df_size: u64 = String::from_utf8_lossy(&df.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("df of {name}: {df:?}"));
        assert_eq!(
            size, df_size,
            "Device_FileSystem {name}: Size in KB as statvfs reports it"
        );
    }
    // Device_Network for each interface that is up (when the machine has one).
    let up = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten().filter(|e| e.file_name() != "lo").any(|e| {
                std::fs::read_to_string(e.path().join("operstate")).is_ok_and(|s| s.trim() == "up")
            })
        })
        .unwrap_or(false);
    if up {
        assert!(
            names.iter().any(|n| n == "Device_Network"),
            "an interface is up: {names:?}"
        );
    }
    let task = agent
        .snapshot()
        .tasks
        .into_iter()
        .find(|t| t.id == TaskId::report(ReportType::MachineInventory))
        .expect("report task");
    assert_eq!(task.period_secs, Some(86_400));

    // A new interval (version 2) changes the cadence: hourly, every one sent
    // (X9 sendUnchanged: two readings of the machine may be identical).
    set_section(
        &server,
        "machine_inventory",
        "version = \"2\"\nenabled = true\ninterval = \"0000-00-00 01:00:00\"\nsend_unchanged = true",
    );
    let first = arrived(&server.server, "DEV-MACHINE", "machine");
    agent.advance(301);
    agent.wait_for("the hourly cadence", |s| {
        s.tasks.iter().any(|t| {
            t.id == TaskId::report(ReportType::MachineInventory) && t.period_secs == Some(3600)
        })
    });
    // The first run follows the poll that changed the settings.
    agent.wait_for("the report due with the new settings", |_| {
        arrived(&server.server, "DEV-MACHINE", "machine") != first
    });
    agent.wait_for("the next occurrence to be scheduled", |s| {
        s.tasks.iter().any(|t| {
            t.id == TaskId::report(ReportType::MachineInventory)
                && t.next_due_unix > agent.clock_now()
        })
    });
    let second = arrived(&server.server, "DEV-MACHINE", "machine");
    agent.advance(3601);
    agent.wait_for("the next hourly report", |_| {
        arrived(&server.server, "DEV-MACHINE", "machine") != second
    });

    // Disabled (the poll comes before the next hourly report is due): the
    // task goes, nothing more arrives.
    let now = agent.clock_now();
    agent.wait_for("the next hourly occurrence to be scheduled", |s| {
        s.tasks
            .iter()
            .any(|t| t.id == TaskId::report(ReportType::MachineInventory) && t.next_due_unix > now)
    });
    set_section(
        &server,
        "machine_inventory",
        "version = \"3\"\nenabled = false",
    );
    agent.advance(301);
    agent.wait_for("the report task to stop", |s| {
        !s.tasks
            .iter()
            .any(|t| t.id == TaskId::report(ReportType::MachineInventory))
    });
    let last = arrived(&server.server, "DEV-MACHINE", "machine");
    agent.advance(2 * 86_400);
    let now = agent.clock_now();
    agent.wait_for("the next poll", |s| {
        s.tasks
            .iter()
            .any(|t| t.id == TaskId::poll() && t.next_due_unix > now)
    });
    assert_eq!(
        arrived(&server.server, "DEV-MACHINE", "machine"),
        last,
        "nothing more after disabling"
    );
}

/// Software inventory reports the server received.
fn software_reports(server: &TestServer) -> u64 {
    server
        .server
        .received()
        .get("Report/SoftwareInventory")
        .map_or(0, |t| t.requests)
}

/// Waits until the report task of `report` was run at or after `now` (its
/// next occurrence lies after `now`): its decision to queue or not is committed.
fn wait_report_ran(agent: &TestAgent, report: ReportType, now: u64) {
    agent.wait_for("the report task to run", |s| {
        s.tasks
            .iter()
            .any(|t| t.id == TaskId::report(report) && t.next_due_unix > now)
    });
}

#[test]
fn an_unchanged_inventory_is_sent_again_only_when_it_changes_or_the_server_asks() {
    use sha2::Digest;
    let tree = tempfile::tempdir().expect("tree");
    let root = tree.path().join("app");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("libone.so"), vec![1u8; 100]).expect("write");
    // Reading the directory once now settles its access time (relatime), so
    // that only what the test changes changes the report.
    let _ = std::fs::read_dir(&root).map(|d| d.count());
    let section = |version: u32, send_unchanged: bool| {
        format!(
            "version = \"{version}\"\nenabled = true\ninterval = \"0000-00-00 01:00:00\"\n\
             send_unchanged = {send_unchanged}\n\
             file_filters = [{{ filter = \"*.so\", path = \"{}\", recursive = true }}]",
            root.display()
        )
    };
    let server = server::start();
    // No packages, daily polls: between polls only the report talks to the server.
    server::assign_only(server.catalog.path(), &[]);
    set_section(
        &server,
        "client_settings",
        "version = \"1\"\npoll_interval = \"0000-00-01 00:00:00\"\n\
         failure_retry_count = 5\nfailure_retry_interval = \"0000-00-00 00:00:01\"",
    );
    set_section(
        &server,
        "machine_inventory",
        "version = \"1\"\nenabled = false",
    );
    set_section(&server, "software_inventory", &section(1, false));
    // Without dpkg-inventory: the package test may change the dpkg database.
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path(), &server.server.endpoint_url(), "DEV-UNCHANGED");
    let agent = TestAgent::start_without(dir, settings, &["dpkg_inventory.so"]);
    agent.wait_for("the first software inventory", |_| {
        software_reports(&server) == 1
    });
    let accepted = agent.wait_for("its digest", |s| {
        s.outbox.is_empty()
            && agent
                .store
                .report_digest(ReportType::SoftwareInventory)
                .expect("digest")
                .is_some()
    });
    assert!(accepted.outbox.is_empty());

    // An hour later: the same content, so nothing is queued or sent.
    let now = agent.clock_now();
    agent.advance(3601);
    wait_report_ran(&agent, ReportType::SoftwareInventory, now + 3601);
    let after = agent.wait_delivered();
    assert!(
        after.outbox.is_empty(),
        "nothing queued: {:?}",
        after.outbox
    );
    assert_eq!(
        software_reports(&server),
        1,
        "an unchanged report is not sent"
    );

    // A new library: the next report is sent. The server is unavailable at
    // first: while the report waits in the outbox, the stored digest is still
    // the old one; it becomes this report's only after the 2xx.
    std::fs::write(root.join("libtwo.so"), vec![2u8; 200]).expect("write");
    let old_digest = agent
        .store
        .report_digest(ReportType::SoftwareInventory)
        .expect("digest");
    server.server.faults().set(dm_server::faults::Faults {
        unavailable_count: 3,
        ..Default::default()
    });
    agent.advance(3601);
    let queued = agent.wait_for("the changed report to be queued", |s| !s.outbox.is_empty());
    let xml = match &queued.outbox[0].body {
        dmagent::store::OutboxBody::Report { xml, .. } => xml.clone(),
        other => panic!("a report, not {other:?}"),
    };
    assert_eq!(
        agent
            .store
            .report_digest(ReportType::SoftwareInventory)
            .expect("digest"),
        old_digest,
        "not accepted yet: the digest is the previous report's"
    );
    agent.wait_for("the changed report to arrive", |_| {
        software_reports(&server) == 2
    });
    let want: [u8; 32] = sha2::Sha256::digest(&xml).into();
    agent.wait_for("the new digest", |_| {
        agent
            .store
            .report_digest(ReportType::SoftwareInventory)
            .expect("digest")
            == Some(want)
    });
    let text = latest(&server.server, "DEV-UNCHANGED", "software")
        .expect("inventory")
        .1
        .to_string();
    assert!(text.contains("libtwo.so"), "{text}");

    // The server asks for every interval (X9): new settings bring one report,
    // and the unchanged one goes out at every interval again.
    agent.wait_delivered();
    set_section(&server, "software_inventory", &section(2, true));
    agent.advance(86_401);
    agent.wait_for("the report after the new settings", |_| {
        software_reports(&server) == 3
    });
    let now = agent.clock_now();
    wait_report_ran(&agent, ReportType::SoftwareInventory, now);
    agent.advance(3601);
    agent.wait_for("the unchanged report, sent as asked", |_| {
        software_reports(&server) == 4
    });
}

#[test]
fn software_inventory_of_a_tree_with_filters() {
    let tree = tempfile::tempdir().expect("tree");
    let root = tree.path();
    std::fs::create_dir_all(root.join("lib/plugins")).expect("mkdir");
    std::fs::write(root.join("lib/libone.so"), vec![1u8; 100]).expect("write");
    std::fs::write(root.join("lib/readme.txt"), b"not a library").expect("write");
    std::fs::write(root.join("lib/plugins/libtwo.so"), vec![2u8; 2500]).expect("write");

    let server = server::start();
    let filters = |recursive: bool| {
        format!(
            "version = \"{}\"\nenabled = true\ninterval = \"0000-00-01 00:00:00\"\n\
             file_filters = [{{ filter = \"*.so\", path = \"{}\", recursive = {recursive} }}]",
            if recursive { 1 } else { 2 },
            root.join("lib").display()
        )
    };
    set_section(&server, "software_inventory", &filters(true));
    let agent = start_agent(&server, "DEV-SOFTWARE");
    agent.wait_for("the software inventory", |_| {
        arrived(&server.server, "DEV-SOFTWARE", "software").is_some()
    });
    let (first, document) = latest(&server.server, "DEV-SOFTWARE", "software").expect("inventory");
    let text = document.to_string();
    assert!(
        text.contains("libone.so") && text.contains("libtwo.so"),
        "{text}"
    );
    assert!(
        !text.contains("readme.txt"),
        "the filter keeps *.so only: {text}"
    );
    assert!(
        text.contains("\"size\":2500") && text.contains("\"size\":100"),
        "sizes reported: {text}"
    );

    // Times as the file system has them (UTC).
    let mtime = std::fs::metadata(root.join("lib/libone.so"))
        .and_then(|m| m.modified())
        .expect("mtime")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let expected =
        serde_json::to_value(dmagent::protocol::CivilTime::from_unix(mtime as i64).expect("time"))
            .expect("json");
    let entry = find_file(&document, "libone.so").expect("libone.so in the report");
    assert_eq!(entry["last_modified"], expected, "{entry}");

    // Not recursive: the nested library is left out.
    set_section(&server, "software_inventory", &filters(false));
    agent.advance(301);
    agent.wait_for("the non-recursive report", |_| {
        arrived(&server.server, "DEV-SOFTWARE", "software").is_some_and(|at| at != first)
    });
    let text = latest(&server.server, "DEV-SOFTWARE", "software")
        .expect("inventory")
        .1
        .to_string();
    assert!(
        text.contains("libone.so") && !text.contains("libtwo.so"),
        "{text}"
    );
}

#[test]
fn a_collector_that_panics_or_hangs_does_not_stop_the_others() {
    let server = server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(
        dir.path(),
        &server.server.endpoint_url(),
        "DEV-BADCOLLECTOR",
    );
    settings.plugins.call_timeout = std::time::Duration::from_secs(2);
    let agent = TestAgent::start_with_fixtures(
        dir,
        settings,
        &[
            "dmagent-fixture-panic-collector",
            "dmagent-fixture-hang-collector",
        ],
    );
    agent.wait_for("the machine inventory", |_| {
        arrived(&server.server, "DEV-BADCOLLECTOR", "machine").is_some()
    });
    let (_, document) = latest(&server.server, "DEV-BADCOLLECTOR", "machine").expect("inventory");
    let names = item_names(&document);
    assert!(
        names.iter().any(|n| n == "Device_System"),
        "the good collector's items: {names:?}"
    );
    // The failures show in `dmagent status` (the report task's last error).
    let snapshot = agent.wait_for("the collector failures to be recorded", |s| {
        s.tasks
            .iter()
            .any(|t| t.id == TaskId::report(ReportType::MachineInventory) && t.last_error.is_some())
    });
    let task = snapshot
        .tasks
        .iter()
        .find(|t| t.id == TaskId::report(ReportType::MachineInventory))
        .expect("task");
    let error = task.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("panic-collector") && error.contains("hang-collector"),
        "{error}"
    );
}

#[test]
fn file_collection_streams_a_200_mib_file_with_flat_memory() {
    use crate::support::daemon::DaemonSetup;
    use sha2::{Digest, Sha256};
    use std::io::Write;

    const SIZE: usize = 200 << 20;
    let source_dir = tempfile::tempdir().expect("tempdir");
    let source = source_dir.path().join("capture.bin");
    let mut hasher = Sha256::new();
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&source).expect("create"));
        let block = crate::support::server::pattern(1 << 20);
        for i in 0..SIZE / block.len() {
            let mut chunk = block.clone();
            chunk[0] = i as u8;
            hasher.update(&chunk);
            file.write_all(&chunk).expect("write");
        }
    }
    let expected: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    let server = server::start_with(|c| c.max_file_body = 1 << 30);
    let setup = DaemonSetup::new(&server.server.endpoint_url(), "DEV-FILES");
    let daemon = setup.start();
    setup.wait_for("the first cycle", |s| {
        s["packages"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["id"] == "BIG" && p["state"] == "installed")
        }) && s["outbox"].as_array().is_some_and(Vec::is_empty)
    });
    let baseline = daemon.peak_rss_kib();

    set_section(
        &server,
        "file_collection",
        &format!(
            "version = \"2\"\nenabled = true\ninterval = \"0000-00-01 00:00:00\"\n\
             file_filters = [{{ filter = \"*.bin\", path = \"{}\" }}]",
            source_dir.path().display()
        ),
    );
    let poll = std::process::Command::new(env!("CARGO_BIN_EXE_dmagent"))
        .args(["--no-system-config", "--config"])
        .arg(&setup.config)
        .arg("poll-now")
        .output()
        .expect("poll-now");
    assert!(poll.status.success());
    setup.wait_for("the upload", |_| {
        server
            .server
            .state()
            .files("DEV-FILES")
            .is_ok_and(|f| !f.is_empty())
    });
    let stored = server
        .server
        .state()
        .files("DEV-FILES")
        .expect("files")
        .remove(0);
    assert_eq!(stored.size, SIZE as u64);
    assert_eq!(stored.sha256, expected, "arrived intact");
    let peak = daemon.peak_rss_kib();
    eprintln!(
        "file collection of {SIZE} bytes: agent peak RSS {baseline} KiB before, {peak} KiB after"
    );
    assert!(
        peak < baseline + 16 * 1024,
        "streamed, not buffered: peak {peak} KiB after the upload, {baseline} KiB before"
    );
}
