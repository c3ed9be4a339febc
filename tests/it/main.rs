//! The one integration-test binary (one link step keeps a 2-core build fast).
//! Each module exercises a real part: the real redb file, the real binary,
//! the real configuration files.

mod cli;
mod config;
mod crash;
#[cfg(feature = "failpoints")]
mod crash_points;
mod downloader;
mod faults;
mod full_cycle;
mod io_faults;
mod kill_soak;
mod packaging;
mod plugin_check;
mod plugins;
mod protocol_examples;
mod protocol_hostile;
mod protocol_roundtrip;
mod report_traffic;
mod reports;
mod server;
mod server_range;
mod server_replicas;
mod signatures;
mod store;
mod support;
