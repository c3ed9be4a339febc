//! The validated, merged configuration.
//!
//! [`Settings::default`] holds the documented defaults; `config/default.toml`
//! (compiled into the binary as layer 0) says the same thing in TOML, and a
//! unit test keeps the two from drifting apart.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use super::duration::format_duration;
use super::links::LinkAssume;

/// The agent's whole configuration, built by [`load`](super::load) before any
/// actor starts; nothing else reads configuration files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// `[server]`: where and how to talk to the management server.
    pub server: ServerSettings,
    /// `[identity]`: how the device names itself to the server.
    pub identity: IdentitySettings,
    /// `[paths]`: where the agent keeps its state, downloads and plugins.
    pub paths: PathSettings,
    /// `[poll]`: the recurring poll task.
    pub poll: PollSettings,
    /// `[retry]`: what to do when the server cannot be reached.
    pub retry: RetrySettings,
    /// `[tls]`: certificates for HTTPS.
    pub tls: TlsSettings,
    /// `[links]`: how the current network link is classified against a
    /// package's `Flags` (low bandwidth, high bandwidth, docked).
    pub links: LinkSettings,
    /// `[download]`: the image's own limits on package downloads.
    pub download: DownloadSettings,
    /// `[trust]`: which keys sign instructions and packages (X8).
    pub trust: crate::trust::TrustSettings,
    /// `[outbox]`: how much undelivered work the agent keeps.
    pub outbox: OutboxSettings,
    /// `[log]`: diagnostics.
    pub log: LogSettings,
    /// `[plugins]`: which plugin files are trusted and how they are run.
    pub plugins: PluginSettings,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// The management server's endpoint (`http` or `https`; every message is a
    /// POST to this one URL, told apart by `X-Device-Action`). No default:
    /// there is no sensible server to guess. Without one the agent still
    /// starts (inventory, state) but does not poll; images set it.
    pub url: Option<String>,
    /// Upper bound on one HTTP exchange. Default 60 s: generous for slow
    /// cellular links, short enough that a hung connection does not hold up
    /// the next poll.
    pub request_timeout: Duration,
    /// Largest response body accepted (poll and instruction responses are
    /// small XML). Default 4 MiB: far above any real response, and a hostile
    /// or broken server cannot make the agent buffer unbounded memory.
    pub max_response_bytes: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            url: None,
            request_timeout: Duration::from_secs(60),
            max_response_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Where the device id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentitySource {
    /// The trimmed contents of `identity.machine_id_path` (systemd's
    /// `/etc/machine-id`): stable per installation, nothing to provision.
    #[default]
    MachineId,
    /// `identity.device_id`, set by the image or site.
    Configured,
    /// A UUID v4 generated on first use and persisted in `state_dir/device-id`.
    Generated,
}

impl IdentitySource {
    /// The names as written in TOML.
    pub const NAMES: [(&'static str, Self); 3] = [
        ("machine-id", Self::MachineId),
        ("configured", Self::Configured),
        ("generated", Self::Generated),
    ];

    /// The name as written in TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MachineId => "machine-id",
            Self::Configured => "configured",
            Self::Generated => "generated",
        }
    }
}

/// `[identity]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    /// Where the device id comes from. Default `machine-id`: every systemd
    /// image already has a unique, stable one.
    pub source: IdentitySource,
    /// The device id when `source = "configured"` (and only then): non-empty,
    /// at most 299 printable ASCII characters (what the protocol's `ID` field
    /// and HTTP headers can carry).
    pub device_id: Option<String>,
    /// The name reported as `DeviceName`. Default (unset, or `""`): the host
    /// name, read when the identity is resolved so a rename is picked up.
    pub device_name: Option<String>,
    /// The machine-id file. Default `/etc/machine-id`; settable for tests and
    /// for images that keep it elsewhere.
    pub machine_id_path: PathBuf,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            source: IdentitySource::MachineId,
            device_id: None,
            device_name: None,
            machine_id_path: PathBuf::from("/etc/machine-id"),
        }
    }
}

