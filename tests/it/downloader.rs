//! Tests: the download engine over real HTTP on loopback: fresh, cut and
//! resumed, restarted after `kill -9`, every restart-from-zero rule of part B
//! §6, verification failures, HTTP errors, the bandwidth cap and the X7 paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dmagent::downloader::checkpoint::{self, Checkpoint, Loaded};
use dmagent::downloader::paths::partial_path;
use dmagent::downloader::{
    checkpoint_path, discard, fetch, resolve_destination, FetchError, FetchJob, Fetched, PathError,
    Progress,
};
use sha2::{Digest, Sha256};

use crate::support::range_server::RangeServer;

const MIB: u64 = 1 << 20;
const SLACK: u64 = 64 * 1024;
const ID: &str = "5F0C1D2E-0000-4000-8000-000000000001";
/// Environment variable that turns [`kill9_child`] into a downloader: `url\ndir`.
const CHILD_ENV: &str = "DMAGENT_DOWNLOADER_CHILD";

/// Deterministic, non-repeating bytes, so a misplaced block changes the hash.
fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(15))
        .build()
        .expect("client")
}

fn job(server: &RangeServer, dir: &Path, content: &[u8]) -> FetchJob {
    let mut j = FetchJob::new(ID, server.url("/pkgs/viewer.cab"), dir);
    j.expected_size = Some(content.len() as u64);
    j.expected_sha256 = Some(sha(content).to_uppercase());
    j
}

/// Run one fetch on a fresh actix system, collecting the progress reports.
fn run(job: &FetchJob) -> (Result<Fetched, FetchError>, Vec<Progress>) {
    let mut seen = Vec::new();
    let r = actix_rt::System::new()
        .block_on(async { fetch(&client(), job, &mut |p| seen.push(p)).await });
    (r, seen)
}

fn run_ok(job: &FetchJob, content: &[u8]) -> Fetched {
    let (r, _) = run(job);
    let f = r.expect("fetch");
    assert_eq!(f.path, job.dest_dir.join("viewer.cab"));
    assert_eq!(std::fs::read(&f.path).expect("read final"), content);
    assert_eq!(f.sha256, sha(content));
    assert_eq!(f.size, content.len() as u64);
    assert_no_leftovers(&job.dest_dir);
    f
}

fn run_network_error(job: &FetchJob) {
    match run(job).0 {
        Err(e @ FetchError::Network { .. }) => assert!(e.is_retryable()),
        other => panic!("expected a network error, got {other:?}"),
    }
}

fn assert_no_leftovers(dir: &Path) {
    assert!(!checkpoint_path(dir, ID).exists(), "checkpoint left behind");
    assert!(!partial_path(dir, ID).exists(), "partial data left behind");
}

fn saved(dir: &Path) -> Checkpoint {
    match checkpoint::load(dir, ID).expect("load checkpoint") {
        Loaded::Valid(cp) => cp,
        other => panic!("expected a valid checkpoint, got {other:?}"),
    }
}

/// Cut a fresh download after `cut` bytes; return the checkpointed offset.
fn interrupted(server: &RangeServer, j: &FetchJob, cut: u64) -> u64 {
    server.cut_next_after(cut);
    run_network_error(j);
    let cp = saved(&j.dest_dir);
    assert!(
        cp.bytes_done <= cut && cp.bytes_done + SLACK >= cut,
        "{}",
        cp.bytes_done
    );
    cp.bytes_done
}

#[test]
fn fresh_download_is_verified_and_published() {
    let content = body(3 * MIB as usize, 1);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("apps");
    let j = job(&server, &dest, &content);
    let (r, seen) = run(&j);
    let f = r.expect("fetch");
    assert_eq!((f.resumed_from, f.bytes_fetched), (0, 3 * MIB));
    assert_eq!(std::fs::read(&f.path).expect("read"), content);
    assert_no_leftovers(&dest);
    assert_eq!(server.body_bytes_sent(), 3 * MIB);
    assert_eq!(server.ranges(), vec![None]);
    assert!(seen.len() >= 2);
    assert_eq!(
        seen.first().map(|p| (p.bytes_done, p.total)),
        Some((0, Some(3 * MIB)))
    );
    assert_eq!(seen.last().map(|p| p.bytes_done), Some(3 * MIB));
}

