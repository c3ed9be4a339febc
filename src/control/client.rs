//! The CLI side of the control socket: blocking, one request per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{Request, Response, MAX_RESPONSE_BYTES};

/// Why a control request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket: no daemon is running for this state directory.
    #[error("no daemon is listening on {0}")]
    NotRunning(String),
    /// The daemon was reached but the exchange failed.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The daemon answered something that is not a response line.
    #[error("control socket {path}: unreadable response: {detail}")]
    BadResponse {
        /// The socket path.
        path: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// Sends one request to the daemon listening on `socket` and returns its answer.
pub fn call(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    let shown = socket.display().to_string();
    let io = |source| ClientError::Io {
        path: shown.clone(),
        source,
    };
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ClientError::NotRunning(shown));
        }
        Err(e) => return Err(io(e)),
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io)?;
    let mut line = serde_json::to_vec(request).map_err(|e| ClientError::BadResponse {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut reader = BufReader::new(stream.take(MAX_RESPONSE_BYTES as u64));
    let mut answer = String::new();
    reader.read_line(&mut answer).map_err(io)?;
    let mut response =
        serde_json::from_str(answer.trim_end()).map_err(|e| ClientError::BadResponse {
            path: shown,
            detail: e.to_string(),
        })?;
    // The daemon streams the tasks in ID order.
    if let Response::Status(report) = &mut response {
        report.sort();
    }
    Ok(response)
}
