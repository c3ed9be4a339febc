//! The status report: what `dmagent status` shows, built from one consistent
//! snapshot of the client database.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;

use crate::daemon::store_actor::ControlContext;
use crate::protocol::{LinkFlags, RecurrenceBehavior};
use crate::scheduler::{explain, Links, Reachability, RetryPolicy, Wait};
use crate::store::{
    CheckpointRecord, PackageRecord, PackageState, Snapshot, Store, StoreError, TaskId, TaskRecord,
};

/// Everything an operator needs to see at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The agent's version.
    pub agent_version: String,
    /// The device ID in use (absent if it cannot be resolved).
    pub device_id: Option<String>,
    /// The configured management server.
    pub server_url: String,
    /// Path of the database file.
    pub database: String,
    /// Whether a daemon answered (otherwise the CLI read the database itself).
    pub daemon_running: bool,
    /// When the report was made (Unix seconds).
    pub generated_unix: u64,
    /// The link classes up when the report was made.
    pub links: String,
    /// The image's signature policy and trusted keys (X8), in words.
    #[serde(default)]
    pub trust: String,
    /// Packages known to the device.
    pub packages: Vec<PackageStatus>,
    /// Scheduled tasks, earliest first.
    pub tasks: Vec<TaskStatus>,
    /// Undelivered status messages and reports, oldest first.
    pub outbox: Vec<OutboxStatus>,
    /// The values the server issued.
    pub server: ServerStatus,
    /// The last write to the client database that failed (disk full, I/O
    /// error), while none has committed since; the agent keeps retrying.
    #[serde(default)]
    pub database_error: Option<String>,
}

/// One package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageStatus {
    /// Package ID.
    pub id: String,
    /// Display name from the instructions.
    pub name: Option<String>,
    /// Mandatory or optional.
    pub required: bool,
    /// Whether an optional package was accepted locally.
    pub accepted: bool,
    /// State (`pending`, `downloading`, …).
    pub state: String,
    /// Bytes downloaded so far, from the checkpoint.
    pub bytes_done: Option<u64>,
    /// Expected size in bytes.
    pub bytes_total: Option<u64>,
    /// The last outcome, in words.
    pub last_outcome: Option<String>,
    /// What happens next, and why it waits when it waits.
    pub next_step: String,
}

/// One scheduled task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// Task ID (`poll`, `download:<id>`, `report:software`).
    pub id: String,
    /// When it is due (Unix seconds).
    pub next_due_unix: u64,
    /// Recurrence period, if recurring.
    pub period_secs: Option<u64>,
    /// Retries spent on the current occurrence.
    pub attempts: u32,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Why it is not running now (`None`: due and runnable).
    pub waiting: Option<String>,
}

/// One undelivered outbox item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxStatus {
    /// Delivery order.
    pub seq: u64,
    /// When it was queued (Unix seconds).
    pub queued_unix: u64,
    /// What it is, in words (`status 11031 for PKG`, `report MachineInventory`).
    pub summary: String,
}

/// The server-issued values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServerStatus {
    /// `X-Device-Timestamp` as last issued.
    pub timestamp: Option<String>,
    /// Whether an `X-Device-Auth` token is held (the token itself is not shown).
    pub auth_token_held: bool,
    /// `ClientSettings/@version` last applied.
    pub client_settings_version: Option<String>,
    /// Poll interval set by the server, if any.
    pub poll_interval_secs: Option<u64>,
    /// Poll server set by the server, if any.
    pub poll_server: Option<String>,
    /// Since when the server has not answered, if it does not.
    pub unreachable_since_unix: Option<u64>,
}

