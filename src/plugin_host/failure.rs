//! [`PluginFailure`]: why a plugin was refused or a call did not produce a result.

use serde::{Deserialize, Serialize};

/// A plugin was refused, or one call failed. The agent logs it, reports it
/// where the protocol has a place for it, and carries on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin}: {cause}")]
pub struct PluginFailure {
    /// The plugin's name, or its file name when it never said its name.
    pub plugin: String,
    /// What happened.
    pub cause: FailureCause,
}

impl PluginFailure {
    /// A failure of `plugin`.
    pub fn new(plugin: impl Into<String>, cause: FailureCause) -> Self {
        Self {
            plugin: plugin.into(),
            cause,
        }
    }

    /// A stable machine-readable name of the cause (for logs and tests).
    pub fn kind(&self) -> &'static str {
        self.cause.kind()
    }
}

/// Why a plugin failed. Crosses the parent/child pipe as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureCause {
    /// No loaded plugin of that name and kind.
    #[error("no loaded {what} named {name:?}")]
    NotFound {
        /// `post-install handler` or `report collector`.
        what: String,
        /// The name asked for.
        name: String,
    },
    /// The file failed the trust checks and was not opened.
    #[error("not trusted, not opened: {reason}")]
    Untrusted {
        /// Which check failed.
        reason: String,
    },
    /// The file's SHA-256 is not the one allowed.
    #[error("SHA-256 {actual} is not allowed (expected {expected})")]
    DigestMismatch {
        /// What the allow-list (or the parent's check) expected.
        expected: String,
        /// What the file hashes to.
        actual: String,
    },
    /// `dlopen` failed.
    #[error("cannot open the library: {detail}")]
    OpenFailed {
        /// The loader's message.
        detail: String,
    },
    /// The entry point is missing (not a plugin, or built for another major).
    #[error("missing symbol {symbol}: {detail}")]
    MissingSymbol {
        /// The symbol looked up.
        symbol: String,
        /// The loader's message.
        detail: String,
    },
    /// The descriptor is unusable (null, too small, bad name).
    #[error("bad descriptor: {detail}")]
    BadDescriptor {
        /// What is wrong with it.
        detail: String,
    },
    /// Built for another ABI major.
    #[error(
        "ABI mismatch: plugin built for ABI {plugin_major}.{plugin_minor}, host speaks ABI {host_major}.{host_minor}"
    )]
    AbiMismatch {
        /// The plugin's major.
        plugin_major: u32,
        /// The plugin's minor.
        plugin_minor: u32,
        /// The host's major.
        host_major: u32,
        /// The host's minor.
        host_minor: u32,
    },
    /// Another file already provides a plugin of this name.
    #[error("duplicate plugin name; {other} was loaded first")]
    Duplicate {
        /// The file loaded first.
        other: String,
    },
    /// The plugin returned its own error.
    #[error("plugin error: {message}")]
    PluginError {
        /// The plugin's message.
        message: String,
    },
    /// The plugin panicked (caught by the plugin-api wrapper).
    #[error("panicked: {message}")]
    Panic {
        /// The panic message.
        message: String,
    },
    /// The plugin-host child was killed by a signal (abort, segfault, ...).
    #[error("plugin-host process killed by signal {signal} ({name})")]
    Signal {
        /// Signal number.
        signal: i32,
        /// Signal name (`SIGSEGV`).
        name: String,
    },
    /// The call ran past its deadline; the child was killed.
    #[error("no answer within {secs} s; plugin-host process killed")]
    Timeout {
        /// The deadline in seconds.
        secs: u64,
    },
    /// The result was not UTF-8 JSON of the expected shape.
    #[error("bad output: {detail}")]
    BadOutput {
        /// What was wrong.
        detail: String,
    },
    /// The result was larger than the cap.
    #[error("output larger than the {limit}-byte cap")]
    Oversized {
        /// The cap in bytes.
        limit: usize,
    },
    /// The plugin-host child ended in an unexpected way.
    #[error("plugin-host process exited with code {code}")]
    Exited {
        /// Its exit code.
        code: i32,
    },
    /// The plugin-host child could not be started.
    #[error("cannot start the plugin-host process: {detail}")]
    Spawn {
        /// Why.
        detail: String,
    },
}

impl FailureCause {
    /// A stable machine-readable name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Untrusted { .. } => "untrusted",
            Self::DigestMismatch { .. } => "digest_mismatch",
            Self::OpenFailed { .. } => "open_failed",
            Self::MissingSymbol { .. } => "missing_symbol",
            Self::BadDescriptor { .. } => "bad_descriptor",
            Self::AbiMismatch { .. } => "abi_mismatch",
            Self::Duplicate { .. } => "duplicate",
            Self::PluginError { .. } => "plugin_error",
            Self::Panic { .. } => "panic",
            Self::Signal { .. } => "signal",
            Self::Timeout { .. } => "timeout",
            Self::BadOutput { .. } => "bad_output",
            Self::Oversized { .. } => "oversized",
            Self::Exited { .. } => "exited",
            Self::Spawn { .. } => "spawn",
        }
    }
}

/// The conventional name of a signal number (Linux numbering).
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        31 => "SIGSYS",
        _ => "unknown signal",
    }
}
