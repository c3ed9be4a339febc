//! `dmagent`: a device management agent for the Windows CE Device Management
//! Client protocol, made modern and robust.
//!
//! Modules in reading order (see `ARCHITECTURE.md` for the code map and the
//! invariants):
//!
//! - [`config`]: TOML fragments merged into one validated [`config::Settings`].
//! - [`protocol`]: the wire documents and their XML codec; no I/O.
//! - [`store`]: the client database on redb; every state change one transaction.
//! - [`cli`]: the `dmagent` command line.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod protocol;
pub mod store;
