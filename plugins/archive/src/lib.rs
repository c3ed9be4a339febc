//! `archive`: the post-install handler for `archive: FILE TARGET` (X6).
//! Unpacks `.tar`, `.tar.gz`/`.tgz` and `.zip` into TARGET: a relative TARGET
//! resolves inside the package directory, an absolute one must lie inside
//! one of the request's `allowed_roots`.
//!
//! Hostile archives are refused and nothing is written outside TARGET:
//! entries with `..` or absolute paths, symlinks or hard links pointing out
//! of TARGET, writing through any symlink (including one the same archive
//! created earlier), device nodes and fifos, and archives that expand past
//! [`MAX_TOTAL_BYTES`] or [`MAX_ENTRIES`]. A first pass checks every header
//! before anything is written; the extraction pass enforces the same rules
//! again and counts the bytes actually written.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use dmagent_plugin_api::util::split_command_line;
use dmagent_plugin_api::{PluginError, PostInstallHandler, PostInstallRequest, PostInstallResult};

/// Largest total size an archive may expand to (512 MiB).
pub const MAX_TOTAL_BYTES: u64 = 512 << 20;
/// Largest number of entries.
pub const MAX_ENTRIES: u64 = 100_000;

fn err(message: impl Into<String>) -> PluginError {
    PluginError::new(message)
}

/// Lexically normalised relative path of an entry, or why it is refused.
fn safe_relative(name: &str) -> Result<PathBuf, PluginError> {
    if name.starts_with('/') || name.starts_with('\\') || name.as_bytes().get(1) == Some(&b':') {
        return Err(err(format!("refused: absolute entry path {name:?}")));
    }
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(part) => {
                if part.to_string_lossy().contains('\\') {
                    return Err(err(format!("refused: backslash in entry path {name:?}")));
                }
                out.push(part)
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(err(format!("refused: '..' in entry path {name:?}")))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(err(format!("refused: absolute entry path {name:?}")))
            }
        }
    }
    Ok(out)
}

/// Whether a symlink at `entry` (relative to the target) pointing at `link`
/// stays inside the target, resolved lexically.
fn link_stays_inside(entry: &Path, link: &Path) -> bool {
    if link.is_absolute() {
        return false;
    }
    let mut depth: Vec<&std::ffi::OsStr> = entry
        .parent()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for c in link.components() {
        match c {
            Component::Normal(s) => depth.push(s),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// What one entry is.
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    HardLink(PathBuf),
}

/// Validates one entry header; `seen` counts entries and declared bytes.
struct Budget {
    entries: u64,
    bytes: u64,
}

impl Budget {
    fn entry(&mut self, declared: u64) -> Result<(), PluginError> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(declared);
        if self.entries > MAX_ENTRIES {
            return Err(err(format!("refused: more than {MAX_ENTRIES} entries")));
        }
        if self.bytes > MAX_TOTAL_BYTES {
            return Err(err(format!(
                "refused: expands past the {} MiB cap",
                MAX_TOTAL_BYTES >> 20
            )));
        }
        Ok(())
    }
}

fn check_kind(rel: &Path, kind: &Kind) -> Result<(), PluginError> {
    match kind {
        Kind::Symlink(link) if !link_stays_inside(rel, link) => Err(err(format!(
            "refused: symlink {} -> {} escapes the target",
            rel.display(),
            link.display()
        ))),
        Kind::HardLink(src) => safe_relative(&src.to_string_lossy()).map(|_| ()),
        _ => Ok(()),
    }
}

/// Writes entries below `target`, never through a symlink.
struct Writer {
    target: PathBuf,
    written: u64,
}

impl Writer {
    /// Creates the parents of `rel` and checks that none is a symlink.
    fn parent_dirs(&self, rel: &Path) -> Result<PathBuf, PluginError> {
        let mut at = self.target.clone();
        let parts: Vec<_> = rel.components().collect();
        for c in &parts[..parts.len().saturating_sub(1)] {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(err(format!(
                        "refused: {} would be written through the symlink {}",
                        rel.display(),
                        at.display()
                    )))
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(err(format!("refused: {} is not a directory", at.display()))),
                Err(_) => std::fs::create_dir(&at)
                    .map_err(|e| err(format!("cannot create {}: {e}", at.display())))?,
            }
        }
        Ok(self.target.join(rel))
    }

    fn entry(
        &mut self,
        rel: &Path,
        kind: &Kind,
        data: &mut dyn Read,
        mode: Option<u32>,
    ) -> Result<(), PluginError> {
        if rel.as_os_str().is_empty() {
            return Ok(());
        }
        let path = self.parent_dirs(rel)?;
        let existing = std::fs::symlink_metadata(&path).ok();
        if existing
            .as_ref()
            .is_some_and(|m| m.file_type().is_symlink())
        {
            return Err(err(format!(
                "refused: {} would be written through a symlink",
                rel.display()
            )));
        }
        match kind {
            Kind::Dir => {
                if existing.is_none() {
                    std::fs::create_dir(&path)
                        .map_err(|e| err(format!("cannot create {}: {e}", path.display())))?;
                }
            }
            Kind::File => {
                if existing.as_ref().is_some_and(|m| m.is_dir()) {
                    return Err(err(format!("refused: {} is a directory", rel.display())));
                }
                let mut file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(mode.unwrap_or(0o644) & 0o755)
                    .open(&path)
                    .map_err(|e| err(format!("cannot write {}: {e}", path.display())))?;
                let room = MAX_TOTAL_BYTES - self.written.min(MAX_TOTAL_BYTES);
                let n = io::copy(&mut data.take(room + 1), &mut file)
                    .map_err(|e| err(format!("cannot extract {}: {e}", rel.display())))?;
                self.written += n;
                if self.written > MAX_TOTAL_BYTES {
                    drop(file);
                    let _ = std::fs::remove_file(&path);
                    return Err(err(format!(
                        "refused: expands past the {} MiB cap",
                        MAX_TOTAL_BYTES >> 20
                    )));
                }
                file.flush()
                    .map_err(|e| err(format!("cannot write {}: {e}", path.display())))?;
            }
            Kind::Symlink(link) => {
                if existing.is_some() {
                    return Err(err(format!("refused: {} already exists", rel.display())));
                }
                std::os::unix::fs::symlink(link, &path)
                    .map_err(|e| err(format!("cannot create symlink {}: {e}", path.display())))?;
            }
            Kind::HardLink(src) => {
                let src_rel = safe_relative(&src.to_string_lossy())?;
                let src_path = self.parent_dirs(&src_rel)?;
                let meta = std::fs::symlink_metadata(&src_path).map_err(|_| {
                    err(format!(
                        "refused: hard link {} to a missing entry",
                        rel.display()
                    ))
                })?;
                if !meta.is_file() {
                    return Err(err(format!(
                        "refused: hard link {} to something other than an extracted file",
                        rel.display()
                    )));
                }
                if existing.is_some() {
                    return Err(err(format!("refused: {} already exists", rel.display())));
                }
                std::fs::hard_link(&src_path, &path)
                    .map_err(|e| err(format!("cannot link {}: {e}", path.display())))?;
            }
        }
        Ok(())
    }
}

