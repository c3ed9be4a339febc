//! Extension X7: where a package may be written. Every path that comes from
//! the server (`LocalDestination`, the package ID, the download URL's file
//! name) is proven to stay inside the agent's download root before use.

use std::path::{Path, PathBuf};

/// Longest single path component, in bytes (Linux `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Longest whole path, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest package ID, in characters (part B §7.2.1b: 300 TCHARs with the NUL).
pub const MAX_PACKAGE_ID_CHARS: usize = 299;

/// Prefix of the pending-download file (part B §6).
pub const CHECKPOINT_PREFIX: &str = "~PD-";
/// Suffix of the partial data next to the checkpoint.
pub const PARTIAL_SUFFIX: &str = ".part";
/// Suffix of the checkpoint's temporary file while it is rewritten.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Why a server-supplied path or name was refused. Each variant names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A `..` component.
    #[error("path {0:?} has a `..` component")]
    Traversal(String),
    /// A NUL byte.
    #[error("path {0:?} contains a NUL byte")]
    Nul(String),
    /// One component longer than [`MAX_COMPONENT_BYTES`].
    #[error("path component {0:?} is longer than {MAX_COMPONENT_BYTES} bytes")]
    ComponentTooLong(String),
    /// The whole path longer than [`MAX_PATH_BYTES`].
    #[error("path {0:?} is longer than {MAX_PATH_BYTES} bytes")]
    TooLong(String),
    /// The path leaves the download root (through a symbolic link).
    #[error("path {path:?} resolves outside the download root {root:?}")]
    Escape {
        /// The path asked for.
        path: PathBuf,
        /// The download root.
        root: PathBuf,
    },
    /// An existing part of the path could not be resolved (a dangling link,
    /// a permission error).
    #[error("path {path:?} cannot be resolved: {detail}")]
    Unresolvable {
        /// The path that failed to resolve.
        path: PathBuf,
        /// The operating system's reason.
        detail: String,
    },
    /// A package ID that cannot be used in a file name.
    #[error("package ID {id:?} is not usable in a file name: {reason}")]
    PackageId {
        /// The package ID.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Resolve a package's `LocalDestination` inside `download_root` (X7).
///
/// Backslashes become slashes, a drive letter (`C:`) and leading separators are
/// dropped, `.` components are skipped; an empty destination means
/// `<root>/<package id>`. A `..` component, a NUL byte, a component over
/// [`MAX_COMPONENT_BYTES`] or a path over [`MAX_PATH_BYTES`] is refused. When
/// part of the result already exists, its deepest existing ancestor is
/// canonicalised and must lie inside the canonical root, so a symbolic link
/// cannot lead out. (Blocking: it touches the file system.)
pub fn resolve_destination(
    download_root: &Path,
    local_destination: Option<&str>,
    package_id: &str,
) -> Result<PathBuf, PathError> {
    let raw = local_destination.unwrap_or("");
    if raw.contains('\0') {
        return Err(PathError::Nul(raw.to_owned()));
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong(raw.to_owned()));
    }
    let relative = relative_components(raw)?;
    let mut out = download_root.to_path_buf();
    if relative.is_empty() {
        check_package_id(package_id)?;
        out.push(package_id);
    } else {
        for c in &relative {
            out.push(c);
        }
    }
    if out.as_os_str().len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong(out.to_string_lossy().into_owned()));
    }
    check_no_escape(download_root, &out)?;
    Ok(out)
}

/// The normalised, checked components of a server-supplied relative path.
fn relative_components(raw: &str) -> Result<Vec<String>, PathError> {
    let slashed = raw.replace('\\', "/");
    let mut rest = slashed.as_str();
    let b = rest.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        rest = &rest[2..];
    }
    let mut out = Vec::new();
    for c in rest.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(PathError::Traversal(raw.to_owned())),
            c if c.len() > MAX_COMPONENT_BYTES => {
                return Err(PathError::ComponentTooLong(c.to_owned()))
            }
            c => out.push(c.to_owned()),
        }
    }
    Ok(out)
}

