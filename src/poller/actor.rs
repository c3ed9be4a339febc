//! The poller actor: one poll cycle per `RunPoll` — DevicePoll, persist what
//! the server issued, apply its settings, compare the package list, one
//! instruction request per needed package, store and schedule each answer.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, Recipient};

use super::schedule::{store_instructions, system_local_offset};
use super::{reconcile, same_package};
use crate::agent::{AgentContext, AgentError};
use crate::protocol::ReportType;
use crate::protocol::{
    Action, ClientSettings, DevicePoll, Document, Instructions, InstructionsRequest, PollResponse,
    ReportSettings,
};
use crate::reporter::actor::Flush;
use crate::scheduler::actor::TaskFinished;
use crate::scheduler::Attempt;
use crate::store::{Outcome, PackageRecord, PackageState, ServerValues, TaskId, TaskRecord};
use crate::transport::{Exchange, TransportError};

/// Run one poll cycle for this task.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct RunPoll {
    /// The poll task as the scheduler saw it.
    pub task: TaskRecord,
}

/// See the module docs.
#[derive(Debug)]
pub struct PollerActor {
    context: Arc<AgentContext>,
    scheduler: Recipient<TaskFinished>,
    reporter: Recipient<Flush>,
}

impl PollerActor {
    /// A poller reporting to `scheduler` and waking `reporter`.
    pub fn new(
        context: Arc<AgentContext>,
        scheduler: Recipient<TaskFinished>,
        reporter: Recipient<Flush>,
    ) -> Self {
        PollerActor {
            context,
            scheduler,
            reporter,
        }
    }
}

impl Actor for PollerActor {
    type Context = Context<Self>;
}

impl Handler<RunPoll> for PollerActor {
    type Result = ();

    fn handle(&mut self, run: RunPoll, _: &mut Context<Self>) {
        let context = self.context.clone();
        let scheduler = self.scheduler.clone();
        let reporter = self.reporter.clone();
        actix_rt::spawn(async move {
            let attempt = match poll_cycle(&context).await {
                Ok(summary) => {
                    tracing::info!(
                        requested = summary.requested,
                        removed = summary.removed,
                        "poll complete"
                    );
                    Attempt::Succeeded
                }
                Err(e) => e.attempt(),
            };
            let _ = reporter.try_send(Flush);
            let _ = scheduler.try_send(TaskFinished {
                id: run.task.id,
                attempt,
            });
        });
    }
}

/// What one cycle did.
#[derive(Debug, Default)]
struct Summary {
    requested: usize,
    removed: usize,
}

/// One full poll cycle.
async fn poll_cycle(context: &Arc<AgentContext>) -> Result<Summary, AgentError> {
    let values = context.db(|s| s.server_values()).await?;
    let url = context.server_url(&values)?;
    let poll = device_poll(context, &values);
    let exchange = context
        .transport
        .post_xml(&url, &context.headers(&values), Action::Poll, poll.encode())
        .await?;
    // The server-issued values are committed before the body is processed.
    persist_issued(context, &exchange).await?;
    let response = PollResponse::decode_shared(&exchange.body)?;
    apply_settings(context, &response).await?;

    let stored = context.db(|s| s.package_states()).await?;
    let plan = reconcile(&stored, response.applicable_packages.as_ref());
    let mut summary = Summary::default();
    for id in plan.remove.iter() {
        remove_package(context, id).await?;
        summary.removed += 1;
    }
    for id in plan.request.iter() {
        request_instructions(context, &url, id).await?;
        summary.requested += 1;
    }
    Ok(summary)
}

/// The DevicePoll document for this device.
fn device_poll(context: &AgentContext, values: &ServerValues) -> DevicePoll {
    super::device_poll(
        context.device_id.clone(),
        context.device_name.clone(),
        values.auth_token.clone(),
        values.timestamp.clone(),
    )
}

/// Stores a new `X-Device-Timestamp`/`X-Device-Auth` from a response.
async fn persist_issued(context: &AgentContext, exchange: &Exchange) -> Result<(), AgentError> {
    if exchange.timestamp.is_none() && exchange.auth.is_none() {
        return Ok(());
    }
    let (timestamp, auth) = (exchange.timestamp.clone(), exchange.auth.clone());
    context
        .db(move |s| {
            s.write(|tx| {
                tx.update_server_values(|v| {
                    if timestamp.is_some() {
                        v.timestamp = timestamp;
                    }
                    if auth.is_some() {
                        v.auth_token = auth;
                    }
                })
                .map(drop)
            })
        })
        .await
}

