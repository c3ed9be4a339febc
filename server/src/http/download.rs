//! `GET`/`HEAD /packages/{id}/{file}`: package files with single-range
//! support, streamed from disk in 64 KiB chunks (constant memory).

use std::fs::File;
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use tokio::task::JoinHandle;

use super::range::{evaluate, RangeOutcome};
use super::{apply_request_faults, AppState};
use crate::faults::DownloadFaults;

/// Read size of one chunk.
pub const CHUNK: usize = 64 * 1024;

/// The download route handler.
pub async fn download(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    app: web::Data<AppState>,
) -> HttpResponse {
    if let Some(r) = apply_request_faults(&app).await {
        return r;
    }
    let (id, file) = path.into_inner();
    let catalog = app.catalog.get();
    let Some(pkg) = catalog.packages.get(&id).filter(|p| p.file_name == file) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body(format!("no package file {id}/{file}\n"));
    };
    let size = pkg.size;
    let etag = pkg.etag();
    let head = req.method() == Method::HEAD;
    let faults = if head {
        DownloadFaults::default()
    } else {
        app.faults.on_download()
    };
    let hdr = |n: header::HeaderName| req.headers().get(n).and_then(|v| v.to_str().ok());
    let outcome = if faults.ignore_range {
        RangeOutcome::Full
    } else {
        evaluate(hdr(header::RANGE), hdr(header::IF_RANGE), &etag, size)
    };
    let (status, start, len) = match outcome {
        RangeOutcome::Full => (StatusCode::OK, 0, size),
        RangeOutcome::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeOutcome::Unsatisfiable => {
            return HttpResponse::RangeNotSatisfiable()
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .insert_header((header::ETAG, etag))
                .finish();
        }
    };
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, etag))
        .content_type("application/octet-stream");
    if status == StatusCode::PARTIAL_CONTENT {
        resp.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        ));
    }
    if head {
        return resp.body(SizedStream::new(len, EmptyStream));
    }
    let mut stream = FileStream::open(pkg.path.clone(), start, len, faults);
    stream.counter = Some(app.bytes_served.clone());
    resp.body(SizedStream::new(len, stream))
}

/// A stream with no items (HEAD: the length is announced, nothing is sent).
struct EmptyStream;

impl futures_core::Stream for EmptyStream {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(None)
    }
}

/// One chunk's read: the file (opened by the first) and the bytes.
type ChunkRead = std::io::Result<(Arc<File>, Bytes)>;

/// File bytes `start..start+len` in chunks of [`CHUNK`], each read by a
/// blocking task of its own, one chunk ahead of the client. A download holds
/// no blocking thread while it waits for a slow client: a worker has only
/// [`crate::BLOCKING_THREADS_PER_WORKER`], which the polls that read the
/// disk need too. Applies the cut and flip faults.
struct FileStream {
    path: Arc<PathBuf>,
    /// Open after the first read.
    file: Option<Arc<File>>,
    /// The chunk being read.
    read: Option<JoinHandle<ChunkRead>>,
    /// Where the read after `read` starts; `end` when there is none.
    next: u64,
    end: u64,
    flip_at: Option<u64>,
    sent: u64,
    cut_after: Option<u64>,
    counter: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl FileStream {
    fn open(path: PathBuf, start: u64, len: u64, faults: DownloadFaults) -> Self {
        FileStream {
            path: Arc::new(path),
            file: None,
            read: None,
            next: start,
            end: start + len,
            flip_at: faults.flip_at,
            sent: 0,
            cut_after: faults.cut_after,
            counter: None,
        }
    }

    /// Starts the read of the chunk at `next`, if any is left.
    fn read_ahead(&mut self) {
        if self.read.is_some() || self.next >= self.end {
            return;
        }
        let pos = self.next;
        let want = usize::try_from((self.end - pos).min(CHUNK as u64)).unwrap_or(CHUNK);
        self.next += want as u64;
        let (path, file, flip_at) = (self.path.clone(), self.file.clone(), self.flip_at);
        self.read = Some(actix_web::rt::task::spawn_blocking(move || {
            let file = match file {
                Some(f) => f,
                None => Arc::new(File::open(&*path)?),
            };
            let mut buf = vec![0u8; want];
            file.read_exact_at(&mut buf, pos)?;
            if let Some(k) = flip_at {
                if k >= pos && k < pos + want as u64 {
                    let i = usize::try_from(k - pos).unwrap_or(0);
                    buf[i] ^= 0xFF;
                }
            }
            Ok((file, Bytes::from(buf)))
        }));
    }
}

impl futures_core::Stream for FileStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(cut) = self.cut_after {
            if self.sent >= cut {
                return Poll::Ready(Some(Err(std::io::Error::other(
                    "fault injection: download cut",
                ))));
            }
        }
        self.read_ahead();
        let Some(read) = self.read.as_mut() else {
            return Poll::Ready(None);
        };
        let result = match Pin::new(read).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r.unwrap_or_else(|e| Err(std::io::Error::other(e))),
        };
        self.read = None;
        let mut chunk = match result {
            Ok((file, chunk)) => {
                self.file = Some(file);
                chunk
            }
            Err(e) => {
                tracing::warn!(error = %e, path = %self.path.display(), "package read failed");
                self.next = self.end;
                return Poll::Ready(Some(Err(e)));
            }
        };
        self.read_ahead();
        if let Some(cut) = self.cut_after {
            let room = cut - self.sent;
            if (chunk.len() as u64) > room {
                chunk.truncate(usize::try_from(room).unwrap_or(0));
            }
        }
        self.sent += chunk.len() as u64;
        if let Some(counter) = &self.counter {
            counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}
