//! Configuration and identity errors.
//!
//! Configuration errors are collected, never thrown one at a time: an operator
//! fixing an image wants the whole list in one run (linkerd2-proxy does the
//! same), so [`ConfigErrors`] holds every problem found in every fragment, and
//! the binary exits with [`EXIT_CONFIG`].

use std::fmt;
use std::path::PathBuf;

/// Exit code for a bad configuration: `EX_CONFIG` from BSD `sysexits.h`, so
/// service managers and image build scripts can tell "fix the configuration"
/// from a crash.
pub const EXIT_CONFIG: u8 = 78;

/// What kind of problem a [`ConfigError`] reports. [`ConfigErrorKind::as_str`]
/// is a stable string for scripts and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A file or directory could not be found or read.
    Io,
    /// The fragment is not valid TOML.
    Syntax,
    /// A key or table that the schema does not know.
    UnknownKey,
    /// A value of the wrong TOML type (a string where a number belongs, ...).
    Type,
    /// A value of the right type that is not acceptable (bad URL, bad duration, ...).
    Value,
    /// Values that are fine one by one but not together (a client certificate
    /// without its key, ...), found after merging.
    Conflict,
}

impl ConfigErrorKind {
    /// A stable, lower-case name for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Io => "io",
            Self::Syntax => "syntax",
            Self::UnknownKey => "unknown-key",
            Self::Type => "type",
            Self::Value => "value",
            Self::Conflict => "conflict",
        }
    }
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configuration problem, attributed to the file and key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The fragment's path, or [`BUILT_IN_LABEL`](crate::config::BUILT_IN_LABEL)
    /// for the defaults compiled into the binary.
    pub file: String,
    /// The dotted key (`retry.max_retries`); empty when the problem concerns the
    /// whole file (unreadable, not TOML).
    pub key: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
    /// The kind of problem.
    pub kind: ConfigErrorKind,
    /// 1-based line and column, when known (syntax errors).
    pub position: Option<(usize, usize)>,
}

impl ConfigError {
    /// An error about `key` in `file`.
    pub fn new(
        kind: ConfigErrorKind,
        file: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            key: key.into(),
            message: message.into(),
            kind,
            position: None,
        }
    }

    /// The same error, at a line and column of its file.
    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.position = Some((line, column));
        self
    }
}

/// One line: `FILE[:LINE:COL]: [KEY: ]MESSAGE (KIND)`.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{} ({})", self.message, self.kind)
    }
}

impl std::error::Error for ConfigError {}

/// Every configuration problem found, in the order the fragments were read
/// (then the checks on the merged result).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One line per error.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Why the device identity could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A file that holds (or should hold) the identity could not be read.
    #[error("cannot read device identity from {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The generated identity could not be persisted.
    #[error("cannot persist the generated device id to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file exists but its contents are not a usable device id.
    #[error("{} does not hold a valid device id: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `identity.source = "configured"` but no `identity.device_id` (only
    /// possible with hand-built [`Settings`](crate::config::Settings); `load`
    /// refuses such a configuration).
    #[error("identity.source is \"configured\" but identity.device_id is not set")]
    NotConfigured,
    /// The host name could not be read for the default device name.
    #[error("cannot read the host name from {}: {reason}", path.display())]
    HostName {
        /// The file read.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl IdentityError {
    /// A stable string naming the variant.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::Write { .. } => "write",
            Self::Invalid { .. } => "invalid",
            Self::NotConfigured => "not-configured",
            Self::HostName { .. } => "host-name",
        }
    }
}
