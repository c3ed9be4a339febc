//! `dmagent run`: opens the client database, starts the actor system and
//! serves the control socket until SIGTERM or SIGINT.
//!
//! The database is opened before the actor system starts, so a refused
//! database is a clean exit; then the agent's actors ([`crate::agent`]) and
//! the control socket run until a termination signal.

pub mod store_actor;

use std::sync::Arc;

use actix::{Actor, System};

use crate::agent::{AgentContext, DbThread};
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::control;
use crate::store::{Store, StoreError};
use crate::transport::Transport;
use store_actor::{ControlContext, StoreActor};

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state directory could not be created.
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The client database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The control socket could not be bound.
    #[error("cannot bind control socket {path}: {source}")]
    Socket {
        /// The socket path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client could not be set up (TLS files).
    #[error(transparent)]
    Transport(crate::transport::TransportError),
    /// The actor system failed.
    #[error("actor system: {0}")]
    System(std::io::Error),
}

/// Runs the daemon until a termination signal arrives.
pub fn run(settings: &Settings, device_id: String) -> Result<(), DaemonError> {
    let state_dir = settings.paths.state_dir.clone();
    std::fs::create_dir_all(&state_dir).map_err(|source| DaemonError::StateDir {
        path: state_dir.display().to_string(),
        source,
    })?;
    // Opened before the actor system starts, so a refused database (newer
    // schema, locked by another agent) is a clean exit, not a dead actor.
    let store = Arc::new(open_store(settings)?);
    let context = ControlContext {
        settings: settings.clone(),
        device_id: Some(device_id.clone()),
        daemon_running: true,
        clock: Arc::new(SystemClock),
    };
    let socket = control::socket_path(&state_dir);
    let transport = Transport::new(settings).map_err(DaemonError::Transport)?;
    let db_thread = DbThread::default();
    let agent_context = Arc::new(AgentContext {
        settings: settings.clone(),
        store: store.clone(),
        transport,
        device_id: device_id.clone(),
        device_name: settings.resolve_device_name().ok(),
        clock: Arc::new(SystemClock),
        plugins: Arc::new(crate::plugin_host::PluginHost::discover(settings)),
        sys_class_net: "/sys/class/net".into(),
        db_thread: db_thread.clone(),
    });

    let system = System::new();
    let started: Result<(), DaemonError> = system.block_on(async {
        let agent = crate::agent::start(agent_context);
        let wake = agent.scheduler.recipient();
        let store_addr = StoreActor::new(store, context, Some(wake), db_thread).start();
        let listener = control::server::bind(&socket).map_err(|source| DaemonError::Socket {
            path: socket.display().to_string(),
            source,
        })?;
        actix_rt::spawn(control::server::serve(listener, socket.clone(), store_addr));
        actix_rt::spawn(stop_on_signal());
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            device_id = %device_id,
            server = settings.server.url.as_deref().unwrap_or("(none configured)"),
            "dmagent running"
        );
        Ok(())
    });
    started?;
    let result = system.run().map_err(DaemonError::System);
    let _ = std::fs::remove_file(&socket);
    tracing::info!("dmagent stopped");
    result
}

/// Opens the client database, waiting a little while another process holds
/// it: `dmagent status` reads the database directly when no daemon answers,
/// and an operator running it while the daemon starts must not stop the daemon.
fn open_store(settings: &Settings) -> Result<Store, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(settings.database_path()) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Stops the actor system on SIGTERM or SIGINT.
async fn stop_on_signal() {
    use actix_rt::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the agent with SIGKILL");
        return;
    };
    first_of(term.recv(), int.recv()).await;
    tracing::info!("termination signal received, stopping");
    System::current().stop();
}

/// Waits for whichever of two futures finishes first.
async fn first_of<A, B>(a: A, b: B)
where
    A: std::future::Future,
    B: std::future::Future,
{
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}
