//! `dm-server`: the reference management server for `dmagent`.
//!
//! Start it in-process (tests, other crates' end-to-end tests):
//!
//! ```no_run
//! let cfg = dm_server::ServerConfig::new("config/sample-catalog", "/tmp/dm-state");
//! let server = dm_server::start(cfg).expect("server starts");
//! println!("{}", server.endpoint_url()); // http://127.0.0.1:PORT/devicemgmt/server.aspx
//! server.stop();
//! ```
//!
//! Modules: [`catalog`] (package definitions, assignment rules, reload),
//! [`http`] (the device endpoint, downloads with Range, admin), [`state`]
//! (per-device state on redb or PostgreSQL, collected files), [`views`] (HTML and JSON),
//! [`faults`] (fault injection), [`signing`] (X8 signatures and key files),
//! [`config`].
#![forbid(unsafe_code)]

pub mod catalog;
pub mod config;
pub mod faults;
pub mod http;
pub mod signing;
pub mod state;
pub mod time;
pub mod views;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::{web, App, HttpServer};

/// Blocking threads of each worker (actix's default: 512 shared out). They
/// read and commit device records, status and reports (redb has one writer)
/// and read package files; hundreds of them on two cores mostly cost
/// context switches and cold caches (benchmark P8's rarely polling line).
pub const BLOCKING_THREADS_PER_WORKER: usize = 8;

pub use catalog::{CatalogError, CatalogHandle};
pub use config::ServerConfig;
pub use faults::{FaultHandle, Faults};
pub use state::State;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The catalog could not be loaded.
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// The state store could not be opened.
    #[error("{0}")]
    State(#[from] state::StateError),
    /// Binding or starting the HTTP server failed.
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

/// A server running on its own thread with its own actix system.
/// Dropping it stops the server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    base_url: String,
    endpoint: String,
    faults: FaultHandle,
    catalog: CatalogHandle,
    state: Arc<State>,
    handle: Option<actix_web::dev::ServerHandle>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    stop_watcher: Arc<AtomicBool>,
    bytes_served: Arc<std::sync::atomic::AtomicU64>,
    received: Arc<http::received::Received>,
}

/// Loads the catalog, opens the state, binds `config.listen` and serves on a
/// background thread. Returns once the socket is bound.
pub fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    let catalog = CatalogHandle::open(&config.catalog_dir)?;
    let state = Arc::new(State::open(&config.state_dir, config.database.as_deref())?);
    let listener = TcpListener::bind(config.listen)?;
    let addr = listener.local_addr()?;
    let base_url = config.base_url(addr);
    let faults = FaultHandle::new(config.faults.clone());
    let stop_watcher = Arc::new(AtomicBool::new(false));
    if config.catalog_poll_ms > 0 {
        catalog::spawn_watcher(
            catalog.clone(),
            Duration::from_millis(config.catalog_poll_ms),
            stop_watcher.clone(),
        );
    }
    let endpoint = config.endpoint.clone();
    let workers = config.workers.max(1);
    let bytes_served = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let received = Arc::new(http::received::Received::default());
    let app_state = http::AppState {
        bytes_served: bytes_served.clone(),
        received: received.clone(),
        catalog: catalog.clone(),
        state: state.clone(),
        faults: faults.clone(),
        config: Arc::new(config),
        base_url: base_url.clone(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let ep = endpoint.clone();
    let thread = std::thread::Builder::new()
        .name("dm-server".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::new(app_state);
                let server = HttpServer::new(move || {
                    let ep = ep.clone();
                    App::new()
                        .app_data(data.clone())
                        .configure(move |cfg| http::configure(cfg, &ep))
                })
                .workers(workers)
                .worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER)
                .disable_signals()
                .shutdown_timeout(2)
                .listen(listener)?
                .run();
                let _ = tx.send(server.handle());
                server.await
            })
        })?;
    let handle = rx
        .recv()
        .map_err(|_| std::io::Error::other("the server thread failed to start"))?;
    Ok(RunningServer {
        addr,
        base_url,
        endpoint,
        faults,
        catalog,
        state,
        handle: Some(handle),
        thread: Some(thread),
        stop_watcher,
        bytes_served,
        received,
    })
}

impl RunningServer {
    /// Package bytes sent since the server started (all packages, all
    /// devices): what a resumed download fetched again shows up here.
    pub fn bytes_served(&self) -> u64 {
        self.bytes_served.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Status messages received again after their `ReportID` was stored,
    /// and dropped (delivered twice on the wire, stored once).
    pub fn duplicate_statuses(&self) -> u64 {
        self.received.duplicate_statuses()
    }

    /// Device request bodies received so far, by message kind (see
    /// [`http::received::Received`]).
    pub fn received(&self) -> std::collections::BTreeMap<String, http::received::Tally> {
        self.received.snapshot()
    }

    /// Polls so far whose device record was not in memory.
    pub fn polls_from_database(&self) -> u64 {
        self.received.polls_from_database()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (or the configured public URL).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The device endpoint URL (what the agent's `server_url` should be).
    pub fn endpoint_url(&self) -> String {
        self.url(&self.endpoint)
    }

    /// The fault switch.
    pub fn faults(&self) -> &FaultHandle {
        &self.faults
    }

    /// The catalog (reload it, read it).
    pub fn catalog(&self) -> &CatalogHandle {
        &self.catalog
    }

    /// The state store (read what devices sent).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Waits until the server stops (it stops only via [`Self::stop`] from
    /// another handle, or a fatal error).
    pub fn wait(mut self) -> std::io::Result<()> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| std::io::Error::other("the server thread panicked"))?,
            None => Ok(()),
        }
    }

    /// A handle that can stop the server from another thread.
    pub fn stopper(&self) -> Option<actix_web::dev::ServerHandle> {
        self.handle.clone()
    }

    fn shutdown(&mut self) {
        self.stop_watcher.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            actix_web::rt::System::new().block_on(h.stop(true));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Device records are written behind; commit them before returning.
        if let Err(e) = self.state.flush() {
            tracing::error!(error = %e, "writing device records at stop failed");
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
