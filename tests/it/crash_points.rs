//! Tests (issue 15): SIGKILL of the real `dmagent run` at every named crash
//! point ([`dmagent::failpoint::POINTS`]) and at every commit of the client
//! database, then a restart on the same state. The reference server's records
//! must show each status message stored once, each post-install command run
//! at most once per event (and exactly once when reported successful), every
//! download verified, the reports delivered and the outbox empty.
//!
//! Built only with `--features failpoints` (the README's test command uses
//! `--all-features`).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dm_server::{RunningServer, ServerConfig};
use sha2::Digest;

use crate::support::daemon::DaemonSetup;
use crate::support::server::{assign_only, make_catalog, pattern, BIG_LEN};

/// Downloaded, then a command that succeeds.
const ONCE: &str = "ONCE";
/// Downloaded, then a command that fails (11036).
const FAILS: &str = "FAILS";
/// Downloaded, no command. All three are unassigned once done: the removals.
const GONE: &str = "GONE";
const GONE_LEN: usize = 96 * 1024;

/// One device's run: a server with its catalog, and the agent's state.
struct Run {
    server: RunningServer,
    catalog: tempfile::TempDir,
    _server_state: tempfile::TempDir,
    setup: DaemonSetup,
    device: String,
}

impl Run {
    fn new(device: &str) -> Run {
        let catalog = make_catalog();
        let dir = catalog.path();
        std::fs::write(dir.join("files/gone.bin"), pattern(GONE_LEN)).expect("write");
        let packages = [
            (
                ONCE,
                "file = \"files/big.bin\"\ndestination = \"once\"\n\
                 command_line = \"/bin/sh -c 'echo run >> marks'\"\n",
            ),
            (
                FAILS,
                "file = \"files/tools.txt\"\ndestination = \"fails\"\n\
                 command_line = \"/bin/sh -c 'echo run >> marks; exit 3'\"\n",
            ),
            (GONE, "file = \"files/gone.bin\"\ndestination = \"gone\"\n"),
        ];
        for (id, rest) in packages {
            std::fs::write(
                dir.join(format!("packages/{}.toml", id.to_lowercase())),
                format!("id = \"{id}\"\nname = \"{id}\"\n{rest}"),
            )
            .expect("write package");
        }
        assign_only(dir, &[ONCE, FAILS, GONE]);
        let state = tempfile::tempdir().expect("tempdir");
        let mut config = ServerConfig::new(dir, state.path());
        config.workers = 1;
        config.catalog_poll_ms = 100;
        let server = dm_server::start(config).expect("server");
        let setup = DaemonSetup::new(&server.endpoint_url(), device);
        Run {
            server,
            catalog,
            _server_state: state,
            setup,
            device: device.to_owned(),
        }
    }

    fn messages(&self, package: &str) -> Vec<u32> {
        crate::support::server::messages(&self.server, &self.device, package)
    }

    fn count(&self, package: &str, message: u32) -> usize {
        self.messages(package)
            .iter()
            .filter(|&&m| m == message)
            .count()
    }

    fn marks(&self, package_dir: &str) -> usize {
        std::fs::read_to_string(
            self.setup
                .root()
                .join("packages")
                .join(package_dir)
                .join("marks"),
        )
        .map(|m| m.lines().count())
        .unwrap_or(0)
    }

    fn machine_inventories(&self) -> usize {
        self.server
            .state()
            .inventories(&self.device)
            .expect("inventories")
            .len()
    }

    /// Package bytes the server sent beyond one copy of each package.
    fn bytes_refetched(&self) -> u64 {
        let once = (BIG_LEN + GONE_LEN) as u64
            + std::fs::metadata(self.catalog.path().join("files/tools.txt"))
                .expect("tools.txt")
                .len();
        self.server.bytes_served().saturating_sub(once)
    }
}

fn package<'a>(status: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    status["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["id"] == id))
}

fn state_of(status: &serde_json::Value, id: &str) -> String {
    package(status, id)
        .and_then(|p| p["state"].as_str())
        .unwrap_or("absent")
        .to_owned()
}

fn outbox_empty(status: &serde_json::Value) -> bool {
    status["outbox"].as_array().is_some_and(Vec::is_empty)
}

