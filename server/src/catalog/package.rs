//! One package definition: `packages/<anything>.toml`.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use dmagent::protocol::literals::parse_duration;
use dmagent::protocol::{
    CivilTime, LinkFlags, PackageHash, PackageInstructions, Recurrence, RecurrenceBehavior,
    StartTime,
};
use serde::Deserialize;

use super::CatalogError;

/// The TOML form; unknown keys are errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackageToml {
    id: String,
    name: Option<String>,
    short_description: Option<String>,
    long_description: Option<String>,
    #[serde(default = "yes")]
    required: bool,
    flags: Option<String>,
    start_time: Option<String>,
    #[serde(default = "yes")]
    start_time_utc: bool,
    recurrence: Option<RecurrenceToml>,
    destination: Option<String>,
    command_line: Option<String>,
    bandwidth_limit: Option<u64>,
    source_files: Option<bool>,
    file: PathBuf,
    external_base_url: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecurrenceToml {
    interval: DurationToml,
    behavior: Option<String>,
}

/// A duration: whole seconds, or any text the protocol accepts
/// (`0000-00-00 01:00:00`, `3600`, `PT1H`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum DurationToml {
    Seconds(u64),
    Text(String),
}

impl DurationToml {
    pub(crate) fn resolve(&self, file: &Path, key: &str) -> Result<Duration, CatalogError> {
        match self {
            DurationToml::Seconds(s) => Ok(Duration::from_secs(*s)),
            DurationToml::Text(t) => {
                parse_duration(t).map_err(|e| CatalogError::key(file, key, e.to_string()))
            }
        }
    }
}

/// A loaded package: the definition plus the computed digest and size.
#[derive(Debug, Clone)]
pub struct Package {
    /// The instruction-response content (ID, flags, schedule, hash, size, ...).
    pub instructions: PackageInstructions,
    /// Absolute path of the package file.
    pub path: PathBuf,
    /// The file name used in download URLs.
    pub file_name: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// When set, the location response points at `{external_base_url}/{file_name}`.
    pub external_base_url: Option<String>,
    /// The definition file.
    pub source: PathBuf,
}

impl Package {
    /// The package ID.
    pub fn id(&self) -> &str {
        &self.instructions.id
    }

    /// The strong ETag of the file (`"` + first 32 hex digits of the SHA-256 + `"`).
    pub fn etag(&self) -> String {
        format!("\"{}\"", &self.sha256[..32.min(self.sha256.len())])
    }
}

/// Checks a package ID: non-empty, at most 128 characters, no path separators,
/// control characters or `..`.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && !id
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\'))
}

impl PackageToml {
    /// Resolves the definition read from `file` inside `catalog_dir`; `digest`
    /// hashes the package file (cached by the caller).
    pub(crate) fn resolve(
        self,
        file: &Path,
        catalog_dir: &Path,
        digest: &mut dyn FnMut(&Path) -> std::io::Result<(u64, String)>,
    ) -> Result<Package, CatalogError> {
        if !valid_id(&self.id) {
            return Err(CatalogError::key(
                file,
                "id",
                "must be 1-128 characters without '/', '\\', control characters or `..`".into(),
            ));
        }
        if self.file.is_absolute()
            || self
                .file
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(CatalogError::key(
                file,
                "file",
                "must be a relative path inside the catalog directory (no `..`)".into(),
            ));
        }
        let path = catalog_dir.join(&self.file);
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| CatalogError::key(file, "file", "has no UTF-8 file name".into()))?;
        let (size, sha256) = digest(&path).map_err(|e| {
            CatalogError::key(file, "file", format!("cannot read {}: {e}", path.display()))
        })?;
        let flags = match &self.flags {
            Some(f) => Some(
                f.parse::<LinkFlags>()
                    .map_err(|e| CatalogError::key(file, "flags", e.to_string()))?,
            ),
            None => None,
        };
        let start_time = match &self.start_time {
            Some(t) => Some(StartTime {
                utc: self.start_time_utc,
                time: t
                    .parse::<CivilTime>()
                    .map_err(|e| CatalogError::key(file, "start_time", e.to_string()))?,
            }),
            None => None,
        };
        let recurrence = match &self.recurrence {
            Some(r) => Some(Recurrence {
                interval: r.interval.resolve(file, "recurrence.interval")?,
                behavior: match &r.behavior {
                    Some(b) => b.parse::<RecurrenceBehavior>().map_err(|e| {
                        CatalogError::key(file, "recurrence.behavior", e.to_string())
                    })?,
                    None => RecurrenceBehavior::default(),
                },
                local_destination: None,
                command_line: None,
            }),
            None => None,
        };
        if let Some(u) = &self.external_base_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(CatalogError::key(
                    file,
                    "external_base_url",
                    "must be an http:// or https:// URL".into(),
                ));
            }
        }
        let instructions = PackageInstructions {
            id: self.id,
            required: self.required,
            name: self.name,
            short_description: self.short_description,
            long_description: self.long_description,
            package_size: Some(size),
            flags,
            start_time,
            recurrence,
            local_destination: self.destination,
            command_line: self.command_line,
            source_files: self.source_files,
            hash: Some(PackageHash {
                algorithm: "SHA-256".into(),
                hex: sha256.clone(),
            }),
            bandwidth_limit: self.bandwidth_limit,
            // Signed when served, by the server's key (X8).
            signature: None,
            package_signature: None,
            signing_key: None,
        };
        Ok(Package {
            instructions,
            path,
            file_name,
            size,
            sha256,
            external_base_url: self
                .external_base_url
                .map(|u| u.trim_end_matches('/').to_owned()),
            source: file.to_owned(),
        })
    }
}