/// `[paths]`; all absolute, so the agent's behaviour does not depend on its
/// working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSettings {
    /// The agent's state: the client database (`dmagent.redb`) and a generated
    /// device id. Default `/var/lib/dmagent` (FHS: persistent, per-host state).
    pub state_dir: PathBuf,
    /// Where packages are downloaded and checkpointed. Default
    /// `/var/lib/dmagent/packages`: beside the state, on the same persistent disk.
    pub download_root: PathBuf,
    /// Where post-install and report-collector plugins are loaded from.
    /// Default `/usr/lib/dmagent/plugins`: part of the (read-only) image, never
    /// a place the agent downloads to.
    pub plugin_dir: PathBuf,
}

impl Default for PathSettings {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/dmagent"),
            download_root: PathBuf::from("/var/lib/dmagent/packages"),
            plugin_dir: PathBuf::from("/usr/lib/dmagent/plugins"),
        }
    }
}

/// `[poll]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSettings {
    /// Time between polls until the server sends its own `PollInterval`.
    /// Default 1 hour: the protocol's documented registry default.
    pub interval: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3600),
        }
    }
}

/// `[retry]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySettings {
    /// Wait between a failed attempt and the next (`RetryTime`). Default
    /// 3 minutes: the protocol's documented default.
    pub interval: Duration,
    /// Retries after the first attempt (`MaxRetry`) before a one-shot task
    /// fails and a recurring one waits for its next occurrence. Default 5: the
    /// protocol's documented default.
    pub max_retries: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(180),
            max_retries: 5,
        }
    }
}

/// `[tls]`. All unset by default: the system trust store and no client
/// certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// PEM bundle of CAs trusted for the server instead of the system store
    /// (for a private management PKI).
    pub ca_bundle: Option<PathBuf>,
    /// PEM client certificate for mutual TLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`; needs `client_cert`.
    pub client_key: Option<PathBuf>,
}

/// `[links]`: the rules that classify the current network link for the
/// instruction response's `Flags` (0x1 low bandwidth, 0x2 high bandwidth,
/// 0x4 docked). See [`LinkSettings::classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    /// Interfaces (glob patterns with `*`) that count as docked: the modern
    /// form of ActiveSync desktop pass-through. Default `["usb*", "rndis*"]`:
    /// USB tethering to a host.
    pub docked_interfaces: Vec<String>,
    /// Interfaces that always count as low bandwidth. Default
    /// `["wwan*", "ppp*"]`: cellular modems and dial-up, usually metered.
    pub low_bandwidth_interfaces: Vec<String>,
    /// A measured link speed at or above this (bits/s) is high bandwidth,
    /// below it low. Default 128 000: the protocol's 128 Kbps boundary
    /// (exactly 128 Kbps counts as high).
    pub high_bandwidth_threshold_bps: u64,
    /// A forced link class, for images with one fixed link and for tests.
    /// Default `auto`: classify the actual link.
    pub assume: LinkAssume,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self {
            docked_interfaces: vec!["usb*".to_owned(), "rndis*".to_owned()],
            low_bandwidth_interfaces: vec!["wwan*".to_owned(), "ppp*".to_owned()],
            high_bandwidth_threshold_bps: 128_000,
            assume: LinkAssume::Auto,
        }
    }
}

/// `[download]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DownloadSettings {
    /// The image's own cap on download speed, bytes/s (`0` in TOML: no cap).
    /// Default: no cap; an image on a shared or metered link sets one.
    pub bandwidth_limit: Option<NonZeroU64>,
    /// Refuse packages whose instructions carry no X1 hash. Default `false`:
    /// the protocol makes the hash optional and older servers omit it; images
    /// that can rely on their server turn it on.
    pub require_hash: bool,
}

/// `[outbox]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxSettings {
    /// Most items kept undelivered. At the cap, a new inventory report or
    /// collected file first drops the oldest queued one; status messages are
    /// never dropped (they may take the outbox past the cap). Default 1000:
    /// a device offline for weeks keeps every status message and its recent
    /// reports without filling its disk.
    pub max_items: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings { max_items: 1000 }
    }
}

