//! The agent's actor system: what every actor shares ([`AgentContext`]) and
//! how the actors are wired together ([`start`]).
//!
//! ```text
//!            Wake / TaskFinished
//!   control ------------------> scheduler --RunPoll------> poller
//!                                   |  \-----RunDownload-> downloader
//!                                   |                         |
//!                                   +<------TaskFinished------+
//!   poller, downloader --Flush--> reporter --Reach--> scheduler
//! ```
//!
//! Actors never touch the database on their async thread: [`AgentContext::db`]
//! runs the closure on the database thread ([`DbThread`]) and awaits it.

pub mod db_thread;
pub mod error;

use std::path::PathBuf;
use std::sync::Arc;

use actix::{Actor, Addr, AsyncContext, Context};

use crate::clock::Clock;
use crate::config::Settings;
use crate::plugin_host::PluginHost;
use crate::protocol::DeviceHeaders;
use crate::scheduler::actor::SchedulerActor;
use crate::scheduler::RetryPolicy;
use crate::store::{ServerValues, Store, StoreError};
use crate::transport::Transport;
pub use db_thread::DbThread;
pub use error::AgentError;

/// Everything the actors share. Immutable after start-up; the mutable state
/// lives in the store.
#[derive(Debug)]
pub struct AgentContext {
    /// The merged configuration.
    pub settings: Settings,
    /// The client database.
    pub store: Arc<Store>,
    /// The HTTP client for the management server.
    pub transport: Transport,
    /// The device ID sent as `X-Device-UUID` and `Identification/ID`.
    pub device_id: String,
    /// The device name sent as `DeviceName`.
    pub device_name: Option<String>,
    /// "Now".
    pub clock: Arc<dyn Clock>,
    /// The plugins found at start-up (post-install handlers, collectors).
    pub plugins: Arc<PluginHost>,
    /// Where the link probe looks (`/sys/class/net`; a fixture in tests).
    pub sys_class_net: PathBuf,
    /// Runs [`AgentContext::db`] closures.
    pub db_thread: DbThread,
}

impl AgentContext {
    /// Runs `f` on the store from the database thread.
    pub async fn db<T, F>(&self, f: F) -> Result<T, AgentError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        self.db_thread
            .run(move || f(&store))
            .await
            .map_err(AgentError::Internal)?
            .map_err(AgentError::Store)
    }

    /// Runs blocking work (file system, hashing, child processes) off the
    /// async threads.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, AgentError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, AgentError> + Send + 'static,
    {
        actix_rt::task::spawn_blocking(f)
            .await
            .map_err(|e| AgentError::Internal(format!("blocking task failed: {e}")))?
    }

    /// The standard header set for the next request.
    pub fn headers(&self, values: &ServerValues) -> DeviceHeaders {
        DeviceHeaders {
            uuid: self.device_id.clone(),
            auth: values.auth_token.clone().unwrap_or_default(),
            timestamp: values.timestamp.clone().unwrap_or_default(),
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// The server URL in force (the configured one or the server's `PollServer`).
    pub fn server_url(&self, values: &ServerValues) -> Result<String, AgentError> {
        let poll_server = values
            .client_settings
            .as_ref()
            .and_then(|c| c.poll_server.as_deref());
        crate::transport::effective_server_url(self.settings.server.url.as_deref(), poll_server)
            .ok_or(AgentError::NoServer)
    }

    /// The failure-recovery policy in force: the server's values over the image's.
    pub fn retry_policy(&self, values: &ServerValues) -> RetryPolicy {
        RetryPolicy::effective(&self.settings, values)
    }

    /// The poll interval in force.
    pub fn poll_interval_secs(&self, values: &ServerValues) -> u64 {
        crate::scheduler::poll_interval_secs(&self.settings, values)
    }
}

/// The running actors, for the daemon and for tests.
#[derive(Debug, Clone)]
pub struct AgentHandle {
    /// The scheduler: send it `Wake` after changing tasks from outside.
    pub scheduler: Addr<SchedulerActor>,
}

/// Starts the actors inside the current actix system.
pub fn start(context: Arc<AgentContext>) -> AgentHandle {
    let scheduler_context = Context::<SchedulerActor>::new();
    let scheduler = scheduler_context.address();
    let reporter =
        crate::reporter::actor::ReporterActor::new(context.clone(), scheduler.clone().recipient())
            .start();
    let poller = crate::poller::actor::PollerActor::new(
        context.clone(),
        scheduler.clone().recipient(),
        reporter.clone().recipient(),
    )
    .start();
    let downloader = crate::downloader::actor::DownloaderActor::new(
        context.clone(),
        scheduler.clone().recipient(),
        reporter.clone().recipient(),
    )
    .start();
    let inventory = crate::inventory::actor::InventoryActor::new(
        context.clone(),
        scheduler.clone().recipient(),
        reporter.clone().recipient(),
    )
    .start();
    let actor = SchedulerActor::new(
        context,
        poller.recipient(),
        downloader.recipient(),
        inventory.recipient(),
        reporter.recipient(),
    );
    let scheduler = scheduler_context.run(actor);
    AgentHandle { scheduler }
}
