//! The real `dmagent run` binary as a child process, for the tests that kill
//! it with SIGKILL and start it again on the same state.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::plugins::install_first_party;

const BIN: &str = env!("CARGO_BIN_EXE_dmagent");

/// A state directory and configuration that outlive daemon restarts.
pub struct DaemonSetup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The `dmagent` binary the daemon runs.
    pub bin: PathBuf,
}

impl DaemonSetup {
    /// A device `device_id` talking to `server_url`, with fast retries.
    pub fn new(server_url: &str, device_id: &str) -> DaemonSetup {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        install_first_party(&root.join("plugins"));
        let config = root.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nurl = \"{server_url}\"\nrequest_timeout = \"20s\"\n\
                 [identity]\nsource = \"configured\"\ndevice_id = \"{device_id}\"\ndevice_name = \"{device_id}\"\n\
                 [paths]\nstate_dir = \"{r}/state\"\ndownload_root = \"{r}/packages\"\nplugin_dir = \"{r}/plugins\"\n\
                 [retry]\ninterval = \"1s\"\n\
                 [links]\nassume = \"high\"\n\
                 [log]\nlevel = \"info,dmagent=debug\"\n",
                r = root.display()
            ),
        )
        .expect("write config");
        DaemonSetup {
            dir,
            config,
            bin: PathBuf::from(BIN),
        }
    }

    /// Runs a private copy of the binary, so that a long run is not
    /// switched to another build by a `cargo build` beside it.
    pub fn with_private_binary(mut self) -> DaemonSetup {
        let copy = self.root().join("dmagent");
        std::fs::copy(BIN, &copy).expect("copy the dmagent binary");
        self.bin = copy;
        self
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--no-system-config")
            .arg("--config")
            .arg(&self.config);
        cmd
    }

    /// Starts `dmagent run` with `env` added, without waiting for it.
    pub fn spawn_with_env(&self, env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root().join("agent.log"))
            .expect("log file");
        let child = self
            .command()
            .arg("run")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dmagent run");
        Daemon { child }
    }

    /// Starts `wrapper... dmagent run` (e.g. under `fiu-run`), without waiting.
    pub fn spawn_under(&self, wrapper: &[&std::ffi::OsStr]) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root().join("agent.log"))
            .expect("log file");
        let (program, args) = wrapper.split_first().expect("a wrapper");
        let child = Command::new(program)
            .args(args)
            .arg(&self.bin)
            .arg("--no-system-config")
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn the wrapped dmagent run");
        Daemon { child }
    }

    /// `dmagent poll-now`: the poll task due now (committed by the daemon).
    pub fn poll_now(&self) -> bool {
        self.command()
            .arg("poll-now")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Starts `dmagent run` and waits for its control socket.
    pub fn start(&self) -> Daemon {
        let daemon = self.spawn_with_env(&[]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.status().is_none() {
            assert!(
                Instant::now() < deadline,
                "daemon never answered; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    /// `dmagent status --json` from the running daemon, if one answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self.command().args(["status", "--json"]).output().ok()?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (json["daemon_running"] == true).then_some(json)
    }

    /// Waits (bounded) until `condition` holds on the daemon's status.
    pub fn wait_for(
        &self,
        what: &str,
        condition: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = self.status() {
                if condition(&status) {
                    return status;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root().join("agent.log")).unwrap_or_default()
    }
}

/// A running daemon.
pub struct Daemon {
    child: Child,
}

impl Daemon {
    /// `VmHWM` (peak resident memory) of the daemon, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM")
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the daemon has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, and reap it.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
