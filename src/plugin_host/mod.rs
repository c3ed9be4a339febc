//! The plugin host: finds, checks, loads and calls plugins.
//!
//! - Discovery ([`PluginHost::discover`]) lists `*.so` in `paths.plugin_dir`
//!   and checks each file BEFORE anything opens it (owner root or the agent,
//!   no group/world write bit on the file or its directory, the optional
//!   SHA-256 allow-list of `[plugins]`). Then a plugin-host child reads the
//!   descriptor and the ABI version: the agent process itself never loads a
//!   plugin library, so a crashing constructor cannot take it down.
//! - Every call ([`PluginHost::run_post_install`], [`PluginHost::collect`])
//!   runs in a fresh child (`dmagent __plugin-host`), request JSON on stdin,
//!   result on stdout, log lines on stderr, under a deadline. A panic, abort,
//!   segfault, hang, bad or oversized output ends that child and comes back
//!   as a [`PluginFailure`]; the agent carries on.
//!
//! The API is blocking: actors call it from a `SyncArbiter` or
//! `spawn_blocking` (invariant 3). Only `loader.rs`, in the child, holds
//! unsafe code and raw pointers.

pub mod check;
mod child;
mod convert;
mod failure;
mod loader;
mod route;
mod runner;
mod trust;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dmagent_plugin_api::{
    CollectRequest, CollectResult, PluginError, PostInstallRequest, PostInstallResult, ReportKind,
    Request,
};
use serde::{Deserialize, Serialize};

use crate::config::Settings;

pub use child::{child_main, ChildArgs};
pub use convert::{file_report, machine_inventory};
pub use failure::{signal_name, FailureCause, PluginFailure};
pub use route::{route_command_line, DEFAULT_HANDLER};

/// Largest result a plugin may return (16 MiB); more ends the call.
pub const MAX_OUTPUT_BYTES: usize = 16 << 20;
/// Largest request the child reads.
pub const MAX_REQUEST_BYTES: usize = 16 << 20;
/// Deadline of the describe step at discovery (at most `call_timeout`).
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A plugin's kind, from its descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Runs a package's command line after download.
    PostInstall,
    /// Contributes to reports.
    ReportCollector,
}

impl PluginKind {
    /// As shown by `dmagent plugins`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PostInstall => "post-install",
            Self::ReportCollector => "report-collector",
        }
    }
}

/// A plugin that passed the checks and described itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginInfo {
    /// Its name (a handler's `CommandLine` prefix).
    pub name: String,
    /// Its own version.
    pub version: String,
    /// Handler or collector.
    pub kind: PluginKind,
    /// Collectors: `REPORT_*` bits.
    pub report_kinds: u32,
    /// ABI it was built for.
    pub abi_major: u32,
    /// ABI minor it was built for.
    pub abi_minor: u32,
    /// SHA-256 of the file as checked; every call pins these bytes.
    pub sha256: String,
}

/// One `*.so` file of the plugin directory and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginEntry {
    /// The file.
    pub file: PathBuf,
    /// Loaded or refused.
    pub status: EntryStatus,
}

/// Loaded or refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EntryStatus {
    /// Checked and described; callable.
    Loaded(PluginInfo),
    /// Refused.
    Refused {
        /// Why.
        #[serde(serialize_with = "failure_text")]
        failure: PluginFailure,
    },
}

fn failure_text<S: serde::Serializer>(f: &PluginFailure, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&f.to_string())
}

/// What discovery found at `paths.plugin_dir`, so that `dmagent plugins`
/// can say why nothing is listed (a fresh install has no plugins yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DirState {
    /// The directory holds at least one `*.so` file.
    Found {
        /// How many `*.so` files.
        files: usize,
    },
    /// The directory exists and holds no `*.so` file.
    Empty,
    /// There is no such directory.
    Missing,
    /// The directory could not be read (not a directory, permissions).
    Unreadable {
        /// The error.
        error: String,
    },
}

/// The plugins found in the configured directory, and how to call them.
#[derive(Debug, Clone)]
pub struct PluginHost {
    dir: PathBuf,
    dir_state: DirState,
    agent_exe: PathBuf,
    call_timeout: Duration,
    run_as_user: BTreeMap<String, String>,
    trusted_uid: u32,
    entries: Vec<PluginEntry>,
}

impl PluginHost {
    /// Discovers the plugins of `settings.paths.plugin_dir`, using this
    /// process's own executable as the plugin-host child.
    pub fn discover(settings: &Settings) -> PluginHost {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
        Self::discover_with(settings, &exe)
    }

