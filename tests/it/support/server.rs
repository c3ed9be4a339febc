//! Shared helpers of the server tests: an in-process `dm-server` on
//! `127.0.0.1:0` and a raw HTTP/1.1 client on `std::net::TcpStream`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dm_server::{RunningServer, ServerConfig};

/// A server with a private copy of the sample catalog (plus a 1 MiB `BIG`
/// package) and a private state directory.
pub struct TestServer {
    pub server: RunningServer,
    pub catalog: tempfile::TempDir,
    pub state: tempfile::TempDir,
}

pub fn sample_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sample-catalog")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

pub const BIG_LEN: usize = 1 << 20;

/// Copies the sample catalog and adds the `BIG` package (1 MiB, all devices).
pub fn make_catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&sample_catalog(), dir.path());
    std::fs::write(dir.path().join("files/big.bin"), pattern(BIG_LEN)).expect("write");
    std::fs::write(
        dir.path().join("packages/big.toml"),
        "id = \"BIG\"\nname = \"Big\"\nfile = \"files/big.bin\"\n",
    )
    .expect("write");
    let cat = dir.path().join("catalog.toml");
    let text = std::fs::read_to_string(&cat).expect("read");
    std::fs::write(
        &cat,
        text.replace(
            "packages = [\"DEMO-APP\", \"DEMO-TOOLS\", \"DEMO-RECURRING\"]",
            "packages = [\"DEMO-APP\", \"DEMO-TOOLS\", \"DEMO-RECURRING\", \"BIG\"]",
        ),
    )
    .expect("write");
    dir
}

/// The sample catalog's rule for every device assigns this list.
const EVERYONE: &str = "packages = [\"DEMO-APP\", \"DEMO-TOOLS\", \"DEMO-RECURRING\", \"BIG\"]";

/// Rewrites the catalog made by [`make_catalog`] so that every device is
/// assigned exactly `ids`.
pub fn assign_only(catalog: &Path, ids: &[&str]) {
    let path = catalog.join("catalog.toml");
    let text = std::fs::read_to_string(&path).expect("read catalog");
    assert!(text.contains(EVERYONE), "the sample catalog's rule changed");
    let list: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
    let text = text.replace(EVERYONE, &format!("packages = [{}]", list.join(", ")));
    std::fs::write(&path, text).expect("write catalog");
}

/// Status message IDs the server received from `device` for `package`, in order.
pub fn messages(server: &RunningServer, device: &str, package: &str) -> Vec<u32> {
    server
        .state()
        .statuses(device)
        .expect("statuses")
        .into_iter()
        .filter(|s| s.package_id == package)
        .map(|s| s.message_id)
        .collect()
}

/// Where a test server keeps its state: the behavioural suite runs on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// redb in the state directory (the default).
    Embedded,
    /// A fresh PostgreSQL database of the tests' server.
    Postgres,
}

pub fn start_with(f: impl FnOnce(&mut ServerConfig)) -> TestServer {
    start_on(Backend::Embedded, f)
}

pub fn start_on(backend: Backend, f: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let catalog = make_catalog();
    let state = tempfile::tempdir().expect("tempdir");
    let mut cfg = ServerConfig::new(catalog.path(), state.path());
    if backend == Backend::Postgres {
        cfg.database = Some(super::postgres::fresh_database());
    }
    cfg.workers = 1;
    cfg.catalog_poll_ms = 100;
    f(&mut cfg);
    let server = dm_server::start(cfg).expect("server starts");
    TestServer {
        server,
        catalog,
        state,
    }
}

pub fn start() -> TestServer {
    start_with(|_| {})
}

/// One parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body is as long as `Content-Length` said.
    pub complete: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request (`Connection: close`) and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if method != "GET" && method != "HEAD" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("write head");
    // The server may answer (413) before taking the whole body.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw); // a cut connection ends in an error: keep what came
    parse(&raw, method == "HEAD")
}

fn parse(raw: &[u8], head_only: bool) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header block in {:?}", String::from_utf8_lossy(raw)));
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let body = raw[end + 4..].to_vec();
    let len: Option<usize> = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok());
    let complete = head_only || len.is_none_or(|l| body.len() == l);
    Resp {
        status,
        headers,
        body,
        complete,
    }
}

/// POSTs to the device endpoint.
pub fn post(ts: &TestServer, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    request(
        ts.server.addr(),
        "POST",
        "/devicemgmt/server.aspx",
        headers,
        body,
    )
}

pub fn get(ts: &TestServer, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(ts.server.addr(), "GET", path, headers, b"")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A poll from device `id` with name `name`.
pub fn poll(ts: &TestServer, id: &str, name: &str) -> Resp {
    let body = format!(
        "<DevicePoll><Identification><ID>{id}</ID><DeviceName>{name}</DeviceName>\
         <Platform>Linux</Platform></Identification></DevicePoll>"
    );
    post(
        ts,
        &[("X-Device-UUID", id), ("X-Device-Action", "Poll")],
        body.as_bytes(),
    )
}
