//! Several `dm-server` replicas on one PostgreSQL database behave as one
//! server: one device record whichever replica a request reaches, status
//! messages stored once per `ReportID`, nothing lost or doubled when a
//! replica dies mid-request (a real `dm-server` process, killed), catalog
//! changes on every replica, and a schema newer than the server refused.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_server::state::{PostgresState, State};
use dm_server::{RunningServer, ServerConfig};
use dmagent::protocol::{Document, PollResponse, Status};

use crate::support::postgres::fresh_database;
use crate::support::server::*;

/// Two in-process replicas sharing one catalog, one state directory (the
/// collected files) and one database.
struct Fleet {
    a: RunningServer,
    b: RunningServer,
    catalog: tempfile::TempDir,
    state: tempfile::TempDir,
    database: String,
}

fn replica_config(catalog: &Path, state: &Path, database: &str) -> ServerConfig {
    let mut cfg = ServerConfig::new(catalog, state);
    cfg.database = Some(database.to_owned());
    cfg.workers = 1;
    cfg.catalog_poll_ms = 100;
    cfg.auth = true;
    cfg
}

fn fleet() -> Fleet {
    let catalog = make_catalog();
    let state = tempfile::tempdir().expect("tempdir");
    let database = fresh_database();
    let a = dm_server::start(replica_config(catalog.path(), state.path(), &database))
        .expect("replica A starts");
    let b = dm_server::start(replica_config(catalog.path(), state.path(), &database))
        .expect("replica B starts");
    Fleet {
        a,
        b,
        catalog,
        state,
        database,
    }
}

fn to(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    request(addr, "POST", "/devicemgmt/server.aspx", headers, body)
}

fn poll_body(id: &str) -> String {
    format!(
        "<DevicePoll><Identification><ID>{id}</ID><DeviceName>dev {id}</DeviceName>\
         <Platform>Linux</Platform></Identification></DevicePoll>"
    )
}

fn status_body(report_id: &str) -> String {
    format!(
        "<Status><StatusMessage packageID=\"DEMO-APP\" messageID=\"11030\" \
         timestamp=\"2005-03-14 09:05:12\"><Parameter name=\"ReportID\">{report_id}</Parameter>\
         </StatusMessage></Status>"
    )
}

fn headers<'a>(id: &'a str, token: &'a str, action: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("X-Device-UUID", id),
        ("X-Device-Auth", token),
        ("X-Device-Action", action),
    ]
}

/// Enrols `id` on `addr`; its token.
fn enrol(addr: SocketAddr, id: &str) -> String {
    let r = to(addr, &headers(id, "", "Poll"), poll_body(id).as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("X-Device-Auth").expect("a token").to_owned()
}

fn report_ids(state: &State, id: &str) -> Vec<String> {
    state
        .statuses(id)
        .expect("statuses")
        .into_iter()
        .filter_map(|s| s.report_id)
        .collect()
}

#[test]
fn a_device_polling_one_replica_and_reporting_to_another_sees_one_record() {
    let f = fleet();
    let (a, b) = (f.a.addr(), f.b.addr());
    for addr in [a, b] {
        let r = request(addr, "GET", "/healthz", &[], b"");
        assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    }
    let token = enrol(a, "DEV-1");
    // B knows the token A issued: the device's next requests go to B.
    let r = to(
        b,
        &headers("DEV-1", &token, "Status"),
        status_body("R-1").as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = to(
        b,
        &headers("DEV-1", &token, "Poll"),
        poll_body("DEV-1").as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Device-Auth"), Some(token.as_str()));
    for s in [f.a.state(), f.b.state()] {
        let rec = s.device("DEV-1").expect("read").expect("enrolled");
        assert_eq!(rec.poll_count, 2, "both polls, whichever replica is asked");
        assert_eq!(report_ids(s, "DEV-1"), ["R-1"]);
    }
    // The same report delivered again, to the other replica: stored once.
    let r = to(
        a,
        &headers("DEV-1", &token, "Status"),
        status_body("R-1").as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(report_ids(f.b.state(), "DEV-1"), ["R-1"]);
    assert_eq!(f.a.duplicate_statuses(), 1);

    // An inventory sent to A and a file sent to B, read through the other.
    let mut h = headers("DEV-1", &token, "Report");
    h.push(("X-Device-ReportType", "SoftwareInventory"));
    let r = to(a, &h, crate::protocol_examples::FILE_REPORT.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let mut h = headers("DEV-1", &token, "Report");
    h.push(("X-Device-ReportType", "FileCollection"));
    h.push(("X-Device-FullyQualifiedFilename", r"\logs\boot.log"));
    let content = pattern(50_000);
    let r = to(b, &h, &content);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(f.b.state().inventories("DEV-1").expect("db").len(), 1);
    let files = f.a.state().files("DEV-1").expect("db");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].sha256, sha256_hex(&content));
    let bytes = std::fs::read(f.state.path().join(&files[0].stored_path)).expect("stored");
    assert_eq!(bytes, content);
    // The views of either replica show the device and its history.
    let v: serde_json::Value =
        serde_json::from_slice(&request(a, "GET", "/api/devices/DEV-1", &[], b"").body)
            .expect("json");
    assert_eq!(v["device"]["poll_count"], 2, "{v}");
    assert!(
        !serde_json::to_string(&v).expect("json").contains(&token),
        "the views never show the token"
    );
}

#[test]
fn concurrent_changes_on_two_replicas_lose_no_update() {
    let db = fresh_database();
    let dirs = [
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    ];
    let replicas: Vec<Arc<State>> = dirs
        .iter()
        .map(|d| Arc::new(State::open(d.path(), Some(&db)).expect("open")))
        .collect();
    // Four threads per replica: one existing device and, from the first
    // change on, a new one both replicas create at the same time.
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let s = replicas[i % 2].clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    for id in ["SHARED", "NEW"] {
                        s.update_device(id, |r| r.poll_count += 1).expect("update");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    for s in &replicas {
        for id in ["SHARED", "NEW"] {
            let rec = s.device(id).expect("read").expect("exists");
            assert_eq!(rec.poll_count, 400, "{id}: 8 threads x 50 changes");
        }
        assert_eq!(s.devices().expect("list").len(), 2);
    }
    // Status messages racing with the same ReportIDs from both replicas.
    let doc = Status::decode(status_body("RACE").as_bytes()).expect("status");
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let s = replicas[i % 2].clone();
            let msgs = doc.messages.clone();
            std::thread::spawn(move || s.add_status("SHARED", &msgs, "now").expect("store"))
        })
        .collect();
    let stored: usize = threads
        .into_iter()
        .map(|t| t.join().expect("thread").stored)
        .sum();
    assert_eq!(stored, 1, "one of eight deliveries stored");
    assert_eq!(report_ids(&replicas[1], "SHARED"), ["RACE"]);
}

/// A `dm-server` process on the shared database (the binary cargo built
/// beside this test binary).
struct Process {
    child: Child,
    addr: SocketAddr,
}

fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("dm-server");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with cargo test --workspace",
        bin.display()
    );
    bin
}

