//! The reporter actor: drains the outbox whenever asked (after every state
//! change that queued something, and after each poll), and again after the
//! retry interval while the server does not take it.

use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, Recipient, SpawnHandle,
    WrapFuture,
};

use super::{next_delivery, Delivery};
use crate::agent::{AgentContext, AgentError};
use crate::protocol::Action;
use crate::scheduler::actor::Reached;
use crate::scheduler::Attempt;

/// Deliver what is in the outbox.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Flush;

/// See the module docs.
#[derive(Debug)]
pub struct ReporterActor {
    context: Arc<AgentContext>,
    scheduler: Recipient<Reached>,
    flushing: bool,
    again: bool,
    retry: Option<SpawnHandle>,
}

impl ReporterActor {
    /// A reporter telling `scheduler` whether the server answers.
    pub fn new(context: Arc<AgentContext>, scheduler: Recipient<Reached>) -> Self {
        ReporterActor {
            context,
            scheduler,
            flushing: false,
            again: false,
            retry: None,
        }
    }
}

/// Delivers items until the outbox is empty, a delivery fails, or what is
/// left are status messages the server refused during this drain.
async fn drain(context: Arc<AgentContext>) -> Result<usize, AgentError> {
    let mut delivered = 0;
    // Where the first status message refused alone during this drain was
    // moved to (the end of the outbox): from there on, everything was tried
    // alone in this drain, or queued during it (and flushed again after).
    let mut tried_from: Option<u64> = None;
    loop {
        let items = context.db(|s| s.outbox(super::MAX_BATCH)).await?;
        if let (Some(first), Some(from)) = (items.first(), tried_from) {
            if first.seq >= from {
                return Ok(delivered);
            }
        }
        let Some(delivery) = next_delivery(&items) else {
            return Ok(delivered);
        };
        let values = context.db(|s| s.server_values()).await?;
        let url = context.server_url(&values)?;
        let headers = context.headers(&values);
        match delivery {
            Delivery::Document { action, body, seqs } => {
                // A report's digest, hashed off the actor's thread, is kept
                // once the server has accepted the report (inventory/mod.rs).
                let (body, digest) = match action {
                    Action::Report(report) => {
                        context
                            .blocking(move || {
                                let digest = crate::inventory::report_digest(&body);
                                Ok((body, Some((report, digest))))
                            })
                            .await?
                    }
                    _ => (body, None),
                };
                crate::failpoint::crash_point("reporter.send.before");
                // `None`: refused for good, and kept. Otherwise removed from
                // the outbox, and the digest of an accepted report kept.
                let settled = match context
                    .transport
                    .post_xml(&url, &headers, action, body)
                    .await
                {
                    Ok(_) => Some(digest),
                    // Refused for good (a 4xx): kept, as status messages
                    // are never dropped (part B §8.5), and sent alone from
                    // then on. A batch's messages are each tried alone next;
                    // a message refused alone moves behind the rest, so that
                    // the rest goes out, and waits for the next drain.
                    Err(e)
                        if action == Action::Status
                            && matches!(e.attempt(), Attempt::Terminal(_)) =>
                    {
                        tracing::warn!(
                            messages = seqs.len(),
                            "status refused by the server, kept to be sent alone: {e}"
                        );
                        None
                    }
                    // A report refused for good would block the outbox
                    // forever; it is dropped.
                    Err(e) if matches!(e.attempt(), Attempt::Terminal(_)) => {
                        tracing::warn!(%action, "report refused by the server and dropped: {e}");
                        Some(None)
                    }
                    Err(e) => return Err(e.into()),
                };
                let count = seqs.len();
                let refused = settled.is_none();
                if !refused {
                    crate::failpoint::crash_point("reporter.send.accepted");
                }
                // One transaction either way (and one closure: each
                // `db` call site is code of its own in a size-capped binary).
                let moved = context
                    .db(move |s| {
                        s.write(|tx| match settled {
                            None => match seqs[..] {
                                [seq] => tx.requeue_refused(seq),
                                _ => tx.count_refusal(&seqs).map(|()| None),
                            },
                            Some(accepted) => {
                                tx.dequeue(&seqs)?;
                                if let Some((report, digest)) = accepted {
                                    tx.set_report_digest(report, &digest)?;
                                }
                                Ok(None)
                            }
                        })
                    })
                    .await?;
                if refused {
                    tried_from = tried_from.or(moved);
                    continue;
                }
                crate::failpoint::crash_point("reporter.dequeue.committed");
                delivered += count;
            }
            Delivery::File { path, seq } => {
                let file = std::path::PathBuf::from(&path);
                match context.transport.post_file(&url, &headers, &file).await {
                    Ok(_) => {}
                    // Gone since it was selected: nothing to send (part B G8).
                    Err(crate::transport::TransportError::File(e)) => {
                        tracing::warn!(%path, "collected file not sent: {e}");
                    }
                    Err(e) if matches!(e.attempt(), Attempt::Terminal(_)) => {
                        tracing::warn!(%path, "collected file refused by the server and dropped: {e}");
                    }
                    Err(e) => return Err(e.into()),
                }
                context
                    .db(move |s| s.write(|tx| tx.dequeue(&[seq])))
                    .await?;
                delivered += 1;
            }
        }
    }
}

impl Actor for ReporterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Whatever a previous run left queued goes out first.
        ctx.notify(Flush);
    }
}

impl Handler<Flush> for ReporterActor {
    type Result = ();

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) {
        if self.flushing {
            self.again = true;
            return;
        }
        if let Some(retry) = self.retry.take() {
            ctx.cancel_future(retry);
        }
        self.flushing = true;
        let context = self.context.clone();
        let work = async move {
            let result = drain(context.clone()).await;
            // Retries follow the failure-recovery settings in force.
            let retry_secs = match &result {
                Ok(_) => 0,
                Err(_) => match context.db(|s| s.server_values()).await {
                    Ok(values) => context.retry_policy(&values).interval_secs,
                    Err(_) => context.settings.retry.interval.as_secs(),
                },
            };
            (result, retry_secs)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(|(result, retry_secs), actor, ctx| {
                    actor.flushing = false;
                    match result {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::debug!(delivered = n, "outbox delivered");
                            let _ = actor.scheduler.try_send(Reached(true));
                        }
                        Err(e) => {
                            let attempt = e.attempt();
                            let reached = !matches!(attempt, Attempt::Unreachable(_));
                            let _ = actor.scheduler.try_send(Reached(reached));
                            tracing::warn!("outbox delivery failed, kept for later: {e}");
                            let secs = retry_secs.max(1);
                            actor.retry =
                                Some(ctx.run_later(Duration::from_secs(secs), |actor, ctx| {
                                    actor.retry = None;
                                    ctx.notify(Flush);
                                }));
                            return;
                        }
                    }
                    if std::mem::take(&mut actor.again) {
                        ctx.notify(Flush);
                    }
                }),
        );
    }
}