enum Format {
    Tar,
    TarGz,
    Zip,
}

fn format_of(file: &Path) -> Result<Format, PluginError> {
    let name = file.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Ok(Format::TarGz)
    } else if name.ends_with(".tar") {
        Ok(Format::Tar)
    } else if name.ends_with(".zip") {
        Ok(Format::Zip)
    } else {
        Err(err(format!(
            "{} is not a .tar, .tar.gz, .tgz or .zip file",
            file.display()
        )))
    }
}

fn open_tar(file: &Path, gz: bool) -> Result<tar::Archive<Box<dyn Read>>, PluginError> {
    let f = File::open(file).map_err(|e| err(format!("cannot open {}: {e}", file.display())))?;
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(io::BufReader::new(f)))
    } else {
        Box::new(io::BufReader::new(f))
    };
    Ok(tar::Archive::new(reader))
}

fn tar_kind(entry: &tar::Entry<'_, Box<dyn Read>>, rel: &Path) -> Result<Kind, PluginError> {
    use tar::EntryType as T;
    let header = entry.header();
    let link = || -> Result<PathBuf, PluginError> {
        entry
            .link_name()
            .map_err(|e| err(format!("bad link name for {}: {e}", rel.display())))?
            .map(|l| l.into_owned())
            .ok_or_else(|| err(format!("link {} without a target", rel.display())))
    };
    match header.entry_type() {
        T::Regular | T::Continuous | T::GNUSparse => Ok(Kind::File),
        T::Directory => Ok(Kind::Dir),
        T::Symlink => Ok(Kind::Symlink(link()?)),
        T::Link => Ok(Kind::HardLink(link()?)),
        T::Char | T::Block | T::Fifo => Err(err(format!(
            "refused: {} is a device node or fifo",
            rel.display()
        ))),
        other => Err(err(format!(
            "refused: {} has unsupported entry type {:?}",
            rel.display(),
            other
        ))),
    }
}

