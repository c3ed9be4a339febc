//! The plugin-host child: `dmagent __plugin-host --plugin PATH ...`, started
//! by [`super::runner`] for one call. It re-checks the file exactly as the
//! parent did (and pins the digest the parent saw), loads it, makes the call,
//! writes the raw result to stdout and log events to stderr as JSON lines,
//! and tells the outcome by its exit code. A crash here ends only this child.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use super::failure::FailureCause;
use super::{loader, trust, PluginKind, MAX_OUTPUT_BYTES, MAX_REQUEST_BYTES};

/// Exit code: the plugin returned `RC_OK`; stdout is its result.
pub(crate) const EXIT_OK: u8 = 80;
/// Exit code: `RC_PLUGIN_ERROR`; stdout is a `PluginError` JSON.
pub(crate) const EXIT_PLUGIN_ERROR: u8 = 81;
/// Exit code: `RC_PANIC`; stdout is the panic message.
pub(crate) const EXIT_PANIC: u8 = 82;
/// Exit code: an undefined return code; stdout is its decimal value.
pub(crate) const EXIT_OTHER_RC: u8 = 83;
/// Exit code: refused before or while loading; stdout is a `FailureCause` JSON.
pub(crate) const EXIT_REFUSED: u8 = 90;

/// A log event on the child's stderr.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LogLine {
    pub level: u32,
    pub target: String,
    pub message: String,
}

/// What `--describe` prints.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Description {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub report_kinds: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
}

/// Arguments of the hidden `__plugin-host` subcommand.
#[derive(Debug, Clone)]
pub struct ChildArgs<'a> {
    /// The plugin file.
    pub plugin: &'a Path,
    /// The uid, besides root, that may own the file (the agent's).
    pub trusted_uid: u32,
    /// The digest the parent checked; the child refuses other bytes.
    pub sha256: &'a str,
    /// Only print the descriptor; make no call.
    pub describe: bool,
}

/// Runs the child side; the process exits with the returned code.
pub fn child_main(args: &ChildArgs<'_>) -> ExitCode {
    let mut out = match loader::take_stdout() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("plugin host: cannot set up stdout: {e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let (code, bytes) = run(args);
    // A broken pipe means the parent gave up (timeout); nothing to do then.
    let _ = out.write_all(&bytes).and_then(|()| out.flush());
    ExitCode::from(code)
}

fn refused(cause: &FailureCause) -> (u8, Vec<u8>) {
    (EXIT_REFUSED, serde_json::to_vec(cause).unwrap_or_default())
}

fn run(args: &ChildArgs<'_>) -> (u8, Vec<u8>) {
    let (file, digest) = match trust::open_checked(args.plugin, args.trusted_uid) {
        Ok(ok) => ok,
        Err(cause) => return refused(&cause),
    };
    if !digest.eq_ignore_ascii_case(args.sha256) {
        return refused(&FailureCause::DigestMismatch {
            expected: args.sha256.to_owned(),
            actual: digest,
        });
    }
    let loaded = match loader::open(&file) {
        Ok(loaded) => loaded,
        Err(cause) => return refused(&cause),
    };
    drop(file);
    if args.describe {
        let d = &loaded.described;
        let description = Description {
            name: d.name.clone(),
            version: d.version.clone(),
            kind: d.kind,
            report_kinds: d.report_kinds,
            abi_major: d.abi_major,
            abi_minor: d.abi_minor,
        };
        return (
            EXIT_OK,
            serde_json::to_vec(&description).unwrap_or_default(),
        );
    }
    let mut request = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(MAX_REQUEST_BYTES as u64)
        .read_to_end(&mut request)
    {
        return refused(&FailureCause::Spawn {
            detail: format!("cannot read the request: {e}"),
        });
    }
    let outcome = loaded.call(&request, MAX_OUTPUT_BYTES, |level, target, message| {
        let line = LogLine {
            level,
            target: target.to_owned(),
            message: message.to_owned(),
        };
        if let Ok(mut text) = serde_json::to_vec(&line) {
            text.push(b'\n');
            let _ = std::io::stderr().write_all(&text);
        }
    });
    if outcome.oversized {
        return refused(&FailureCause::Oversized {
            limit: MAX_OUTPUT_BYTES,
        });
    }
    match outcome.rc {
        dmagent_plugin_api::RC_OK => (EXIT_OK, outcome.result),
        dmagent_plugin_api::RC_PLUGIN_ERROR => (EXIT_PLUGIN_ERROR, outcome.result),
        dmagent_plugin_api::RC_PANIC => (EXIT_PANIC, outcome.result),
        other => (EXIT_OTHER_RC, other.to_string().into_bytes()),
    }
}
