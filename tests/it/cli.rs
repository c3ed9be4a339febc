//! Tests: the real `dmagent` binary — version, check-config, status with and
//! without a running daemon, poll-now, and clean shutdown on SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dmagent");

/// A private state directory and a local config pointing the agent at it.
struct Sandbox {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("local.toml");
        let state = dir.path().join("state");
        std::fs::write(
            &config,
            format!(
                "[server]\nurl = \"http://127.0.0.1:9/devicemgmt/server.aspx\"\n\
                 [identity]\nsource = \"configured\"\ndevice_id = \"TEST-DEVICE-1\"\n\
                 [paths]\nstate_dir = \"{s}\"\ndownload_root = \"{s}/packages\"\nplugin_dir = \"{s}/plugins\"\n",
                s = state.display()
            ),
        )
        .expect("write config");
        Sandbox { dir, config }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--no-system-config")
            .arg("--config")
            .arg(&self.config)
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run dmagent")
    }

    fn start_daemon(&self) -> Child {
        let child = self
            .command(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn daemon");
        wait_for(&self.state_dir().join("dmagent.sock"));
        child
    }
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    child.wait().expect("wait daemon")
}

#[test]
fn version_names_the_crate_version() {
    let out = Command::new(BIN).arg("--version").output().expect("run");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("dmagent {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_the_built_in_defaults() {
    let out = Command::new(BIN)
        .args(["--no-system-config", "check-config", "--print"])
        .output()
        .expect("run");
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(
        stdout.contains("[server]"),
        "effective config printed: {stdout}"
    );
}

#[test]
fn check_config_lists_every_error_with_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("10-a.toml");
    let b = dir.path().join("20-b.toml");
    std::fs::write(&a, "[server]\nurl = \"ftp://nowhere\"\ncolour = \"blue\"\n").expect("write");
    std::fs::write(&b, "[retry]\nmax_retries = \"five\"\n[bogus]\nx = 1\n").expect("write");
    let out = Command::new(BIN)
        .args(["--no-system-config", "--site-dir"])
        .arg(dir.path())
        .arg("check-config")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(78),
        "distinct exit code for bad configuration"
    );
    let stderr = text(&out.stderr);
    for (file, key) in [
        ("10-a.toml", "server.url"),
        ("10-a.toml", "server.colour"),
        ("20-b.toml", "retry.max_retries"),
        ("20-b.toml", "bogus"),
    ] {
        assert!(
            stderr.lines().any(|l| l.contains(file) && l.contains(key)),
            "missing error for {file} {key} in:\n{stderr}"
        );
    }
}

#[test]
fn status_without_daemon_reads_the_database() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["status"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("TEST-DEVICE-1"), "{stdout}");
    assert!(stdout.contains("daemon not running"), "{stdout}");
    assert!(stdout.contains("PACKAGES"), "{stdout}");

    let out = sandbox.run(&["poll-now"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let out = sandbox.run(&["status", "--json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(json["daemon_running"], false);
    let tasks = json["tasks"].as_array().expect("tasks array");
    assert!(
        tasks.iter().any(|t| t["id"] == "poll"),
        "poll-now queued the poll task: {json}"
    );
}

#[test]
fn daemon_answers_status_and_poll_now_then_stops_on_sigterm() {
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.start_daemon();

    let out = sandbox.run(&["status", "--json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["daemon_running"], true, "{json}");
    assert_eq!(json["device_id"], "TEST-DEVICE-1");

    let out = sandbox.run(&["poll-now"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let out = sandbox.run(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(json["tasks"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["id"] == "poll")));

    // A second daemon on the same state directory is refused, not started.
    let second = sandbox.run(&["run"]);
    assert!(!second.status.success(), "second daemon must not start");

    let status = terminate(&mut daemon);
    assert!(
        status.success(),
        "daemon exits 0 on SIGTERM, got {status:?}"
    );
    assert!(
        !sandbox.state_dir().join("dmagent.sock").exists(),
        "socket removed on exit"
    );

    // The state it committed is still there for the next start.
    let out = sandbox.run(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(json["tasks"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["id"] == "poll")));
}

#[test]
fn inventory_prints_what_would_be_sent_without_sending_it() {
    let sandbox = Sandbox::new();
    crate::support::plugins::install_first_party(&sandbox.state_dir().join("plugins"));
    let out = sandbox.run(&["inventory", "--kind", "machine"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let xml = text(&out.stdout);
    assert!(
        xml.contains("<Inventory") && xml.contains("Device_System") && xml.contains("Device_OS"),
        "{xml}"
    );
    let out = sandbox.run(&["inventory", "--kind", "machine", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(json["items"].as_array().is_some_and(|i| !i.is_empty()));
    // Without a poll there are no file filters: an empty software inventory.
    let out = sandbox.run(&["inventory", "--kind", "software"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("FileReport"));
}

/// A daemon with thousands of packages streams its status reply in slices:
/// the CLI gets all of it, tasks in due order; and a client that asks and
/// then stops reading holds up nobody else's request.
#[test]
fn daemon_streams_a_large_status_and_a_stalled_reader_blocks_nothing() {
    use dmagent::store::{PackageRecord, Store, TaskRecord};
    use std::io::Write as _;

    const PACKAGES: usize = 3_000;
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.state_dir()).expect("state dir");
    {
        let store = Store::open(sandbox.state_dir().join("dmagent.redb")).expect("open");
        store
            .write(|tx| {
                for i in 0..PACKAGES {
                    let id = format!("PKG-{i:05}");
                    tx.put_package(&PackageRecord::new(&id, 1_000))?;
                    // Due order is the reverse of ID order.
                    let due = 4_000_000_000 - i as u64;
                    tx.put_task(&TaskRecord::download(&id, due, 0, 1_000))?;
                }
                Ok(())
            })
            .expect("write");
    }
    let mut daemon = sandbox.start_daemon();

    // Ask, read nothing: the reply fills the socket buffers and waits.
    let mut stalled =
        std::os::unix::net::UnixStream::connect(sandbox.state_dir().join("dmagent.sock"))
            .expect("connect");
    stalled
        .write_all(b"{\"command\":\"status\"}\n")
        .expect("send request");
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let out = sandbox.run(&["poll-now"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "poll-now waited {:?} behind a stalled status reader",
        started.elapsed()
    );

    let out = sandbox.run(&["status", "--json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["daemon_running"], true);
    let packages = json["packages"].as_array().expect("packages");
    assert_eq!(packages.len(), PACKAGES);
    let due: Vec<u64> = json["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["next_due_unix"].as_u64().expect("due"))
        .collect();
    assert!(due.len() >= PACKAGES, "{} tasks", due.len());
    assert!(due.windows(2).all(|w| w[0] <= w[1]), "tasks in due order");

    drop(stalled);
    let status = terminate(&mut daemon);
    assert!(
        status.success(),
        "daemon exits 0 on SIGTERM, got {status:?}"
    );
}