#[test]
fn cut_mid_download_resumes_from_the_last_byte() {
    let content = body(3 * MIB as usize, 2);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let j = job(&server, dir.path(), &content);
    let done = interrupted(&server, &j, 1_500_000);
    let f = run_ok(&j, &content);
    assert_eq!(f.resumed_from, done);
    assert_eq!(f.bytes_fetched, 3 * MIB - done);
    let refetched = server.body_bytes_sent() - 3 * MIB;
    eprintln!("cut, same server (206): resumed at {done}, {refetched} bytes fetched again");
    assert!(refetched <= SLACK, "{refetched}");
    assert_eq!(server.ranges()[1], Some(format!("bytes={done}-")));
}

/// The agent's own HTTP client (`Transport::new`), with `request_timeout`.
fn agent_client(request_timeout: Duration) -> reqwest::Client {
    let mut settings = dmagent::config::Settings::default();
    settings.server.request_timeout = request_timeout;
    dmagent::transport::Transport::new(&settings)
        .expect("transport")
        .client()
        .clone()
}

#[test]
fn a_stalled_body_times_out_and_the_retry_resumes_from_the_checkpoint() {
    let content = body(3 * MIB as usize, 21);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = job(&server, dir.path(), &content);
    j.checkpoint_interval_bytes = 256 * 1024;
    // No byte for longer than the timeout after 1.5 MB: the agent gives up on
    // this response instead of waiting for ever (no whole-request limit would
    // let a slow download finish; the read timeout catches the stall).
    server.stall_after(Some(1_500_000));
    let client = agent_client(Duration::from_secs(2));
    let started = std::time::Instant::now();
    let r = actix_rt::System::new().block_on(async { fetch(&client, &j, &mut |_| {}).await });
    let e = r.expect_err("the stall is an error");
    assert!(e.is_retryable(), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the stall was noticed after {:?}",
        started.elapsed()
    );
    server.stall_after(None);
    let r = actix_rt::System::new().block_on(async { fetch(&client, &j, &mut |_| {}).await });
    let f = r.expect("the retry");
    assert_eq!(std::fs::read(&f.path).expect("read"), content);
    assert!(
        f.resumed_from >= 1_500_000 - 256 * 1024,
        "resumed at {}",
        f.resumed_from
    );
    let refetched = server.body_bytes_sent() - 3 * MIB;
    eprintln!(
        "stall: resumed at {}, {refetched} bytes fetched again",
        f.resumed_from
    );
    assert!(refetched <= 256 * 1024 + SLACK, "{refetched}");
}

#[test]
fn a_slow_download_longer_than_the_request_timeout_is_not_cut() {
    // 1 MiB at 256 KiB/s: four seconds, twice the request timeout.
    let content = body(MIB as usize, 22);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = job(&server, dir.path(), &content);
    j.bandwidth_limit = Some(256 * 1024);
    let client = agent_client(Duration::from_secs(2));
    let r = actix_rt::System::new().block_on(async { fetch(&client, &j, &mut |_| {}).await });
    let f = r.expect("a slow but steady download completes");
    assert_eq!(f.resumed_from, 0);
    assert_eq!(
        server.ranges().len(),
        1,
        "one request, never cut and resumed"
    );
}

#[test]
fn a_body_longer_than_its_content_length_is_taken_to_the_length() {
    let content = body(MIB as usize, 23);
    let server = RangeServer::start(content.clone());
    server.trailing_garbage(4096);
    let dir = tempfile::tempdir().expect("tempdir");
    let j = job(&server, dir.path(), &content);
    // The bytes past Content-Length are not the package: the file is exact.
    run_ok(&j, &content);
}

