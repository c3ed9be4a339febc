//! `exec`: the default post-install handler (X6). Runs the command line,
//! split into words without a shell, in the package directory, with a clean
//! environment, under a timeout; returns the exit code and the last 4 KiB of
//! the combined output.
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use dmagent_plugin_api::util::split_command_line;
use dmagent_plugin_api::{PluginError, PostInstallHandler, PostInstallRequest, PostInstallResult};

/// The only `PATH` a post-install command sees.
const CLEAN_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// How much of the output is kept.
const TAIL_BYTES: usize = 4096;

struct Exec;

impl PostInstallHandler for Exec {
    fn run(&self, req: PostInstallRequest) -> Result<PostInstallResult, PluginError> {
        let words = split_command_line(&req.command_line).ok_or_else(|| {
            PluginError::new("unterminated quote or trailing backslash in the command line")
        })?;
        let Some((program, args)) = words.split_first() else {
            return Err(PluginError::new("empty command line"));
        };
        let dir = PathBuf::from(&req.package_dir);
        if !dir.is_absolute() || !dir.is_dir() {
            return Err(PluginError::new(format!(
                "package directory {} does not exist",
                dir.display()
            )));
        }
        // A relative program path with a slash is relative to the package
        // directory (std leaves that case unspecified with current_dir).
        let program = if program.contains('/') && !Path::new(program).is_absolute() {
            dir.join(program).into_os_string()
        } else {
            program.into()
        };
        let mut cmd = Command::new(&program);
        cmd.args(args)
            .current_dir(&dir)
            .env_clear()
            .env("PATH", CLEAN_PATH)
            .env("DM_PACKAGE_ID", &req.package_id)
            .env("DM_PACKAGE_DIR", &req.package_dir)
            .envs(&req.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(file) = &req.package_file {
            cmd.env("DM_PACKAGE_FILE", file);
        }
        tracing::info!(package = %req.package_id, command = %req.command_line, "running post-install command");
        let mut child = cmd.spawn().map_err(|e| {
            PluginError::new(format!("cannot start {}: {e}", program.to_string_lossy()))
        })?;

        // stdout and stderr feed one tail buffer, in arrival order.
        let tail = Arc::new(Mutex::new(Vec::<u8>::new()));
        let (tx, rx) = mpsc::channel::<()>();
        let readers: Vec<Box<dyn Read + Send>> = [
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        let reader_count = readers.len();
        for mut reader in readers {
            let tail = Arc::clone(&tail);
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut t) = tail.lock() {
                        t.extend_from_slice(&buf[..n]);
                        if t.len() > 2 * TAIL_BYTES {
                            let cut = t.len() - TAIL_BYTES;
                            t.drain(..cut);
                        }
                    }
                }
                let _ = tx.send(());
            });
        }
        drop(tx);

        let timeout = Duration::from_secs(req.timeout_secs.max(1));
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    return Err(PluginError::new(format!(
                        "cannot wait for the command: {e}"
                    )))
                }
            }
        };
        // A background process may keep a pipe open; do not wait for it long.
        let until = Instant::now() + Duration::from_secs(2);
        for _ in 0..reader_count {
            let left = until.saturating_duration_since(Instant::now());
            if rx.recv_timeout(left).is_err() {
                break;
            }
        }
        let mut tail = tail.lock().map(|t| t.clone()).unwrap_or_default();
        if tail.len() > TAIL_BYTES {
            tail.drain(..tail.len() - TAIL_BYTES);
        }
        let output_tail = String::from_utf8_lossy(&tail).into_owned();
        let Some(status) = status else {
            return Err(PluginError::new(format!(
                "command timed out after {} s and was killed; output tail: {output_tail}",
                timeout.as_secs()
            )));
        };
        use std::os::unix::process::ExitStatusExt;
        let exit_code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        tracing::info!(package = %req.package_id, exit_code, "post-install command finished");
        Ok(PostInstallResult {
            exit_code,
            output_tail,
        })
    }
}

dmagent_plugin_api::export_plugin!(post_install {
    name: "exec",
    handler: Exec
});
