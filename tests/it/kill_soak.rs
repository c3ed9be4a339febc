//! The random-kill soak (issue 15; `scripts/kill-soak.sh`): the real
//! `dmagent run` works through rounds of packages (a download with a
//! command, one whose command fails, one without a command, all dropped when
//! the next round is assigned), a recurring `Execute Only` job every minute
//! and inventory reports, while it is killed with SIGKILL at random moments
//! and started again on the same state. Then it is left to finish, and the
//! reference server's records are checked:
//!
//! - lost messages: status messages the agent logged as committed that never
//!   reached the server, and events left without their end;
//! - duplicated messages: a second download end or command end inside one
//!   event (a phase done twice), not the same message delivered again (that
//!   one has the same `ReportID` and is dropped by the server; it is counted
//!   as "resent");
//! - duplicated post-install runs: runs of a command (each run appends a
//!   line to its `marks` file) beyond the command ends reported;
//! - bytes fetched again: package bytes the server sent beyond one copy of
//!   each package.
//!
//! Ignored by default (it runs for minutes): `DMAGENT_SOAK_KILLS` kills
//! (default 200), `DMAGENT_SOAK_SEED` for the random delays.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use dm_server::{RunningServer, ServerConfig};

use crate::support::daemon::{Daemon, DaemonSetup};
use crate::support::server::{make_catalog, pattern};

const A_LEN: usize = 1 << 20;
const B_LEN: usize = 128 * 1024;
const C_LEN: usize = 256 * 1024;

/// Deterministic delays: xorshift64.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The round's three package IDs.
fn round_ids(round: u32) -> [String; 3] {
    ["A", "B", "C"].map(|k| format!("R{round:04}-{k}"))
}

