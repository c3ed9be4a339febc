//! Test fixtures shared by the integration-test modules.

pub mod range_server;
