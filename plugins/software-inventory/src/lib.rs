//! `software-inventory`: the software inventory collector (part B §4.1).
//! Walks each `FileFilterItem` (`*`/`?` wildcards, case-insensitive; into
//! subdirectories when `Recursive`) and returns the directory tree: every
//! directory named by its full path, files with size, UTC times and
//! attributes (`HIDDEN` for dot-names, `READONLY` when the owner cannot
//! write). Subdirectories without a match are left out. Symlinks are not
//! followed. `ExcludeCompressed`/`ExcludeEncrypted` are no-ops on Linux,
//! which has neither file attribute.
#![forbid(unsafe_code)]

use std::fs::Metadata;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use dmagent_plugin_api::util::{civil_time_utc, wildcard_match};
use dmagent_plugin_api::{
    CollectRequest, CollectResult, Directory, File, PluginError, ReportCollector, REPORT_SOFTWARE,
};

/// Deepest recursion followed.
const MAX_DEPTH: usize = 64;
/// Most entries examined per report.
const MAX_ENTRIES: usize = 200_000;

fn attributes(name: &str, meta: &Metadata) -> String {
    let mut flags = Vec::new();
    if name.starts_with('.') {
        flags.push("HIDDEN");
    }
    if meta.permissions().mode() & 0o200 == 0 {
        flags.push("READONLY");
    }
    flags.join("|")
}

fn time(t: std::io::Result<std::time::SystemTime>) -> Option<String> {
    t.ok().and_then(civil_time_utc)
}

struct Walk<'a> {
    filter: &'a str,
    recursive: bool,
    seen: usize,
}

impl Walk<'_> {
    /// The directory at `path`; `None` when it has no match (and is not the root).
    fn directory(&mut self, path: &Path, depth: usize) -> Option<Directory> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if !meta.is_dir() {
            return None;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut dir = Directory {
            name: path.display().to_string(),
            created: time(meta.created()),
            last_accessed: time(meta.accessed()),
            attributes: Some(attributes(&name, &meta)),
            files: Vec::new(),
            directories: Vec::new(),
        };
        let mut entries: Vec<_> = match std::fs::read_dir(path) {
            Ok(rd) => rd.flatten().collect(),
            Err(e) => {
                tracing::debug!(dir = %path.display(), "cannot list: {e}");
                return Some(dir);
            }
        };
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            self.seen += 1;
            if self.seen > MAX_ENTRIES {
                tracing::warn!("software inventory truncated at {MAX_ENTRIES} entries");
                break;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if meta.is_dir() {
                if self.recursive && depth < MAX_DEPTH {
                    if let Some(sub) = self.directory(&entry.path(), depth + 1) {
                        if !sub.files.is_empty() || !sub.directories.is_empty() {
                            dir.directories.push(sub);
                        }
                    }
                }
            } else if meta.is_file() && wildcard_match(self.filter, &file_name) {
                dir.files.push(File {
                    attributes: Some(attributes(&file_name, &meta)),
                    name: file_name,
                    version: None,
                    company: None,
                    description: None,
                    size: meta.len(),
                    created: time(meta.created()),
                    last_modified: time(meta.modified()),
                    last_accessed: time(meta.accessed()),
                });
            }
        }
        Some(dir)
    }
}

struct Software;

impl ReportCollector for Software {
    fn collect(&self, req: CollectRequest) -> Result<CollectResult, PluginError> {
        let mut directories = Vec::new();
        for filter in &req.file_filters {
            let path = Path::new(&filter.path);
            if !path.is_absolute() {
                tracing::warn!(path = %filter.path, "skipping a filter with a relative path");
                continue;
            }
            let mut walk = Walk {
                filter: &filter.filter,
                recursive: filter.recursive,
                seen: 0,
            };
            match walk.directory(path, 0) {
                Some(dir) => directories.push(dir),
                None => tracing::info!(path = %filter.path, "filter path is not a directory"),
            }
        }
        Ok(CollectResult::Software { directories })
    }
}

dmagent_plugin_api::export_plugin!(collector {
    name: "software-inventory",
    reports: REPORT_SOFTWARE,
    collector: Software,
});
