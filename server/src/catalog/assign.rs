//! `catalog.toml`: default settings and assignment rules.

use std::path::Path;

use dmagent::protocol::{ClientSettings, FileFilterItem, PackageRef, ReportSettings, Settings};
use serde::Deserialize;

use super::package::DurationToml;
use super::CatalogError;

/// The TOML form of `catalog.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CatalogToml {
    #[serde(default)]
    pub(crate) client_settings: Option<ClientSettingsToml>,
    #[serde(default)]
    pub(crate) software_inventory: Option<ReportSettingsToml>,
    #[serde(default)]
    pub(crate) machine_inventory: Option<ReportSettingsToml>,
    #[serde(default)]
    pub(crate) file_collection: Option<ReportSettingsToml>,
    #[serde(default)]
    pub(crate) assign: Vec<RuleToml>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientSettingsToml {
    version: Option<String>,
    poll_server: Option<String>,
    poll_interval: Option<DurationToml>,
    failure_retry_count: Option<u32>,
    failure_retry_interval: Option<DurationToml>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportSettingsToml {
    version: Option<String>,
    enabled: Option<bool>,
    interval: Option<DurationToml>,
    /// X9: ask for the report at every interval, changed or not.
    send_unchanged: Option<bool>,
    #[serde(default)]
    file_filters: Vec<FilterToml>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterToml {
    filter: String,
    path: String,
    recursive: Option<bool>,
    exclude_compressed: Option<bool>,
    exclude_encrypted: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleToml {
    name: Option<String>,
    #[serde(default)]
    all: bool,
    platform: Option<String>,
    #[serde(default)]
    device_ids: Vec<String>,
    device_name: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
    client_settings: Option<ClientSettingsToml>,
    software_inventory: Option<ReportSettingsToml>,
    machine_inventory: Option<ReportSettingsToml>,
    file_collection: Option<ReportSettingsToml>,
}

/// One assignment rule. All given criteria must hold; `all = true` matches
/// every device.
#[derive(Debug, Clone)]
pub struct Rule {
    /// A label for views and errors.
    pub name: String,
    /// Matches every device.
    pub all: bool,
    /// `Identification/Platform`, compared case-insensitively.
    pub platform: Option<String>,
    /// Device IDs (exact).
    pub device_ids: Vec<String>,
    /// A `*`/`?` glob on `Identification/DeviceName`, case-insensitive.
    pub device_name: Option<String>,
    /// Package IDs assigned.
    pub packages: Vec<String>,
    /// Settings overriding the defaults for matching devices.
    pub settings: Settings,
}

/// What the server knows of a device when it applies the rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceFacts<'a> {
    /// The device ID.
    pub id: &'a str,
    /// `DeviceName`.
    pub name: Option<&'a str>,
    /// `Platform`.
    pub platform: Option<&'a str>,
}

impl Rule {
    /// Whether the rule applies to the device.
    pub fn matches(&self, d: &DeviceFacts<'_>) -> bool {
        if self.all {
            return true;
        }
        if let Some(p) = &self.platform {
            if !d
                .platform
                .is_some_and(|dp| dp.trim().eq_ignore_ascii_case(p))
            {
                return false;
            }
        }
        if !self.device_ids.is_empty() && !self.device_ids.iter().any(|i| i == d.id) {
            return false;
        }
        if let Some(g) = &self.device_name {
            if !d.name.is_some_and(|n| glob_match(g, n)) {
                return false;
            }
        }
        true
    }
}

/// Case-insensitive glob with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl ClientSettingsToml {
    fn resolve(&self, file: &Path, key: &str) -> Result<ClientSettings, CatalogError> {
        Ok(ClientSettings {
            version: self.version.clone(),
            poll_server: self.poll_server.clone(),
            poll_interval: self
                .poll_interval
                .as_ref()
                .map(|d| d.resolve(file, &format!("{key}.poll_interval")))
                .transpose()?,
            failure_retry_count: self.failure_retry_count,
            failure_retry_interval: self
                .failure_retry_interval
                .as_ref()
                .map(|d| d.resolve(file, &format!("{key}.failure_retry_interval")))
                .transpose()?,
        })
    }
}

impl ReportSettingsToml {
    fn resolve(&self, file: &Path, key: &str) -> Result<ReportSettings, CatalogError> {
        Ok(ReportSettings {
            version: self.version.clone(),
            enabled: self.enabled,
            send_unchanged: self.send_unchanged,
            interval: self
                .interval
                .as_ref()
                .map(|d| d.resolve(file, &format!("{key}.interval")))
                .transpose()?,
            file_filters: self
                .file_filters
                .iter()
                .map(|f| FileFilterItem {
                    filter: f.filter.clone(),
                    path: f.path.clone(),
                    recursive: f.recursive,
                    exclude_compressed: f.exclude_compressed,
                    exclude_encrypted: f.exclude_encrypted,
                })
                .collect(),
        })
    }
}

type SectionRefs<'a> = (
    &'a Option<ClientSettingsToml>,
    &'a Option<ReportSettingsToml>,
    &'a Option<ReportSettingsToml>,
    &'a Option<ReportSettingsToml>,
);