/// Check that `path` (lexically inside `root`) does not leave `root` through
/// a symbolic link in its existing part.
fn check_no_escape(root: &Path, path: &Path) -> Result<(), PathError> {
    // The root itself is the operator's choice; if it does not exist yet,
    // nothing below it can be a link.
    let Ok(canon_root) = root.canonicalize() else {
        return Ok(());
    };
    let mut probe = path;
    loop {
        if probe.symlink_metadata().is_ok() {
            break;
        }
        match probe.parent() {
            Some(p) if p.starts_with(root) => probe = p,
            _ => return Ok(()),
        }
    }
    let canon = probe.canonicalize().map_err(|e| PathError::Unresolvable {
        path: probe.to_path_buf(),
        detail: e.to_string(),
    })?;
    if canon.starts_with(&canon_root) {
        Ok(())
    } else {
        Err(PathError::Escape {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
        })
    }
}

/// Check a package ID for use in the `~PD-<id>` file names: non-empty, at most
/// [`MAX_PACKAGE_ID_CHARS`] characters, no `/`, `\`, NUL or `..`, not `.`, and
/// short enough that `~PD-<id>.part` fits in one path component.
pub fn check_package_id(id: &str) -> Result<(), PathError> {
    let bad = |reason| {
        Err(PathError::PackageId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id.chars().count() > MAX_PACKAGE_ID_CHARS {
        return bad("longer than 299 characters");
    }
    if id.contains('\0') {
        return bad("contains a NUL byte");
    }
    if id.contains('/') || id.contains('\\') {
        return bad("contains a path separator");
    }
    if id.contains("..") {
        return bad("contains `..`");
    }
    if id == "." {
        return bad("is `.`");
    }
    let longest_suffix = PARTIAL_SUFFIX.len().max(TEMP_SUFFIX.len());
    if CHECKPOINT_PREFIX.len() + id.len() + longest_suffix > MAX_COMPONENT_BYTES {
        return bad("too long for a file name");
    }
    Ok(())
}

/// `dir/~PD-<id>`: the pending-download (checkpoint) file. `id` must have
/// passed [`check_package_id`].
pub fn checkpoint_path(dir: &Path, package_id: &str) -> PathBuf {
    dir.join(format!("{CHECKPOINT_PREFIX}{package_id}"))
}

/// `dir/~PD-<id>.part`: the partial data.
pub fn partial_path(dir: &Path, package_id: &str) -> PathBuf {
    dir.join(format!("{CHECKPOINT_PREFIX}{package_id}{PARTIAL_SUFFIX}"))
}

/// `dir/~PD-<id>.tmp`: the checkpoint while it is being replaced.
pub fn checkpoint_temp_path(dir: &Path, package_id: &str) -> PathBuf {
    dir.join(format!("{CHECKPOINT_PREFIX}{package_id}{TEMP_SUFFIX}"))
}

/// The final file name of a download: the last path segment of `url`,
/// percent-decoded, if it is a safe single component (not empty, `.` or `..`,
/// no separator, NUL or control character, at most [`MAX_COMPONENT_BYTES`],
/// not starting with `~PD-`); otherwise `<id>.pkg`.
pub fn final_file_name(url: &str, package_id: &str) -> String {
    let fallback = || format!("{package_id}.pkg");
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return fallback();
    };
    let Some(last) = parsed.path_segments().and_then(|mut s| s.next_back()) else {
        return fallback();
    };
    let Some(name) = percent_decode(last) else {
        return fallback();
    };
    let safe = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= MAX_COMPONENT_BYTES
        && !name.starts_with(CHECKPOINT_PREFIX)
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if safe {
        name
    } else {
        fallback()
    }
}

/// Decode `%XX` escapes; `None` for a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = (*b.get(i + 1)? as char).to_digit(16)?;
            let lo = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `true` if `a` and `b` name the same download source: scheme, host, port
/// and path equal (the query, which may carry a changing token, is ignored).
pub fn same_source(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
                && a.path() == b.path()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_table() {
        let root = Path::new("/nonexistent-dl-root");
        let ok: &[(Option<&str>, &str)] = &[
            (None, "/nonexistent-dl-root/pkg-1"),
            (Some(""), "/nonexistent-dl-root/pkg-1"),
            (Some("/"), "/nonexistent-dl-root/pkg-1"),
            (Some("apps"), "/nonexistent-dl-root/apps"),
            (Some("\\Windows\\Apps"), "/nonexistent-dl-root/Windows/Apps"),
            (
                Some("C:\\Program Files\\x"),
                "/nonexistent-dl-root/Program Files/x",
            ),
            (Some("c:x"), "/nonexistent-dl-root/x"),
            (
                Some("//srv/share/./a//b/"),
                "/nonexistent-dl-root/srv/share/a/b",
            ),
            (Some("a/.../b"), "/nonexistent-dl-root/a/.../b"),
        ];
        for (dest, want) in ok {
            assert_eq!(
                resolve_destination(root, *dest, "pkg-1"),
                Ok(PathBuf::from(want)),
                "{dest:?}"
            );
        }
        let long = "x".repeat(256);
        let very_long = "a/".repeat(2100);
        let bad: &[(&str, PathError)] = &[
            ("..", PathError::Traversal("..".into())),
            ("a/../../etc", PathError::Traversal("a/../../etc".into())),
            ("a\\..\\b", PathError::Traversal("a\\..\\b".into())),
            ("C:\\..\\x", PathError::Traversal("C:\\..\\x".into())),
            ("a\0b", PathError::Nul("a\0b".into())),
            (&long, PathError::ComponentTooLong(long.clone())),
            (&very_long, PathError::TooLong(very_long.clone())),
        ];
        for (dest, want) in bad {
            assert_eq!(
                resolve_destination(root, Some(dest), "pkg-1").as_ref(),
                Err(want),
                "{dest:?}"
            );
        }
        assert!(matches!(
            resolve_destination(root, None, "../x"),
            Err(PathError::PackageId { .. })
        ));
    }

    #[test]
    fn package_id_table() {
        for good in [
            "5F0C1D2E-0000-4000-8000-000000000001",
            "a",
            "a.b",
            "~x",
            ".a",
        ] {
            assert_eq!(check_package_id(good), Ok(()), "{good:?}");
        }
        let long = "x".repeat(300);
        for bad in ["", ".", "..", "a..b", "a/b", "a\\b", "a\0b", long.as_str()] {
            assert!(check_package_id(bad).is_err(), "{bad:?}");
        }
        let fits = "x".repeat(MAX_COMPONENT_BYTES - 4 - 5);
        assert_eq!(check_package_id(&fits), Ok(()));
        assert!(check_package_id(&format!("{fits}x")).is_err());
    }

    #[test]
    fn checkpoint_names() {
        let d = Path::new("/d");
        assert_eq!(checkpoint_path(d, "p1"), PathBuf::from("/d/~PD-p1"));
        assert_eq!(partial_path(d, "p1"), PathBuf::from("/d/~PD-p1.part"));
        assert_eq!(
            checkpoint_temp_path(d, "p1"),
            PathBuf::from("/d/~PD-p1.tmp")
        );
    }

    #[test]
    fn final_name_table() {
        let cases = [
            ("http://h/a/viewer-2.1.cab", "viewer-2.1.cab"),
            ("http://h/a/my%20app.cab?x=1", "my app.cab"),
            ("http://h/a/", "p.pkg"),
            ("http://h/", "p.pkg"),
            ("http://h/a/..%2F..%2Fetc", "p.pkg"),
            ("http://h/a/%2E%2E", "p.pkg"),
            ("http://h/a/x%00y", "p.pkg"),
            ("http://h/a/x%5Cy", "p.pkg"),
            ("http://h/a/%ZZ", "p.pkg"),
            ("http://h/a/%FF", "p.pkg"),
            ("http://h/a/~PD-p", "p.pkg"),
            ("not a url", "p.pkg"),
        ];
        for (url, want) in cases {
            assert_eq!(final_file_name(url, "p"), want, "{url}");
        }
    }

    #[test]
    fn same_source_table() {
        assert!(same_source("http://h/a.cab", "http://h:80/a.cab?t=2"));
        assert!(!same_source("http://h/a.cab", "https://h/a.cab"));
        assert!(!same_source("http://h/a.cab", "http://g/a.cab"));
        assert!(!same_source("http://h:81/a.cab", "http://h/a.cab"));
        assert!(!same_source("http://h/a.cab", "http://h/b.cab"));
        assert!(!same_source("junk", "junk"));
    }
}
