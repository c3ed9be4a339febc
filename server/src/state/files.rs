//! Names of collected files: `files/<sanitised device id>/<sanitised path>`,
//! never outside `files/`.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Prefix of an upload still being received (`files/.incoming-<uuid>`).
pub const INCOMING_PREFIX: &str = ".incoming-";

/// An upload untouched for this long was abandoned by a server that died
/// while receiving it (replicas sharing `files/` may be receiving younger
/// ones right now).
pub const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Removes abandoned uploads from `files_dir`; how many. A server killed
/// mid-upload leaves its temporary file behind (no record names it, the
/// device sends the file again); this runs at every start.
pub fn sweep_abandoned_uploads(files_dir: &Path, older_than: Duration) -> std::io::Result<usize> {
    let mut removed = 0;
    let now = SystemTime::now();
    for entry in std::fs::read_dir(files_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(INCOMING_PREFIX) {
            continue;
        }
        let meta = entry.metadata()?;
        let idle = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if meta.is_file() && idle >= older_than {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Why a device path cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNameError {
    /// Empty after dropping separators.
    Empty,
    /// A `..` component.
    ParentComponent,
    /// A NUL byte.
    Nul,
    /// More than 64 components or 4096 bytes.
    TooLong,
}

impl fmt::Display for FileNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileNameError::Empty => "the file name is empty",
            FileNameError::ParentComponent => "the file name contains a `..` component",
            FileNameError::Nul => "the file name contains a NUL byte",
            FileNameError::TooLong => "the file name is too long",
        })
    }
}

impl std::error::Error for FileNameError {}

/// One path component made safe: characters other than ASCII letters,
/// digits, `.`, `-`, `_` become `_`; at most 100 bytes; a name that changed
/// or starts with `.` gets a short hash suffix so different originals never
/// collide.
pub fn sanitize_component(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with('.') {
        s.insert(0, '_');
    }
    if s != raw || s.len() > 100 {
        s.truncate(100);
        s.push('~');
        s.push_str(&short_hash(raw));
    }
    s
}

fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::catalog::hex(&Sha256::digest(s.as_bytes())[..4])
}

/// The stored path (relative to the state directory, `/`-separated) of a
/// device's file: `files/<device>/<components>`. Both `\` and `/` separate
/// components; empty and `.` components and leading separators (absolute
/// paths, `\\`) are dropped.
pub fn stored_relative_path(device: &str, original: &str) -> Result<String, FileNameError> {
    if original.contains('\0') {
        return Err(FileNameError::Nul);
    }
    if original.len() > 4096 {
        return Err(FileNameError::TooLong);
    }
    let mut parts = vec!["files".to_owned(), sanitize_component(device)];
    let mut n = 0;
    for c in original.split(['\\', '/']) {
        match c {
            "" | "." => continue,
            ".." => return Err(FileNameError::ParentComponent),
            // A drive letter (`C:`) is kept as a component, made safe.
            c => parts.push(sanitize_component(c)),
        }
        n += 1;
    }
    if n == 0 {
        return Err(FileNameError::Empty);
    }
    if n > 64 {
        return Err(FileNameError::TooLong);
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_old_abandoned_uploads_are_swept() {
        let dir = tempfile::tempdir().expect("tmp");
        let old = dir.path().join(format!("{}old", super::INCOMING_PREFIX));
        let young = dir.path().join(format!("{}young", super::INCOMING_PREFIX));
        let kept = dir.path().join("device-dir");
        for p in [&old, &young] {
            std::fs::write(p, b"partial").expect("write");
        }
        std::fs::create_dir(&kept).expect("mkdir");
        let two_days = std::time::Duration::from_secs(48 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .and_then(|f| f.set_modified(std::time::SystemTime::now() - two_days))
            .expect("age it");
        let n = super::sweep_abandoned_uploads(dir.path(), super::ABANDONED_AFTER).expect("sweep");
        assert_eq!(n, 1);
        assert!(!old.exists() && young.exists() && kept.exists());
    }

    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            stored_relative_path("DEV-1", r"\Windows\viewer.log").as_deref(),
            Ok("files/DEV-1/Windows/viewer.log")
        );
        assert_eq!(
            stored_relative_path("DEV-1", r"\\myDir\apps\notepad.exe").as_deref(),
            Ok("files/DEV-1/myDir/apps/notepad.exe")
        );
        assert_eq!(
            stored_relative_path("d", "/a/../b"),
            Err(FileNameError::ParentComponent)
        );
        assert_eq!(stored_relative_path("d", "a\0b"), Err(FileNameError::Nul));
        assert_eq!(stored_relative_path("d", "\\\\"), Err(FileNameError::Empty));
        let p = stored_relative_path("../x", "/etc/.hidden").unwrap_or_default();
        assert!(p.starts_with("files/"));
        assert!(
            !p.split('/').any(|c| c == ".." || c.starts_with('.')),
            "{p}"
        );
        assert_ne!(sanitize_component("a b"), sanitize_component("a_b"));
    }
}