    /// As [`discover`](Self::discover), with the `dmagent` binary to start as
    /// the child given explicitly (tests pass `CARGO_BIN_EXE_dmagent`).
    pub fn discover_with(settings: &Settings, agent_exe: &Path) -> PluginHost {
        let mut host = PluginHost {
            dir: settings.paths.plugin_dir.clone(),
            dir_state: DirState::Empty,
            agent_exe: agent_exe.to_path_buf(),
            call_timeout: settings.plugins.call_timeout,
            run_as_user: settings.plugins.run_as_user.clone(),
            trusted_uid: loader::effective_uid(),
            entries: Vec::new(),
        };
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&host.dir) {
            Ok(dir) => dir
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "so"))
                .collect(),
            Err(e) => {
                tracing::info!(dir = %host.dir.display(), "no plugins loaded: {e}");
                host.dir_state = if e.kind() == std::io::ErrorKind::NotFound {
                    DirState::Missing
                } else {
                    DirState::Unreadable {
                        error: e.to_string(),
                    }
                };
                Vec::new()
            }
        };
        if !files.is_empty() {
            host.dir_state = DirState::Found { files: files.len() };
        }
        files.sort();
        for file in files {
            let status = host.examine(&file, settings);
            let status = match status {
                EntryStatus::Loaded(info) => match host.find(&info.name) {
                    Some((other, _)) => EntryStatus::Refused {
                        failure: PluginFailure::new(
                            info.name,
                            FailureCause::Duplicate {
                                other: other.display().to_string(),
                            },
                        ),
                    },
                    None => EntryStatus::Loaded(info),
                },
                refused => refused,
            };
            match &status {
                EntryStatus::Loaded(i) => tracing::info!(
                    file = %file.display(), plugin = %i.name, version = %i.version,
                    kind = i.kind.as_str(), "plugin loaded"
                ),
                EntryStatus::Refused { failure } => {
                    tracing::warn!(file = %file.display(), "plugin refused: {failure}")
                }
            }
            host.entries.push(PluginEntry { file, status });
        }
        host
    }

    fn examine(&self, file: &Path, settings: &Settings) -> EntryStatus {
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let refuse = |cause| EntryStatus::Refused {
            failure: PluginFailure::new(file_name.clone(), cause),
        };
        let digest = match trust::open_checked(file, self.trusted_uid) {
            Ok((_, digest)) => digest,
            Err(cause) => return refuse(cause),
        };
        if let Some(list) = &settings.plugins.allowed_sha256 {
            if !list.allows(&file_name, &digest) {
                return refuse(FailureCause::DigestMismatch {
                    expected: list
                        .expected_for(&file_name)
                        .unwrap_or("a digest listed in plugins.allowed_sha256")
                        .to_owned(),
                    actual: digest,
                });
            }
        }
        let run = runner::run(runner::ChildRun {
            exe: &self.agent_exe,
            plugin_file: file,
            trusted_uid: self.trusted_uid,
            sha256: &digest,
            describe: true,
            request: Vec::new(),
            deadline: self.call_timeout.min(DESCRIBE_TIMEOUT),
            user: None,
            label: &file_name,
        });
        match run.and_then(|f| expect_ok::<child::Description>(f, "descriptor")) {
            Ok(d) => EntryStatus::Loaded(PluginInfo {
                name: d.name,
                version: d.version,
                kind: d.kind,
                report_kinds: d.report_kinds,
                abi_major: d.abi_major,
                abi_minor: d.abi_minor,
                sha256: digest,
            }),
            Err(cause) => refuse(cause),
        }
    }

    /// Every file found, in name order, loaded or refused.
    pub fn entries(&self) -> &[PluginEntry] {
        &self.entries
    }

    /// The plugin directory searched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What was found there.
    pub fn dir_state(&self) -> &DirState {
        &self.dir_state
    }

    /// The loaded plugins.
    pub fn loaded(&self) -> impl Iterator<Item = &PluginInfo> + '_ {
        self.entries.iter().filter_map(|e| match &e.status {
            EntryStatus::Loaded(info) => Some(info),
            EntryStatus::Refused { .. } => None,
        })
    }

    fn find(&self, name: &str) -> Option<(&Path, &PluginInfo)> {
        self.entries.iter().find_map(|e| match &e.status {
            EntryStatus::Loaded(info) if info.name == name => Some((e.file.as_path(), info)),
            _ => None,
        })
    }

    /// Runs the post-install `handler` (see [`route_command_line`]). The
    /// request's `timeout_secs` is capped to the call deadline.
    pub fn run_post_install(
        &self,
        handler: &str,
        request: &PostInstallRequest,
    ) -> Result<PostInstallResult, PluginFailure> {
        let Some((file, info)) = self
            .find(handler)
            .filter(|(_, i)| i.kind == PluginKind::PostInstall)
        else {
            return Err(PluginFailure::new(
                handler,
                FailureCause::NotFound {
                    what: "post-install handler".into(),
                    name: handler.into(),
                },
            ));
        };
        let mut request = request.clone();
        request.timeout_secs = request
            .timeout_secs
            .min(self.call_timeout.as_secs().saturating_sub(1).max(1));
        self.call(file, info, &Request::PostInstall(request))
    }

    /// Asks every collector of `kind` for its part; one entry per collector,
    /// in discovery order. A failing collector does not stop the others.
    pub fn collect(
        &self,
        kind: ReportKind,
        request: &CollectRequest,
    ) -> Vec<(String, Result<CollectResult, PluginFailure>)> {
        let mut request = request.clone();
        request.report = kind;
        let wire = Request::Collect(request);
        self.entries
            .iter()
            .filter_map(|e| match &e.status {
                EntryStatus::Loaded(info)
                    if info.kind == PluginKind::ReportCollector
                        && info.report_kinds & kind.bit() != 0 =>
                {
                    Some((e.file.as_path(), info))
                }
                _ => None,
            })
            .map(|(file, info)| {
                let result = self
                    .call::<CollectResult>(file, info, &wire)
                    .and_then(|r| check_kind(&info.name, kind, r));
                (info.name.clone(), result)
            })
            .collect()
    }

    fn call<T: serde::de::DeserializeOwned>(
        &self,
        file: &Path,
        info: &PluginInfo,
        request: &Request,
    ) -> Result<T, PluginFailure> {
        let fail = |cause| PluginFailure::new(info.name.clone(), cause);
        let user = match self.run_as_user.get(&info.name) {
            Some(name) => Some(lookup_user(name).map_err(fail)?),
            None => None,
        };
        let request = serde_json::to_vec(request).map_err(|e| {
            fail(FailureCause::Spawn {
                detail: format!("cannot encode the request: {e}"),
            })
        })?;
        let finished = runner::run(runner::ChildRun {
            exe: &self.agent_exe,
            plugin_file: file,
            trusted_uid: self.trusted_uid,
            sha256: &info.sha256,
            describe: false,
            request,
            deadline: self.call_timeout,
            user,
            label: &info.name,
        })
        .map_err(fail)?;
        expect_ok(finished, "result").map_err(fail)
    }
}

