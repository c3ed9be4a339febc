//! `file-collection`: selects the files the server's filters ask for (part B
//! §4.3), within the request's `allowed_roots` (after resolving symlinks),
//! skipping files larger than `max_file_bytes`. Returns paths and sizes only:
//! the agent streams the contents itself.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use dmagent_plugin_api::util::wildcard_match;
use dmagent_plugin_api::{
    CollectRequest, CollectResult, CollectedFile, PluginError, ReportCollector, REPORT_FILES,
};

const MAX_DEPTH: usize = 64;
const MAX_FILES: usize = 10_000;

struct Selection {
    roots: Vec<PathBuf>,
    max_bytes: u64,
    files: Vec<CollectedFile>,
}

impl Selection {
    fn walk(&mut self, dir: &Path, filter: &str, recursive: bool, depth: usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if self.files.len() >= MAX_FILES {
                return;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let path = entry.path();
            if meta.is_dir() {
                if recursive && depth < MAX_DEPTH {
                    self.walk(&path, filter, recursive, depth + 1);
                }
                continue;
            }
            if !meta.is_file() || !wildcard_match(filter, &entry.file_name().to_string_lossy()) {
                continue;
            }
            if meta.len() > self.max_bytes {
                tracing::info!(file = %path.display(), size = meta.len(), "skipped: larger than max_file_bytes");
                continue;
            }
            let Ok(real) = path.canonicalize() else {
                continue;
            };
            if !self.roots.iter().any(|r| real.starts_with(r)) {
                tracing::info!(file = %path.display(), "skipped: outside the allowed roots");
                continue;
            }
            self.files.push(CollectedFile {
                path: path.display().to_string(),
                size: meta.len(),
            });
        }
    }
}

struct Files;

impl ReportCollector for Files {
    fn collect(&self, req: CollectRequest) -> Result<CollectResult, PluginError> {
        let mut selection = Selection {
            roots: req
                .allowed_roots
                .iter()
                .filter(|r| Path::new(r).is_absolute())
                .filter_map(|r| Path::new(r).canonicalize().ok())
                .collect(),
            max_bytes: if req.max_file_bytes == 0 {
                u64::MAX
            } else {
                req.max_file_bytes
            },
            files: Vec::new(),
        };
        for filter in &req.file_filters {
            let path = Path::new(&filter.path);
            if path.is_absolute() && !selection.roots.is_empty() {
                selection.walk(path, &filter.filter, filter.recursive, 0);
            }
        }
        Ok(CollectResult::Files {
            files: selection.files,
        })
    }
}

dmagent_plugin_api::export_plugin!(collector {
    name: "file-collection",
    reports: REPORT_FILES,
    collector: Files,
});