/// The child half of [`restart_after_kill_9_refetches_at_most_one_interval`].
#[test]
#[ignore = "run by its parent test"]
fn kill9_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (url, dir) = spec.split_once('\n').expect("child spec");
    let j = FetchJob::new(ID, url, dir);
    let r = actix_rt::System::new().block_on(async { fetch(&client(), &j, &mut |_| {}).await });
    panic!("child: the parent should have killed us, got {r:?}");
}

#[test]
fn restart_after_kill_9_refetches_at_most_one_interval() {
    let content = body(3 * MIB as usize, 3);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let url = server.url("/pkgs/viewer.cab");
    server.stall_after(Some(2 * MIB + MIB / 2));
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "downloader::kill9_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{url}\n{}", dir.path().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child");
    // Wait (bounded) until the child has checkpointed the second MiB.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Loaded::Valid(cp)) = checkpoint::load(dir.path(), ID) {
            if cp.bytes_done >= 2 * MIB {
                break;
            }
        }
        assert!(Instant::now() < deadline, "child never checkpointed 2 MiB");
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "child exited"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let first = server.body_bytes_sent();
    server.stall_after(None);
    // Only the files on disk remain: a new client, a new runtime, the same job.
    let j = FetchJob::new(ID, url, dir.path());
    let f = run_ok(&j, &content);
    assert!(f.resumed_from >= 2 * MIB);
    let total = server.body_bytes_sent();
    assert!(first >= 2 * MIB, "{first}");
    assert!(
        total <= 3 * MIB + MIB + SLACK,
        "sent {total} for {}",
        3 * MIB
    );
}

#[test]
fn range_answered_with_200_restarts_on_the_same_response() {
    let content = body(2 * MIB as usize, 4);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let j = job(&server, dir.path(), &content);
    let done = interrupted(&server, &j, 700_000);
    server.ignore_range(true);
    let f = run_ok(&j, &content);
    assert_eq!((f.resumed_from, f.bytes_fetched), (0, 2 * MIB));
    assert_eq!(server.ranges().len(), 2, "one request, no second one");
    assert_eq!(server.ranges()[1], Some(format!("bytes={done}-")));
    // The whole body again: what the cut had fetched is fetched twice.
    let refetched = server.body_bytes_sent() - 2 * MIB;
    eprintln!(
        "cut, Range answered with 200: {refetched} bytes fetched again (checkpoint was {done})"
    );
    assert!(
        refetched >= done && refetched <= done + SLACK,
        "{refetched}"
    );
}

#[test]
fn changed_etag_restarts_with_the_new_content() {
    let old = body(2 * MIB as usize, 5);
    let new = body(2 * MIB as usize + 7, 6);
    let server = RangeServer::start(old.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = FetchJob::new(ID, server.url("/pkgs/viewer.cab"), dir.path());
    interrupted(&server, &j, 900_000);
    server.change_content(new.clone());
    j.expected_sha256 = None;
    let f = run_ok(&j, &new);
    assert_eq!(f.resumed_from, 0);
    assert!(server.ranges()[1].is_some(), "it did try to resume");
    let dropped = server.body_bytes_sent() - new.len() as u64;
    eprintln!("file changed between resumes: {dropped} bytes of the old file dropped");
}

/// A way to damage the files of an interrupted download.
type Corrupt = fn(&Path);

#[test]
fn corrupt_checkpoint_restarts_from_zero() {
    let content = body(2 * MIB as usize, 7);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let j = job(&server, dir.path(), &content);
    let corruptions: [(&str, Corrupt); 3] = [
        ("garbage JSON", |d| {
            std::fs::write(checkpoint_path(d, ID), b"{\"version\":1,").expect("write")
        }),
        ("wrong checksum", |d| {
            let p = checkpoint_path(d, ID);
            let text = std::fs::read_to_string(&p).expect("read");
            let cp = saved(d);
            let forged = text.replace(
                &format!("\"bytes_done\":{}", cp.bytes_done),
                &format!("\"bytes_done\":{}", cp.bytes_done - 1000),
            );
            assert_ne!(forged, text);
            std::fs::write(p, forged).expect("write")
        }),
        ("truncated partial", |d| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(partial_path(d, ID))
                .expect("open");
            f.set_len(1000).expect("truncate")
        }),
    ];
    for (what, corrupt) in corruptions {
        server.reset_count();
        interrupted(&server, &j, 800_000);
        corrupt(dir.path());
        let f = run_ok(&j, &content);
        assert_eq!(f.resumed_from, 0, "{what}");
        assert_eq!(server.ranges().last(), Some(&None), "{what}: no Range sent");
        assert_eq!(server.body_bytes_sent(), 800_000 + 2 * MIB, "{what}");
        std::fs::remove_file(&f.path).expect("remove");
    }
}

