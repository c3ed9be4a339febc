//! The inventory collector actor: runs the collector plugins of a due report
//! task on the plugin host (off the async threads), concatenates their output
//! into one document as the CE client did with its provider libraries, and
//! queues it in the outbox in one transaction. A collector that fails is
//! logged; the others' output is still sent.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, Recipient};
use dmagent_plugin_api::CollectResult;

use super::{collect_request, kind_of, settings_of};
use crate::agent::{AgentContext, AgentError};
use crate::protocol::{Document, ReportType};
use crate::reporter::actor::Flush;
use crate::scheduler::actor::TaskFinished;
use crate::scheduler::Attempt;
use crate::store::{OutboxBody, TaskKind, TaskRecord};

/// Largest file a file-collection report uploads.
pub const MAX_COLLECTED_FILE_BYTES: u64 = 1 << 30;

/// Run the report of this task.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct RunReport {
    /// The report task as the scheduler saw it.
    pub task: TaskRecord,
}

/// See the module docs.
#[derive(Debug)]
pub struct InventoryActor {
    context: Arc<AgentContext>,
    scheduler: Recipient<TaskFinished>,
    reporter: Recipient<Flush>,
}

impl InventoryActor {
    /// A collector reporting to `scheduler` and waking `reporter`.
    pub fn new(
        context: Arc<AgentContext>,
        scheduler: Recipient<TaskFinished>,
        reporter: Recipient<Flush>,
    ) -> Self {
        InventoryActor {
            context,
            scheduler,
            reporter,
        }
    }
}

impl Actor for InventoryActor {
    type Context = Context<Self>;
}

impl Handler<RunReport> for InventoryActor {
    type Result = ();

    fn handle(&mut self, run: RunReport, _: &mut Context<Self>) {
        let context = self.context.clone();
        let scheduler = self.scheduler.clone();
        let reporter = self.reporter.clone();
        actix_rt::spawn(async move {
            let attempt = match &run.task.kind {
                TaskKind::Report { report } => match collect(&context, *report).await {
                    Ok((queued, failures)) => {
                        tracing::info!(report = %report, queued, "report queued");
                        let _ = reporter.try_send(Flush);
                        if failures.is_empty() {
                            Attempt::Succeeded
                        } else {
                            Attempt::Partial(format!("collectors failed: {}", failures.join("; ")))
                        }
                    }
                    Err(e) => e.attempt(),
                },
                _ => Attempt::Terminal("not a report task".into()),
            };
            let _ = scheduler.try_send(TaskFinished {
                id: run.task.id,
                attempt,
            });
        });
    }
}

/// Runs the collectors of `report` and queues what they produced; returns the
/// number of outbox items queued and the collectors that failed. A document
/// unchanged since the last accepted one is not queued (see the module docs
/// of [`super`]).
pub async fn collect(
    context: &Arc<AgentContext>,
    report: ReportType,
) -> Result<(usize, Vec<String>), AgentError> {
    let (bodies, failures) = build(context, report).await?;
    // Hashing is blocking work: not on the actor's thread.
    let hashed = context
        .blocking(move || {
            Ok(bodies
                .into_iter()
                .map(|body| {
                    let digest = match &body {
                        OutboxBody::Report { xml, .. } => Some(super::report_digest(xml)),
                        _ => None,
                    };
                    (body, digest)
                })
                .collect::<Vec<_>>())
        })
        .await?;
    let cap = context.settings.outbox.max_items;
    let (count, unchanged, dropped) = context
        .db(move |s| {
            s.write(|tx| {
                let values = tx.server_values()?;
                let send_unchanged = settings_of(&values, report)
                    .and_then(|s| s.send_unchanged)
                    .unwrap_or(false);
                let accepted = tx.report_digest(report)?;
                let queued = tx.outbox(usize::MAX)?;
                let (mut count, mut unchanged, mut dropped) = (0, 0, Vec::new());
                for (body, digest) in hashed {
                    if let Some(digest) = digest {
                        let identical = queued.iter().any(|i| i.body == body);
                        if !super::should_queue(
                            send_unchanged,
                            &digest,
                            accepted.as_ref(),
                            identical,
                        ) {
                            unchanged += 1;
                            continue;
                        }
                    }
                    dropped.extend(super::enqueue_within_cap(tx, body, cap)?);
                    count += 1;
                }
                Ok((count, unchanged, dropped))
            })
        })
        .await?;
    if count > 0 {
        crate::failpoint::crash_point("inventory.report.queued");
    }
    if unchanged > 0 {
        tracing::info!(report = %report, "report unchanged since the last one sent: not sent again");
    }
    if !dropped.is_empty() {
        tracing::warn!(
            count = dropped.len(),
            cap,
            "outbox full: the oldest queued reports were dropped"
        );
    }
    Ok((count, failures))
}

/// The outbox items one run of `report` produces (nothing queued yet): one
/// XML report, or one upload per collected file; and the failed collectors.
pub async fn build(
    context: &Arc<AgentContext>,
    report: ReportType,
) -> Result<(Vec<OutboxBody>, Vec<String>), AgentError> {
    let values = context.db(|s| s.server_values()).await?;
    let request = collect_request(
        report,
        settings_of(&values, report),
        MAX_COLLECTED_FILE_BYTES,
    );
    let plugins = context.plugins.clone();
    let results = context
        .blocking(move || Ok(plugins.collect(kind_of(report), &request)))
        .await?;
    let mut outputs: Vec<CollectResult> = Vec::new();
    let mut failures = Vec::new();
    for (plugin, result) in results {
        match result {
            Ok(output) => outputs.push(output),
            Err(failure) => {
                tracing::warn!(%plugin, report = %report, "collector failed: {failure}");
                failures.push(failure.to_string());
            }
        }
    }
    if outputs.is_empty() {
        let why = if failures.is_empty() {
            "no collector plugin is installed".to_owned()
        } else {
            failures.join("; ")
        };
        return Err(AgentError::Protocol(format!("{report} report: {why}")));
    }
    let bodies = match report {
        ReportType::SoftwareInventory => vec![OutboxBody::Report {
            report_type: report,
            xml: crate::plugin_host::file_report(&outputs).encode(),
        }],
        ReportType::MachineInventory => vec![OutboxBody::Report {
            report_type: report,
            xml: crate::plugin_host::machine_inventory(&outputs).encode(),
        }],
        ReportType::FileCollection => outputs
            .iter()
            .flat_map(|o| match o {
                CollectResult::Files { files } => files.clone(),
                _ => Vec::new(),
            })
            .map(|f| OutboxBody::CollectedFile { path: f.path })
            .collect(),
    };
    Ok((bodies, failures))
}
