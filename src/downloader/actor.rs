//! The downloader actor (placeholder until the engine lands).

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, Recipient};

use crate::agent::AgentContext;
use crate::config::Settings;
use crate::reporter::actor::Flush;
use crate::scheduler::actor::TaskFinished;
use crate::scheduler::Attempt;
use crate::store::{PackageRecord, TaskRecord};

/// Run the download event of this task.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct RunDownload {
    /// The download task as the scheduler saw it.
    pub task: TaskRecord,
}

/// See the module docs.
#[derive(Debug)]
pub struct DownloaderActor {
    _context: Arc<AgentContext>,
    scheduler: Recipient<TaskFinished>,
    _reporter: Recipient<Flush>,
}

impl DownloaderActor {
    /// A downloader reporting to `scheduler` and waking `reporter`.
    pub fn new(
        context: Arc<AgentContext>,
        scheduler: Recipient<TaskFinished>,
        reporter: Recipient<Flush>,
    ) -> Self {
        DownloaderActor {
            _context: context,
            scheduler,
            _reporter: reporter,
        }
    }
}

impl Actor for DownloaderActor {
    type Context = Context<Self>;
}

impl Handler<RunDownload> for DownloaderActor {
    type Result = ();

    fn handle(&mut self, run: RunDownload, _: &mut Context<Self>) {
        let _ = self.scheduler.try_send(TaskFinished {
            id: run.task.id,
            attempt: Attempt::Retryable("downloads are not wired yet".into()),
        });
    }
}

/// Deletes the checkpoint and partial data of a dropped package.
pub fn discard_partial(_settings: &Settings, _package: &PackageRecord) {}
