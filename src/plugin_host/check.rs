//! The plugin test kit behind `dmagent plugin-check FILE.so`: loads a
//! vendor's library exactly as the agent would (trust checks, then a
//! plugin-host child for the descriptor and for every call), checks the
//! entry symbol, the ABI version and the descriptor, then calls it against
//! fixtures — a package directory, an empty directory, a huge output, a slow
//! call — and tells pass or fail per row with the reason.
//!
//! A row passes when the plugin answers within the deadline with a
//! well-formed result of its kind or a well-formed plugin error: the kit
//! checks the contract (ABI.md), not the plugin's own logic. A crash, hang,
//! oversized or malformed answer fails the row, with the host's reason.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dmagent_plugin_api::{
    CollectRequest, CollectResult, FileFilter, PostInstallRequest, ReportKind, ABI_MAJOR,
    ABI_MINOR, ENTRY_SYMBOL, PAYLOAD_VERSION,
};
use serde::Serialize;

use super::{EntryStatus, FailureCause, PluginFailure, PluginHost, PluginInfo, PluginKind};
use crate::config::Settings;

/// Bytes the "huge output" command writes (twice the result cap).
const HUGE_OUTPUT_BYTES: usize = 2 * super::MAX_OUTPUT_BYTES;
/// Files in the collectors' "huge output" tree.
const HUGE_TREE_FILES: usize = 2000;
/// The request deadline of the "slow call" (its command sleeps far longer).
const SLOW_TIMEOUT_SECS: u64 = 2;

/// How `plugin-check` runs the plugin.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Deadline of each call (the agent's `[plugins] call_timeout`).
    pub call_timeout: Duration,
    /// Post-install handlers: the command line given in the package
    /// directory fixtures (default `./install.sh`, which the fixture holds).
    pub command_line: Option<String>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            call_timeout: Duration::from_secs(10),
            command_line: None,
        }
    }
}

/// The outcome of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The plugin did what the contract asks.
    Pass,
    /// It did not; the reason says why.
    Fail,
    /// Not run, because an earlier row failed.
    Skip,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    /// What was checked.
    pub check: String,
    /// Pass, fail or skip.
    pub result: Verdict,
    /// Why.
    pub reason: String,
    /// On a failure of the host's making, the stable [`FailureCause::kind`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
}

/// Every row, in order.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The file checked, as given.
    pub file: PathBuf,
    /// Whether every row passed.
    pub passed: bool,
    /// The rows.
    pub checks: Vec<CheckRow>,
}

impl CheckReport {
    /// The pass/fail table as `plugin-check` prints it.
    pub fn render(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|r| r.check.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = format!("plugin-check {}\n", self.file.display());
        let _ = writeln!(out, "  {:width$}  result  reason", "check");
        for row in &self.checks {
            let _ = writeln!(
                out,
                "  {:width$}  {:6}  {}",
                row.check,
                row.result.as_str(),
                row.reason
            );
        }
        let failed = self
            .checks
            .iter()
            .filter(|r| r.result == Verdict::Fail)
            .count();
        if self.passed {
            let _ = writeln!(out, "PASS: {} checks passed", self.checks.len());
        } else {
            let _ = writeln!(out, "FAIL: {failed} of {} checks failed", self.checks.len());
        }
        out
    }
}

struct Rows(Vec<CheckRow>);

impl Rows {
    fn pass(&mut self, check: impl Into<String>, reason: impl Into<String>) {
        self.push(check, Verdict::Pass, reason, None);
    }
    fn fail(&mut self, check: impl Into<String>, reason: impl Into<String>) {
        self.push(check, Verdict::Fail, reason, None);
    }
    fn failure(&mut self, check: impl Into<String>, failure: &PluginFailure) {
        let reason = failure.cause.to_string();
        self.push(check, Verdict::Fail, reason, Some(failure.kind()));
    }
    fn skip(&mut self, checks: &[&str], why: &str) {
        for check in checks {
            self.push(*check, Verdict::Skip, why, None);
        }
    }
    fn push(
        &mut self,
        check: impl Into<String>,
        result: Verdict,
        reason: impl Into<String>,
        cause: Option<&'static str>,
    ) {
        self.0.push(CheckRow {
            check: check.into(),
            result,
            reason: reason.into(),
            cause,
        });
    }
}

/// A private directory for the copy of the plugin and the fixtures, removed
/// when dropped.
struct Workdir(PathBuf);