/// Writes the catalog for `round`: its three packages and the recurring job,
/// nothing else (the packages of earlier rounds are dropped).
fn write_round(catalog: &Path, round: u32) {
    let packages = catalog.join("packages");
    for entry in std::fs::read_dir(&packages).expect("packages").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('r') && name != "rec.toml" {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let [a, b, c] = round_ids(round);
    let defs = [
        (
            &a,
            format!(
                "file = \"files/soak-a.bin\"\nbandwidth_limit = 2097152\ndestination = \"{}\"\n\
                 command_line = \"/bin/sh -c 'echo run >> marks'\"\n",
                a.to_lowercase()
            ),
        ),
        (
            &b,
            format!(
                "file = \"files/soak-b.bin\"\ndestination = \"{}\"\n\
                 command_line = \"/bin/sh -c 'echo run >> marks; exit 3'\"\n",
                b.to_lowercase()
            ),
        ),
        (
            &c,
            format!(
                "file = \"files/soak-c.bin\"\ndestination = \"{}\"\n",
                c.to_lowercase()
            ),
        ),
    ];
    for (id, rest) in defs {
        std::fs::write(
            packages.join(format!("{}.toml", id.to_lowercase())),
            format!("id = \"{id}\"\nname = \"{id}\"\n{rest}"),
        )
        .expect("write package");
    }
    let text = format!(
        "[client_settings]\nversion = \"1\"\npoll_interval = \"0000-00-00 00:05:00\"\n\
         failure_retry_count = 5\nfailure_retry_interval = \"0000-00-00 00:00:01\"\n\n\
         [machine_inventory]\nversion = \"1\"\nenabled = true\ninterval = \"0000-00-00 00:01:00\"\n\n\
         [software_inventory]\nversion = \"1\"\nenabled = true\ninterval = \"0000-00-00 00:01:00\"\n\n\
         [file_collection]\nversion = \"1\"\nenabled = false\n\n\
         [[assign]]\nname = \"soak\"\nall = true\npackages = [\"REC\", \"{a}\", \"{b}\", \"{c}\"]\n"
    );
    std::fs::write(catalog.join("catalog.toml"), text).expect("write catalog");
}

fn setup_catalog() -> tempfile::TempDir {
    let catalog = make_catalog();
    let dir = catalog.path();
    for (name, len) in [
        ("soak-a.bin", A_LEN),
        ("soak-b.bin", B_LEN),
        ("soak-c.bin", C_LEN),
    ] {
        std::fs::write(dir.join("files").join(name), pattern(len)).expect("write");
    }
    // Sample packages other than ours stay out of the catalog.
    for entry in std::fs::read_dir(dir.join("packages"))
        .expect("packages")
        .flatten()
    {
        std::fs::remove_file(entry.path()).expect("remove");
    }
    std::fs::write(
        dir.join("packages/rec.toml"),
        "id = \"REC\"\nname = \"Recurring\"\nfile = \"files/recurring.sh\"\ndestination = \"rec\"\n\
         command_line = \"/bin/sh -c 'echo run >> marks'\"\n\
         [recurrence]\ninterval = \"0000-00-00 00:01:00\"\nbehavior = \"Execute Only\"\n",
    )
    .expect("write");
    write_round(dir, 0);
    catalog
}

fn state_of(status: &serde_json::Value, id: &str) -> String {
    status["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["id"] == id))
        .and_then(|p| p["state"].as_str())
        .unwrap_or("absent")
        .to_owned()
}

/// The round's packages are done and everything is delivered.
fn round_settled(status: &serde_json::Value, round: u32) -> bool {
    let [a, b, c] = round_ids(round);
    ["installed", "failed"].contains(&state_of(status, &a).as_str())
        && state_of(status, &b) == "failed"
        && state_of(status, &c) == "installed"
        && status["outbox"].as_array().is_some_and(Vec::is_empty)
}

/// Report IDs of the status messages the agent logged as committed.
fn committed_report_ids(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("status message committed"))
        .filter_map(|l| {
            let start = l.find("report_id")? + "report_id".len();
            let rest = strip_ansi(&l[start..]);
            let rest = rest.trim_start_matches('=');
            Some(rest.split_whitespace().next()?.to_owned())
        })
        .collect()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The figures the soak prints.
#[derive(Debug, Default)]
struct Tally {
    kills: u64,
    rounds: u32,
    stored: usize,
    lost: usize,
    duplicated: usize,
    duplicated_runs: usize,
    resent: u64,
    bytes_refetched: u64,
    recurring_runs: usize,
    reports: usize,
}

/// Splits one package's messages into events and counts what is wrong: an
/// event is one or more starts (11030, again after each restart), then
/// 11031 and, for a package with a command, one command end; or 11032.
fn events(messages: &[u32], has_command: bool) -> (usize, usize, usize) {
    let (mut ended, mut duplicated, mut lost) = (0, 0, 0);
    let mut downloaded = 0;
    let mut open = false;
    for &m in messages {
        match m {
            11030 => {
                open = true;
            }
            11031 => {
                downloaded += 1;
                if downloaded > 1 {
                    duplicated += 1;
                }
                if !has_command {
                    ended += 1;
                    open = false;
                    downloaded = 0;
                }
            }
            11032 => {
                ended += 1;
                open = false;
                downloaded = 0;
            }
            11035 | 11036 => {
                if downloaded == 0 {
                    // A command end without its download end in this event.
                    duplicated += 1;
                } else {
                    ended += 1;
                }
                open = false;
                downloaded = 0;
            }
            _ => {}
        }
    }
    if open || downloaded > 0 {
        lost += 1;
    }
    (ended, duplicated, lost)
}

fn marks(root: &Path, package: &str) -> usize {
    std::fs::read_to_string(
        root.join("packages")
            .join(package.to_lowercase())
            .join("marks"),
    )
    .map(|m| m.lines().count())
    .unwrap_or(0)
}

fn tally(
    server: &RunningServer,
    setup: &DaemonSetup,
    device: &str,
    rounds: u32,
    kills: u64,
) -> Tally {
    let statuses = server.state().statuses(device).expect("statuses");
    let stored: HashSet<&str> = statuses
        .iter()
        .filter_map(|s| s.report_id.as_deref())
        .collect();
    let committed = committed_report_ids(&setup.log());
    assert!(!committed.is_empty(), "the log names no committed message");
    let mut t = Tally {
        kills,
        rounds,
        stored: statuses.len(),
        lost: committed
            .iter()
            .filter(|r| !stored.contains(r.as_str()))
            .count(),
        resent: server.duplicate_statuses(),
        ..Tally::default()
    };
    let mut by_package: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for s in &statuses {
        by_package
            .entry(&s.package_id)
            .or_default()
            .push(s.message_id);
    }
    let root = setup.root();
    let mut bytes_once = 0u64;
    for (id, messages) in &by_package {
        if *id == "REC" {
            let ends = messages
                .iter()
                .filter(|&&m| m == 11035 || m == 11036)
                .count();
            let runs = marks(root, "rec");
            t.recurring_runs = runs;
            t.duplicated_runs += runs.saturating_sub(ends);
            if messages.contains(&11031) {
                bytes_once += std::fs::metadata(server_file(server, "recurring.sh"))
                    .map(|m| m.len())
                    .unwrap_or(0);
            }
            continue;
        }
        let has_command = !id.ends_with("-C");
        let (ended, duplicated, lost) = events(messages, has_command);
        t.duplicated += duplicated;
        t.lost += lost;
        if has_command {
            t.duplicated_runs += marks(root, id).saturating_sub(ended);
        }
        if messages.contains(&11031) {
            bytes_once += match id.rsplit('-').next() {
                Some("A") => A_LEN,
                Some("B") => B_LEN,
                _ => C_LEN,
            } as u64;
        }
    }
    t.bytes_refetched = server.bytes_served().saturating_sub(bytes_once);
    t.reports = server
        .state()
        .inventories(device)
        .expect("inventories")
        .len();
    t
}

fn server_file(_server: &RunningServer, name: &str) -> std::path::PathBuf {
    crate::support::server::sample_catalog()
        .join("files")
        .join(name)
}

#[test]
#[ignore = "minutes long: scripts/kill-soak.sh"]
fn kill_soak() {
    let kills = env_u64("DMAGENT_SOAK_KILLS", 200);
    let mut rng = Rng(env_u64("DMAGENT_SOAK_SEED", 0x0005_eed0_fd15_ea5e).max(1));
    let catalog = setup_catalog();
    let server_state = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(catalog.path(), server_state.path());
    config.workers = 1;
    config.catalog_poll_ms = 100;
    let server = dm_server::start(config).expect("server");
    let device = "DEV-SOAK";
    let setup = DaemonSetup::new(&server.endpoint_url(), device).with_private_binary();
    let started = Instant::now();

    let mut round = 0u32;
    let mut rotate_pending = false;
    let mut daemon: Daemon = setup.spawn_with_env(&[]);
    for k in 0..kills {
        // Up to 3 s of life, often less than a start-up takes.
        let life = Duration::from_millis(50 + rng.below(2950));
        let until = Instant::now() + life;
        while Instant::now() < until {
            if let Some(status) = setup.status() {
                if !rotate_pending && round_settled(&status, round) {
                    round += 1;
                    write_round(catalog.path(), round);
                    rotate_pending = true;
                }
            }
            if rotate_pending {
                // The server reloads its catalog every 100 ms.
                std::thread::sleep(Duration::from_millis(150));
                rotate_pending = !setup.poll_now();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon.kill_9();
        if k % 50 == 49 {
            eprintln!("{} kills, round {round}, {:?}", k + 1, started.elapsed());
        }
        daemon = setup.spawn_with_env(&[]);
    }

    // Left alone: the round in progress finishes and everything is delivered.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if rotate_pending {
            std::thread::sleep(Duration::from_millis(150));
            rotate_pending = !setup.poll_now();
        }
        if setup.status().is_some_and(|s| round_settled(&s, round)) && !rotate_pending {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never finished round {round} after the kills; log tail:\n{}",
            tail(&setup.log())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(daemon);
    if let Ok(keep) = std::env::var("DMAGENT_SOAK_KEEP_LOG") {
        std::fs::write(&keep, setup.log()).expect("keep the log");
    }
    let t = tally(&server, &setup, device, round, kills);
    println!(
        "kill soak: {} kills in {:.0} s, {} rounds of 3 packages, {} status messages stored, \
         {} resent and dropped by ReportID, {} inventory reports, {} recurring runs",
        t.kills,
        started.elapsed().as_secs_f64(),
        t.rounds + 1,
        t.stored,
        t.resent,
        t.reports,
        t.recurring_runs
    );
    println!("| kills | lost messages | duplicated messages | duplicated post-install runs | bytes fetched again |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} ({:.0} per kill) |",
        t.kills,
        t.lost,
        t.duplicated,
        t.duplicated_runs,
        t.bytes_refetched,
        t.bytes_refetched as f64 / t.kills.max(1) as f64
    );
    assert_eq!(
        (t.lost, t.duplicated, t.duplicated_runs),
        (0, 0, 0),
        "lost / duplicated / duplicated runs: {t:?}"
    );
    assert!(t.rounds >= 1, "no round finished under the kills: {t:?}");
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

#[test]
fn events_are_split_and_checked() {
    // A kill mid-download: two starts, one end, one command end.
    assert_eq!(events(&[11030, 11030, 11031, 11035], true), (1, 0, 0));
    // The download phase done twice in one event.
    assert_eq!(
        events(&[11030, 11031, 11030, 11031, 11036], true),
        (1, 1, 0)
    );
    // The command end reported twice.
    assert_eq!(events(&[11030, 11031, 11035, 11035], true), (1, 1, 0));
    // An event never finished.
    assert_eq!(events(&[11030, 11031], true), (0, 0, 1));
    // No command: the download end ends it; a retry after a failure.
    assert_eq!(events(&[11030, 11032, 11030, 11031], false), (2, 0, 0));
}
