//! The download engine (part B §6, extensions X1, X5, X7): one resumable,
//! verified, bandwidth-capped HTTP download of one package file.
//!
//! - [`paths`]: where a package may be written (X7) and the `~PD-<id>` names.
//! - [`checkpoint`]: the `~PD-<id>` file, atomically replaced, checksummed.
//! - [`throttle`]: the token bucket behind the bandwidth cap (pure).
//! - [`verify_file`]: a file already on disk checked against size and SHA-256.
//! - [`fetch()`]: the transfer itself. The network side is async (reqwest on the
//!   actix/tokio runtime); every file write, fsync, rename and the SHA-256 run
//!   on a blocking thread fed through a bounded channel, so hashing overlaps
//!   the network and memory stays constant.
//!
//! The engine keeps no state between calls except the files on disk, so an
//! actor drives it by calling [`fetch()`] again after a failure (a retryable
//! [`FetchError`]) and [`discard`] when the server drops the package.

pub mod actor;
pub mod checkpoint;
mod fetch;
mod hasher;
pub mod paths;
pub mod throttle;
mod verify;
mod writer;

pub use fetch::{
    discard, fetch, FetchError, FetchJob, Fetched, Progress, DEFAULT_CHECKPOINT_INTERVAL,
};
pub use paths::{
    check_package_id, checkpoint_path, final_file_name, resolve_destination, PathError,
};
pub use verify::{file_digest, verify_file};

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
