//! What every row needs: run count, scratch space, the binaries under test.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

/// Shared settings of one suite run.
#[derive(Debug)]
pub struct Ctx {
    /// Runs per figure.
    pub runs: usize,
    /// The directory holding `dmagent` (the release build).
    pub bin_dir: PathBuf,
    /// dm-server under test: by default the `server` profile's build
    /// (`target/server/dm-server`, every crate at opt-level 3).
    server_bin: PathBuf,
    /// Scratch space, removed at the end.
    work: tempfile::TempDir,
}

impl Ctx {
    /// Finds the binaries next to this one and makes the scratch directory.
    pub fn new(
        runs: usize,
        work_parent: Option<&Path>,
        server_bin: Option<&Path>,
    ) -> anyhow::Result<Ctx> {
        if runs == 0 {
            bail!("--runs must be at least 1");
        }
        let exe = std::env::current_exe().context("locating dm-bench")?;
        let bin_dir = exe
            .parent()
            .context("dm-bench has no directory")?
            .to_path_buf();
        let agent = bin_dir.join("dmagent");
        if !agent.is_file() {
            bail!(
                "{} not found: build it first (`cargo build --release -p dmagent`), or use bench/run",
                agent.display()
            );
        }
        let work = match work_parent {
            Some(p) => {
                std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
                tempfile::Builder::new().prefix("dm-bench-").tempdir_in(p)
            }
            None => tempfile::Builder::new().prefix("dm-bench-").tempdir(),
        }
        .context("creating the scratch directory")?;
        let server_bin = match server_bin {
            Some(p) => p.to_owned(),
            None => bin_dir.join("../server/dm-server"),
        };
        Ok(Ctx {
            runs,
            bin_dir,
            server_bin,
            work,
        })
    }

    /// The agent binary under test.
    pub fn agent_bin(&self) -> PathBuf {
        self.bin_dir.join("dmagent")
    }

    /// The dm-server binary under test.
    pub fn server_bin(&self) -> &Path {
        &self.server_bin
    }

    /// A directory `name` inside the scratch space, kept between rows (for
    /// package files that take long to make).
    pub fn shared(&self, name: &str) -> anyhow::Result<PathBuf> {
        let p = self.work.path().join(name);
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(p)
    }

    /// A fresh directory `name` inside the scratch space.
    pub fn scratch(&self, name: &str) -> anyhow::Result<PathBuf> {
        let p = self.work.path().join(name);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("clearing {}", p.display()))?;
        }
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(p)
    }
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `date -u`, for the report header.
pub fn utc_now() -> String {
    output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "unknown date".into())
}

/// The commit measured (with `-dirty` when the tree has changes).
pub fn git_describe() -> String {
    output("git", &["describe", "--always", "--dirty"]).unwrap_or_else(|| "unknown".into())
}

/// CPU model, logical cores, kernel.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = output("uname", &["-r"]).unwrap_or_default();
    format!("{cpu}, {cores} logical cores, Linux {kernel}")
}