fn settings_from(file: &Path, prefix: &str, s: SectionRefs<'_>) -> Result<Settings, CatalogError> {
    let (client, sw, mi, fc) = s;
    Ok(Settings {
        client: client
            .as_ref()
            .map(|c| c.resolve(file, &format!("{prefix}client_settings")))
            .transpose()?,
        software_inventory: sw
            .as_ref()
            .map(|r| r.resolve(file, &format!("{prefix}software_inventory")))
            .transpose()?,
        machine_inventory: mi
            .as_ref()
            .map(|r| r.resolve(file, &format!("{prefix}machine_inventory")))
            .transpose()?,
        file_collection: fc
            .as_ref()
            .map(|r| r.resolve(file, &format!("{prefix}file_collection")))
            .transpose()?,
    })
}

impl CatalogToml {
    /// The default settings and the rules; package IDs are checked by the caller.
    pub(crate) fn resolve(&self, file: &Path) -> Result<(Settings, Vec<Rule>), CatalogError> {
        let defaults = settings_from(
            file,
            "",
            (
                &self.client_settings,
                &self.software_inventory,
                &self.machine_inventory,
                &self.file_collection,
            ),
        )?;
        let mut rules = Vec::new();
        for (i, r) in self.assign.iter().enumerate() {
            let prefix = format!("assign[{i}].");
            if !r.all && r.platform.is_none() && r.device_ids.is_empty() && r.device_name.is_none()
            {
                return Err(CatalogError::key(
                    file,
                    &format!("assign[{i}]"),
                    "needs `all = true` or at least one of `platform`, `device_ids`, `device_name`"
                        .into(),
                ));
            }
            rules.push(Rule {
                name: r.name.clone().unwrap_or_else(|| format!("assign[{i}]")),
                all: r.all,
                platform: r.platform.clone(),
                device_ids: r.device_ids.clone(),
                device_name: r.device_name.clone(),
                packages: r.packages.clone(),
                settings: settings_from(
                    file,
                    &prefix,
                    (
                        &r.client_settings,
                        &r.software_inventory,
                        &r.machine_inventory,
                        &r.file_collection,
                    ),
                )?,
            });
        }
        Ok((defaults, rules))
    }
}

/// The packages and settings that apply to a device: package IDs in rule
/// order without duplicates; later rules' settings sections replace earlier ones.
pub fn resolve_for(
    defaults: &Settings,
    rules: &[Rule],
    device: &DeviceFacts<'_>,
) -> (Vec<PackageRef>, Settings) {
    let mut packages: Vec<PackageRef> = Vec::new();
    let mut settings = defaults.clone();
    for r in rules.iter().filter(|r| r.matches(device)) {
        for p in &r.packages {
            if !packages.iter().any(|x| &x.id == p) {
                packages.push(PackageRef { id: p.clone() });
            }
        }
        if let Some(c) = &r.settings.client {
            settings.client = Some(c.clone());
        }
        if let Some(s) = &r.settings.software_inventory {
            settings.software_inventory = Some(s.clone());
        }
        if let Some(s) = &r.settings.machine_inventory {
            settings.machine_inventory = Some(s.clone());
        }
        if let Some(s) = &r.settings.file_collection {
            settings.file_collection = Some(s.clone());
        }
    }
    (packages, settings)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("KIOSK-*", "kiosk-017"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c*", "abcdef"));
        assert!(!glob_match("a?c", "abcd"));
        assert!(glob_match("*-0*7", "KIOSK-017"));
        assert!(!glob_match("KIOSK-*", "POS-1"));
    }
}
