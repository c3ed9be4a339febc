//! Checking a file already on disk against the package's size and SHA-256:
//! a download verified and renamed (or even reported) before the agent was
//! killed is used as it is, not fetched again.

use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Size and lowercase-hex SHA-256 of the file at `path` (blocking).
pub fn file_digest(path: &Path) -> io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, super::hex(&hasher.finalize())))
}

/// `Ok` when the file has `size` bytes (if known) and the SHA-256 `sha256`
/// (lowercase hex; required: without a hash nothing proves the bytes are the
/// package's). The error says which check failed.
pub fn verify_file(path: &Path, size: Option<u64>, sha256: Option<&str>) -> Result<(), String> {
    let Some(expected) = sha256 else {
        return Err("no SHA-256 to check it with".into());
    };
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(size) = size.filter(|&s| s != meta.len()) {
        return Err(format!("it has {} bytes, not {size}", meta.len()));
    }
    let (_, actual) = file_digest(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if actual != expected {
        return Err(format!("its SHA-256 is {actual}, not {expected}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_digest_decide() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.bin");
        std::fs::write(&path, b"package bytes").expect("write");
        let sha = super::super::hex(&Sha256::digest(b"package bytes"));
        assert_eq!(verify_file(&path, Some(13), Some(&sha)), Ok(()));
        assert_eq!(verify_file(&path, None, Some(&sha)), Ok(()));
        assert!(verify_file(&path, Some(12), Some(&sha))
            .expect_err("size")
            .contains("13 bytes, not 12"));
        assert!(verify_file(&path, Some(13), Some(&"0".repeat(64)))
            .expect_err("digest")
            .contains("SHA-256"));
        assert!(
            verify_file(&path, Some(13), None).is_err(),
            "no hash, no trust"
        );
        assert!(verify_file(&dir.path().join("gone"), None, Some(&sha)).is_err());
    }
}
