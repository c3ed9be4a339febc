//! `dmagent`: a device management agent for the Windows CE Device Management
//! Client protocol, made modern and robust.
//!
//! Modules in reading order (see `ARCHITECTURE.md` for the code map and the
//! invariants):
//!
//! - [`config`]: TOML fragments merged into one validated [`config::Settings`].
//! - [`protocol`]: the wire documents and their XML codec; no I/O.
//! - [`store`]: the client database on redb; every state change one transaction.
//! - [`trust`]: X8 signatures on instructions and packages, and the image's keys.
//! - [`scheduler`]: the timing policy (due, parked, retries) and its actor.
//! - [`daemon`]: `dmagent run`, the actor system and its store actor.
//! - [`control`]: the local control socket (status, poll-now) and its report.
//! - [`plugin_host`]: finds, checks, loads and calls plugins (in a child process).
//! - [`logging`]: `tracing` output as text or JSON.
//! - [`clock`]: the one place that reads the system clock.
//! - [`cli`]: the `dmagent` command line.
//! - [`failpoint`]: named crash points, armed only in test builds.
// Unsafe code is denied everywhere but `plugin_host::loader` (invariant 5),
// which loads plugin libraries inside the plugin-host child process.
#![deny(unsafe_code)]

pub mod agent;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod downloader;
pub mod failpoint;
pub mod inventory;
pub mod logging;
pub mod plugin_host;
pub mod poller;
pub mod protocol;
pub mod reporter;
pub mod scheduler;
pub mod store;
pub mod transport;
pub mod trust;