/// The checkpoint belongs to the package: a cut on one location continues
/// on another (a second mirror) and back on the first, each time from the
/// checkpoint, without If-Range (the other server's validators mean nothing
/// there; the SHA-256 over the whole file decides).
#[test]
fn another_location_of_the_same_package_resumes_from_the_checkpoint() {
    let content = body(3 * MIB as usize, 8);
    let first = RangeServer::start(content.clone());
    let second = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let at = interrupted(&first, &job(&first, dir.path(), &content), 1_200_000);
    // Cut again on the second location, then finish back on the first.
    second.cut_next_after(900_000);
    run_network_error(&job(&second, dir.path(), &content));
    assert_eq!(second.ranges(), vec![Some(format!("bytes={at}-"))]);
    let again = saved(dir.path()).bytes_done;
    assert!(again > at, "the second location added to the checkpoint");
    let f = run_ok(&job(&first, dir.path(), &content), &content);
    assert_eq!((f.resumed_from, f.bytes_fetched), (again, 3 * MIB - again));
    let refetched = first.body_bytes_sent() + second.body_bytes_sent() - 3 * MIB;
    eprintln!("two cuts, second mirror then back to the first: {refetched} bytes fetched again");
    assert!(
        refetched <= 2 * SLACK,
        "{refetched} bytes fetched twice over two cuts"
    );
}

/// A cut, then a second location that fails outright (503, then nothing
/// listening): the checkpoint is kept, and when the first server comes back
/// with the same file the download continues from the cut, not from byte 0.
#[test]
fn a_failing_second_location_keeps_the_checkpoint_for_the_first() {
    let content = body(3 * MIB as usize, 9);
    let first = RangeServer::start(content.clone());
    let second = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let at = interrupted(&first, &job(&first, dir.path(), &content), 1_300_000);
    second.fail_with(Some(503));
    assert!(run(&job(&second, dir.path(), &content)).0.is_err());
    assert_eq!(saved(dir.path()).bytes_done, at, "a 503 changes nothing");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut refused = job(&first, dir.path(), &content);
    refused.url = format!("http://127.0.0.1:{port}/pkgs/viewer.cab");
    run_network_error(&refused);
    assert_eq!(
        saved(dir.path()).bytes_done,
        at,
        "a refused connection changes nothing"
    );
    let f = run_ok(&job(&first, dir.path(), &content), &content);
    assert_eq!((f.resumed_from, f.bytes_fetched), (at, 3 * MIB - at));
    assert_eq!(first.ranges().last(), Some(&Some(format!("bytes={at}-"))));
    let refetched = first.body_bytes_sent() - 3 * MIB;
    eprintln!("cut, failing second location, first back: resumed at {at}, {refetched} bytes fetched again");
    assert!(refetched <= SLACK, "{refetched}");
}