fn check_kind(
    plugin: &str,
    kind: ReportKind,
    result: CollectResult,
) -> Result<CollectResult, PluginFailure> {
    let matches = matches!(
        (kind, &result),
        (ReportKind::Software, CollectResult::Software { .. })
            | (ReportKind::Machine, CollectResult::Machine { .. })
            | (ReportKind::Files, CollectResult::Files { .. })
    );
    if matches {
        Ok(result)
    } else {
        Err(PluginFailure::new(
            plugin,
            FailureCause::BadOutput {
                detail: format!("asked for a {kind:?} report, got another kind"),
            },
        ))
    }
}

/// Interprets the child's exit code and stdout.
fn expect_ok<T: serde::de::DeserializeOwned>(
    finished: runner::Finished,
    what: &str,
) -> Result<T, FailureCause> {
    let code = finished.code;
    let bytes = finished.stdout;
    match u8::try_from(code) {
        Ok(child::EXIT_OK) => parse_json(&bytes, what),
        Ok(child::EXIT_PLUGIN_ERROR) => {
            let error: PluginError = parse_json(&bytes, "plugin error")?;
            Err(FailureCause::PluginError {
                message: error.message,
            })
        }
        Ok(child::EXIT_PANIC) => Err(FailureCause::Panic {
            message: String::from_utf8_lossy(&bytes).into_owned(),
        }),
        Ok(child::EXIT_OTHER_RC) => Err(FailureCause::BadOutput {
            detail: format!("undefined return code {}", String::from_utf8_lossy(&bytes)),
        }),
        Ok(child::EXIT_REFUSED) => Err(parse_json::<FailureCause>(&bytes, "refusal")?),
        _ => Err(FailureCause::Exited { code }),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, FailureCause> {
    let text = std::str::from_utf8(bytes).map_err(|e| FailureCause::BadOutput {
        detail: format!("{what} is not valid UTF-8 ({e})"),
    })?;
    serde_json::from_str(text).map_err(|e| FailureCause::BadOutput {
        detail: format!("{what} is not the expected JSON ({e})"),
    })
}

/// `(uid, gid)` of a user from `/etc/passwd`.
fn lookup_user(name: &str) -> Result<(u32, u32), FailureCause> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| FailureCause::Spawn {
        detail: format!("cannot read /etc/passwd: {e}"),
    })?;
    parse_passwd(&passwd, name).ok_or_else(|| FailureCause::Spawn {
        detail: format!("run_as_user {name:?} is not in /etc/passwd"),
    })
}

fn parse_passwd(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(parse_passwd(text, "nobody"), Some((65534, 65534)));
        assert_eq!(parse_passwd(text, "root"), Some((0, 0)));
        assert_eq!(parse_passwd(text, "nob"), None);
    }
}
