//! The parent side of a call: start the plugin-host child, feed it the
//! request, collect its result (capped) and log lines, enforce the deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::child::LogLine;
use super::failure::{signal_name, FailureCause};
use super::MAX_OUTPUT_BYTES;

/// One child run.
pub(crate) struct ChildRun<'a> {
    pub exe: &'a Path,
    pub plugin_file: &'a Path,
    pub trusted_uid: u32,
    pub sha256: &'a str,
    pub describe: bool,
    pub request: Vec<u8>,
    pub deadline: Duration,
    /// `(uid, gid)` to drop to.
    pub user: Option<(u32, u32)>,
    /// Names the plugin in re-emitted log events.
    pub label: &'a str,
}

/// How the child ended normally: its exit code and stdout.
pub(crate) struct Finished {
    pub code: i32,
    pub stdout: Vec<u8>,
}

/// Longest stderr line kept; the rest of the line is dropped.
const MAX_LOG_LINE: usize = 16 * 1024;

pub(crate) fn run(spec: ChildRun<'_>) -> Result<Finished, FailureCause> {
    let mut cmd = Command::new(spec.exe);
    cmd.arg("__plugin-host")
        .arg("--plugin")
        .arg(spec.plugin_file)
        .arg("--trusted-uid")
        .arg(spec.trusted_uid.to_string())
        .arg("--sha256")
        .arg(spec.sha256);
    if spec.describe {
        cmd.arg("--describe");
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's ^C goes to the agent, which decides.
        .process_group(0);
    if let Some((uid, gid)) = spec.user {
        cmd.gid(gid).uid(uid);
    }
    let mut child = cmd.spawn().map_err(|e| FailureCause::Spawn {
        detail: format!("{}: {e}", spec.exe.display()),
    })?;

    // The request is written from its own thread: a child that does not read
    // it must not block us past the deadline.
    if let Some(mut stdin) = child.stdin.take() {
        let request = spec.request;
        std::thread::spawn(move || {
            let _ = stdin.write_all(&request);
        });
    }
    let (out_tx, out_rx) = mpsc::channel::<std::io::Result<(Vec<u8>, bool)>>();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let r = stdout
                .take(MAX_OUTPUT_BYTES as u64 + 1)
                .read_to_end(&mut buf)
                .map(|_| {
                    let over = buf.len() > MAX_OUTPUT_BYTES;
                    (buf, over)
                });
            let _ = out_tx.send(r);
        });
    }
    let (err_tx, err_rx) = mpsc::channel::<()>();
    if let Some(stderr) = child.stderr.take() {
        let label = spec.label.to_owned();
        std::thread::spawn(move || {
            relay_logs(stderr, &label);
            let _ = err_tx.send(());
        });
    }

    let started = Instant::now();
    let mut stdout: Option<(Vec<u8>, bool)> = None;
    let status = loop {
        if stdout.is_none() {
            match out_rx.try_recv() {
                Ok(Ok((bytes, true))) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    drop(bytes);
                    return Err(FailureCause::Oversized {
                        limit: MAX_OUTPUT_BYTES,
                    });
                }
                Ok(Ok(done)) => stdout = Some(done),
                Ok(Err(e)) => {
                    return Err(FailureCause::BadOutput {
                        detail: format!("cannot read the result: {e}"),
                    })
                }
                Err(_) => {}
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                return Err(FailureCause::Spawn {
                    detail: format!("cannot wait for the plugin host: {e}"),
                });
            }
        }
        if started.elapsed() >= spec.deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(FailureCause::Timeout {
                secs: spec.deadline.as_secs().max(1),
            });
        }
        let waited = started.elapsed();
        std::thread::sleep(if waited < Duration::from_millis(100) {
            Duration::from_millis(2)
        } else {
            Duration::from_millis(20)
        });
    };
    // The child is gone; its pipes close unless a grandchild still holds
    // them, so wait only briefly for the readers.
    let stdout = match stdout {
        Some(s) => Some(s),
        None => out_rx
            .recv_timeout(Duration::from_secs(2))
            .ok()
            .and_then(Result::ok),
    };
    let _ = err_rx.recv_timeout(Duration::from_millis(500));
    if let Some(signal) = status.signal() {
        return Err(FailureCause::Signal {
            signal,
            name: signal_name(signal).to_owned(),
        });
    }
    let (bytes, over) = stdout.unwrap_or_default();
    if over {
        return Err(FailureCause::Oversized {
            limit: MAX_OUTPUT_BYTES,
        });
    }
    Ok(Finished {
        code: status.code().unwrap_or(-1),
        stdout: bytes,
    })
}

/// Re-emits the child's JSON log lines as `tracing` events naming the plugin;
/// other lines (a panic hook's message, a plugin writing to stderr) as warnings.
fn relay_logs(stderr: impl Read, plugin: &str) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LOG_LINE as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() >= MAX_LOG_LINE {
            // Skip the rest of an over-long line.
            let mut rest = Vec::new();
            let _ = reader.read_until(b'\n', &mut rest);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<LogLine>(text) {
            Ok(l) => {
                let (t, m) = (l.target.as_str(), l.message.as_str());
                match l.level {
                    1 => tracing::error!(plugin, plugin_target = t, "{m}"),
                    2 => tracing::warn!(plugin, plugin_target = t, "{m}"),
                    3 => tracing::info!(plugin, plugin_target = t, "{m}"),
                    4 => tracing::debug!(plugin, plugin_target = t, "{m}"),
                    _ => tracing::trace!(plugin, plugin_target = t, "{m}"),
                }
            }
            Err(_) => tracing::warn!(plugin, "plugin host stderr: {text}"),
        }
    }
}