/// What one killed run went through.
#[derive(Debug)]
struct Outcome {
    /// The daemon died at the armed point.
    killed: bool,
    /// Status messages the server dropped as already stored (sent again
    /// after a kill: the ReportID made them harmless).
    resent: u64,
    bytes_refetched: u64,
}

/// Runs the whole workload with `failpoints` armed in the first daemon: the
/// first cycle, then the removal of `GONE`. A daemon killed at the point is
/// started again, unarmed, on the same state and must finish the work by
/// itself (only the operator's `poll-now` for the removal is repeated until
/// it is accepted). Then checks everything the server recorded.
fn run_with(device: &str, point: &str, spec: &str) -> Outcome {
    let run = Run::new(device);
    let env = format!("{point}={spec}");
    let mut daemon = run.setup.spawn_with_env(&[("FAILPOINTS", env.as_str())]);
    let mut killed = false;
    let (mut unassigned, mut removal_asked) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(exit) = daemon.exited() {
            let log = run.setup.log();
            assert!(
                !killed,
                "[{env}] the restarted daemon ended ({exit}); log:\n{log}"
            );
            assert_eq!(
                exit.signal(),
                Some(9),
                "[{env}] the daemon ended otherwise than by SIGKILL ({exit}); log:\n{log}"
            );
            assert!(
                log.contains(&format!("CRASH POINT {point}: SIGKILL")),
                "[{env}] killed, but not at the point; log:\n{log}"
            );
            killed = true;
            daemon = run.setup.spawn_with_env(&[]);
            continue;
        }
        if let Some(status) = run.setup.status() {
            let settled = ["installed", "failed"].contains(&state_of(&status, ONCE).as_str())
                && state_of(&status, FAILS) == "failed"
                && state_of(&status, GONE) == "installed"
                && outbox_empty(&status)
                && run.machine_inventories() > 0;
            if !unassigned && settled {
                unassign_all(run.catalog.path());
                // The server reloads its catalog every 100 ms.
                std::thread::sleep(Duration::from_millis(400));
                unassigned = true;
            }
            if unassigned && !removal_asked {
                // Repeated until the daemon confirms it (a kill may take the
                // request's own commit).
                removal_asked = run.setup.poll_now();
            } else if removal_asked
                && outbox_empty(&status)
                && [ONCE, FAILS, GONE]
                    .iter()
                    .all(|id| state_of(&status, id) == "absent")
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "[{env}] the work never finished; log:\n{}",
            run.setup.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(daemon);
    check(&run, &env);
    Outcome {
        killed,
        resent: run.server.duplicate_statuses(),
        bytes_refetched: run.bytes_refetched(),
    }
}

/// The server's records after the work finished.
fn check(run: &Run, env: &str) {
    let log = || run.setup.log();
    let statuses = run.server.state().statuses(&run.device).expect("statuses");
    let ids: std::collections::HashSet<_> = statuses.iter().map(|s| &s.report_id).collect();
    assert_eq!(ids.len(), statuses.len(), "[{env}] one record per ReportID");
    assert!(
        statuses.iter().all(|s| s.report_id.is_some()),
        "[{env}] every status message carries a ReportID"
    );
    for id in [ONCE, FAILS, GONE] {
        let m = run.messages(id);
        assert!(m.contains(&11030), "[{env}] {id}: no download start: {m:?}");
        assert_eq!(
            run.count(id, 11031),
            1,
            "[{env}] {id}: one download end: {m:?}"
        );
        assert_eq!(
            run.count(id, 11032),
            0,
            "[{env}] {id}: no failed download: {m:?}"
        );
    }
    // ONCE: the command's end reported once; success means it ran once, a
    // kill while it ran is reported as failed, and it never runs twice.
    let (ok, failed) = (run.count(ONCE, 11035), run.count(ONCE, 11036));
    assert_eq!(
        ok + failed,
        1,
        "[{env}] ONCE: one command end: {:?}",
        run.messages(ONCE)
    );
    let runs = run.marks("once");
    assert!(
        runs <= 1 && (ok == 0 || runs == 1),
        "[{env}] ONCE ran {runs} times, reported {:?}; log:\n{}",
        run.messages(ONCE),
        log()
    );
    assert_eq!(
        run.count(FAILS, 11036),
        1,
        "[{env}] FAILS: {:?}",
        run.messages(FAILS)
    );
    assert_eq!(
        run.count(FAILS, 11035),
        0,
        "[{env}] FAILS: {:?}",
        run.messages(FAILS)
    );
    assert!(run.marks("fails") <= 1, "[{env}] FAILS ran twice");
    assert_eq!(run.count(GONE, 11035) + run.count(GONE, 11036), 0);
    // The verified file is the package, byte for byte.
    let file = run.setup.root().join("packages/once/big.bin");
    let got = sha2::Sha256::digest(std::fs::read(&file).unwrap_or_default());
    let want = sha2::Sha256::digest(pattern(BIG_LEN));
    assert_eq!(got, want, "[{env}] {} is not the package", file.display());
    assert!(
        !leftovers(&run.setup.root().join("packages/once")),
        "[{env}] partial download files left behind"
    );
}

/// Rewrites the rule [`assign_only`] made so that nothing is assigned (a
/// package still listed would be asked for again at this poll if it failed,
/// which is a second event, not a repeat of the first).
fn unassign_all(catalog: &Path) {
    let path = catalog.join("catalog.toml");
    let text = std::fs::read_to_string(&path).expect("read catalog");
    let (all, kept) = (
        "packages = [\"ONCE\", \"FAILS\", \"GONE\"]",
        "packages = []",
    );
    if text.contains(all) {
        std::fs::write(&path, text.replace(all, kept)).expect("write catalog");
    }
}

/// A `~PD-` checkpoint or partial file in `dir`.
fn leftovers(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("~PD-"))
    })
}

