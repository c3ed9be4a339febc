//! The daemon side of the control socket: an async accept loop that hands each
//! request to the store actor (database work never runs on the async threads)
//! and writes one response line back; a `status` reply is streamed in
//! slices instead.

use std::path::{Path, PathBuf};

use actix::Addr;
use actix_rt::net::{UnixListener, UnixStream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{Request, Response, MAX_LINE_BYTES};
use crate::daemon::store_actor::{Control, StoreActor, StreamStatus};

/// Binds the control socket at `path`, replacing a stale socket file left by
/// a daemon that was killed. Refuses to steal the socket of a live daemon.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another dmagent is already listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

/// Serves requests until the actor system stops.
pub async fn serve(listener: UnixListener, path: PathBuf, store: Addr<StoreActor>) {
    tracing::info!(socket = %path.display(), "control socket listening");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                actix_rt::spawn(handle(stream, store.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut stream: UnixStream, store: Addr<StoreActor>) {
    let mut line = String::new();
    let read = BufReader::new((&mut stream).take(MAX_LINE_BYTES as u64))
        .read_line(&mut line)
        .await;
    let response = match read {
        Ok(0) => return,
        Ok(_) => match serde_json::from_str::<Request>(line.trim_end()) {
            // Streamed in slices (see `StatusStream`).
            Ok(Request::Status) => {
                if let Err(e) = store.send(StreamStatus(stream)).await {
                    tracing::warn!(error = %e, "store actor unavailable for a status request");
                }
                return;
            }
            Ok(request) => match store.send(Control(request)).await {
                Ok(response) => response,
                Err(e) => Response::Error {
                    message: format!("store actor unavailable: {e}"),
                },
            },
            Err(e) => Response::Error {
                message: format!("unreadable request: {e}"),
            },
        },
        Err(e) => Response::Error {
            message: format!("reading request: {e}"),
        },
    };
    let mut out = match serde_json::to_vec(&response) {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode control response");
            return;
        }
    };
    out.push(b'\n');
    if let Err(e) = stream.write_all(&out).await {
        tracing::debug!(error = %e, "control client went away");
    }
}
