//! Checks on the merged settings: rules that involve more than one key.
//!
//! Each error is attributed to the file that last set the key at fault
//! (provenance is kept per key while merging).

use std::collections::{BTreeMap, BTreeSet};

use super::error::{ConfigError, ConfigErrorKind};
use super::settings::{IdentitySource, Settings};
use super::sources::BUILT_IN_LABEL;

/// Which file last set each key, and which keys were refused somewhere.
#[derive(Debug, Default)]
pub(crate) struct Provenance {
    /// Dotted key -> the file that last set it.
    pub set: BTreeMap<String, String>,
    /// Keys that had an invalid value in some fragment: rules about them are
    /// skipped, so one mistake is not reported twice.
    pub refused: BTreeSet<String>,
}

impl Provenance {
    fn file(&self, key: &str) -> &str {
        self.set.get(key).map_or(BUILT_IN_LABEL, String::as_str)
    }

    fn refused(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| self.refused.contains(*k))
    }

    fn conflict(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(ConfigErrorKind::Conflict, self.file(key), key, message)
    }
}

/// Appends every rule violation of `settings` to `errors`.
pub(crate) fn check(settings: &Settings, provenance: &Provenance, errors: &mut Vec<ConfigError>) {
    let identity = &settings.identity;
    if !provenance.refused(&["identity.source", "identity.device_id"]) {
        match (identity.source, &identity.device_id) {
            (IdentitySource::Configured, None) => errors.push(provenance.conflict(
                "identity.source",
                "identity.source is \"configured\" but identity.device_id is not set",
            )),
            (source, Some(_)) if source != IdentitySource::Configured => {
                errors.push(provenance.conflict(
                    "identity.device_id",
                    format!(
                        "identity.device_id is set but identity.source is {:?}; \
                         set identity.source = \"configured\" to use it",
                        source.as_str()
                    ),
                ));
            }
            _ => {}
        }
    }

    let trust = &settings.trust;
    if trust.require_signature
        && trust.keys.is_empty()
        && !provenance.refused(&["trust.require_signature", "trust.keys"])
    {
        errors.push(provenance.conflict(
            "trust.require_signature",
            "trust.require_signature is true but trust.keys names no key: \
             no update could ever be accepted",
        ));
    }

    let tls = &settings.tls;
    if !provenance.refused(&["tls.client_cert", "tls.client_key"]) {
        match (&tls.client_cert, &tls.client_key) {
            (Some(_), None) => errors.push(provenance.conflict(
                "tls.client_cert",
                "tls.client_cert is set without tls.client_key; a client certificate needs its private key",
            )),
            (None, Some(_)) => errors.push(provenance.conflict(
                "tls.client_key",
                "tls.client_key is set without tls.client_cert",
            )),
            _ => {}
        }
    }

    // Downloaded files must never land where plugins are loaded from: a
    // package from the network would become code the agent runs.
    let paths = &settings.paths;
    if !provenance.refused(&["paths.plugin_dir", "paths.download_root"])
        && (paths.plugin_dir.starts_with(&paths.download_root)
            || paths.download_root.starts_with(&paths.plugin_dir))
    {
        let key = if provenance.file("paths.plugin_dir") == BUILT_IN_LABEL {
            "paths.download_root"
        } else {
            "paths.plugin_dir"
        };
        errors.push(provenance.conflict(
            key,
            format!(
                "paths.plugin_dir ({}) and paths.download_root ({}) overlap; \
                 downloads must never land where plugins are loaded from",
                paths.plugin_dir.display(),
                paths.download_root.display()
            ),
        ));
    }
}
