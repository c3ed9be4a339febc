//! The store actor: answers control requests, running each on the agent's
//! database thread ([`DbThread`]) so redb's blocking I/O never stalls the
//! async actors.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context, Handler, Message, Recipient, ResponseFuture};
use actix_rt::net::UnixStream;
use tokio::io::AsyncWriteExt;

use crate::agent::DbThread;
use crate::clock::Clock;
use crate::config::Settings;
use crate::control::status::StatusStream;
use crate::control::{Request, Response, StatusReport};
use crate::scheduler::actor::Wake;
use crate::store::{Store, StoreError, TaskId, TaskRecord};

/// What control requests need to know about the agent, fixed at start-up.
#[derive(Debug, Clone)]
pub struct ControlContext {
    /// The merged configuration.
    pub settings: Settings,
    /// The resolved device ID.
    pub device_id: Option<String>,
    /// Whether the request is served by a running daemon.
    pub daemon_running: bool,
    /// "Now" for the changes a request makes (the agent's clock).
    pub clock: Arc<dyn Clock>,
}

/// Owns the shared [`Store`] handle for the daemon's control requests.
#[derive(Debug)]
pub struct StoreActor {
    store: Arc<Store>,
    context: Arc<ControlContext>,
    scheduler: Option<Recipient<Wake>>,
    db_thread: DbThread,
}

impl StoreActor {
    /// An actor over `store`; `context` goes into every status report.
    /// `scheduler` is woken after a request changed the task list; requests
    /// run on `db_thread`, in order with the agent's own database work.
    pub fn new(
        store: Arc<Store>,
        context: ControlContext,
        scheduler: Option<Recipient<Wake>>,
        db_thread: DbThread,
    ) -> Self {
        StoreActor {
            store,
            context: Arc::new(context),
            scheduler,
            db_thread,
        }
    }
}

impl Actor for StoreActor {
    type Context = Context<Self>;
}

/// A control request relayed from the control socket.
#[derive(Debug)]
pub struct Control(pub Request);

impl Message for Control {
    type Result = Response;
}

impl Handler<Control> for StoreActor {
    type Result = ResponseFuture<Response>;

    fn handle(&mut self, Control(request): Control, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        let context = self.context.clone();
        let scheduler = self.scheduler.clone();
        let db_thread = self.db_thread.clone();
        Box::pin(async move {
            let response = db_thread
                .run(move || execute(&store, &context, &request))
                .await
                .unwrap_or_else(|message| Response::Error { message });
            if matches!(response, Response::Done { .. }) {
                if let Some(scheduler) = &scheduler {
                    let _ = scheduler.try_send(Wake);
                }
            }
            response
        })
    }
}

/// A `status` request whose answer is streamed to `client`, the control
/// connection it came on.
#[derive(Debug)]
pub struct StreamStatus(pub UnixStream);

impl Message for StreamStatus {
    type Result = ();
}

/// How long the reply waits for a client that stopped reading: the read
/// transaction it holds keeps redb from reusing the pages it sees.
const STATUS_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

impl Handler<StreamStatus> for StoreActor {
    type Result = ResponseFuture<()>;

    /// Each slice is read on the database thread, in turn with the agent's
    /// own work, and written to the socket from here at the client's pace.
    fn handle(
        &mut self,
        StreamStatus(mut client): StreamStatus,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let store = self.store.clone();
        let context = self.context.clone();
        let db_thread = self.db_thread.clone();
        Box::pin(async move {
            let begun = {
                let store = store.clone();
                db_thread
                    .run(move || StatusStream::begin(&store, &context))
                    .await
            };
            let mut stream = match begun {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot begin a status reply");
                    return;
                }
            };
            // Grown on the database thread, like everything the slices hold.
            let mut chunk = Vec::new();
            loop {
                let store = store.clone();
                let sliced = db_thread
                    .run(move || {
                        chunk.clear();
                        let more = stream.next_slice(&store, &mut chunk);
                        (stream, chunk, more)
                    })
                    .await;
                let more;
                (stream, chunk, more) = match sliced {
                    Ok(sliced) => sliced,
                    Err(e) => {
                        tracing::warn!(error = %e, "status reply failed");
                        return;
                    }
                };
                match tokio::time::timeout(STATUS_WRITE_TIMEOUT, client.write_all(&chunk)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "control client went away");
                        return;
                    }
                    Err(_) => {
                        tracing::info!("control client stopped reading; status reply dropped");
                        return;
                    }
                }
                if !more {
                    return;
                }
            }
        })
    }
}

/// Carries out a control request against the database. Shared by the daemon
/// and by the CLI when no daemon is running, so both answer identically.
pub fn execute(store: &Store, context: &ControlContext, request: &Request) -> Response {
    match request {
        Request::Status => StatusReport::respond(store, context),
        Request::PollNow => match poll_now(store, context, context.clock.now_unix()) {
            Ok(()) => Response::Done {
                message: if context.daemon_running {
                    "poll requested: the agent polls now".to_string()
                } else {
                    "poll requested: the poll task is due now and runs when the agent starts"
                        .to_string()
                },
            },
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        },
        Request::ServerValues => match store.server_values() {
            Ok(values) => Response::ServerValues(Box::new(values)),
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        },
        Request::Accept { package_id } => match accept(store, package_id, context.clock.now_unix())
        {
            Ok(message) => Response::Done { message },
            Err(message) => Response::Error { message },
        },
    }
}

/// Accepts an optional package locally and schedules its download event.
fn accept(store: &Store, package_id: &str, now: u64) -> Result<String, String> {
    let offset = crate::poller::schedule::system_local_offset;
    store
        .write_with(|tx| {
            let Some(package) = tx.package(package_id)? else {
                return Ok(Err(format!(
                    "no package {package_id:?} is known to this device"
                )));
            };
            if package.required {
                return Ok(Ok(format!(
                    "{package_id} is a required package; nothing to accept"
                )));
            }
            if package.accepted {
                return Ok(Ok(format!("{package_id} was already accepted")));
            }
            let stored = crate::poller::schedule::accept(package, now, &offset);
            tx.put_package(&stored.package)?;
            if let Some(task) = &stored.task {
                tx.put_task(task)?;
            }
            Ok(Ok(format!(
                "{package_id} accepted; its download event is scheduled"
            )))
        })
        .map_err(|e: StoreError| e.to_string())?
}

/// Makes the poll task due at `now`, creating it if the agent never ran, and
/// clears its retry count: the operator asked for a fresh attempt.
fn poll_now(store: &Store, context: &ControlContext, now: u64) -> Result<(), StoreError> {
    store.write(|tx| {
        let task = match tx.task(TaskId::poll().as_str())? {
            Some(mut task) => {
                task.next_due_unix = now;
                task.attempts = 0;
                task
            }
            None => TaskRecord::poll(now, context.settings.poll.interval.as_secs(), now),
        };
        tx.put_task(&task)
    })
}
