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

    /// Where the resident pages are, from `/proc/PID/smaps`: anonymous and
    /// file-backed totals, then the mappings holding at least 64 KiB,
    /// largest first ("heap", "stack", "anon" for unnamed ones, file names
    /// without their directory).
    pub fn memory_map(&self) -> anyhow::Result<String> {
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", self.pid()))
            .context("reading smaps")?;
        Ok(summarize_smaps(&smaps))
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

/// See [`Agent::memory_map`].
fn summarize_smaps(smaps: &str) -> String {
    use std::collections::BTreeMap;
    // name -> (rss, anonymous) in KiB
    let mut by_name: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut name = String::new();
    let kib = |line: &str| -> u64 {
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let path = fields.nth(4).unwrap_or_default();
            name = match path {
                "" => "anon".to_owned(),
                "[heap]" => "heap".to_owned(),
                "[stack]" => "stack".to_owned(),
                p => p.rsplit('/').next().unwrap_or(p).to_owned(),
            };
        } else if first == "Rss:" {
            by_name.entry(name.clone()).or_default().0 += kib(line);
        } else if first == "Anonymous:" {
            by_name.entry(name.clone()).or_default().1 += kib(line);
        }
    }
    let anon: u64 = by_name.values().map(|v| v.1).sum();
    let rss: u64 = by_name.values().map(|v| v.0).sum();
    let mut big: Vec<_> = by_name.into_iter().filter(|(_, v)| v.0 >= 64).collect();
    big.sort_by_key(|b| std::cmp::Reverse(b.1 .0));
    let parts: Vec<String> = big
        .iter()
        .map(|(n, (r, a))| format!("{n} {r} ({a} anon)"))
        .collect();
    format!(
        "{anon} KiB anonymous, {} KiB file-backed; {}",
        rss.saturating_sub(anon),
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn smaps_summary_splits_anonymous_and_file_pages() {
        let smaps = "\
55d0c0000000-55d0c0100000 r-xp 00000000 08:01 123 /usr/bin/dmagent
Rss:                 800 kB
Anonymous:             0 kB
55d0c0200000-55d0c0300000 rw-p 00000000 00:00 0 [heap]
Rss:                 300 kB
Anonymous:           300 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
Rss:                 100 kB
Anonymous:           100 kB
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
Rss:                  10 kB
Anonymous:            10 kB
";
        assert_eq!(
            super::summarize_smaps(smaps),
            "410 KiB anonymous, 800 KiB file-backed; dmagent 800 (0 anon), heap 300 (300 anon), \
             anon 110 (110 anon)"
        );
    }
}
