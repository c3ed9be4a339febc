//! The status report: what `dmagent status` shows, built from one consistent
//! snapshot of the client database.

use serde::{Deserialize, Serialize};

use crate::daemon::store_actor::ControlContext;
use crate::store::{Snapshot, Store, StoreError};

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
    /// Packages known to the device.
    pub packages: Vec<PackageStatus>,
    /// Scheduled tasks, earliest first.
    pub tasks: Vec<TaskStatus>,
    /// Undelivered status messages and reports, oldest first.
    pub outbox: Vec<OutboxStatus>,
    /// The values the server issued.
    pub server: ServerStatus,
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
}

impl StatusReport {
    /// Reads one snapshot of `store` and builds the report.
    pub fn collect(store: &Store, context: &ControlContext) -> Result<StatusReport, StoreError> {
        Ok(Self::from_snapshot(
            &store.snapshot()?,
            context,
            crate::clock::unix_now(),
        ))
    }

    /// The report for a database that does not exist yet.
    pub fn empty(context: &ControlContext, now_unix: u64) -> StatusReport {
        Self::from_snapshot(&Snapshot::default(), context, now_unix)
    }

    /// Builds the report from a snapshot (pure, for tests).
    pub fn from_snapshot(
        snapshot: &Snapshot,
        context: &ControlContext,
        now_unix: u64,
    ) -> StatusReport {
        let packages = snapshot
            .packages
            .iter()
            .map(|p| {
                let checkpoint = snapshot.checkpoints.iter().find(|c| c.package_id == p.id);
                PackageStatus {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    required: p.required,
                    accepted: p.accepted,
                    state: p.state.to_string(),
                    bytes_done: checkpoint.map(|c| c.bytes_done),
                    bytes_total: checkpoint
                        .and_then(|c| c.total)
                        .or_else(|| p.instructions.as_ref().and_then(|i| i.package_size)),
                    last_outcome: p.last_outcome.as_ref().map(|o| match o.message_id {
                        Some(id) => format!("{id}: {}", o.detail),
                        None => o.detail.clone(),
                    }),
                }
            })
            .collect();
        let mut tasks: Vec<TaskStatus> = snapshot
            .tasks
            .iter()
            .map(|t| TaskStatus {
                id: t.id.to_string(),
                next_due_unix: t.next_due_unix,
                period_secs: t.period_secs,
                attempts: t.attempts,
                last_error: t.last_error.clone(),
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
        let values = &snapshot.server;
        let client = values.client_settings.as_ref();
        StatusReport {
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            device_id: context.device_id.clone(),
            server_url: context.server_url.clone(),
            database: context.database.clone(),
            daemon_running: context.daemon_running,
            generated_unix: now_unix,
            packages,
            tasks,
            outbox,
            server: ServerStatus {
                timestamp: values.timestamp.clone(),
                auth_token_held: values.auth_token.as_deref().is_some_and(|t| !t.is_empty()),
                client_settings_version: client.and_then(|c| c.version.clone()),
                poll_interval_secs: client.and_then(|c| c.poll_interval).map(|d| d.as_secs()),
                poll_server: client.and_then(|c| c.poll_server.clone()),
            },
        }
    }
}
