//! Downloads from `dm-server`: a table of Range cases over real HTTP, HEAD,
//! `curl -r` / `curl -C -` (when curl exists) and an external base URL
//! served by nginx (when nginx exists).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dmagent::protocol::{Document, PackageLocation};

use crate::support::server::*;

const BIG: &str = "/packages/BIG/big.bin";

#[test]
fn range_table() {
    let ts = start();
    let data = pattern(BIG_LEN);
    let size = BIG_LEN as u64;
    let etag = ts.server.catalog().get().packages["BIG"].etag();
    let wrong = "\"0000000000000000\"";
    // (Range, If-Range, status, first byte, last byte)
    let cases: Vec<(&str, Option<&str>, u16, u64, u64)> = vec![
        ("bytes=0-0", None, 206, 0, 0),
        ("bytes=1000-1999", None, 206, 1000, 1999),
        ("bytes=524288-", None, 206, 524_288, size - 1),
        ("bytes=-100", None, 206, size - 100, size - 1),
        ("bytes=-5000000", None, 206, 0, size - 1),
        ("bytes=1048000-9999999", None, 206, 1_048_000, size - 1),
        ("bytes=1048575-1048575", None, 206, size - 1, size - 1),
        ("bytes=1048576-", None, 416, 0, 0),
        ("bytes=2000000-2000010", None, 416, 0, 0),
        ("bytes=-0", None, 416, 0, 0),
        ("bytes=0-1,5-6", None, 200, 0, size - 1),
        ("bytes=9-3", None, 200, 0, size - 1),
        ("lines=1-2", None, 200, 0, size - 1),
        ("bytes=10-19", Some(&etag), 206, 10, 19),
        ("bytes=10-19", Some(wrong), 200, 0, size - 1),
    ];
    for (range, if_range, status, first, last) in cases {
        let mut h = vec![("Range", range)];
        if let Some(ir) = if_range {
            h.push(("If-Range", ir));
        }
        let r = get(&ts, BIG, &h);
        let what = format!("{range} / {if_range:?}");
        assert_eq!(r.status, status, "{what}");
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"), "{what}");
        match status {
            206 => {
                assert_eq!(
                    r.header("Content-Range"),
                    Some(format!("bytes {first}-{last}/{size}").as_str()),
                    "{what}"
                );
                assert_eq!(
                    r.header("Content-Length"),
                    Some((last - first + 1).to_string().as_str())
                );
                assert_eq!(r.body[..], data[first as usize..=last as usize], "{what}");
            }
            416 => {
                assert_eq!(
                    r.header("Content-Range"),
                    Some(format!("bytes */{size}").as_str()),
                    "{what}"
                );
                assert!(r.body.is_empty());
            }
            _ => {
                assert!(r.header("Content-Range").is_none(), "{what}");
                assert_eq!(r.body, data, "{what}");
            }
        }
    }
    // HEAD: headers, no body.
    let r = request(ts.server.addr(), "HEAD", BIG, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("1048576"));
    assert_eq!(r.header("ETag"), Some(etag.as_str()));
    assert!(r.body.is_empty());
    // Unknown package or wrong file name: 404.
    assert_eq!(get(&ts, "/packages/BIG/other.bin", &[]).status, 404);
    assert_eq!(get(&ts, "/packages/NOPE/big.bin", &[]).status, 404);
}

