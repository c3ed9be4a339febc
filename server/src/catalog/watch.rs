//! Reload on change: a thread compares the size and mtime of the definition
//! files and the package files every `interval`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{definition_files, CatalogHandle};

type Fingerprint = Vec<(PathBuf, Option<(u64, Option<SystemTime>)>)>;

fn fingerprint(handle: &CatalogHandle) -> Fingerprint {
    let stat = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    let mut files = definition_files(handle.dir());
    files.extend(handle.get().packages.values().map(|p| p.path.clone()));
    files.into_iter().map(|p| (p.clone(), stat(&p))).collect()
}

/// Starts the watcher; it stops when `stop` becomes true.
pub fn spawn_watcher(handle: CatalogHandle, interval: Duration, stop: Arc<AtomicBool>) {
    // Taken before the thread runs: a change made right after the server
    // started must differ from it, however late the thread gets going.
    let mut last = fingerprint(&handle);
    let spawned = std::thread::Builder::new()
        .name("catalog-watch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(interval);
                // Taken before the reload: a write during the reload shows
                // up as a change on the next tick.
                let now = fingerprint(&handle);
                if now != last {
                    // A failed reload is logged and kept by the handle.
                    let _ = handle.reload();
                    last = now;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the catalog watcher");
    }
}