fn tar_pass(file: &Path, gz: bool, mut writer: Option<&mut Writer>) -> Result<u64, PluginError> {
    let mut archive = open_tar(file, gz)?;
    let mut budget = Budget {
        entries: 0,
        bytes: 0,
    };
    let entries = archive
        .entries()
        .map_err(|e| err(format!("bad archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| err(format!("bad archive: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| err(format!("bad entry name: {e}")))?
            .to_string_lossy()
            .into_owned();
        let rel = safe_relative(&name)?;
        let kind = tar_kind(&entry, &rel)?;
        check_kind(&rel, &kind)?;
        budget.entry(entry.header().size().unwrap_or(u64::MAX))?;
        if let Some(w) = writer.as_deref_mut() {
            let mode = entry.header().mode().ok();
            w.entry(&rel, &kind, &mut entry, mode)?;
        }
    }
    Ok(budget.entries)
}

fn zip_pass(file: &Path, mut writer: Option<&mut Writer>) -> Result<u64, PluginError> {
    let f = File::open(file).map_err(|e| err(format!("cannot open {}: {e}", file.display())))?;
    let mut archive = zip::ZipArchive::new(io::BufReader::new(f))
        .map_err(|e| err(format!("bad zip archive: {e}")))?;
    let mut budget = Budget {
        entries: 0,
        bytes: 0,
    };
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| err(format!("bad zip entry: {e}")))?;
        let name = entry.name().to_owned();
        let rel = safe_relative(&name)?;
        let mode = entry.unix_mode();
        let kind = match mode.map(|m| m & 0o170000) {
            Some(0o120000) => {
                let mut target = String::new();
                entry
                    .by_ref()
                    .take(4096)
                    .read_to_string(&mut target)
                    .map_err(|e| err(format!("bad symlink {name}: {e}")))?;
                Kind::Symlink(PathBuf::from(target))
            }
            Some(0o020000 | 0o060000 | 0o010000 | 0o140000) => {
                return Err(err(format!(
                    "refused: {name} is a device node, fifo or socket"
                )))
            }
            _ if entry.is_dir() => Kind::Dir,
            _ => Kind::File,
        };
        check_kind(&rel, &kind)?;
        budget.entry(entry.size())?;
        if let Some(w) = writer.as_deref_mut() {
            w.entry(&rel, &kind, &mut entry, mode)?;
        }
    }
    Ok(budget.entries)
}

/// Resolves TARGET: relative → inside the package directory; absolute →
/// inside an allowed root. Created if missing; then checked again after
/// resolving symlinks on the way.
fn resolve_target(req: &PostInstallRequest, target: &str) -> Result<PathBuf, PluginError> {
    let package_dir = PathBuf::from(&req.package_dir);
    let (root, path) = if Path::new(target).is_absolute() {
        let path = PathBuf::from(target);
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(err(format!("refused: target {target} contains '..'")));
        }
        let root = req
            .allowed_roots
            .iter()
            .map(PathBuf::from)
            .find(|r| r.is_absolute() && path.starts_with(r))
            .ok_or_else(|| {
                err(format!(
                    "refused: target {target} is not inside an allowed root"
                ))
            })?;
        (root, path)
    } else {
        let rel = safe_relative(target)?;
        (package_dir.clone(), package_dir.join(rel))
    };
    std::fs::create_dir_all(&path)
        .map_err(|e| err(format!("cannot create {}: {e}", path.display())))?;
    let real_root = root
        .canonicalize()
        .map_err(|e| err(format!("{}: {e}", root.display())))?;
    let real = path
        .canonicalize()
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    if !real.starts_with(&real_root) {
        return Err(err(format!(
            "refused: target {} resolves outside {}",
            path.display(),
            root.display()
        )));
    }
    Ok(real)
}

struct Archive;

impl PostInstallHandler for Archive {
    fn run(&self, req: PostInstallRequest) -> Result<PostInstallResult, PluginError> {
        let words = split_command_line(&req.command_line)
            .ok_or_else(|| err("unterminated quote in the command line"))?;
        let [file, target] = words.as_slice() else {
            return Err(err("usage: archive: FILE TARGET"));
        };
        let file = {
            let p = Path::new(file);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                Path::new(&req.package_dir).join(safe_relative(file)?)
            }
        };
        let format = format_of(&file)?;
        // Pass 1: every header, before anything is written.
        match format {
            Format::Tar => tar_pass(&file, false, None)?,
            Format::TarGz => tar_pass(&file, true, None)?,
            Format::Zip => zip_pass(&file, None)?,
        };
        let target = resolve_target(&req, target)?;
        let mut writer = Writer {
            target: target.clone(),
            written: 0,
        };
        let entries = match format {
            Format::Tar => tar_pass(&file, false, Some(&mut writer))?,
            Format::TarGz => tar_pass(&file, true, Some(&mut writer))?,
            Format::Zip => zip_pass(&file, Some(&mut writer))?,
        };
        let message = format!(
            "unpacked {} ({entries} entries, {} bytes) into {}",
            file.display(),
            writer.written,
            target.display()
        );
        tracing::info!("{message}");
        Ok(PostInstallResult {
            exit_code: 0,
            output_tail: message,
        })
    }
}

dmagent_plugin_api::export_plugin!(post_install {
    name: "archive",
    handler: Archive
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert!(safe_relative("a/b/c").is_ok());
        assert!(safe_relative("./a").is_ok());
        assert!(safe_relative("../a").is_err());
        assert!(safe_relative("a/../../b").is_err());
        assert!(safe_relative("/etc/passwd").is_err());
        assert!(safe_relative("C:/x").is_err());
    }

    #[test]
    fn symlink_targets() {
        assert!(link_stays_inside(Path::new("a/link"), Path::new("b")));
        assert!(link_stays_inside(Path::new("a/link"), Path::new("../b")));
        assert!(!link_stays_inside(
            Path::new("a/link"),
            Path::new("../../b")
        ));
        assert!(!link_stays_inside(Path::new("link"), Path::new("/etc")));
        assert!(!link_stays_inside(Path::new("link"), Path::new("..")));
    }
}
