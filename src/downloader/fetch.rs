//! One resumable, verified download: the async half (HTTP, throttle, progress)
//! and the orchestration of the blocking writer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE, RETRY_AFTER};
use reqwest::StatusCode;

use super::checkpoint::{self, Checkpoint, Loaded, CHECKPOINT_VERSION};
use super::paths::{
    check_package_id, checkpoint_path, final_file_name, partial_path, same_source, PathError,
};
use super::throttle::Throttle;
use super::writer::{self, End, Msg, Setup};

/// Bytes between two checkpoints, by default: at most this much is fetched
/// again after a `kill -9`.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 1 << 20;
/// The observer hears at most this often (plus once at the start and the end).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Chunks in flight between the network and the writer.
const CHANNEL_DEPTH: usize = 8;
/// Body bytes in flight between the socket and the end of hashing. A count
/// of chunks alone did not bound memory: on a fast link a chunk grows to the
/// HTTP client's whole read buffer (about 400 KiB), and 17 of them in the two
/// queues put a 1 GiB download 7.5 MiB above idle.
const BYTES_IN_FLIGHT: usize = 1 << 20;

/// A body chunk holding its share of [`BYTES_IN_FLIGHT`] until the hasher,
/// its last user, drops it.
#[derive(Debug)]
struct Metered<B> {
    data: B,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl<B: AsRef<[u8]>> AsRef<[u8]> for Metered<B> {
    fn as_ref(&self) -> &[u8] {
        self.data.as_ref()
    }
}

/// One package file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchJob {
    /// The package ID (checked with [`check_package_id`]).
    pub package_id: String,
    /// The URL from the Package Location Response.
    pub url: String,
    /// The resolved destination directory ([`super::resolve_destination`]).
    pub dest_dir: PathBuf,
    /// The size the server announced, if any.
    pub expected_size: Option<u64>,
    /// The X1 SHA-256 (hex, any case), if any.
    pub expected_sha256: Option<String>,
    /// Bytes per second: the lower of the package's X5 `BandwidthLimit` and
    /// the image's cap. `None` or 0: no cap.
    pub bandwidth_limit: Option<u64>,
    /// Bytes between checkpoints ([`DEFAULT_CHECKPOINT_INTERVAL`]).
    pub checkpoint_interval_bytes: u64,
}

impl FetchJob {
    /// A job with no expectations, no cap and the default checkpoint interval.
    pub fn new(
        package_id: impl Into<String>,
        url: impl Into<String>,
        dest_dir: impl Into<PathBuf>,
    ) -> FetchJob {
        FetchJob {
            package_id: package_id.into(),
            url: url.into(),
            dest_dir: dest_dir.into(),
            expected_size: None,
            expected_sha256: None,
            bandwidth_limit: None,
            checkpoint_interval_bytes: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }
}

/// Where a transfer stands, for the database and `dmagent status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the file on disk, including a resumed prefix.
    pub bytes_done: u64,
    /// The file's size, when the server or the instructions say.
    pub total: Option<u64>,
    /// Average network rate of this call.
    pub bytes_per_sec: u64,
}

/// A verified download under its final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// `dest_dir/<final file name>`.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// The offset this call resumed from (0: from the start).
    pub resumed_from: u64,
    /// Body bytes received over the network in this call.
    pub bytes_fetched: u64,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server answered with an error status.
    #[error("HTTP status {status}")]
    Http {
        /// The status code.
        status: u16,
        /// 408, 429 and 5xx are retryable; other 4xx are not.
        retryable: bool,
        /// The server's `Retry-After`, when given in seconds.
        retry_after: Option<Duration>,
    },
    /// Connect, TLS, DNS, timeout, reset or a body cut short. What was written
    /// is checkpointed; the next call resumes from there.
    #[error("network error: {detail}")]
    Network {
        /// Always `true`.
        retryable: bool,
        /// The error chain.
        detail: String,
    },
    /// A 206 that does not answer the range asked for. Nothing was appended;
    /// the partial data was discarded, so the next call starts from 0.
    #[error("unusable range response: {0}")]
    Range(String),
    /// The file's SHA-256 is not the expected one; nothing is kept.
    #[error("SHA-256 mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// From the instructions.
        expected: String,
        /// Of the bytes received.
        actual: String,
    },
    /// The file's size is not the expected one; nothing is kept.
    #[error("size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// From the instructions.
        expected: u64,
        /// From the server (or what was received).
        actual: u64,
    },
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The package ID or destination is not usable (X7).
    #[error(transparent)]
    Path(#[from] PathError),
    /// The download URL is not an absolute http(s) URL.
    #[error("bad download URL {url:?}: {detail}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
}