/// Downloads whose clients read nothing hold no blocking thread: a poll
/// that needs one (its device is new) is answered while more such
/// downloads are open than the worker has blocking threads.
#[test]
fn stalled_downloads_leave_the_blocking_threads_to_polls() {
    use std::io::Write as _;
    let ts = start(); // one worker
    let size = 32u64 << 20; // far more than loopback socket buffers hold
    let file = std::fs::File::create(ts.catalog.path().join("files/stall.bin")).expect("create");
    file.set_len(size).expect("sparse file");
    std::fs::write(
        ts.catalog.path().join("packages/stall.toml"),
        "id = \"STALL\"\nname = \"Stall\"\nfile = \"files/stall.bin\"\n",
    )
    .expect("write");
    ts.server.catalog().reload().expect("reload");
    let stalled = dm_server::BLOCKING_THREADS_PER_WORKER + 4;
    let addr = ts.server.addr();
    let _open: Vec<std::net::TcpStream> = (0..stalled)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            write!(
                s,
                "GET /packages/STALL/stall.bin HTTP/1.1\r\nHost: {addr}\r\n\r\n"
            )
            .expect("send");
            s
        })
        .collect();
    // Until the server has filled what the sockets buffer and waits.
    std::thread::sleep(Duration::from_millis(800));
    let t0 = Instant::now();
    let r = poll(&ts, "STALL-NEW-DEVICE", "new");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the poll waited {:?} behind {stalled} stalled downloads",
        t0.elapsed()
    );
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[test]
fn curl_ranges_and_resume_after_a_cut() {
    if !have("curl") {
        eprintln!("SKIPPED curl_ranges_and_resume_after_a_cut: curl is not installed");
        return;
    }
    let ts = start();
    let url = ts.server.url(BIG);
    let data = pattern(BIG_LEN);
    let out = Command::new("curl")
        .args(["-sS", "-r", "1000-1099", &url])
        .output()
        .expect("curl");
    assert!(out.status.success());
    assert_eq!(out.stdout[..], data[1000..1100]);
    let out = Command::new("curl")
        .args(["-sS", "-r", "-10", &url])
        .output()
        .expect("curl");
    assert_eq!(out.stdout[..], data[BIG_LEN - 10..]);

    // The first download is cut after 300000 bytes; `curl -C -` resumes.
    ts.server.faults().set(dm_server::Faults {
        cut_after_bytes: Some(300_000),
        cut_count: Some(1),
        ..Default::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("big.bin");
    let first = Command::new("curl")
        .args(["-sS", "-o"])
        .arg(&file)
        .arg(&url)
        .output()
        .expect("curl");
    assert!(!first.status.success(), "the cut download fails");
    assert_eq!(std::fs::metadata(&file).expect("partial").len(), 300_000);
    let second = Command::new("curl")
        .args(["-sS", "-C", "-", "-o"])
        .arg(&file)
        .arg(&url)
        .output()
        .expect("curl");
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let got = std::fs::read(&file).expect("read");
    assert_eq!(
        sha256_hex(&got),
        ts.server.catalog().get().packages["BIG"].sha256
    );
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

#[test]
fn external_base_url_served_by_nginx() {
    external_base_url_served_by_nginx_on(Backend::Embedded);
}

/// A fleet's replicas hand out CDN locations the same way.
#[test]
fn external_base_url_served_by_nginx_on_postgres() {
    external_base_url_served_by_nginx_on(Backend::Postgres);
}

fn external_base_url_served_by_nginx_on(backend: Backend) {
    let nginx = nginx_binary()
        .expect("nginx is not installed: .ci/run installs it (apt-get install nginx)");
    let ts = start_on(backend, |_| {});
    // A free port: bind 0, read it, release it for nginx.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let prefix = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(prefix.path().join("logs")).expect("logs");
    let files = ts.catalog.path().join("files");
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {p}/tmp;\n  proxy_temp_path {p}/tmp;\n  fastcgi_temp_path {p}/tmp;\n  uwsgi_temp_path {p}/tmp;\n  scgi_temp_path {p}/tmp;\n\
         server {{ listen 127.0.0.1:{port}; location /files/ {{ alias {f}/; }} }}\n}}\n",
        p = prefix.path().display(),
        f = files.display()
    );
    let conf_path = prefix.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("conf");
    let _nginx = Nginx(
        Command::new(nginx)
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts"),
    );
    let base = format!("http://127.0.0.1:{port}/files");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Point the BIG package at nginx and wait for the reload.
    let def = ts.catalog.path().join("packages/big.toml");
    let text = std::fs::read_to_string(&def).expect("read");
    std::fs::write(&def, format!("{text}external_base_url = \"{base}\"\n")).expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ts.server.catalog().get().packages["BIG"]
        .external_base_url
        .is_none()
    {
        assert!(Instant::now() < deadline, "reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    poll(&ts, "NGX-1", "POS-1");
    let r = post(
        &ts,
        &[
            ("X-Device-UUID", "NGX-1"),
            ("X-Device-Action", "LocationRequest"),
        ],
        b"<PackageLocationRequest><PackageID>BIG</PackageID></PackageLocationRequest>",
    );
    let loc = PackageLocation::decode(&r.body).expect("decodes");
    let url = loc.locations[0].http_url.clone().expect("url");
    assert_eq!(url, format!("{base}/big.bin"));
    let path = url
        .strip_prefix(&format!("http://127.0.0.1:{port}"))
        .expect("nginx url");
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let full = request(addr, "GET", path, &[], b"");
    assert_eq!(full.status, 200);
    assert_eq!(
        sha256_hex(&full.body),
        ts.server.catalog().get().packages["BIG"].sha256
    );
    let part = request(addr, "GET", path, &[("Range", "bytes=100-199")], b"");
    assert_eq!(part.status, 206);
    assert_eq!(part.body[..], pattern(BIG_LEN)[100..200]);
}
