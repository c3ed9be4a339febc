//! The store actor: the one place the daemon touches the database, on its own
//! `SyncArbiter` thread so redb's blocking I/O never stalls the async actors.

use std::sync::Arc;

use actix::{Actor, Handler, Message, SyncContext};

use crate::control::{Request, Response, StatusReport};
use crate::store::{Store, StoreError, TaskId, TaskRecord};

/// What control requests need to know about the agent, fixed at start-up.
#[derive(Debug, Clone)]
pub struct ControlContext {
    /// The configured poll interval, for a poll task created by `poll-now`.
    pub poll_interval_secs: u64,
    /// The resolved device ID.
    pub device_id: Option<String>,
    /// The configured management server.
    pub server_url: String,
    /// Path of the database file.
    pub database: String,
    /// Whether the report comes from a running daemon.
    pub daemon_running: bool,
}

/// Owns the shared [`Store`] handle for the daemon.
#[derive(Debug)]
pub struct StoreActor {
    store: Arc<Store>,
    context: ControlContext,
}

impl StoreActor {
    /// An actor over `store`; `context` goes into every status report.
    pub fn new(store: Arc<Store>, context: ControlContext) -> Self {
        StoreActor { store, context }
    }
}

impl Actor for StoreActor {
    type Context = SyncContext<Self>;
}

/// A control request relayed from the control socket.
#[derive(Debug)]
pub struct Control(pub Request);

impl Message for Control {
    type Result = Response;
}

impl Handler<Control> for StoreActor {
    type Result = actix::MessageResult<Control>;

    fn handle(&mut self, Control(request): Control, _: &mut SyncContext<Self>) -> Self::Result {
        actix::MessageResult(execute(&self.store, &self.context, &request))
    }
}

/// Carries out a control request against the database. Shared by the daemon
/// and by the CLI when no daemon is running, so both answer identically.
pub fn execute(store: &Store, context: &ControlContext, request: &Request) -> Response {
    match request {
        Request::Status => match StatusReport::collect(store, context) {
            Ok(report) => Response::Status(Box::new(report)),
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        },
        Request::PollNow => match poll_now(store, context, crate::clock::unix_now()) {
            Ok(()) => Response::Done {
                message: "the poll task is due now; the poller that sends it arrives with the \
                          full-cycle issue, so nothing is sent yet"
                    .to_string(),
            },
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        },
    }
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
            None => TaskRecord::poll(now, context.poll_interval_secs, now),
        };
        tx.put_task(&task)
    })
}
