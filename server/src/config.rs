//! Server configuration: the command line and the optional `--config` TOML file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::faults::Faults;

/// Default path of the one device endpoint.
pub const DEFAULT_ENDPOINT: &str = "/devicemgmt/server.aspx";
/// Default cap on XML request bodies.
pub const DEFAULT_MAX_XML_BODY: u64 = 4 * 1024 * 1024;
/// Default cap on one file-collection body.
pub const DEFAULT_MAX_FILE_BODY: u64 = 1024 * 1024 * 1024;

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The catalog directory (`catalog.toml`, `packages/*.toml`, package files).
    pub catalog_dir: PathBuf,
    /// The state directory (`state.redb`, `files/`).
    pub state_dir: PathBuf,
    /// A PostgreSQL database (`postgres://user:password@host:port/dbname`)
    /// to keep the state in instead of `state.redb`; replicas share it.
    pub database: Option<String>,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Path of the device endpoint.
    pub endpoint: String,
    /// Per-device auth tokens (enrolment on first poll, 401 afterwards for a wrong token).
    pub auth: bool,
    /// Base URL the server puts into location responses for its own download
    /// route (default: `http://<bound address>`).
    pub public_url: Option<String>,
    /// Cap on XML bodies (413 beyond).
    pub max_xml_body: u64,
    /// Cap on one file-collection body (413 beyond).
    pub max_file_body: u64,
    /// How often the catalog directory is checked for changes (milliseconds).
    pub catalog_poll_ms: u64,
    /// Faults active from the start (normally none).
    pub faults: Faults,
    /// Worker threads (default 2).
    pub workers: usize,
    /// Signs every instruction response (X8) when set.
    pub signer: Option<std::sync::Arc<crate::signing::Signer>>,
}

impl ServerConfig {
    /// A configuration with defaults for everything but the two directories;
    /// listens on `127.0.0.1:0`.
    pub fn new(catalog_dir: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            catalog_dir: catalog_dir.into(),
            state_dir: state_dir.into(),
            database: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            auth: false,
            public_url: None,
            max_xml_body: DEFAULT_MAX_XML_BODY,
            max_file_body: DEFAULT_MAX_FILE_BODY,
            catalog_poll_ms: 1000,
            faults: Faults::default(),
            workers: 2,
            signer: None,
        }
    }

    /// Applies a `--config` file on top of `self`.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(d) = file.catalog {
            self.catalog_dir = base.join(d);
        }
        if let Some(d) = file.state {
            self.state_dir = base.join(d);
        }
        if let Some(d) = file.database {
            self.database = Some(d);
        }
        if let Some(l) = file.listen {
            self.listen = l
                .parse()
                .map_err(|e| format!("{}: key `listen`: {e}", path.display()))?;
        }
        if let Some(e) = file.endpoint {
            if !e.starts_with('/') {
                return Err(format!(
                    "{}: key `endpoint`: must start with '/'",
                    path.display()
                ));
            }
            self.endpoint = e;
        }
        if let Some(a) = file.auth {
            self.auth = a;
        }
        if let Some(u) = file.public_url {
            self.public_url = Some(u);
        }
        if let Some(m) = file.max_xml_body {
            self.max_xml_body = m;
        }
        if let Some(m) = file.max_file_body {
            self.max_file_body = m;
        }
        if let Some(f) = file.faults {
            self.faults = f;
        }
        if let Some(key) = file.signing_key {
            let endorsement = file.signing_endorsement.map(|e| base.join(e));
            let signer = crate::signing::Signer::load(&base.join(key), endorsement.as_deref())
                .map_err(|e| format!("{}: key `signing_key`: {e}", path.display()))?;
            self.signer = Some(std::sync::Arc::new(signer));
        } else if file.signing_endorsement.is_some() {
            return Err(format!(
                "{}: key `signing_endorsement` needs `signing_key`",
                path.display()
            ));
        }
        Ok(())
    }

    /// The public base URL for the given bound address.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }
}

/// The `--config` file: every key optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    catalog: Option<PathBuf>,
    state: Option<PathBuf>,
    database: Option<String>,
    listen: Option<String>,
    endpoint: Option<String>,
    auth: Option<bool>,
    public_url: Option<String>,
    max_xml_body: Option<u64>,
    max_file_body: Option<u64>,
    faults: Option<Faults>,
    signing_key: Option<PathBuf>,
    signing_endorsement: Option<PathBuf>,
}