/// `[plugins]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSettings {
    /// SHA-256 digests a plugin file must match before it is opened (loading
    /// a library runs its constructors, so trust is decided first). Default:
    /// none, and then owner and mode checks alone decide.
    pub allowed_sha256: Option<Sha256AllowList>,
    /// Deadline of one plugin call; the plugin-host child is killed after it.
    /// Default 5 minutes: long enough for a package's post-install script.
    pub call_timeout: Duration,
    /// Plugin name → user its plugin-host child runs as (setuid/setgid).
    /// Default: none, the child runs as the agent.
    pub run_as_user: BTreeMap<String, String>,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            allowed_sha256: None,
            call_timeout: Duration::from_secs(300),
            run_as_user: BTreeMap::new(),
        }
    }
}

/// `plugins.allowed_sha256`: lowercase hex digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sha256AllowList {
    /// `{ "exec.so" = "hex" }`: each file name with its own digest; other files are refused.
    ByFile(BTreeMap<String, String>),
    /// `["hex", ...]`: any file whose digest is in the list.
    AnyOf(Vec<String>),
}

impl Sha256AllowList {
    /// Whether `file_name` with `digest` (lowercase hex) is allowed.
    pub fn allows(&self, file_name: &str, digest: &str) -> bool {
        match self {
            Self::ByFile(map) => map.get(file_name).is_some_and(|d| d == digest),
            Self::AnyOf(list) => list.iter().any(|d| d == digest),
        }
    }

