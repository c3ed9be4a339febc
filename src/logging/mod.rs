//! Log output for the daemon: `tracing` events to stderr (journald picks them
//! up under systemd), as text or as one JSON object per line.
//!
//! The filter uses `tracing_subscriber::filter::Targets` rather than
//! `EnvFilter`: the same `info,dmagent=debug` syntax without pulling a regex
//! engine into a binary that must stay small.

use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `log.level` is not a valid filter.
    #[error("log.level {level:?} is not a valid filter: {detail}")]
    Filter {
        /// The configured filter.
        level: String,
        /// Why it was refused.
        detail: String,
    },
    /// A global subscriber was already installed.
    #[error("logging was already initialised")]
    AlreadySet,
}

/// Installs the global subscriber described by `settings`.
pub fn init(settings: &LogSettings) -> Result<(), LoggingError> {
    let filter = Targets::from_str(&settings.level).map_err(|e| LoggingError::Filter {
        level: settings.level.clone(),
        detail: e.to_string(),
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match settings.format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    result.map_err(|_| LoggingError::AlreadySet)
}