impl FetchError {
    /// Whether trying again later may succeed (spec README: connect, TLS, DNS,
    /// timeout, 408, 429, 5xx). A [`FetchError::Range`] is retryable too: its
    /// partial data is gone, so the next attempt asks for the whole file.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Http { retryable, .. } | FetchError::Network { retryable, .. } => {
                *retryable
            }
            FetchError::Range(_) => true,
            // A full or read-only disk is the device's state, not the
            // package's: it clears (logs rotate, an operator frees space,
            // a remount), and the partial data is kept for then.
            FetchError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::QuotaExceeded
                    | std::io::ErrorKind::ReadOnlyFilesystem
            ),
            FetchError::DigestMismatch { .. }
            | FetchError::SizeMismatch { .. }
            | FetchError::Path(_)
            | FetchError::Url { .. } => false,
        }
    }
}

fn network(e: &reqwest::Error) -> FetchError {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    FetchError::Network {
        retryable: true,
        detail,
    }
}

fn http_error(resp: &reqwest::Response) -> FetchError {
    let status = resp.status();
    let retryable = status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    FetchError::Http {
        status: status.as_u16(),
        retryable,
        retry_after,
    }
}

/// Run blocking file work off the async thread.
async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T, FetchError> + Send + 'static,
) -> Result<T, FetchError> {
    actix_rt::task::spawn_blocking(f)
        .await
        .map_err(|e| FetchError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// Delete a package's checkpoint and partial data (the server dropped it, or
/// the task was cancelled). Runs on a blocking thread.
pub async fn discard(dest_dir: &Path, package_id: &str) -> Result<(), FetchError> {
    check_package_id(package_id)?;
    let (dir, id) = (dest_dir.to_path_buf(), package_id.to_owned());
    blocking(dest_dir, move || {
        checkpoint::remove(&dir, &id).map_err(|source| FetchError::Io { path: dir, source })
    })
    .await
}

/// Where to start, from the checkpoint on disk.
#[derive(Debug)]
struct Plan {
    offset: u64,
    /// `If-Range` value.
    validator: Option<String>,
    /// The checkpoint's validators, kept when a 206 omits them.
    etag: Option<String>,
    last_modified: Option<String>,
}

/// Blocking: create the directory, read the checkpoint and decide whether it
/// can be resumed; otherwise delete the partial data.
fn prepare(
    dir: &Path,
    package_id: &str,
    url: &str,
    expected_size: Option<u64>,
    expected_sha256: Option<&str>,
) -> Result<Plan, FetchError> {
    let io = |path: PathBuf| move |source| FetchError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let loaded = checkpoint::load(dir, package_id).map_err(io(checkpoint_path(dir, package_id)))?;
    let fresh = |why: &str| -> Result<Plan, FetchError> {
        if !why.is_empty() {
            tracing::info!(
                package = package_id,
                reason = why,
                "download restarts from byte 0"
            );
        }
        checkpoint::remove(dir, package_id).map_err(io(partial_path(dir, package_id)))?;
        Ok(Plan {
            offset: 0,
            validator: None,
            etag: None,
            last_modified: None,
        })
    };
    let cp = match loaded {
        Loaded::Missing => return fresh(""),
        Loaded::Corrupt(reason) => {
            tracing::warn!(package = package_id, %reason, "corrupt download checkpoint");
            return fresh("corrupt checkpoint");
        }
        Loaded::Valid(cp) => cp,
    };
    if cp.expected_size != expected_size || cp.expected_sha256.as_deref() != expected_sha256 {
        return fresh("package content changed");
    }
    if !same_source(&cp.source_url, url) {
        // The checkpoint belongs to the package, not to one URL: another
        // location of the same package continues it. Its validators mean
        // nothing there, so the Range goes without If-Range, and the
        // SHA-256 over the whole file decides; a mirror with other bytes
        // fails it and the next attempt starts clean.
        if expected_sha256.is_none() || cp.bytes_done == 0 {
            return fresh("download server changed and no SHA-256 can check a resume there");
        }
        tracing::info!(
            package = package_id,
            from = %cp.source_url,
            to = url,
            offset = cp.bytes_done,
            "resuming from another location of the same package"
        );
        return Ok(Plan {
            offset: cp.bytes_done,
            validator: None,
            etag: None,
            last_modified: None,
        });
    }
    let strong_etag = cp.etag.clone().filter(|e| !e.starts_with("W/"));
    let Some(validator) = strong_etag
        .or_else(|| cp.last_modified.clone())
        .or_else(|| cp.etag.clone())
    else {
        return fresh("no validator to resume with");
    };
    if reqwest::header::HeaderValue::from_str(&validator).is_err() {
        return fresh("validator is not a valid header value");
    }
    if cp.bytes_done == 0 {
        return fresh("");
    }
    Ok(Plan {
        offset: cp.bytes_done,
        validator: Some(validator),
        etag: cp.etag,
        last_modified: cp.last_modified,
    })
}

/// `Content-Range: bytes first-last/total` → (first, last, total or `*`).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (first <= last && total.is_none_or(|t| last < t)).then_some((first, last, total))
}

/// Check a 206 against what was asked; `Ok(total)` when it can be appended.
fn check_partial(
    resp: &reqwest::Response,
    offset: u64,
    expected_size: Option<u64>,
    old_etag: Option<&str>,
) -> Result<Option<u64>, String> {
    let header = resp
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .ok_or("206 without Content-Range")?;
    let (first, last, total) =
        parse_content_range(header).ok_or_else(|| format!("malformed Content-Range {header:?}"))?;
    if first != offset {
        return Err(format!("asked from byte {offset}, got {header:?}"));
    }
    if let Some(t) = total {
        if last + 1 != t {
            return Err(format!("{header:?} stops before the end"));
        }
    }
    if let (Some(e), Some(t)) = (expected_size, total) {
        if e != t {
            return Err(format!("{header:?} disagrees with the expected size {e}"));
        }
    }
    if let Some(len) = resp.content_length() {
        if len != last - first + 1 {
            return Err(format!("Content-Length {len} disagrees with {header:?}"));
        }
    }
    let new_etag = resp.headers().get(ETAG).and_then(|v| v.to_str().ok());
    if let (Some(old), Some(new)) = (old_etag, new_etag) {
        if old != new {
            return Err(format!("206 for ETag {new} while resuming {old}"));
        }
    }
    Ok(Some(total.unwrap_or(last + 1)))
}

fn header_string(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Download `job.url` into `job.dest_dir`, resuming from the `~PD-<id>`
/// checkpoint when the content is unchanged (the same server with its
/// validators in `If-Range`, or another location of the same package when a
/// SHA-256 checks the joined file), verifying size
/// and SHA-256, and publishing the file under its final name only once it is
/// verified. `observer` hears the progress a few times per second.
///
/// Cancel-safe: dropping the future checkpoints what was written.
pub async fn fetch(
    client: &reqwest::Client,
    job: &FetchJob,
    observer: &mut dyn FnMut(Progress),
) -> Result<Fetched, FetchError> {
    check_package_id(&job.package_id)?;
    let url = reqwest::Url::parse(&job.url).map_err(|e| FetchError::Url {
        url: job.url.clone(),
        detail: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Url {
            url: job.url.clone(),
            detail: "not http or https".into(),
        });
    }
    let expected_sha256 = job
        .expected_sha256
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase());
    let dir = job.dest_dir.clone();
    let part = partial_path(&dir, &job.package_id);

    // Verified and renamed before the agent was killed (or by an earlier
    // occurrence): the same size and SHA-256 are the same bytes.
    if let Some(sha) = expected_sha256.clone() {
        let (d, id, size) = (dir.clone(), job.package_id.clone(), job.expected_size);
        let path = dir.join(final_file_name(&job.url, &job.package_id));
        let found = blocking(&dir, move || {
            if !path.is_file() || super::verify_file(&path, size, Some(&sha)).is_err() {
                return Ok(None);
            }
            checkpoint::remove(&d, &id).map_err(|source| FetchError::Io {
                path: d.clone(),
                source,
            })?;
            let size = std::fs::metadata(&path)
                .map_err(|source| FetchError::Io {
                    path: path.clone(),
                    source,
                })?
                .len();
            Ok(Some(Fetched {
                path,
                size,
                sha256: sha,
                resumed_from: size,
                bytes_fetched: 0,
            }))
        })
        .await?;
        if let Some(fetched) = found {
            tracing::info!(package = %job.package_id, file = %fetched.path.display(), "already downloaded and verified: not fetched again");
            return Ok(fetched);
        }
    }

    let plan = {
        let (d, id, u, sha) = (
            dir.clone(),
            job.package_id.clone(),
            job.url.clone(),
            expected_sha256.clone(),
        );
        let size = job.expected_size;
        blocking(&dir, move || prepare(&d, &id, &u, size, sha.as_deref())).await?
    };
    let mut offset = plan.offset;
    let mut restarted = false;
    let mut response = loop {
        let mut req = client.get(url.clone());
        if offset > 0 {
            req = req.header(RANGE, format!("bytes={offset}-"));
            if let Some(v) = &plan.validator {
                req = req.header(IF_RANGE, v.as_str());
            }
        }
        let resp = req.send().await.map_err(|e| network(&e))?;
        if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE && offset > 0 && !restarted {
            tracing::info!(package = %job.package_id, offset, "416: stale checkpoint, restarting from byte 0");
            discard(&dir, &job.package_id).await?;
            offset = 0;
            restarted = true;
            continue;
        }
        break resp;
    };

    let (start, server_total) = match response.status() {
        StatusCode::OK => (0, response.content_length()),
        StatusCode::PARTIAL_CONTENT => {
            match check_partial(&response, offset, job.expected_size, plan.etag.as_deref()) {
                Ok(total) => (offset, total),
                Err(detail) => {
                    discard(&dir, &job.package_id).await?;
                    return Err(FetchError::Range(detail));
                }
            }
        }
        _ => return Err(http_error(&response)),
    };
    if offset > 0 && start == 0 {
        tracing::info!(package = %job.package_id, "server sent the whole file: restarting from byte 0");
    }
    if let (Some(expected), Some(actual)) = (job.expected_size, server_total) {
        if expected != actual {
            discard(&dir, &job.package_id).await?;
            return Err(FetchError::SizeMismatch { expected, actual });
        }
    }

    let (mut etag, mut last_modified) = (
        header_string(&response, ETAG),
        header_string(&response, LAST_MODIFIED),
    );
    if start > 0 {
        etag = etag.or(plan.etag);
        last_modified = last_modified.or(plan.last_modified);
    }
    let setup = Setup {
        dir: dir.clone(),
        checkpoint: Checkpoint {
            version: CHECKPOINT_VERSION,
            package_id: job.package_id.clone(),
            source_url: job.url.clone(),
            etag,
            last_modified,
            expected_size: job.expected_size,
            expected_sha256,
            bytes_done: start,
            boot_id: checkpoint::current_boot_id(),
        },
        interval: job.checkpoint_interval_bytes.max(1),
        final_name: final_file_name(&job.url, &job.package_id),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_DEPTH);
    let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(BYTES_IN_FLIGHT));
    let handle = actix_rt::task::spawn_blocking(move || writer::run(setup, rx));
    let join = |r: Result<Result<End, FetchError>, _>| {
        r.unwrap_or_else(|e: actix_rt::task::JoinError| {
            Err(FetchError::Io {
                path: part.clone(),
                source: std::io::Error::other(e.to_string()),
            })
        })
    };

    let total = server_total.or(job.expected_size);
    let started = Instant::now();
    let mut throttle = job
        .bandwidth_limit
        .filter(|r| *r > 0)
        .map(Throttle::for_rate);
    let mut received = 0u64;
    let rate = |received: u64, now: Instant| {
        let secs = now.duration_since(started).as_secs_f64();
        if secs > 0.001 {
            (received as f64 / secs) as u64
        } else {
            0
        }
    };
    observer(Progress {
        bytes_done: start,
        total,
        bytes_per_sec: 0,
    });
    let mut last_report = started;

    let failure = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let n = chunk.len() as u64;
                received += n;
                // A chunk larger than the whole budget waits for all of it.
                let share = chunk.len().clamp(1, BYTES_IN_FLIGHT) as u32;
                let Ok(permit) = budget.clone().acquire_many_owned(share).await else {
                    break "the in-flight budget was closed".to_owned();
                };
                let chunk = Metered {
                    data: chunk,
                    _permit: permit,
                };
                if tx.send(Msg::Data(chunk)).await.is_err() {
                    // The writer stopped on an error; it says which.
                    drop(tx);
                    return match join(handle.await) {
                        Err(e) => Err(e),
                        Ok(_) => Err(FetchError::Io {
                            path: part.clone(),
                            source: std::io::Error::other("writer stopped"),
                        }),
                    };
                }
                let now = Instant::now();
                if let Some(t) = throttle.as_mut() {
                    let delay = t.delay_for(n, now);
                    if !delay.is_zero() {
                        actix_rt::time::sleep(delay).await;
                    }
                }
                if now.duration_since(last_report) >= PROGRESS_EVERY {
                    last_report = now;
                    observer(Progress {
                        bytes_done: start + received,
                        total,
                        bytes_per_sec: rate(received, now),
                    });
                }
            }
            // A body shorter than announced (or than the instructions say,
            // when the server announced nothing) was cut: keep it, resume.
            Ok(None) => match server_total.or(job.expected_size) {
                Some(t) if start + received < t => {
                    break format!("body ended after {} of {t} bytes", start + received)
                }
                _ => {
                    let _ = tx.send(Msg::Finish).await;
                    drop(tx);
                    let End::Done { path, size, sha256 } = join(handle.await)? else {
                        return Err(FetchError::Io {
                            path: part.clone(),
                            source: std::io::Error::other("writer did not finish"),
                        });
                    };
                    observer(Progress {
                        bytes_done: size,
                        total: Some(size),
                        bytes_per_sec: rate(received, Instant::now()),
                    });
                    return Ok(Fetched {
                        path,
                        size,
                        sha256,
                        resumed_from: start,
                        bytes_fetched: received,
                    });
                }
            },
            Err(e) => match network(&e) {
                FetchError::Network { detail, .. } => break detail,
                other => return Err(other),
            },
        }
    };
    // The transfer broke: checkpoint exactly what was written, so the next
    // call resumes from the last byte.
    let _ = tx.send(Msg::Abort).await;
    drop(tx);
    let saved = join(handle.await)?;
    if let End::Saved { bytes_done } = saved {
        tracing::info!(package = %job.package_id, bytes_done, "download interrupted, checkpointed");
    }
    Err(FetchError::Network {
        retryable: true,
        detail: failure,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    /// `(first, last, total)` or refused.
    type Parsed = Option<(u64, u64, Option<u64>)>;

    #[test]
    fn content_range_table() {
        let cases: &[(&str, Parsed)] = &[
            ("bytes 0-99/100", Some((0, 99, Some(100)))),
            ("bytes 10-99/100", Some((10, 99, Some(100)))),
            ("bytes 10-99/*", Some((10, 99, None))),
            (" bytes 5-5/6 ", Some((5, 5, Some(6)))),
            ("bytes 10-9/100", None),
            ("bytes 0-100/100", None),
            ("bytes */100", None),
            ("bytes 0-99", None),
            ("bytes=0-99/100", None),
            ("items 0-99/100", None),
            ("bytes -1-99/100", None),
            ("bytes 0-99/abc", None),
            ("bytes 0-18446744073709551616/100", None),
            ("", None),
        ];
        for (header, want) in cases {
            assert_eq!(parse_content_range(header), *want, "{header:?}");
        }
    }
}