    /// The digest expected for `file_name`, when the list names one.
    pub fn expected_for(&self, file_name: &str) -> Option<&str> {
        match self {
            Self::ByFile(map) => map.get(file_name).map(String::as_str),
            Self::AnyOf(_) => None,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (journald adds the timestamps).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The names as written in TOML.
    pub const NAMES: [(&'static str, Self); 2] = [("text", Self::Text), ("json", Self::Json)];

    /// The name as written in TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Line format. Default `text`.
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `dmagent=debug,actix=warn`). Default `info`:
    /// state changes and problems, not every message. `RUST_LOG` is not read,
    /// so the image alone decides.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

impl Settings {
    /// File name of the client database inside `paths.state_dir`.
    pub const DATABASE_FILE: &'static str = "dmagent.redb";

    /// The client database: `state_dir/dmagent.redb`.
    pub fn database_path(&self) -> PathBuf {
        self.paths.state_dir.join(Self::DATABASE_FILE)
    }

    /// The effective configuration as TOML (for `dmagent check-config
    /// --print`). Unset optional keys are left out; loading the text as a
    /// fragment gives back these settings.
    pub fn to_toml_string(&self) -> String {
        let mut root = Table::new();

        let mut server = Table::new();
        if let Some(url) = &self.server.url {
            server.insert("url".into(), Value::String(url.clone()));
        }
        server.insert(
            "request_timeout".into(),
            duration(self.server.request_timeout),
        );
        server.insert(
            "max_response_bytes".into(),
            int(self.server.max_response_bytes),
        );
        root.insert("server".into(), Value::Table(server));

        let mut identity = Table::new();
        identity.insert(
            "source".into(),
            Value::String(self.identity.source.as_str().into()),
        );
        if let Some(id) = &self.identity.device_id {
            identity.insert("device_id".into(), Value::String(id.clone()));
        }
        if let Some(name) = &self.identity.device_name {
            identity.insert("device_name".into(), Value::String(name.clone()));
        }
        identity.insert(
            "machine_id_path".into(),
            path(&self.identity.machine_id_path),
        );
        root.insert("identity".into(), Value::Table(identity));

        let mut paths = Table::new();
        paths.insert("state_dir".into(), path(&self.paths.state_dir));
        paths.insert("download_root".into(), path(&self.paths.download_root));
        paths.insert("plugin_dir".into(), path(&self.paths.plugin_dir));
        root.insert("paths".into(), Value::Table(paths));

        let mut poll = Table::new();
        poll.insert("interval".into(), duration(self.poll.interval));
        root.insert("poll".into(), Value::Table(poll));

        let mut retry = Table::new();
        retry.insert("interval".into(), duration(self.retry.interval));
        retry.insert("max_retries".into(), int(u64::from(self.retry.max_retries)));
        root.insert("retry".into(), Value::Table(retry));

        let mut tls = Table::new();
        for (key, value) in [
            ("ca_bundle", &self.tls.ca_bundle),
            ("client_cert", &self.tls.client_cert),
            ("client_key", &self.tls.client_key),
        ] {
            if let Some(p) = value {
                tls.insert(key.into(), path(p));
            }
        }
        root.insert("tls".into(), Value::Table(tls));

        let mut links = Table::new();
        links.insert(
            "docked_interfaces".into(),
            strings(&self.links.docked_interfaces),
        );
        links.insert(
            "low_bandwidth_interfaces".into(),
            strings(&self.links.low_bandwidth_interfaces),
        );
        links.insert(
            "high_bandwidth_threshold_bps".into(),
            int(self.links.high_bandwidth_threshold_bps),
        );
        links.insert(
            "assume".into(),
            Value::String(self.links.assume.as_str().into()),
        );
        root.insert("links".into(), Value::Table(links));

        let mut download = Table::new();
        download.insert(
            "bandwidth_limit".into(),
            int(self.download.bandwidth_limit.map_or(0, NonZeroU64::get)),
        );
        download.insert(
            "require_hash".into(),
            Value::Boolean(self.download.require_hash),
        );
        root.insert("download".into(), Value::Table(download));

        let mut trust = Table::new();
        trust.insert(
            "require_signature".into(),
            Value::Boolean(self.trust.require_signature),
        );
        let keys = self
            .trust
            .keys
            .iter()
            .map(|k| {
                let mut t = Table::new();
                t.insert("key".into(), Value::String(k.key.to_base64()));
                t.insert("id".into(), Value::String(k.key.id()));
                for (name, at) in [("not_before", k.not_before), ("not_after", k.not_after)] {
                    if let Some(at) = at {
                        let civil = crate::protocol::CivilTime::from_unix(at)
                            .map_or_else(|| at.to_string(), |c| c.to_string());
                        t.insert(name.into(), Value::String(civil));
                    }
                }
                Value::Table(t)
            })
            .collect();
        trust.insert("keys".into(), Value::Array(keys));
        trust.insert("revoked".into(), strings(&self.trust.revoked));
        root.insert("trust".into(), Value::Table(trust));

        let mut outbox = Table::new();
        outbox.insert("max_items".into(), int(self.outbox.max_items));
        root.insert("outbox".into(), Value::Table(outbox));

        let mut log = Table::new();
        log.insert(
            "format".into(),
            Value::String(self.log.format.as_str().into()),
        );
        log.insert("level".into(), Value::String(self.log.level.clone()));
        root.insert("log".into(), Value::Table(log));

        let mut plugins = Table::new();
        if let Some(list) = &self.plugins.allowed_sha256 {
            let value = match list {
                Sha256AllowList::ByFile(map) => Value::Table(
                    map.iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                ),
                Sha256AllowList::AnyOf(list) => strings(list),
            };
            plugins.insert("allowed_sha256".into(), value);
        }
        plugins.insert("call_timeout".into(), duration(self.plugins.call_timeout));
        if !self.plugins.run_as_user.is_empty() {
            plugins.insert(
                "run_as_user".into(),
                Value::Table(
                    self.plugins
                        .run_as_user
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                ),
            );
        }
        root.insert("plugins".into(), Value::Table(plugins));

        format!("# Effective dmagent configuration (all layers merged).\n\n{root}")
    }
}

fn duration(d: Duration) -> Value {
    Value::String(format_duration(d))
}

/// Values are bounded by the schema to fit an `i64`; saturate to be safe.
fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn path(p: &Path) -> Value {
    Value::String(p.to_string_lossy().into_owned())
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().cloned().map(Value::String).collect())
}
