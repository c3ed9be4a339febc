//! The pending-download file `~PD-<package id>` (part B §6): where a download
//! stands, so it resumes from the byte where it stopped. Our own format, small
//! JSON with a SHA-256 over its canonical form; replaced atomically. It is not
//! protected on disk, so anything that does not check out is [`Loaded::Corrupt`]
//! and the download restarts from byte 0. All functions here block.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::hex;
use super::paths::{checkpoint_path, checkpoint_temp_path, partial_path};

/// The one format version this agent writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;
/// A checkpoint file larger than this is corrupt (a real one is well under 1 KiB
/// plus the URL).
pub const MAX_CHECKPOINT_BYTES: u64 = 64 * 1024;

/// The content of `~PD-<id>`, without its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The package being downloaded.
    pub package_id: String,
    /// The URL the bytes came from.
    pub source_url: String,
    /// The server's `ETag` for that content.
    pub etag: Option<String>,
    /// The server's `Last-Modified` for that content.
    pub last_modified: Option<String>,
    /// The size the instructions announced, if any.
    pub expected_size: Option<u64>,
    /// The SHA-256 the instructions announced (X1), lowercase hex, if any.
    pub expected_sha256: Option<String>,
    /// Bytes of `~PD-<id>.part` that are synced to disk and belong to this
    /// content.
    pub bytes_done: u64,
    /// The kernel's boot ID when the checkpoint was written. While it is
    /// unchanged, the page cache still holds every byte the writer wrote (a
    /// killed process loses none of them), so the whole partial file counts,
    /// not just the synced `bytes_done`. Absent in checkpoints of older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

impl Checkpoint {
    /// The canonical JSON of the fields (fixed order, no whitespace): the input
    /// of the checksum.
    fn canonical(&self) -> Vec<u8> {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Lowercase hex SHA-256 of [`Self::canonical`].
    pub fn checksum(&self) -> String {
        hex(&Sha256::digest(self.canonical()))
    }

    /// The file content: the fields plus `checksum`.
    pub fn encode(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("checksum".into(), self.checksum().into());
        }
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// Parse and check file content (not the partial file; see [`load`]).
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let serde_json::Value::Object(mut map) = value else {
            return Err("not a JSON object".into());
        };
        let checksum = match map.remove("checksum") {
            Some(serde_json::Value::String(s)) => s,
            _ => return Err("no checksum".into()),
        };
        match map.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(CHECKPOINT_VERSION) => {}
            Some(v) => return Err(format!("unknown version {v}")),
            None => return Err("no version".into()),
        }
        let cp: Checkpoint = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| format!("bad fields: {e}"))?;
        if cp.checksum() != checksum {
            return Err("checksum does not match".into());
        }
        Ok(cp)
    }
}

/// What [`load`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// A checkpoint that checks out against its checksum and the partial file.
    Valid(Checkpoint),
    /// Something is wrong; the download must restart from byte 0.
    Corrupt(String),
    /// No checkpoint file.
    Missing,
}

/// The kernel's boot ID (`/proc/sys/kernel/random/boot_id`), if readable.
pub fn current_boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && id.len() <= 64).then(|| id.to_owned())
}

/// Read `dir/~PD-<id>` and check it: JSON, known version, checksum, the same
/// package ID, and a partial file at least `bytes_done` long. Written in this
/// boot, the checkpoint is extended to the whole partial file (capped at the
/// expected size): a `kill -9` loses no written byte, only a reboot can.
pub fn load(dir: &Path, package_id: &str) -> io::Result<Loaded> {
    let path = checkpoint_path(dir, package_id);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CHECKPOINT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CHECKPOINT_BYTES {
        return Ok(Loaded::Corrupt("checkpoint file too large".into()));
    }
    let cp = match Checkpoint::decode(&bytes) {
        Ok(cp) => cp,
        Err(reason) => return Ok(Loaded::Corrupt(reason)),
    };
    if cp.package_id != package_id {
        return Ok(Loaded::Corrupt(format!(
            "checkpoint is for package {:?}",
            cp.package_id
        )));
    }
    let partial_len = match fs::metadata(partial_path(dir, package_id)) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    if partial_len < cp.bytes_done {
        return Ok(Loaded::Corrupt(format!(
            "partial file has {partial_len} bytes, checkpoint says {}",
            cp.bytes_done
        )));
    }
    let mut cp = cp;
    if cp.boot_id.is_some() && cp.boot_id == current_boot_id() {
        cp.bytes_done = partial_len.min(cp.expected_size.unwrap_or(u64::MAX));
    }
    Ok(Loaded::Valid(cp))
}