fn spawn_replica(f: &Fleet) -> Process {
    let mut child = Command::new(server_binary())
        .arg("--catalog")
        .arg(f.catalog.path())
        .arg("--state")
        .arg(f.state.path())
        .args([
            "--database",
            &f.database,
            "--listen",
            "127.0.0.1:0",
            "--auth",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dm-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Process { child, addr }
}

impl Process {
    fn faults(&self, json: &str) {
        let r = request(self.addr, "PUT", "/admin/faults", &[], json.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
    }

    fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until the process is gone (it aborted itself).
    fn wait_gone(mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "the replica did not die");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Sends `body` to `addr` and returns whether any answer came back.
fn send_raw(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut head = format!("POST /devicemgmt/server.aspx HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut raw);
    !raw.is_empty()
}

#[test]
fn a_replica_killed_mid_request_loses_nothing_and_doubles_nothing() {
    let f = fleet();
    let b = f.b.addr();

    // Enrolment: replica P commits a token, dies before answering; the
    // device asks B and gets that same token, not a second one.
    let p = spawn_replica(&f);
    p.faults(r#"{"abort_after_store": true}"#);
    let answered = send_raw(
        p.addr,
        &headers("DEV-K", "", "Poll"),
        poll_body("DEV-K").as_bytes(),
    );
    assert!(!answered, "the replica died before answering");
    p.wait_gone();
    let token = enrol(b, "DEV-K");
    let stored =
        f.b.state()
            .device("DEV-K")
            .expect("read")
            .expect("enrolled");
    assert_eq!(stored.auth_token.as_deref(), Some(token.as_str()));
    assert_eq!(stored.poll_count, 2, "the lost poll and its retry");

    // Killed before the store (the request is held up, then kill -9):
    // nothing stored; the retry to B stores it once.
    let p = spawn_replica(&f);
    p.faults(r#"{"delay_ms": 5000}"#);
    let addr = p.addr;
    let h: Vec<(String, String)> = headers("DEV-K", &token, "Status")
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let sender = std::thread::spawn(move || {
        let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        send_raw(addr, &h, status_body("K-1").as_bytes())
    });
    std::thread::sleep(Duration::from_millis(500));
    p.kill_9();
    assert!(
        !sender.join().expect("sender"),
        "no answer from a killed replica"
    );
    assert!(
        report_ids(f.a.state(), "DEV-K").is_empty(),
        "nothing stored"
    );
    let r = to(
        b,
        &headers("DEV-K", &token, "Status"),
        status_body("K-1").as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(report_ids(f.a.state(), "DEV-K"), ["K-1"]);

    // Killed after the store, before the reply: the retry to B is
    // recognised by its ReportID and dropped.
    let p = spawn_replica(&f);
    p.faults(r#"{"abort_after_store": true}"#);
    assert!(!send_raw(
        p.addr,
        &headers("DEV-K", &token, "Status"),
        status_body("K-2").as_bytes()
    ));
    p.wait_gone();
    let dups = f.b.duplicate_statuses();
    let r = to(
        b,
        &headers("DEV-K", &token, "Status"),
        status_body("K-2").as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(f.b.duplicate_statuses(), dups + 1);
    assert_eq!(report_ids(f.a.state(), "DEV-K"), ["K-1", "K-2"]);

    // A file upload committed by a dying replica and sent again to B: one
    // record, the bytes as sent.
    let p = spawn_replica(&f);
    p.faults(r#"{"abort_after_store": true}"#);
    let content = pattern(300_000);
    let mut h = headers("DEV-K", &token, "Report");
    h.push(("X-Device-ReportType", "FileCollection"));
    h.push(("X-Device-FullyQualifiedFilename", r"\var\log\app.log"));
    assert!(!send_raw(p.addr, &h, &content));
    p.wait_gone();
    let r = to(b, &h, &content);
    assert_eq!(r.status, 200, "{}", r.text());
    let files = f.a.state().files("DEV-K").expect("db");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].sha256, sha256_hex(&content));
    let bytes = std::fs::read(f.state.path().join(&files[0].stored_path)).expect("file");
    assert_eq!(bytes, content);

    // Killed while the body streams in: no record, a temporary file that
    // the next start sweeps once it is old; the retry to B stores it once.
    let p = spawn_replica(&f);
    let h = {
        let mut h = headers("DEV-K", &token, "Report");
        h.push(("X-Device-ReportType", "FileCollection"));
        h.push(("X-Device-FullyQualifiedFilename", r"\var\log\big.log"));
        h
    };
    let content = pattern(2_000_000);
    let mut s = TcpStream::connect(p.addr).expect("connect");
    let mut head = format!(
        "POST /devicemgmt/server.aspx HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
        p.addr,
        content.len()
    );
    for (n, v) in &h {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&content[..1_000_000]).expect("half the body");
    let incoming = || {
        std::fs::read_dir(f.state.path().join("files"))
            .expect("files dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".incoming-"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while incoming() == 0 {
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    p.kill_9();
    drop(s);
    assert_eq!(
        f.b.state().files("DEV-K").expect("db").len(),
        1,
        "no record"
    );
    let r = to(b, &h, &content);
    assert_eq!(r.status, 200, "{}", r.text());
    let files = f.b.state().files("DEV-K").expect("db");
    assert_eq!(files.len(), 2, "{files:?}");
    let big = files
        .iter()
        .find(|r| r.original_path.ends_with("big.log"))
        .expect("stored");
    assert_eq!(big.sha256, sha256_hex(&content));
    assert_eq!(
        incoming(),
        1,
        "the dead replica's partial file, swept when a day old"
    );
}

#[test]
fn catalog_changes_reach_every_replica() {
    let f = fleet();
    let ids = |addr: SocketAddr| -> Vec<String> {
        let r = to(
            addr,
            &headers("CAT-1", "", "Poll"),
            poll_body("CAT-1").as_bytes(),
        );
        // Auth is on: the first poll enrols, later ones without the token
        // (never presented) get the same token back.
        assert_eq!(r.status, 200, "{}", r.text());
        let doc = PollResponse::decode(&r.body).expect("poll response");
        doc.applicable_packages
            .unwrap_or_default()
            .iter()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(ids(f.a.addr()).len(), 4);
    assign_only(f.catalog.path(), &["DEMO-APP"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    for addr in [f.a.addr(), f.b.addr()] {
        while ids(addr) != ["DEMO-APP"] {
            assert!(Instant::now() < deadline, "{addr} kept the old catalog");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_database_with_a_newer_schema_is_refused_at_start() {
    let db = fresh_database();
    let dir = tempfile::tempdir().expect("tmp");
    drop(PostgresState::open(dir.path(), &db).expect("migrates a new database"));
    let reopened = PostgresState::open(dir.path(), &db).expect("opens a migrated one");
    drop(reopened);
    let out = Command::new("psql")
        .args([
            &db,
            "-qAtc",
            "UPDATE dm_schema_version SET version = version + 1",
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = PostgresState::open(dir.path(), &db).expect_err("newer schema");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "schema version {}, newer than this dm-server's {}",
            dm_server::state::SCHEMA_VERSION + 1,
            dm_server::state::SCHEMA_VERSION
        )),
        "{msg}"
    );
    // And a server that cannot reach its database says which one.
    let e = PostgresState::open(
        dir.path(),
        "postgresql://dm:secret@%2Fnonexistent-socket-dir/fleet",
    )
    .expect_err("no server there");
    let msg = e.to_string();
    assert!(
        msg.contains("/nonexistent-socket-dir") && msg.contains("fleet"),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "{msg}");
}
