//! Where configuration fragments come from, and reading them in layer order.
//!
//! Layer 0 is `config/default.toml`, compiled into the binary so the agent
//! runs with no files at all. Then the image directory, the site directory
//! (both `*.toml` in file-name order) and a local file. Later layers win key
//! by key.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigErrorKind};

/// Where an image keeps its own fragments (read-only, part of the image).
pub const DEFAULT_IMAGE_DIR: &str = "/usr/lib/dmagent/conf.d";
/// Where a site (an operator, a provisioning tool) adds fragments.
pub const DEFAULT_SITE_DIR: &str = "/etc/dmagent/conf.d";
/// `config/default.toml`: every key with its default, compiled in as layer 0.
pub const BUILT_IN_DEFAULTS: &str = include_str!("../../config/default.toml");
/// The file name reported for errors and provenance in the built-in defaults.
pub const BUILT_IN_LABEL: &str = "<built-in defaults>";

/// The configuration sources to merge, after the built-in defaults.
///
/// A directory that was named explicitly (on the command line) must exist; a
/// default directory that does not exist is skipped, since most images and
/// sites add nothing. The local file, when given, must exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// The image's fragment directory (`--image-dir`).
    pub image_dir: Option<PathBuf>,
    /// Whether `image_dir` was named explicitly (so must exist).
    pub image_dir_explicit: bool,
    /// The site's fragment directory (`--site-dir`).
    pub site_dir: Option<PathBuf>,
    /// Whether `site_dir` was named explicitly (so must exist).
    pub site_dir_explicit: bool,
    /// One more file, applied last (`--config FILE`).
    pub local_file: Option<PathBuf>,
}

impl Sources {
    /// The system directories ([`DEFAULT_IMAGE_DIR`], [`DEFAULT_SITE_DIR`]),
    /// each skipped when absent; no local file.
    pub fn system_defaults() -> Self {
        Self {
            image_dir: Some(PathBuf::from(DEFAULT_IMAGE_DIR)),
            image_dir_explicit: false,
            site_dir: Some(PathBuf::from(DEFAULT_SITE_DIR)),
            site_dir_explicit: false,
            local_file: None,
        }
    }

    /// The built-in defaults only.
    pub fn none() -> Self {
        Self {
            image_dir: None,
            image_dir_explicit: false,
            site_dir: None,
            site_dir_explicit: false,
            local_file: None,
        }
    }

    /// From the command line: a flag given names an explicit source, a flag
    /// left out means the system default.
    pub fn from_cli(
        image_dir: Option<PathBuf>,
        site_dir: Option<PathBuf>,
        local_file: Option<PathBuf>,
    ) -> Self {
        let mut sources = Self::system_defaults();
        if let Some(dir) = image_dir {
            sources = sources.with_image_dir(dir);
        }
        if let Some(dir) = site_dir {
            sources = sources.with_site_dir(dir);
        }
        sources.local_file = local_file;
        sources
    }

    /// Uses `dir` as the image directory; it must exist.
    pub fn with_image_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.image_dir = Some(dir.into());
        self.image_dir_explicit = true;
        self
    }

    /// Uses `dir` as the site directory; it must exist.
    pub fn with_site_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.site_dir = Some(dir.into());
        self.site_dir_explicit = true;
        self
    }

    /// Applies `file` last; it must exist.
    pub fn with_local_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.local_file = Some(file.into());
        self
    }
}

impl Default for Sources {
    fn default() -> Self {
        Self::system_defaults()
    }
}

/// One fragment's text and where it came from.
#[derive(Debug)]
pub(crate) struct Fragment {
    /// The path, or [`BUILT_IN_LABEL`].
    pub label: String,
    /// The file, `None` for the built-in defaults.
    pub path: Option<PathBuf>,
    pub text: String,
}

/// Reads every fragment in layer order; problems finding or reading files go
/// to `errors` and the rest is still read.
pub(crate) fn read_fragments(sources: &Sources, errors: &mut Vec<ConfigError>) -> Vec<Fragment> {
    let mut fragments = vec![Fragment {
        label: BUILT_IN_LABEL.to_owned(),
        path: None,
        text: BUILT_IN_DEFAULTS.to_owned(),
    }];
    for (dir, explicit) in [
        (&sources.image_dir, sources.image_dir_explicit),
        (&sources.site_dir, sources.site_dir_explicit),
    ] {
        if let Some(dir) = dir {
            for path in list_dir(dir, explicit, errors) {
                fragments.extend(read_file(&path, errors));
            }
        }
    }
    if let Some(file) = &sources.local_file {
        fragments.extend(read_file(file, errors));
    }
    fragments
}

fn io_error(path: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError::new(ConfigErrorKind::Io, path.display().to_string(), "", message)
}

/// The `*.toml` files of `dir` in file-name order. Hidden files (editor
/// backups, `.#x.toml`) and other names are ignored.
fn list_dir(dir: &Path, explicit: bool, errors: &mut Vec<ConfigError>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !explicit => return Vec::new(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            errors.push(io_error(dir, "configuration directory does not exist"));
            return Vec::new();
        }
        Err(e) => {
            errors.push(io_error(
                dir,
                format!("cannot read configuration directory: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut names: Vec<OsString> = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let name = entry.file_name();
                let text = name.to_string_lossy();
                if text.ends_with(".toml") && !text.starts_with('.') {
                    names.push(name);
                }
            }
            Err(e) => errors.push(io_error(dir, format!("cannot list directory: {e}"))),
        }
    }
    names.sort();
    names.into_iter().map(|name| dir.join(name)).collect()
}

fn read_file(path: &Path, errors: &mut Vec<ConfigError>) -> Option<Fragment> {
    let result = std::fs::metadata(path).and_then(|meta| {
        if meta.is_file() {
            std::fs::read_to_string(path)
        } else {
            Err(io::Error::other("not a regular file"))
        }
    });
    match result {
        Ok(text) => Some(Fragment {
            label: path.display().to_string(),
            path: Some(path.to_owned()),
            text,
        }),
        Err(e) => {
            let message = match e.kind() {
                io::ErrorKind::NotFound => "configuration file does not exist".to_owned(),
                io::ErrorKind::InvalidData => "configuration file is not UTF-8".to_owned(),
                _ => format!("cannot read configuration file: {e}"),
            };
            errors.push(io_error(path, message));
            None
        }
    }
}
