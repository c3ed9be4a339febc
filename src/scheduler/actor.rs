//! The scheduler actor: thin glue around the policy in `mod.rs`. It owns the
//! timing of every task in the store, hands due tasks to the poller and the
//! downloader, and applies what they report back.

use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, Recipient, SpawnHandle,
    WrapFuture,
};

use super::settle::{Dispatch, Settling};
use super::{after_attempt, plan, Attempt, Links, Next, Reachability};
use crate::agent::AgentContext;
use crate::downloader::actor::RunDownload;
use crate::inventory::actor::RunReport;
use crate::poller::actor::RunPoll;
use crate::reporter::actor::Flush;
use crate::store::{Outcome, PackageState, TaskId, TaskKind, TaskRecord};

/// Re-plan now: tasks changed from outside (poll-now, accept) or the clock
/// moved (tests).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Wake;

/// A worker finished an attempt of a task.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct TaskFinished {
    /// The task.
    pub id: TaskId,
    /// How it ended.
    pub attempt: Attempt,
}

/// The reporter learned whether the server answers.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Reached(pub bool);

/// Longest sleep between plans; also how often links are re-probed while
/// work is parked waiting for one.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// See the module docs.
#[derive(Debug)]
pub struct SchedulerActor {
    context: Arc<AgentContext>,
    poller: Recipient<RunPoll>,
    downloader: Recipient<RunDownload>,
    inventory: Recipient<RunReport>,
    reporter: Recipient<Flush>,
    reach: Reachability,
    links: Links,
    /// Which tasks may be dispatched ([`super::settle`]).
    settling: Settling,
    planning: bool,
    replan_again: bool,
    timer: Option<SpawnHandle>,
}

impl SchedulerActor {
    /// A scheduler dispatching to these workers.
    pub fn new(
        context: Arc<AgentContext>,
        poller: Recipient<RunPoll>,
        downloader: Recipient<RunDownload>,
        inventory: Recipient<RunReport>,
        reporter: Recipient<Flush>,
    ) -> Self {
        SchedulerActor {
            context,
            poller,
            downloader,
            inventory,
            reporter,
            reach: Reachability::Reachable,
            links: Links::OFFLINE,
            settling: Settling::default(),
            planning: false,
            replan_again: false,
            timer: None,
        }
    }

    /// Loads the tasks, probes the links and dispatches what is due.
    fn replan(&mut self, ctx: &mut Context<Self>) {
        if self.planning {
            self.replan_again = true;
            return;
        }
        self.planning = true;
        let plan_number = self.settling.start_plan();
        let context = self.context.clone();
        let work = async move {
            let tasks = context.db(|s| s.tasks()).await;
            let probe_context = context.clone();
            let links = context
                .db_thread
                .run(move || {
                    super::links::probe(&probe_context.settings.links, &probe_context.sys_class_net)
                })
                .await;
            (tasks, links)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(move |(tasks, links), actor, ctx| {
                    actor.planning = false;
                    let now = actor.context.clock.now_unix();
                    if let Ok(links) = links {
                        if links != actor.links {
                            tracing::info!(links = %links, "network links changed");
                        }
                        actor.links = links;
                    }
                    let tasks = match tasks {
                        Ok(tasks) => tasks,
                        Err(e) => {
                            tracing::error!("cannot read the task list: {e}");
                            actor.sleep(ctx, MAX_SLEEP);
                            return;
                        }
                    };
                    let plan = plan(&tasks, now, actor.links, actor.reach);
                    for task in plan.run {
                        actor.dispatch(task, plan_number);
                    }
                    actor.settling.end_plan(plan_number);
                    for (task, wait) in &plan.parked {
                        tracing::debug!(task = %task.id, ?wait, "parked");
                    }
                    let sleep = match plan.next_wake_unix {
                        Some(at) => {
                            Duration::from_secs(at.saturating_sub(now).max(1)).min(MAX_SLEEP)
                        }
                        None => MAX_SLEEP,
                    };
                    actor.sleep(ctx, sleep);
                    if std::mem::take(&mut actor.replan_again) {
                        actor.replan(ctx);
                    }
                }),
        );
    }

    fn sleep(&mut self, ctx: &mut Context<Self>, duration: Duration) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        self.timer = Some(ctx.run_later(duration, |actor, ctx| {
            actor.timer = None;
            actor.replan(ctx);
        }));
    }

    /// Records a change of reachability, in memory and in the store (for
    /// `dmagent status`).
    fn set_reach(&mut self, reach: Reachability) {
        if reach == self.reach {
            return;
        }
        match reach {
            Reachability::Reachable => tracing::info!("management server reachable again"),
            Reachability::UnreachableSince(_) => {
                tracing::warn!(
                    "management server unreachable; parking work until a poll gets through"
                )
            }
        }
        self.reach = reach;
        let since = match reach {
            Reachability::Reachable => None,
            Reachability::UnreachableSince(t) => Some(t),
        };
        let context = self.context.clone();
        actix_rt::spawn(async move {
            let result = context
                .db(move |s| {
                    s.write(|tx| {
                        tx.update_server_values(|v| v.unreachable_since = since)
                            .map(drop)
                    })
                })
                .await;
            if let Err(e) = result {
                tracing::error!("cannot record the server's reachability: {e}");
            }
        });
    }

    fn dispatch(&mut self, task: TaskRecord, plan: u64) {
        match self.settling.dispatch(&task.id, plan) {
            Dispatch::Run => {}
            Dispatch::Busy => return,
            Dispatch::Stale => {
                // Read before its outcome was committed: the next plan decides.
                self.replan_again = true;
                return;
            }
        }
        tracing::debug!(task = %task.id, "running");
        let sent = match &task.kind {
            TaskKind::Poll => self.poller.try_send(RunPoll { task: task.clone() }).is_ok(),
            TaskKind::Download { .. } => self
                .downloader
                .try_send(RunDownload { task: task.clone() })
                .is_ok(),
            TaskKind::Report { .. } => self
                .inventory
                .try_send(RunReport { task: task.clone() })
                .is_ok(),
        };
        if !sent {
            tracing::error!(task = %task.id, "worker mailbox unavailable");
            self.settling.not_sent(&task.id);
        }
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let context = self.context.clone();
        let now = context.clock.now_unix();
        // The poll task never expires: make sure it exists, due now on a
        // first start.
        let ensure = async move {
            let values = context.db(|s| s.server_values()).await?;
            let period = context.poll_interval_secs(&values);
            context
                .db(move |s| {
                    s.write(|tx| {
                        // A new run starts by trying the server again.
                        tx.update_server_values(|v| v.unreachable_since = None)?;
                        if tx.task(TaskId::poll())?.is_none() {
                            tx.put_task(&TaskRecord::poll(now, period, now))?;
                        }
                        Ok(())
                    })
                })
                .await
        };
        ctx.spawn(ensure.into_actor(self).map(|result, actor, ctx| {
            if let Err(e) = result {
                tracing::error!("cannot create the poll task: {e}");
            }
            actor.replan(ctx);
        }));
    }
}