/// Without a SHA-256 nothing could tell a different file on the other
/// server: it starts from byte 0.
#[test]
fn another_location_without_a_hash_restarts_from_zero() {
    let content = body(2 * MIB as usize, 8);
    let first = RangeServer::start(content.clone());
    let second = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let unhashed = |server: &RangeServer| {
        let mut j = job(server, dir.path(), &content);
        j.expected_sha256 = None;
        j
    };
    interrupted(&first, &unhashed(&first), 1_200_000);
    let (r, _) = run(&unhashed(&second));
    let f = r.expect("fetch");
    assert_eq!((f.resumed_from, f.bytes_fetched), (0, 2 * MIB));
    assert_eq!(second.ranges(), vec![None]);
}

/// A mirror with other bytes of the same size: the joined file fails the
/// hash, nothing is kept, and the next attempt starts clean and succeeds.
#[test]
fn another_location_with_other_bytes_is_caught_by_the_hash() {
    let content = body(2 * MIB as usize, 8);
    let first = RangeServer::start(content.clone());
    let other = RangeServer::start(body(2 * MIB as usize, 99));
    let dir = tempfile::tempdir().expect("tempdir");
    interrupted(&first, &job(&first, dir.path(), &content), 1_200_000);
    match run(&job(&other, dir.path(), &content)).0 {
        Err(FetchError::DigestMismatch { .. }) => {}
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert_no_leftovers(dir.path());
    let f = run_ok(&job(&first, dir.path(), &content), &content);
    assert_eq!(f.resumed_from, 0);
}

#[test]
fn digest_mismatch_leaves_nothing() {
    let content = body(MIB as usize, 9);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = job(&server, dir.path(), &content);
    j.expected_sha256 = Some(sha(b"something else"));
    match run(&j).0 {
        Err(e @ FetchError::DigestMismatch { .. }) => {
            assert!(!e.is_retryable());
            let FetchError::DigestMismatch { expected, actual } = e else {
                unreachable!()
            };
            assert_eq!((expected, actual), (sha(b"something else"), sha(&content)));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert!(!dir.path().join("viewer.cab").exists());
    assert_no_leftovers(dir.path());
}

#[test]
fn size_mismatch_leaves_nothing() {
    let content = body(MIB as usize, 10);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = job(&server, dir.path(), &content);
    j.expected_size = Some(MIB + 1);
    assert!(matches!(
        run(&j).0,
        Err(FetchError::SizeMismatch { expected, actual }) if expected == MIB + 1 && actual == MIB
    ));
    assert!(!dir.path().join("viewer.cab").exists());
    assert_no_leftovers(dir.path());
}

#[test]
fn stale_checkpoint_416_restarts_from_zero() {
    let content = body(MIB as usize, 11);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let j = FetchJob::new(ID, server.url("/pkgs/viewer.cab"), dir.path());
    // A checkpoint past the end of what the server now has.
    std::fs::write(partial_path(dir.path(), ID), vec![0u8; MIB as usize + 10]).expect("part");
    let cp = Checkpoint {
        version: 1,
        package_id: ID.into(),
        source_url: j.url.clone(),
        etag: Some(server.etag()),
        last_modified: None,
        expected_size: None,
        expected_sha256: None,
        bytes_done: MIB + 10,
        boot_id: None,
    };
    checkpoint::store(dir.path(), &cp).expect("store");
    let f = run_ok(&j, &content);
    assert_eq!(f.resumed_from, 0);
    assert_eq!(
        server.ranges(),
        vec![Some(format!("bytes={}-", MIB + 10)), None]
    );
}

#[test]
fn wrong_content_range_is_refused_not_appended() {
    let content = body(MIB as usize, 12);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let j = job(&server, dir.path(), &content);
    interrupted(&server, &j, 300_000);
    server.bad_content_range(true);
    match run(&j).0 {
        Err(e @ FetchError::Range(_)) => assert!(e.is_retryable()),
        other => panic!("expected a Range error, got {other:?}"),
    }
    assert_no_leftovers(dir.path());
    server.bad_content_range(false);
    run_ok(&j, &content);
}

#[test]
fn http_errors_are_classified() {
    let server = RangeServer::start(body(1000, 13));
    let dir = tempfile::tempdir().expect("tempdir");
    let j = FetchJob::new(ID, server.url("/pkgs/viewer.cab"), dir.path());
    server.fail_with(Some(404));
    let e = run(&j).0.expect_err("404");
    assert!(
        matches!(
            e,
            FetchError::Http {
                status: 404,
                retryable: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    server.fail_with(Some(500));
    let e = run(&j).0.expect_err("500");
    assert!(
        matches!(
            e,
            FetchError::Http {
                status: 500,
                retryable: true,
                ..
            }
        ),
        "{e:?}"
    );
    server.fail_with(Some(503));
    let e = run(&j).0.expect_err("503");
    assert!(
        matches!(e, FetchError::Http { status: 503, retryable: true, retry_after: Some(d) } if d == Duration::from_secs(1)),
        "{e:?}"
    );
    assert!(e.is_retryable());
    // Nothing listens here any more: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let refused = FetchJob::new(ID, format!("http://127.0.0.1:{port}/x.cab"), dir.path());
    run_network_error(&refused);
    let bad = FetchJob::new("../etc", server.url("/x.cab"), dir.path());
    assert!(matches!(
        run(&bad).0,
        Err(FetchError::Path(PathError::PackageId { .. }))
    ));
}

#[test]
fn bandwidth_limit_slows_the_transfer() {
    let content = body(MIB as usize, 14);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut j = job(&server, dir.path(), &content);
    j.bandwidth_limit = Some(2_000_000);
    let t0 = Instant::now();
    run_ok(&j, &content);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(400), "took {took:?}");
}

#[test]
fn discard_removes_checkpoint_and_partial() {
    let content = body(MIB as usize, 15);
    let server = RangeServer::start(content.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let j = job(&server, dir.path(), &content);
    interrupted(&server, &j, 200_000);
    actix_rt::System::new()
        .block_on(discard(dir.path(), ID))
        .expect("discard");
    assert_no_leftovers(dir.path());
}

#[test]
fn destinations_stay_inside_the_download_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(root.join("inner")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, root.join("escape")).expect("symlink");
    std::os::unix::fs::symlink(root.join("inner"), root.join("alias")).expect("symlink");
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), root.join("dangling")).expect("symlink");
    let ok: &[(Option<&str>, PathBuf)] = &[
        (None, root.join(ID)),
        (
            Some("\\Program Files\\Viewer"),
            root.join("Program Files/Viewer"),
        ),
        (Some("C:\\apps\\v2"), root.join("apps/v2")),
        (Some("/inner/x"), root.join("inner/x")),
        (Some("alias/x"), root.join("alias/x")),
    ];
    for (dest, want) in ok {
        assert_eq!(
            resolve_destination(&root, *dest, ID).as_ref(),
            Ok(want),
            "{dest:?}"
        );
    }
    for dest in ["../outside", "a/../../outside", "..\\..\\etc", "x\0y"] {
        let e = resolve_destination(&root, Some(dest), ID).expect_err(dest);
        assert!(
            matches!(e, PathError::Traversal(_) | PathError::Nul(_)),
            "{dest:?}: {e:?}"
        );
        assert!(e.to_string().contains(&format!("{dest:?}")), "{e}");
    }
    for dest in ["escape", "escape/sub/dir", "\\escape\\x"] {
        let e = resolve_destination(&root, Some(dest), ID).expect_err(dest);
        assert!(matches!(e, PathError::Escape { .. }), "{dest:?}: {e:?}");
    }
    assert!(matches!(
        resolve_destination(&root, Some("dangling/x"), ID),
        Err(PathError::Unresolvable { .. })
    ));
}