impl StatusReport {
    /// Reads one snapshot of `store`, probes the links, and builds the report.
    pub fn collect(store: &Store, context: &ControlContext) -> Result<StatusReport, StoreError> {
        let links =
            crate::scheduler::links::probe(&context.settings.links, Path::new("/sys/class/net"));
        let now = context.clock.now_unix();
        // One read transaction; the packages are summarised as they are
        // read, never all held as full records.
        let streamed = store.read(|rx| {
            let rest = Snapshot {
                schema_version: rx.schema_version()?,
                packages: Vec::new(),
                tasks: rx.tasks()?,
                checkpoints: rx.checkpoints()?,
                outbox: rx.outbox(usize::MAX)?,
                next_outbox_seq: rx.next_outbox_seq()?,
                server: rx.server_values()?,
            };
            Self::assemble(&rest, context, now, links, |describe| {
                let mut packages = Vec::new();
                rx.for_each_package(|p| {
                    packages.push(describe(&p));
                    Ok(())
                })?;
                Ok(packages)
            })
        });
        let mut report = match streamed {
            Ok(report) => report,
            // The daemon still answers while its database cannot be read
            // (a failed write it cannot reopen from yet): the report says so.
            Err(e) if context.daemon_running => {
                let mut report = Self::from_snapshot(&Snapshot::default(), context, now, links);
                report.database_error = Some(format!(
                    "cannot read the client database, retrying (packages not shown): {e}; last failed write: {}",
                    store.write_error().unwrap_or_else(|| "none".into())
                ));
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        report.database_error = store.write_error();
        Ok(report)
    }

    /// The report for a database that does not exist yet.
    pub fn empty(context: &ControlContext, now_unix: u64) -> StatusReport {
        Self::from_snapshot(&Snapshot::default(), context, now_unix, Links::OFFLINE)
    }

    /// Builds the report from a snapshot (pure, for tests).
    pub fn from_snapshot(
        snapshot: &Snapshot,
        context: &ControlContext,
        now: u64,
        links: Links,
    ) -> StatusReport {
        let built = Self::assemble(snapshot, context, now, links, |describe| {
            Ok::<_, Infallible>(snapshot.packages.iter().map(describe).collect())
        });
        match built {
            Ok(report) => report,
            Err(never) => match never {},
        }
    }

    /// The report from everything in `snapshot` but its packages, which
    /// `packages` lists through the summariser it is given.
    fn assemble<E>(
        snapshot: &Snapshot,
        context: &ControlContext,
        now: u64,
        links: Links,
        packages: impl FnOnce(&dyn Fn(&PackageRecord) -> PackageStatus) -> Result<Vec<PackageStatus>, E>,
    ) -> Result<StatusReport, E> {
        let values = &snapshot.server;
        let policy = RetryPolicy::effective(&context.settings, values);
        let reach = match values.unreachable_since {
            Some(since) => Reachability::UnreachableSince(since),
            None => Reachability::Reachable,
        };
        let why = Why {
            now,
            links,
            reach,
            policy,
            image_cap: context.settings.download.bandwidth_limit.map(|c| c.get()),
        };
        let checkpoints: HashMap<&str, &CheckpointRecord> = snapshot
            .checkpoints
            .iter()
            .map(|c| (c.package_id.as_str(), c))
            .collect();
        let task_by_id: HashMap<&TaskId, &TaskRecord> =
            snapshot.tasks.iter().map(|t| (&t.id, t)).collect();
        let packages = packages(&|p: &PackageRecord| {
            let checkpoint = checkpoints.get(p.id.as_str()).copied();
            let task = task_by_id.get(&TaskId::download(&p.id)).copied();
            PackageStatus {
                id: p.id.clone(),
                name: p.name.clone(),
                required: p.required,
                accepted: p.accepted,
                state: p.state.to_string(),
                bytes_done: checkpoint.map(|c| c.bytes_done).or_else(|| {
                    // Verified and on disk: complete.
                    matches!(
                        p.state,
                        PackageState::Downloaded
                            | PackageState::Installing
                            | PackageState::Installed
                    )
                    .then(|| p.instructions.as_ref().and_then(|i| i.package_size))
                    .flatten()
                }),
                bytes_total: checkpoint
                    .and_then(|c| c.total)
                    .or_else(|| p.instructions.as_ref().and_then(|i| i.package_size)),
                last_outcome: p.last_outcome.as_ref().map(|o| match o.message_id {
                    Some(id) => format!("{id}: {}", o.detail),
                    None => o.detail.clone(),
                }),
                next_step: why.package(p, task),
            }
        })?;
        let mut tasks: Vec<TaskStatus> = snapshot
            .tasks
            .iter()
            .map(|t| TaskStatus {
                id: t.id.to_string(),
                next_due_unix: t.next_due_unix,
                period_secs: t.period_secs,
                attempts: t.attempts,
                last_error: t.last_error.clone(),
                waiting: why.task(t),
            })
            .collect();
        tasks.sort_by(|a, b| a.next_due_unix.cmp(&b.next_due_unix).then(a.id.cmp(&b.id)));
        let outbox = snapshot
            .outbox
            .iter()
            .map(|item| OutboxStatus {
                seq: item.seq,
                queued_unix: item.queued_unix,
                summary: item.body.summary(),
            })
            .collect();
        let client = values.client_settings.as_ref();
        let configured = context.settings.server.url.as_deref();
        Ok(StatusReport {
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            device_id: context.device_id.clone(),
            server_url: crate::transport::effective_server_url(
                configured,
                client.and_then(|c| c.poll_server.as_deref()),
            )
            .unwrap_or_else(|| "(none configured)".to_owned()),
            database: context.settings.database_path().display().to_string(),
            daemon_running: context.daemon_running,
            generated_unix: now,
            links: links.to_string(),
            trust: crate::trust::describe(&context.settings.trust),
            packages,
            tasks,
            outbox,
            server: ServerStatus {
                timestamp: values.timestamp.clone(),
                auth_token_held: values.auth_token.as_deref().is_some_and(|t| !t.is_empty()),
                client_settings_version: client.and_then(|c| c.version.clone()),
                poll_interval_secs: client.and_then(|c| c.poll_interval).map(|d| d.as_secs()),
                poll_server: client.and_then(|c| c.poll_server.clone()),
                unreachable_since_unix: values.unreachable_since,
            },
            database_error: None,
        })
    }
}

/// The inputs of "why is this waiting".
struct Why {
    now: u64,
    links: Links,
    reach: Reachability,
    policy: RetryPolicy,
    image_cap: Option<u64>,
}

impl Why {
    /// Why a task waits, in words; `None` when it would run now.
    fn task(&self, task: &TaskRecord) -> Option<String> {
        explain(task, self.now, self.links, self.reach, self.policy).map(|w| self.words(&w))
    }

    fn words(&self, wait: &Wait) -> String {
        match wait {
            Wait::NotDue { at_unix } => {
                format!("not due until {} (start time not reached)", when(*at_unix))
            }
            Wait::Retry {
                attempt,
                max,
                at_unix,
            } => format!("retry {attempt} of {max} at {}", when(*at_unix)),
            Wait::Offline => "offline: no network link is up".to_owned(),
            Wait::LinkNotAllowed { flags, up } => format!(
                "its Flags ({}) allow only {}; up now: {up}",
                LinkFlags(*flags),
                allowed_classes(*flags)
            ),
            Wait::ServerUnreachable { since_unix } => {
                format!(
                    "the server has not answered since {}; waiting for a poll to get through",
                    when(*since_unix)
                )
            }
        }
    }

    /// The next step of a package and, when it waits, why.
    fn package(&self, package: &PackageRecord, task: Option<&TaskRecord>) -> String {
        let instructions = package.instructions.as_ref();
        let limit = [instructions.and_then(|i| i.bandwidth_limit), self.image_cap]
            .into_iter()
            .flatten()
            .min();
        let exec_only = instructions
            .and_then(|i| i.recurrence.as_ref())
            .is_some_and(|r| r.behavior == RecurrenceBehavior::ExecuteOnly);
        match package.state {
            PackageState::AwaitingInstructions => {
                "request its instructions at the next poll".to_owned()
            }
            PackageState::Pending if !package.required && !package.accepted => {
                format!("optional: waiting for `dmagent accept {}`", package.id)
            }
            PackageState::Failed => {
                "failed; its instructions are requested again at the next poll".to_owned()
            }
            PackageState::Downloaded => "run the post-install step".to_owned(),
            PackageState::Installing => {
                "post-install step started; not re-run after a restart".to_owned()
            }
            PackageState::Downloading => {
                let mut text = "downloading".to_owned();
                if let Some(limit) = limit {
                    text.push_str(&format!(" (bandwidth-limited to {limit} B/s)"));
                }
                if let Some(wait) = task.and_then(|t| self.task(t)) {
                    text = format!("download interrupted; {wait}");
                }
                text
            }
            PackageState::Pending | PackageState::Installed => {
                let Some(task) = task else {
                    return if package.state == PackageState::Installed {
                        "done".to_owned()
                    } else {
                        "not scheduled".to_owned()
                    };
                };
                let action = match (package.state, exec_only) {
                    (PackageState::Installed, true) => "re-run its command",
                    (PackageState::Installed, false) => "download and run again",
                    _ => "download",
                };
                if task.next_due_unix > self.now && task.attempts == 0 {
                    let why = if package.state == PackageState::Installed {
                        "next occurrence"
                    } else {
                        "start time not reached"
                    };
                    return format!("{action} at {} ({why})", when(task.next_due_unix));
                }
                match self.task(task) {
                    None => format!("{action} now"),
                    Some(wait) => format!("{action}: {wait}"),
                }
            }
        }
    }
}

/// `2025-01-16 01:00:00 UTC`.
fn when(unix: u64) -> String {
    format!("{} UTC", crate::poller::schedule::civil(unix))
}

/// The link classes a `Flags` value allows, in words.
fn allowed_classes(flags: u32) -> String {
    let names: Vec<&str> = [
        (0x1, "low bandwidth"),
        (0x2, "high bandwidth"),
        (0x4, "docked"),
    ]
    .into_iter()
    .filter_map(|(bit, name)| (flags & bit != 0).then_some(name))
    .collect();
    if names.is_empty() {
        "any link".to_owned()
    } else {
        names.join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Settings;

    /// `collect` summarises the packages as it reads them; the report must
    /// be the one built from a whole snapshot, checkpoints and tasks matched
    /// to their packages.
    #[test]
    fn the_streamed_report_is_the_snapshot_report() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("dmagent.redb")).expect("open");
        store
            .write(|tx| {
                for i in 0..40 {
                    let mut p = PackageRecord::new(format!("PKG-{i:02}"), 1_000);
                    p.state = if i % 3 == 0 {
                        PackageState::Downloading
                    } else {
                        PackageState::Pending
                    };
                    tx.put_package(&p)?;
                }
                tx.put_task(&TaskRecord::download("PKG-03", 2_000, 0, 1_000))?;
                tx.put_task(&TaskRecord::download("PKG-04", 3_000, 0, 1_000))?;
                tx.put_checkpoint(&CheckpointRecord {
                    package_id: "PKG-03".into(),
                    url: "http://example.invalid/p".into(),
                    etag: None,
                    bytes_done: 4_096,
                    total: Some(10_000),
                    updated_unix: 1_500,
                })
            })
            .expect("write");
        let context = ControlContext {
            settings: Settings::default(),
            device_id: Some("DEV-1".into()),
            daemon_running: true,
            clock: Arc::new(ManualClock::new(1_800)),
        };
        let streamed = StatusReport::collect(&store, &context).expect("collect");
        let links =
            crate::scheduler::links::probe(&context.settings.links, Path::new("/sys/class/net"));
        let whole = StatusReport::from_snapshot(
            &store.snapshot().expect("snapshot"),
            &context,
            1_800,
            links,
        );
        assert_eq!(streamed, whole);
        assert_eq!(streamed.packages.len(), 40);
        let p3 = &streamed.packages[3];
        assert_eq!(
            (p3.id.as_str(), p3.bytes_done, p3.bytes_total),
            ("PKG-03", Some(4_096), Some(10_000))
        );
    }
}