/// Replace `dir/~PD-<id>` atomically: write a temporary file, fsync it, rename
/// it over the checkpoint, fsync the directory.
pub fn store(dir: &Path, cp: &Checkpoint) -> io::Result<()> {
    let tmp = checkpoint_temp_path(dir, &cp.package_id);
    let mut f = File::create(&tmp)?;
    f.write_all(&cp.encode())?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, checkpoint_path(dir, &cp.package_id))?;
    sync_dir(dir)?;
    crate::failpoint::crash_point("downloader.checkpoint.stored");
    Ok(())
}

/// Delete the checkpoint, its temporary file and the partial data (missing
/// files are fine), then fsync the directory.
pub fn remove(dir: &Path, package_id: &str) -> io::Result<()> {
    for p in [
        checkpoint_path(dir, package_id),
        checkpoint_temp_path(dir, package_id),
        partial_path(dir, package_id),
    ] {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    match sync_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// fsync a directory, so a rename or removal in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            package_id: "p1".into(),
            source_url: "http://h/a.cab".into(),
            etag: Some("\"abc\"".into()),
            last_modified: None,
            expected_size: Some(10),
            expected_sha256: None,
            bytes_done: 4,
            boot_id: None,
        }
    }

    fn dir_with(cp_bytes: &[u8], partial: usize) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        fs::write(checkpoint_path(d.path(), "p1"), cp_bytes).expect("write cp");
        fs::write(partial_path(d.path(), "p1"), vec![7u8; partial]).expect("write part");
        d
    }

    fn corrupt(loaded: Loaded) -> String {
        match loaded {
            Loaded::Corrupt(r) => r,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn roundtrip_and_missing() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(d.path(), "p1").expect("load"), Loaded::Missing);
        store(d.path(), &sample()).expect("store");
        fs::write(partial_path(d.path(), "p1"), [0u8; 4]).expect("part");
        assert_eq!(load(d.path(), "p1").expect("load"), Loaded::Valid(sample()));
        assert!(!checkpoint_temp_path(d.path(), "p1").exists());
        remove(d.path(), "p1").expect("remove");
        assert_eq!(load(d.path(), "p1").expect("load"), Loaded::Missing);
        assert!(!partial_path(d.path(), "p1").exists());
        remove(d.path(), "p1").expect("remove twice");
    }

    #[test]
    fn corruption_cases() {
        let good = sample().encode();
        let text = String::from_utf8(good.clone()).expect("utf8");
        let cases: Vec<(Vec<u8>, usize, &str)> = vec![
            (b"{not json".to_vec(), 4, "not JSON"),
            (b"[1,2]".to_vec(), 4, "not a JSON object"),
            (b"".to_vec(), 4, "not JSON"),
            (good[..good.len() / 2].to_vec(), 4, "not JSON"),
            (
                text.replace("\"bytes_done\":4", "\"bytes_done\":3")
                    .into_bytes(),
                4,
                "checksum",
            ),
            (
                text.replace("\"checksum\"", "\"sum\"").into_bytes(),
                4,
                "no checksum",
            ),
            (
                text.replace("\"version\":1", "\"version\":2").into_bytes(),
                4,
                "unknown version",
            ),
            (
                text.replace("\"bytes_done\"", "\"extra\":1,\"bytes_done\"")
                    .into_bytes(),
                4,
                "bad fields",
            ),
            (good.clone(), 3, "partial file has 3 bytes"),
            (vec![b' '; 70_000], 4, "too large"),
        ];
        for (bytes, partial, want) in cases {
            let d = dir_with(&bytes, partial);
            let reason = corrupt(load(d.path(), "p1").expect("load"));
            assert!(reason.contains(want), "{want:?} not in {reason:?}");
        }
        // A checkpoint of another package, copied under this name.
        let mut other = sample();
        other.package_id = "p2".into();
        let d = dir_with(&other.encode(), 4);
        assert!(corrupt(load(d.path(), "p1").expect("load")).contains("p2"));
        // The partial file may be longer than bytes_done (written after the
        // last checkpoint).
        let d = dir_with(&good, 9);
        assert_eq!(load(d.path(), "p1").expect("load"), Loaded::Valid(sample()));
    }

    #[test]
    fn written_in_this_boot_the_whole_partial_file_counts() {
        let Some(boot) = current_boot_id() else {
            return; // not Linux: only synced bytes ever count
        };
        let mut cp = sample();
        cp.boot_id = Some(boot);
        let loaded = |cp: &Checkpoint, partial: usize| match load(
            dir_with(&cp.encode(), partial).path(),
            "p1",
        ) {
            Ok(Loaded::Valid(c)) => c.bytes_done,
            other => panic!("{other:?}"),
        };
        // Written after the last sync, kept by the page cache.
        assert_eq!(loaded(&cp, 7), 7);
        // Capped at the expected size.
        assert_eq!(loaded(&cp, 12), 10);
        // After a reboot only synced bytes count.
        cp.boot_id = Some("another-boot".into());
        assert_eq!(loaded(&cp, 7), 4);
    }
}
