//! The local control interface: how `dmagent status`, `poll-now` and friends
//! talk to a running daemon.
//!
//! redb takes an exclusive lock on the database file, so while `dmagent run`
//! holds it no other process can open it. The daemon therefore answers on a
//! Unix socket in its state directory (root-only by the directory's mode), one
//! JSON request line in, one JSON response line out. When no daemon listens,
//! the CLI opens the database itself. This is the modern form of the CE
//! client's `dmsdk` API (part B §7.3).

pub mod client;
pub mod server;
pub mod status;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use status::StatusReport;

/// File name of the control socket inside the state directory.
pub const SOCKET_FILE: &str = "dmagent.sock";

/// Where the control socket of the daemon using `state_dir` lives.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_FILE)
}

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// Everything `dmagent status` shows.
    Status,
    /// Make the poll task due now.
    PollNow,
    /// Accept an optional package and schedule its download.
    Accept {
        /// The package ID.
        package_id: String,
    },
    /// The values the server issued (report settings among them).
    ServerValues,
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    /// The answer to [`Request::Status`].
    Status(Box<StatusReport>),
    /// The answer to [`Request::ServerValues`].
    ServerValues(Box<crate::store::ServerValues>),
    /// The request was carried out; the text says what happened.
    Done {
        /// One line for the operator.
        message: String,
    },
    /// The request failed; the text says why.
    Error {
        /// One line for the operator.
        message: String,
    },
}

/// Longest request line the daemon accepts, so a stray client cannot make
/// it buffer without bound.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// Longest response line the CLI accepts. A status report takes ~340 bytes
/// per package (3.4 MB at 10,000): this admits about 190,000, where the
/// request cap above cut `dmagent status` off at about 12,000.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
