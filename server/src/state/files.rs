//! Names of collected files: `files/<sanitised device id>/<sanitised path>`,
//! never outside `files/`.

use std::fmt;

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
