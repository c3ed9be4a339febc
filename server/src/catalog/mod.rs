//! The package catalog: a directory with `catalog.toml` (default settings and
//! assignment rules) and `packages/*.toml` (one package each), whose package
//! files live anywhere inside the directory. SHA-256 and size are computed at
//! load; a failed reload keeps the previous catalog in force.

mod assign;
mod package;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use dmagent::protocol::{ClientSettings, Document as _, PackageRef, PollResponse, Settings};

pub use assign::{glob_match, resolve_for, DeviceFacts, Rule};
pub use package::Package;
pub use watch::spawn_watcher;

/// A catalog error, naming the file and, where known, the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    /// The file at fault.
    pub file: PathBuf,
    /// The key at fault (dotted), if known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl CatalogError {
    pub(crate) fn key(file: &Path, key: &str, message: String) -> Self {
        CatalogError {
            file: file.to_owned(),
            key: Some(key.to_owned()),
            message,
        }
    }

    pub(crate) fn file(file: &Path, message: String) -> Self {
        CatalogError {
            file: file.to_owned(),
            key: None,
            message,
        }
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{}: key `{k}`: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for CatalogError {}

/// A loaded, consistent catalog.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Packages by ID.
    pub packages: BTreeMap<String, Package>,
    /// Settings sent to every device unless a rule overrides a section.
    pub defaults: Settings,
    /// Assignment rules in file order.
    pub rules: Vec<Rule>,
    /// Encoded poll responses by the rules a device matches.
    pub poll_responses: ResponseCache,
}

/// Encoded `PollResponse` documents of one catalog, keyed by the indices of
/// the rules a device matches: the packages and settings a device gets
/// depend on nothing else. A reload makes a new catalog with an empty cache.
#[derive(Debug, Default)]
pub struct ResponseCache(RwLock<HashMap<Vec<usize>, Bytes>>);

/// At most this many distinct responses are kept (each is a few hundred
/// bytes; a catalog whose rules single out devices would otherwise grow it
/// without bound).
const RESPONSE_CACHE_MAX: usize = 4096;

impl Clone for ResponseCache {
    /// An empty cache: a cloned catalog may be changed before it is used.
    fn clone(&self) -> Self {
        ResponseCache::default()
    }
}

impl Catalog {
    /// The package IDs and settings for a device.
    pub fn for_device(&self, device: &DeviceFacts<'_>) -> (Vec<PackageRef>, Settings) {
        resolve_for(&self.defaults, &self.rules, device)
    }

    /// The encoded `PollResponse` for a device: its packages and settings,
    /// encoded once per set of matching rules.
    pub fn poll_response(&self, device: &DeviceFacts<'_>) -> Bytes {
        let key: Vec<usize> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.matches(device))
            .map(|(i, _)| i)
            .collect();
        let cache = &self.poll_responses.0;
        if let Some(b) = cache.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return b.clone();
        }
        let (packages, settings) = self.for_device(device);
        let body = Bytes::from(
            PollResponse {
                settings: Some(settings),
                applicable_packages: Some(packages.into_iter().collect()),
            }
            .encode(),
        );
        let mut cache = cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() < RESPONSE_CACHE_MAX {
            cache.insert(key, body.clone());
        }
        body
    }

    /// The package if it exists and is assigned to the device.
    pub fn assigned(&self, device: &DeviceFacts<'_>, package_id: &str) -> Option<&Package> {
        let (ids, _) = self.for_device(device);
        if ids.iter().any(|p| p.id == package_id) {
            self.packages.get(package_id)
        } else {
            None
        }
    }
}

/// Digests of package files, reused while size and mtime are unchanged.
#[derive(Debug, Default)]
pub struct DigestCache(HashMap<PathBuf, (u64, Option<SystemTime>, String)>);

impl DigestCache {
    fn digest(&mut self, path: &Path) -> std::io::Result<(u64, String)> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        let mtime = meta.modified().ok();
        if let Some((size, m, sha)) = self.0.get(path) {
            if *size == meta.len() && *m == mtime {
                return Ok((*size, sha.clone()));
            }
        }
        let (size, sha) = sha256_file(path)?;
        self.0.insert(path.to_owned(), (size, mtime, sha.clone()));
        Ok((size, sha))
    }
}

/// SHA-256 and length of a file, read in 64 KiB chunks.
pub fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf)?;
        if r == 0 {
            break;
        }
        h.update(&buf[..r]);
        n += r as u64;
    }
    Ok((n, hex(&h.finalize())))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(H[usize::from(b >> 4)]));
        s.push(char::from(H[usize::from(b & 0xF)]));
    }
    s
}

/// The files whose change triggers a reload: `catalog.toml` and `packages/*.toml`.
fn definition_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = vec![dir.join("catalog.toml")];
    if let Ok(rd) = std::fs::read_dir(dir.join("packages")) {
        let mut pk: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        pk.sort();
        v.extend(pk);
    }
    v
}

