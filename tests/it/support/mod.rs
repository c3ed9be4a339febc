//! Test fixtures shared by the integration-test modules.

pub mod agent;
pub mod daemon;
pub mod plugins;
pub mod postgres;
pub mod range_server;
pub mod server;