impl Workdir {
    fn create() -> std::io::Result<Workdir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "dmagent-plugin-check-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(Workdir(dir))
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const LOAD_CHECKS: [&str; 4] = ["loads", "entry symbol", "ABI version", "descriptor"];

/// Checks `file` with `agent_exe` (this `dmagent`) as the plugin-host child.
pub fn check_plugin(file: &Path, agent_exe: &Path, options: &CheckOptions) -> CheckReport {
    let mut rows = Rows(Vec::new());
    run_checks(file, agent_exe, options, &mut rows);
    let passed = rows.0.iter().all(|r| r.result == Verdict::Pass);
    CheckReport {
        file: file.to_path_buf(),
        passed,
        checks: rows.0,
    }
}

fn run_checks(file: &Path, agent_exe: &Path, options: &CheckOptions, rows: &mut Rows) {
    let work = match Workdir::create() {
        Ok(w) => w,
        Err(e) => {
            rows.fail(
                "file",
                format!("cannot create a private work directory: {e}"),
            );
            return;
        }
    };
    // The copy is owned by us, mode 0644, in a 0700 directory: it passes the
    // trust checks wherever the vendor's build put the original.
    let plugin_dir = work.0.join("plugins");
    let copied = std::fs::create_dir(&plugin_dir)
        .and_then(|()| {
            std::fs::set_permissions(&plugin_dir, std::fs::Permissions::from_mode(0o755))
        })
        .and_then(|()| match std::fs::metadata(file) {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(std::io::Error::other("not a regular file")),
            Err(e) => Err(e),
        })
        .and_then(|()| {
            let name = file.file_name().unwrap_or("plugin.so".as_ref());
            let target = plugin_dir.join(Path::new(name).with_extension("so"));
            std::fs::copy(file, &target)?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))
        });
    if let Err(e) = copied {
        rows.fail("file", format!("cannot read {}: {e}", file.display()));
        return;
    }
    rows.pass("file", "a readable regular file");

    let mut settings = Settings::default();
    settings.paths.plugin_dir = plugin_dir;
    settings.plugins.call_timeout = options.call_timeout;
    settings.plugins.allowed_sha256 = None;
    settings.plugins.run_as_user.clear();
    let host = PluginHost::discover_with(&settings, agent_exe);
    let Some(entry) = host.entries().first() else {
        rows.fail("loads", "the plugin host found no *.so file to load");
        rows.skip(&LOAD_CHECKS[1..], "the plugin did not load");
        return;
    };
    let info = match &entry.status {
        EntryStatus::Loaded(info) => info.clone(),
        EntryStatus::Refused { failure } => {
            load_failure(failure, rows);
            return;
        }
    };
    rows.pass("loads", "opened in a plugin-host child process");
    rows.pass("entry symbol", format!("{ENTRY_SYMBOL} exported"));
    rows.pass(
        "ABI version",
        format!(
            "plugin ABI {}.{}, host ABI {ABI_MAJOR}.{ABI_MINOR}",
            info.abi_major, info.abi_minor
        ),
    );
    let kinds = report_kinds(info.report_kinds);
    match info.kind {
        PluginKind::ReportCollector if kinds.is_empty() => {
            rows.fail(
                "descriptor",
                "a report collector that claims no report kind (report_kinds is 0)",
            );
            return;
        }
        PluginKind::PostInstall => rows.pass(
            "descriptor",
            format!("{} {}, post-install handler", info.name, info.version),
        ),
        PluginKind::ReportCollector => rows.pass(
            "descriptor",
            format!(
                "{} {}, report collector ({})",
                info.name,
                info.version,
                kinds
                    .iter()
                    .map(|k| kind_name(*k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
    let fixtures = work.0.join("fixtures");
    match info.kind {
        PluginKind::PostInstall => post_install_fixtures(&host, &info, &fixtures, options, rows),
        PluginKind::ReportCollector => {
            for kind in kinds {
                collector_fixtures(&host, kind, &fixtures, options, rows);
            }
        }
    }
}

/// Which load row a refusal belongs to; the rows after it are skipped.
fn load_failure(failure: &PluginFailure, rows: &mut Rows) {
    let at = match &failure.cause {
        FailureCause::MissingSymbol { .. } => 1,
        FailureCause::AbiMismatch { .. } => 2,
        FailureCause::BadDescriptor { .. } => 3,
        _ => 0,
    };
    let passed = [
        "opened in a plugin-host child process",
        "dmagent_plugin_v1 exported",
        "the host's major",
    ];
    for (check, reason) in LOAD_CHECKS[..at].iter().zip(passed) {
        rows.pass(*check, reason);
    }
    rows.failure(LOAD_CHECKS[at], failure);
    rows.skip(&LOAD_CHECKS[at + 1..], "the plugin did not load");
}

fn report_kinds(bits: u32) -> Vec<ReportKind> {
    [ReportKind::Software, ReportKind::Machine, ReportKind::Files]
        .into_iter()
        .filter(|k| bits & k.bit() != 0)
        .collect()
}

fn kind_name(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Software => "software",
        ReportKind::Machine => "machine",
        ReportKind::Files => "files",
    }
}

fn write_script(dir: &Path, body: &str) -> std::io::Result<()> {
    let path = dir.join("install.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
}

fn make_dir(path: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(path)?;
    Ok(path.to_path_buf())
}

fn post_install_fixtures(
    host: &PluginHost,
    info: &PluginInfo,
    fixtures: &Path,
    options: &CheckOptions,
    rows: &mut Rows,
) {
    let command_line = options
        .command_line
        .clone()
        .unwrap_or_else(|| "./install.sh".to_owned());
    let deadline = options.call_timeout.as_secs().max(1);
    let request = |dir: &Path, file: Option<&str>, timeout_secs: u64| PostInstallRequest {
        version: PAYLOAD_VERSION,
        package_id: "PLUGIN-CHECK".into(),
        package_dir: dir.display().to_string(),
        package_file: file.map(str::to_owned),
        command_line: command_line.clone(),
        timeout_secs,
        env: Default::default(),
        allowed_roots: vec![],
    };
    type Setup = fn(&Path) -> std::io::Result<()>;
    let cases: [(&str, Setup, Option<&str>, u64); 4] = [
        (
            "package directory",
            |d| {
                std::fs::write(d.join("package.bin"), b"dmagent plugin-check package\n")?;
                write_script(d, "echo installed")
            },
            Some("package.bin"),
            deadline,
        ),
        ("empty directory", |_| Ok(()), None, deadline),
        (
            "huge output",
            |d| {
                write_script(
                    d,
                    &format!("head -c {HUGE_OUTPUT_BYTES} /dev/zero | tr '\\0' x\necho"),
                )
            },
            None,
            deadline,
        ),
        (
            "slow call",
            |d| write_script(d, "sleep 600"),
            None,
            SLOW_TIMEOUT_SECS,
        ),
    ];
    for (check, setup, file, timeout_secs) in cases {
        let dir = match make_dir(&fixtures.join(check.replace(' ', "-"))).and_then(|d| {
            setup(&d)?;
            Ok(d)
        }) {
            Ok(d) => d,
            Err(e) => {
                rows.fail(check, format!("cannot prepare the fixture: {e}"));
                continue;
            }
        };
        let started = Instant::now();
        let result = host.run_post_install(&info.name, &request(&dir, file, timeout_secs));
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok(r) => rows.pass(
                check,
                format!(
                    "exit code {}, {} bytes of output tail, answered in {secs:.1} s",
                    r.exit_code,
                    r.output_tail.len()
                ),
            ),
            Err(failure) => answered_or_failed(check, &failure, secs, rows),
        }
    }
}

/// A plugin error is a well-formed answer; anything else the host reports fails.
fn answered_or_failed(check: &str, failure: &PluginFailure, secs: f64, rows: &mut Rows) {
    match &failure.cause {
        FailureCause::PluginError { message } => rows.pass(
            check,
            format!("answered with a plugin error in {secs:.1} s: {message}"),
        ),
        _ => rows.failure(check, failure),
    }
}

fn collector_fixtures(
    host: &PluginHost,
    kind: ReportKind,
    fixtures: &Path,
    options: &CheckOptions,
    rows: &mut Rows,
) {
    let root = fixtures.join(kind_name(kind));
    let request = |dir: &Path| CollectRequest {
        version: PAYLOAD_VERSION,
        report: kind,
        file_filters: vec![FileFilter {
            filter: "*".into(),
            path: dir.display().to_string(),
            recursive: true,
            exclude_compressed: false,
            exclude_encrypted: false,
        }],
        allowed_roots: vec![root.display().to_string()],
        max_file_bytes: 1 << 20,
    };
    type Setup = fn(&Path) -> std::io::Result<()>;
    let cases: [(&str, Setup); 4] = [
        ("package directory", |d| {
            std::fs::write(d.join("app.bin"), b"application\n")?;
            let sub = make_dir(&d.join("lib"))?;
            std::fs::write(sub.join("libapp.so.1"), b"library\n")
        }),
        ("empty directory", |_| Ok(())),
        ("huge output", |d| {
            for i in 0..HUGE_TREE_FILES {
                let sub = make_dir(&d.join(format!("d{:02}", i % 40)))?;
                std::fs::write(
                    sub.join(format!("file-{i:05}-{}.dat", "x".repeat(60))),
                    b"x",
                )?;
            }
            Ok(())
        }),
        ("slow call", |_| Ok(())),
    ];
    let deadline = options.call_timeout.as_secs_f64();
    for (case, setup) in cases {
        let check = format!("{case} ({})", kind_name(kind));
        let dir = match make_dir(&root.join(case.replace(' ', "-"))).and_then(|d| {
            setup(&d)?;
            Ok(d)
        }) {
            Ok(d) => d,
            Err(e) => {
                rows.fail(check, format!("cannot prepare the fixture: {e}"));
                continue;
            }
        };
        let started = Instant::now();
        let mut results = host.collect(kind, &request(&dir));
        let secs = started.elapsed().as_secs_f64();
        let Some((_, result)) = results.pop() else {
            rows.fail(check, "the host did not call the collector");
            continue;
        };
        match result {
            Ok(output) => {
                let size = serde_json::to_vec(&output).map_or(0, |v| v.len());
                let what = match &output {
                    CollectResult::Software { directories } => {
                        format!("{} directories", directories.len())
                    }
                    CollectResult::Machine { items } => format!("{} items", items.len()),
                    CollectResult::Files { files } => format!("{} files", files.len()),
                };
                let note = if case == "slow call" {
                    format!(" (deadline {deadline:.0} s)")
                } else {
                    String::new()
                };
                rows.pass(
                    check,
                    format!("{what}, {size} bytes, answered in {secs:.1} s{note}"),
                );
            }
            Err(failure) => answered_or_failed(&check, &failure, secs, rows),
        }
    }
}