/// Applies the `Settings` section: an unchanged `version` changes nothing,
/// absent children keep their values. A new poll interval moves the poll task.
async fn apply_settings(context: &AgentContext, response: &PollResponse) -> Result<(), AgentError> {
    let Some(settings) = response.settings.clone() else {
        return Ok(());
    };
    let now = context.clock.now_unix();
    let agent_settings = context.settings.clone();
    context
        .db(move |s| {
            s.write(|tx| {
                let mut changed = Vec::new();
                let values = tx.update_server_values(|v| {
                    if let Some(client) = settings.client {
                        v.client_settings = Some(merge_client(v.client_settings.take(), client));
                    }
                    for (report, new) in [
                        (ReportType::SoftwareInventory, settings.software_inventory),
                        (ReportType::MachineInventory, settings.machine_inventory),
                        (ReportType::FileCollection, settings.file_collection),
                    ] {
                        let current = match report {
                            ReportType::SoftwareInventory => &mut v.software_inventory,
                            ReportType::MachineInventory => &mut v.machine_inventory,
                            ReportType::FileCollection => &mut v.file_collection,
                        };
                        if merge_report(current, new) {
                            changed.push(report);
                        }
                    }
                })?;
                // New report settings (re)schedule or stop their report task in
                // the same transaction.
                for report in changed {
                    // New settings bring one fresh report, changed or not.
                    tx.remove_report_digest(report)?;
                    let settings = crate::inventory::settings_of(&values, report);
                    match settings.and_then(|s| crate::inventory::report_task(report, s, now)) {
                        Some(task) => {
                            tracing::info!(report = %report, every = task.period_secs, "report enabled");
                            tx.put_task(&task)?;
                        }
                        None => {
                            if tx.remove_task(TaskId::report(report))? {
                                tracing::info!(report = %report, "report disabled");
                            }
                        }
                    }
                }
                let interval = crate::scheduler::poll_interval_secs(&agent_settings, &values);
                if let Some(mut task) = tx.task(TaskId::poll())? {
                    if task.period_secs != Some(interval) {
                        tracing::info!(secs = interval, "poll interval changed by the server");
                        task.period_secs = Some(interval);
                        tx.put_task(&task)?;
                    }
                } else {
                    tx.put_task(&TaskRecord::poll(now + interval, interval, now))?;
                }
                Ok(())
            })
        })
        .await?;
    crate::failpoint::crash_point("poller.settings.committed");
    Ok(())
}

/// `ClientSettings` over the current ones (part A §2.5, G23).
pub fn merge_client(current: Option<ClientSettings>, new: ClientSettings) -> ClientSettings {
    let Some(mut merged) = current else {
        return new;
    };
    if new.version.is_some() && new.version == merged.version {
        return merged;
    }
    merged.version = new.version.or(merged.version);
    merged.poll_server = new.poll_server.or(merged.poll_server);
    merged.poll_interval = new.poll_interval.or(merged.poll_interval);
    merged.failure_retry_count = new.failure_retry_count.or(merged.failure_retry_count);
    merged.failure_retry_interval = new.failure_retry_interval.or(merged.failure_retry_interval);
    merged
}

/// A report section replaces the stored one unless its `version` is
/// unchanged (or it is identical); returns whether it changed.
fn merge_report(current: &mut Option<ReportSettings>, new: Option<ReportSettings>) -> bool {
    let Some(new) = new else {
        return false;
    };
    let unchanged = current
        .as_ref()
        .is_some_and(|c| (new.version.is_some() && c.version == new.version) || *c == new);
    if !unchanged {
        *current = Some(new);
    }
    !unchanged
}

/// Drops a package the server no longer lists: its record, task and
/// checkpoint in one transaction, then its partial download files.
async fn remove_package(context: &Arc<AgentContext>, id: &str) -> Result<(), AgentError> {
    let package_id = id.to_owned();
    let removed = context
        .db(move |s| s.write(|tx| tx.remove_package(&package_id)))
        .await?;
    crate::failpoint::crash_point("poller.removal.committed");
    tracing::info!(package = id, "package no longer assigned; removed");
    if let Some(package) = removed {
        let settings = context.settings.clone();
        context
            .blocking(move || {
                crate::downloader::actor::discard_partial(&settings, &package);
                Ok(())
            })
            .await?;
    }
    Ok(())
}