impl Handler<Wake> for SchedulerActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.replan(ctx);
    }
}

impl Handler<Reached> for SchedulerActor {
    type Result = ();

    fn handle(&mut self, Reached(reached): Reached, ctx: &mut Context<Self>) {
        let now = self.context.clock.now_unix();
        // Through `set_reach`, so `dmagent status` sees what the reporter
        // found too: the store used to miss an outage first seen by a report
        // upload, and the poll's failure then changed nothing.
        match (reached, self.reach) {
            (true, Reachability::UnreachableSince(_)) => {
                self.set_reach(Reachability::Reachable);
                self.replan(ctx);
            }
            (false, Reachability::Reachable) => {
                self.set_reach(Reachability::UnreachableSince(now));
            }
            _ => {}
        }
    }
}

impl Handler<TaskFinished> for SchedulerActor {
    type Result = ();

    fn handle(&mut self, finished: TaskFinished, ctx: &mut Context<Self>) {
        let now = self.context.clock.now_unix();
        let was_poll = finished.id == TaskId::poll();
        match &finished.attempt {
            Attempt::Unreachable(_) => {
                if self.reach == Reachability::Reachable {
                    self.set_reach(Reachability::UnreachableSince(now));
                }
            }
            Attempt::Succeeded
            | Attempt::Partial(_)
            | Attempt::Retryable(_)
            | Attempt::Terminal(_) => {
                self.set_reach(Reachability::Reachable);
            }
        }
        if let Attempt::Retryable(e)
        | Attempt::Terminal(e)
        | Attempt::Unreachable(e)
        | Attempt::Partial(e) = &finished.attempt
        {
            tracing::warn!(task = %finished.id, "attempt failed: {e}");
        }
        let context = self.context.clone();
        let finished_id = finished.id.clone();
        let update = async move {
            let values = context.db(|s| s.server_values()).await?;
            let policy = context.retry_policy(&values);
            let id = finished.id.clone();
            let attempt = finished.attempt.clone();
            context
                .db(move |s| {
                    s.write(|tx| {
                        // The worker may have removed or rewritten the task
                        // (a dropped package, a new poll interval): apply the
                        // attempt to what is stored now.
                        let Some(mut task) = tx.task(&id)? else {
                            return Ok(());
                        };
                        // An unreachable server parks the task where it was due.
                        if matches!(attempt, Attempt::Unreachable(_)) && task.next_due_unix > now {
                            task.next_due_unix = now;
                        }
                        match after_attempt(&task, attempt, now, policy) {
                            Next::Reschedule(next) => tx.put_task(&next),
                            Next::Done => tx.remove_task(&id).map(drop),
                            Next::Failed(error) => {
                                tx.remove_task(&id)?;
                                if let TaskKind::Download { package_id } = &task.kind {
                                    if let Some(mut package) = tx.package(package_id)? {
                                        package.state = PackageState::Failed;
                                        package.last_outcome = Some(Outcome {
                                            at_unix: now,
                                            message_id: None,
                                            detail: format!(
                                                "gave up after {} retries: {error}",
                                                policy.max_retries
                                            ),
                                        });
                                        package.updated_unix = now;
                                        tx.put_package(&package)?;
                                    }
                                }
                                Ok(())
                            }
                        }
                    })
                })
                .await?;
            crate::failpoint::crash_point("scheduler.attempt.committed");
            Ok::<_, crate::agent::AgentError>(())
        };
        ctx.spawn(update.into_actor(self).map(move |result, actor, ctx| {
            if let Err(e) = result {
                tracing::error!("cannot record the end of a task: {e}");
                // The task is still due as stored: running it again at once
                // would spin. It stays busy for the retry interval.
                let wait = actor
                    .context
                    .settings
                    .retry
                    .interval
                    .max(Duration::from_secs(1));
                ctx.run_later(wait, move |actor, ctx| {
                    actor.settling.settled(finished_id);
                    actor.replan(ctx);
                });
                return;
            }
            // Only now may the task run again, and only by a plan that reads
            // the committed outcome.
            actor.settling.settled(finished_id);
            if was_poll {
                // After a poll the queued status messages go next.
                let _ = actor.reporter.try_send(Flush);
            }
            actor.replan(ctx);
        }));
    }
}
