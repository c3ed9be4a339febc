//! A minimal HTTP/1.1 file server for the download tests: one in-memory body,
//! `Range: bytes=N-`, `If-Range` with a strong ETag, and fault switches. One
//! thread per connection, `Connection: close` on every response.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

#[derive(Default)]
struct Ctl {
    body: Arc<Vec<u8>>,
    generation: u32,
    cut_after: Option<u64>,
    stall_after: Option<u64>,
    ignore_range: bool,
    bad_range: bool,
    status: Option<u16>,
    ranges: Vec<Option<String>>,
    /// Bytes written after the body, beyond its `Content-Length`.
    trailing: usize,
}

impl Ctl {
    fn etag(&self) -> String {
        format!("\"v{}-{}\"", self.generation, self.body.len())
    }
}

#[derive(Default)]
struct Shared {
    ctl: Mutex<Ctl>,
    sent: AtomicU64,
    stop: AtomicBool,
}

/// A running server on `127.0.0.1:<ephemeral>`; stops when dropped.
pub struct RangeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl RangeServer {
    /// Serve `body` at every path.
    pub fn start(body: Vec<u8>) -> RangeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        shared.lock().body = Arc::new(body);
        let s = Arc::clone(&shared);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let s = Arc::clone(&s);
                    thread::spawn(move || serve(&s, conn));
                }
            }
        });
        RangeServer { addr, shared }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    /// Body bytes written to sockets since the start or the last reset.
    pub fn body_bytes_sent(&self) -> u64 {
        self.shared.sent.load(Ordering::SeqCst)
    }
    pub fn reset_count(&self) {
        self.shared.sent.store(0, Ordering::SeqCst);
    }
    /// The `Range` header of every request so far, in order.
    pub fn ranges(&self) -> Vec<Option<String>> {
        self.shared.lock().ranges.clone()
    }
    pub fn etag(&self) -> String {
        self.shared.lock().etag()
    }
    /// The next response drops the connection after `n` body bytes.
    pub fn cut_next_after(&self, n: u64) {
        self.shared.lock().cut_after = Some(n);
    }
    /// Responses hold the connection open after `n` body bytes until cleared.
    pub fn stall_after(&self, n: Option<u64>) {
        self.shared.lock().stall_after = n;
    }
    /// Answer Range requests with the whole body and 200.
    pub fn ignore_range(&self, on: bool) {
        self.shared.lock().ignore_range = on;
    }
    /// Answer Range requests with a 206 for the whole body (wrong start).
    pub fn bad_content_range(&self, on: bool) {
        self.shared.lock().bad_range = on;
    }
    /// New content under a new ETag.
    pub fn change_content(&self, body: Vec<u8>) {
        let mut c = self.shared.lock();
        c.body = Arc::new(body);
        c.generation += 1;
    }
    /// Write `n` bytes of garbage after each body, past its `Content-Length`.
    pub fn trailing_garbage(&self, n: usize) {
        self.shared.lock().trailing = n;
    }
    /// Answer every request with this status and an empty body.
    pub fn fail_with(&self, status: Option<u16>) {
        self.shared.lock().status = status;
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Ctl> {
        self.ctl.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.lock().stall_after = None;
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(s: &Shared, mut conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let (mut range, mut if_range) = (None, None);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim().is_empty() => break,
            Ok(_) => {}
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_owned()),
                "if-range" => if_range = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    let trailing = s.lock().trailing;
    let (body, etag, cut, status, ignore, bad) = {
        let mut c = s.lock();
        c.ranges.push(range.clone());
        let cut = c.cut_after.take();
        (
            Arc::clone(&c.body),
            c.etag(),
            cut,
            c.status,
            c.ignore_range,
            c.bad_range,
        )
    };
    let len = body.len() as u64;
    if let Some(code) = status {
        let head = format!(
            "HTTP/1.1 {code} Fault\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        );
        let _ = conn.write_all(head.as_bytes());
        return;
    }
    let from = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|_| !ignore && if_range.as_ref().is_none_or(|v| *v == etag));
    let (code, start, extra) = match from {
        Some(n) if n >= len => {
            let head = format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = conn.write_all(head.as_bytes());
            return;
        }
        Some(_) if bad => (
            "206 Partial Content",
            0,
            format!("Content-Range: bytes 0-{}/{len}\r\n", len - 1),
        ),
        Some(n) => (
            "206 Partial Content",
            n,
            format!("Content-Range: bytes {n}-{}/{len}\r\n", len - 1),
        ),
        None => ("200 OK", 0, String::new()),
    };
    let head = format!(
        "HTTP/1.1 {code}\r\nContent-Length: {}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n{extra}Connection: close\r\n\r\n",
        len - start
    );
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut sent_here = 0u64;
    for piece in body[start as usize..].chunks(16 * 1024) {
        let mut piece = piece;
        if let Some(c) = cut {
            let room = c.saturating_sub(sent_here) as usize;
            piece = &piece[..piece.len().min(room)];
        }
        loop {
            let stall = s.lock().stall_after;
            match stall {
                Some(st) if sent_here >= st && !s.stop.load(Ordering::SeqCst) => {
                    thread::sleep(Duration::from_millis(10));
                }
                _ => break,
            }
        }
        if conn.write_all(piece).is_err() {
            return;
        }
        sent_here += piece.len() as u64;
        s.sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
        if cut.is_some_and(|c| sent_here >= c) {
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
    }
    if trailing > 0 {
        let _ = conn.write_all(&vec![0xA5; trailing]);
    }
}
