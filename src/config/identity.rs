//! Resolving the device's identity: the `ID` and `DeviceName` it reports.
//!
//! Resolution reads files (machine-id, the persisted generated id, the host
//! name), so it happens when the agent starts, not while loading the
//! configuration: `check-config` must work on a build host.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::IdentityError;
use super::settings::{IdentitySource, Settings};
use super::values::check_device_id;

/// Where Linux exposes the host name.
pub const HOSTNAME_PATH: &str = "/proc/sys/kernel/hostname";

/// File name of the generated device id inside `paths.state_dir`.
pub const GENERATED_ID_FILE: &str = "device-id";

impl Settings {
    /// The generated device id's file: `state_dir/device-id`.
    pub fn generated_id_path(&self) -> PathBuf {
        self.paths.state_dir.join(GENERATED_ID_FILE)
    }

    /// The device id, from the configured source:
    ///
    /// - `configured`: `identity.device_id`;
    /// - `machine-id`: the trimmed contents of `identity.machine_id_path`
    ///   (an error names the file when it is missing, empty or still
    ///   `uninitialized` early in a first boot);
    /// - `generated`: `state_dir/device-id` if present; otherwise a new
    ///   UUID v4 (upper case, no braces), persisted atomically before it is
    ///   returned, so it is generated once per device.
    pub fn resolve_device_id(&self) -> Result<String, IdentityError> {
        match self.identity.source {
            IdentitySource::Configured => self
                .identity
                .device_id
                .clone()
                .ok_or(IdentityError::NotConfigured),
            IdentitySource::MachineId => read_id(&self.identity.machine_id_path),
            IdentitySource::Generated => {
                let path = self.generated_id_path();
                match read_id(&path) {
                    Err(IdentityError::Read { source, .. })
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        generate(&self.paths.state_dir, &path)
                    }
                    other => other,
                }
            }
        }
    }

    /// The device name: `identity.device_name`, or else the host name from
    /// [`HOSTNAME_PATH`], read now so a renamed host reports its new name.
    pub fn resolve_device_name(&self) -> Result<String, IdentityError> {
        if let Some(name) = &self.identity.device_name {
            return Ok(name.clone());
        }
        let path = Path::new(HOSTNAME_PATH);
        let text = fs::read_to_string(path).map_err(|e| IdentityError::HostName {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let name = text.trim();
        if name.is_empty() {
            return Err(IdentityError::HostName {
                path: path.to_owned(),
                reason: "empty".to_owned(),
            });
        }
        Ok(name.to_owned())
    }
}

/// Reads a one-line id file and checks it is a usable device id.
fn read_id(path: &Path) -> Result<String, IdentityError> {
    let text = fs::read_to_string(path).map_err(|source| IdentityError::Read {
        path: path.to_owned(),
        source,
    })?;
    let id = text.trim();
    let invalid = |reason: String| IdentityError::Invalid {
        path: path.to_owned(),
        reason,
    };
    if id.is_empty() {
        return Err(invalid("the file is empty".to_owned()));
    }
    if id == "uninitialized" {
        return Err(invalid(
            "the machine id is not initialized yet (first boot)".to_owned(),
        ));
    }
    check_device_id(id).map_err(invalid)?;
    Ok(id.to_owned())
}

/// Generates a device id and persists it: temp file, fsync, rename, fsync of
/// the directory, so a crash leaves either no file or the whole id.
fn generate(state_dir: &Path, path: &Path) -> Result<String, IdentityError> {
    let id = uuid::Uuid::new_v4()
        .hyphenated()
        .to_string()
        .to_ascii_uppercase();
    let write_error = |source| IdentityError::Write {
        path: path.to_owned(),
        source,
    };
    fs::create_dir_all(state_dir).map_err(write_error)?;
    let temp = state_dir.join(format!(".{GENERATED_ID_FILE}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(id.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        File::open(state_dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(write_error(e));
    }
    Ok(id)
}