/// One instruction request, and storing its answer.
async fn request_instructions(
    context: &Arc<AgentContext>,
    url: &str,
    id: &str,
) -> Result<(), AgentError> {
    let values = context.db(|s| s.server_values()).await?;
    let request = InstructionsRequest {
        package_id: id.to_owned(),
    };
    let now = context.clock.now_unix();
    let result = context
        .transport
        .post_xml(
            url,
            &context.headers(&values),
            Action::InstructionRequest,
            request.encode(),
        )
        .await;
    let exchange = match result {
        Ok(exchange) => exchange,
        Err(TransportError::Status { status: 404, .. }) => {
            // Unknown to the server after all: nothing to keep (part A §7.3).
            let package_id = id.to_owned();
            context
                .db(move |s| s.write(|tx| tx.remove_package(&package_id)))
                .await?;
            tracing::warn!(
                package = id,
                "server does not know the package (404); dropped"
            );
            return Ok(());
        }
        Err(e @ TransportError::Unreachable(_)) => return Err(e.into()),
        Err(e) => {
            record_waiting(context, id, now, e.to_string()).await?;
            return Ok(());
        }
    };
    let instructions = match Instructions::decode(&exchange.body) {
        Ok(doc) => doc
            .packages
            .into_iter()
            .find(|p| same_package(&p.id, id))
            .ok_or_else(|| format!("the instruction response does not describe package {id}")),
        Err(e) => Err(e.to_string()),
    };
    let instructions = match instructions {
        Ok(i) => i,
        Err(error) => {
            record_waiting(context, id, now, error).await?;
            return Ok(());
        }
    };
    if context.settings.download.require_hash && instructions.hash.is_none() {
        record_waiting(
            context,
            id,
            now,
            "refused: the image requires a Hash (X1) and none was sent".into(),
        )
        .await?;
        return Ok(());
    }
    let package_id = id.to_owned();
    let auto_accept = false;
    let stored = context
        .db(move |s| {
            s.write(|tx| {
                let existing = tx.package(&package_id)?;
                let stored = store_instructions(
                    instructions,
                    existing,
                    now,
                    auto_accept,
                    &system_local_offset,
                );
                tx.put_package(&stored.package)?;
                match &stored.task {
                    Some(task) => tx.put_task(task)?,
                    None => {
                        tx.remove_task(TaskId::download(&package_id))?;
                    }
                }
                Ok(stored)
            })
        })
        .await?;
    crate::failpoint::crash_point("poller.instructions.committed");
    match &stored.task {
        Some(task) => tracing::info!(
            package = id,
            due = task.next_due_unix,
            "download event scheduled"
        ),
        None => tracing::info!(
            package = id,
            "optional package stored; waiting for `dmagent accept`"
        ),
    }
    Ok(())
}

/// Keeps a listed package whose instructions could not be had, with the reason.
async fn record_waiting(
    context: &AgentContext,
    id: &str,
    now: u64,
    error: String,
) -> Result<(), AgentError> {
    tracing::warn!(package = id, "instruction request failed: {error}");
    let package_id = id.to_owned();
    context
        .db(move |s| {
            s.write(|tx| {
                let mut package = tx
                    .package(&package_id)?
                    .unwrap_or_else(|| PackageRecord::new(&package_id, now));
                if package.instructions.is_none() {
                    package.state = PackageState::AwaitingInstructions;
                }
                package.last_outcome = Some(Outcome {
                    at_unix: now,
                    message_id: None,
                    detail: error,
                });
                package.updated_unix = now;
                tx.put_package(&package)
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn client_settings_merge_by_version() {
        let v1 = ClientSettings {
            version: Some("1".into()),
            poll_interval: Some(Duration::from_secs(3600)),
            failure_retry_count: Some(5),
            ..ClientSettings::default()
        };
        let same_version = ClientSettings {
            version: Some("1".into()),
            poll_interval: Some(Duration::from_secs(60)),
            ..ClientSettings::default()
        };
        assert_eq!(
            merge_client(Some(v1.clone()), same_version),
            v1,
            "an unchanged version is skipped"
        );
        let v2 = ClientSettings {
            version: Some("2".into()),
            poll_interval: Some(Duration::from_secs(120)),
            ..ClientSettings::default()
        };
        let merged = merge_client(Some(v1), v2);
        assert_eq!(merged.poll_interval, Some(Duration::from_secs(120)));
        assert_eq!(
            merged.failure_retry_count,
            Some(5),
            "absent children keep their value"
        );
        assert_eq!(merged.version.as_deref(), Some("2"));
    }
}
