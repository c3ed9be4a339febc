//! Named crash points (issue 15): the places where the agent commits a state
//! change or acts on one. A build with the `failpoints` cargo feature (tests
//! only; `cargo test --workspace --all-features`) kills the agent with
//! SIGKILL at a point named in the `FAILPOINTS` environment variable, in the
//! `fail` crate's syntax (`name=return`, or `3*off->return` for the fourth
//! time it is reached). A build without the feature, as shipped, compiles
//! every point to nothing.
//!
//! `tests/it/crash_points.rs` kills the daemon at each of [`POINTS`] in turn
//! and checks through the reference server that nothing was lost or done
//! twice; a unit test below keeps [`POINTS`] and the call sites in step.

/// Every named point, in the order a download event reaches them.
pub const POINTS: &[&str] = &[
    // Any transaction of the client database, just before and just after its
    // durable commit (counted: `N*off->return` picks the N+1th commit).
    "store.commit.before",
    "store.commit.after",
    // The poller.
    "poller.settings.committed",
    "poller.instructions.committed",
    "poller.removal.committed",
    // The scheduler, after an attempt's outcome is committed.
    "scheduler.attempt.committed",
    // The downloader's phases.
    "downloader.started.committed",
    "downloader.checkpoint.stored",
    "downloader.rename.before",
    "downloader.rename.after",
    "downloader.downloaded.committed",
    "downloader.installing.committed",
    "downloader.post_install.returned",
    "downloader.finished.committed",
    // Reports and the outbox.
    "inventory.report.queued",
    "reporter.send.before",
    "reporter.send.accepted",
    "reporter.dequeue.committed",
];

/// Stops the agent here with SIGKILL when the test build is told to.
#[inline(always)]
pub fn crash_point(name: &'static str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        kill_self(name);
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Reads `FAILPOINTS`; the points stay armed while the returned value lives.
#[cfg(feature = "failpoints")]
pub fn setup() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}

/// SIGKILL from outside the process, as a power cut or the OOM killer would
/// deliver it: no destructor, flush or `atexit` runs. (`kill(2)` itself would
/// need `unsafe`, which this crate does not allow outside the plugin host.)
#[cfg(feature = "failpoints")]
fn kill_self(name: &str) -> ! {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "CRASH POINT {name}: SIGKILL");
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // The signal is on its way; nothing more happens on this thread.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::POINTS;

    /// Every `crash_point("…")` in the sources is listed, and every listed
    /// point is named somewhere: the crash test loops over [`POINTS`].
    #[test]
    fn points_match_the_call_sites() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut sources = String::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("failpoint.rs")
                {
                    let text = std::fs::read_to_string(&path).expect("read");
                    sources.push_str(&text);
                    for piece in text.split("crash_point(\"").skip(1) {
                        let name = piece.split('"').next().unwrap_or_default();
                        found.push((name.to_owned(), path.display().to_string()));
                    }
                }
            }
        }
        for (name, file) in &found {
            assert!(
                POINTS.contains(&name.as_str()),
                "{name} in {file} is not in POINTS"
            );
        }
        for point in POINTS {
            // Also through a `match` naming the point of each state.
            assert!(
                sources.contains(&format!("\"{point}\"")),
                "{point} is listed but never called"
            );
        }
    }
}
