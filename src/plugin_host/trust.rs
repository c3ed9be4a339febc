//! Whether to trust a plugin file, decided BEFORE it is opened as a library
//! (opening runs its constructors): a regular file, owned by root or by the
//! agent's own user, writable by no one else, in a directory that is the
//! same, and optionally pinned by SHA-256.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::failure::FailureCause;

fn untrusted(reason: String) -> FailureCause {
    FailureCause::Untrusted { reason }
}

/// Owner is root or `trusted_uid`; no group or world write bit.
fn check_owner_mode(
    what: &str,
    path: &Path,
    meta: &Metadata,
    trusted_uid: u32,
) -> Result<(), FailureCause> {
    if meta.uid() != 0 && meta.uid() != trusted_uid {
        return Err(untrusted(format!(
            "{what} {} is owned by uid {}, not by root or the agent (uid {trusted_uid})",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(untrusted(format!(
            "{what} {} is group- or world-writable (mode {:o})",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Checks the directory holding `path`.
pub(crate) fn check_directory(path: &Path, trusted_uid: u32) -> Result<(), FailureCause> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let meta = std::fs::metadata(dir)
        .map_err(|e| untrusted(format!("directory {}: {e}", dir.display())))?;
    check_owner_mode("directory", dir, &meta, trusted_uid)
}

/// Opens `path` for reading without following a symlink, checks the open
/// file (not the name, which could be swapped) and hashes it. Returns the
/// open file, so the caller can load exactly these bytes, and the digest.
pub(crate) fn open_checked(path: &Path, trusted_uid: u32) -> Result<(File, String), FailureCause> {
    check_directory(path, trusted_uid)?;
    let link = std::fs::symlink_metadata(path)
        .map_err(|e| untrusted(format!("{}: {e}", path.display())))?;
    if !link.file_type().is_file() {
        return Err(untrusted(format!(
            "{} is not a regular file (symlinks are not followed)",
            path.display()
        )));
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| untrusted(format!("{}: {e}", path.display())))?;
    let meta = file
        .metadata()
        .map_err(|e| untrusted(format!("{}: {e}", path.display())))?;
    if !meta.file_type().is_file() {
        return Err(untrusted(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    check_owner_mode("file", path, &meta, trusted_uid)?;
    let digest = sha256_of(&mut file).map_err(|e| untrusted(format!("{}: {e}", path.display())))?;
    Ok((file, digest))
}

/// Lowercase hex SHA-256 of everything readable from `reader`.
pub(crate) fn sha256_of(reader: &mut impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_value() {
        let digest = sha256_of(&mut &b"abc"[..]).expect("hash");
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