/// Runs `f` over `items` on two threads (the machines have two cores), in
/// item order, and returns the results in that order.
fn on_two_threads<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(item) = items.get(i) else {
                            return done;
                        };
                        done.push((i, f(i, item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[test]
fn kill_9_at_every_named_crash_point_loses_nothing_and_repeats_nothing() {
    let points = dmagent::failpoint::POINTS;
    let outcomes = on_two_threads(points, |i, point| {
        (*point, run_with(&format!("DEV-CP-{i}"), point, "return"))
    });
    eprintln!("point | killed | resent (dropped by ReportID) | bytes fetched again");
    for (point, o) in &outcomes {
        eprintln!(
            "{point} | {} | {} | {}",
            o.killed, o.resent, o.bytes_refetched
        );
    }
    let missed: Vec<_> = outcomes.iter().filter(|(_, o)| !o.killed).collect();
    assert!(
        missed.is_empty(),
        "the workload never reached these points: {missed:?}"
    );
}

/// `N*off->return`: killed at the (N+1)th commit, for every N until a run
/// finishes without reaching it.
fn sweep(point: &str) {
    let finished = AtomicBool::new(false);
    let mut all = Vec::new();
    for batch in 0.. {
        let ns: Vec<usize> = (batch * 8..batch * 8 + 8).collect();
        let outcomes = on_two_threads(&ns, |_, &n| {
            if finished.load(Ordering::SeqCst) {
                return None;
            }
            let o = run_with(&format!("DEV-SW-{n}"), point, &format!("{n}*off->return"));
            if !o.killed {
                finished.store(true, Ordering::SeqCst);
            }
            Some((n, o))
        });
        all.extend(outcomes.into_iter().flatten());
        if finished.load(Ordering::SeqCst) {
            break;
        }
        assert!(batch < 20, "{point}: more than 160 commits in one run");
    }
    let kills = all.iter().filter(|(_, o)| o.killed).count();
    let refetched: u64 = all.iter().map(|(_, o)| o.bytes_refetched).sum();
    eprintln!(
        "{point}: killed at each of {kills} commits; resent {}, bytes fetched again {refetched}",
        all.iter().map(|(_, o)| o.resent).sum::<u64>()
    );
    assert!(kills >= 10, "{point}: only {kills} commits in a run?");
}

#[test]
fn kill_9_just_before_every_commit_of_a_run() {
    sweep("store.commit.before");
}

#[test]
fn kill_9_just_after_every_commit_of_a_run() {
    sweep("store.commit.after");
}