/// Loads a catalog directory.
pub fn load(dir: &Path, cache: &mut DigestCache) -> Result<Catalog, CatalogError> {
    let main = dir.join("catalog.toml");
    let cat: assign::CatalogToml = match std::fs::read_to_string(&main) {
        Ok(t) => toml::from_str(&t).map_err(|e| CatalogError::file(&main, toml_msg(&e)))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => assign::CatalogToml::default(),
        Err(e) => return Err(CatalogError::file(&main, e.to_string())),
    };
    let (mut defaults, rules) = cat.resolve(&main)?;
    let client = defaults.client.get_or_insert_with(|| ClientSettings {
        poll_interval: Some(Duration::from_secs(3600)),
        failure_retry_count: Some(5),
        failure_retry_interval: Some(Duration::from_secs(180)),
        ..ClientSettings::default()
    });
    client.version.get_or_insert_with(|| "1".to_owned());

    let mut packages = BTreeMap::new();
    for file in definition_files(dir).into_iter().skip(1) {
        let text =
            std::fs::read_to_string(&file).map_err(|e| CatalogError::file(&file, e.to_string()))?;
        let def: package::PackageToml =
            toml::from_str(&text).map_err(|e| CatalogError::file(&file, toml_msg(&e)))?;
        let pkg = def.resolve(&file, dir, &mut |p| cache.digest(p))?;
        if let Some(prev) = packages.get(pkg.id()) {
            let prev: &Package = prev;
            return Err(CatalogError::key(
                &file,
                "id",
                format!("duplicate package ID, also in {}", prev.source.display()),
            ));
        }
        packages.insert(pkg.id().to_owned(), pkg);
    }
    for (i, r) in rules.iter().enumerate() {
        for p in &r.packages {
            if !packages.contains_key(p) {
                return Err(CatalogError::key(
                    &main,
                    &format!("assign[{i}].packages"),
                    format!("unknown package ID {p:?}"),
                ));
            }
        }
    }
    Ok(Catalog {
        packages,
        defaults,
        rules,
        poll_responses: ResponseCache::default(),
    })
}

fn toml_msg(e: &toml::de::Error) -> String {
    e.to_string().trim_end().replace('\n', " ")
}

/// The catalog in force, shared by the handlers, with the last load error.
#[derive(Debug, Clone)]
pub struct CatalogHandle {
    dir: PathBuf,
    current: Arc<RwLock<Arc<Catalog>>>,
    last_error: Arc<RwLock<Option<CatalogError>>>,
    cache: Arc<Mutex<DigestCache>>,
}

impl CatalogHandle {
    /// Loads `dir`; an error here is fatal (there is no previous catalog).
    pub fn open(dir: &Path) -> Result<Self, CatalogError> {
        let mut cache = DigestCache::default();
        let cat = load(dir, &mut cache)?;
        Ok(CatalogHandle {
            dir: dir.to_owned(),
            current: Arc::new(RwLock::new(Arc::new(cat))),
            last_error: Arc::new(RwLock::new(None)),
            cache: Arc::new(Mutex::new(cache)),
        })
    }

    /// The catalog in force.
    pub fn get(&self) -> Arc<Catalog> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The error of the last failed reload (cleared by a good one).
    pub fn last_error(&self) -> Option<CatalogError> {
        self.last_error
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The catalog directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reloads; on error the previous catalog stays in force and the error is
    /// logged, kept and returned.
    pub fn reload(&self) -> Result<(), CatalogError> {
        let result = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            load(&self.dir, &mut cache)
        };
        match result {
            Ok(cat) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(cat);
                *self.last_error.write().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::info!(dir = %self.dir.display(), "catalog loaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "catalog reload failed; the previous catalog stays in force");
                eprintln!("dm-server: catalog reload failed, previous catalog stays in force: {e}");
                *self.last_error.write().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_poll_responses_are_the_encoded_resolution_per_rule_set() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample-catalog");
        let cat = load(&dir, &mut DigestCache::default()).expect("sample catalog");
        let kiosk = DeviceFacts {
            id: "A",
            name: Some("KIOSK-017"),
            platform: Some("Linux"),
        };
        let other = DeviceFacts {
            id: "B",
            name: Some("POS-1"),
            platform: Some("Linux"),
        };
        for d in [kiosk, other, kiosk, other] {
            let (packages, settings) = cat.for_device(&d);
            let fresh = PollResponse {
                settings: Some(settings),
                applicable_packages: Some(packages.into_iter().collect()),
            }
            .encode();
            assert_eq!(cat.poll_response(&d), fresh, "{d:?}");
        }
        assert_ne!(cat.poll_response(&kiosk), cat.poll_response(&other));
        assert_eq!(cat.clone().poll_responses.0.read().expect("lock").len(), 0);
    }
}
