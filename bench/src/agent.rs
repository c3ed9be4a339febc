//! The release `dmagent run` as a child process, measured from outside
//! through `/proc` as an operator would see it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// A state directory and configuration for one device.
#[derive(Debug)]
pub struct AgentSetup {
    bin: PathBuf,
    root: PathBuf,
    config: PathBuf,
}

impl AgentSetup {
    /// Device `device_id` talking to `server_url`, state under `root`, no
    /// plugins, and `extra` appended to the configuration (TOML).
    pub fn new(
        bin: &Path,
        root: &Path,
        server_url: &str,
        device_id: &str,
        extra: &str,
    ) -> anyhow::Result<AgentSetup> {
        std::fs::create_dir_all(root.join("plugins"))?;
        // DM_BENCH_LOG=<filter> sets the agents' log level, to look into a run.
        let extra = match std::env::var("DM_BENCH_LOG") {
            Ok(level) => format!("{extra}\n[log]\nlevel = \"{level}\"\n"),
            Err(_) => extra.to_owned(),
        };
        let config = root.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nurl = \"{server_url}\"\n\
                 [identity]\nsource = \"configured\"\ndevice_id = \"{device_id}\"\ndevice_name = \"{device_id}\"\n\
                 [paths]\nstate_dir = \"{r}/state\"\ndownload_root = \"{r}/packages\"\nplugin_dir = \"{r}/plugins\"\n\
                 [retry]\ninterval = \"1s\"\n\
                 [links]\nassume = \"high\"\n{extra}\n",
                r = root.display()
            ),
        )?;
        Ok(AgentSetup {
            bin: bin.to_path_buf(),
            root: root.to_path_buf(),
            config,
        })
    }

    /// The agent's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--no-system-config")
            .arg("--config")
            .arg(&self.config);
        cmd
    }

    /// Starts `dmagent run` and returns at once.
    pub fn spawn(&self) -> anyhow::Result<Agent> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("agent.log"))?;
        let child = self
            .command()
            .arg("run")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting dmagent run")?;
        Ok(Agent { child })
    }

    /// The client database the daemon opens.
    pub fn database(&self) -> PathBuf {
        self.root.join("state").join("dmagent.redb")
    }

    /// Starts `dmagent run` and waits until its control socket answers.
    pub fn start(&self) -> anyhow::Result<Agent> {
        let agent = self.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.status().is_none() {
            if Instant::now() > deadline {
                bail!("dmagent never answered; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(agent)
    }

    /// `dmagent status --json` from the running daemon, if one answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self.command().args(["status", "--json"]).output().ok()?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (json["daemon_running"] == true).then_some(json)
    }

    /// `dmagent poll-now`.
    pub fn poll_now(&self) -> anyhow::Result<()> {
        let st = self
            .command()
            .arg("poll-now")
            .stdout(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("dmagent poll-now failed: {st}");
        }
        Ok(())
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("agent.log")).unwrap_or_default()
    }
}

/// A running daemon; SIGKILLed on drop if still running.
#[derive(Debug)]
pub struct Agent {
    child: Child,
}

impl Agent {
    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmRSS` in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        proc_status_kib(self.pid(), "VmRSS")
    }

    /// `VmHWM` (peak resident memory since start or the last
    /// [`Agent::reset_peak`]) in KiB.
    pub fn peak_kib(&self) -> anyhow::Result<u64> {
        proc_status_kib(self.pid(), "VmHWM")
    }

    /// Resets `VmHWM` to the current RSS (`clear_refs` 5, Linux ≥ 4.0).
    pub fn reset_peak(&self) -> anyhow::Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")
            .context("resetting VmHWM through /proc/PID/clear_refs")
    }

    /// Median of `n` RSS samples `every` apart, in KiB.
    pub fn idle_rss_kib(&self, n: usize, every: Duration) -> anyhow::Result<u64> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            std::thread::sleep(every);
            v.push(self.rss_kib()?);
        }
        v.sort_unstable();
        Ok(v[v.len() / 2])
    }

    /// SIGKILL, and reap.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait for the exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .context("kill -TERM")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("dmagent did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `kB` field of `/proc/PID/status`.
pub fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}
