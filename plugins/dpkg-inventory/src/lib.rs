//! `dpkg-inventory`: a second software-inventory collector listing the
//! installed Debian packages from `/var/lib/dpkg/status` (overridable with the
//! environment variable `DMAGENT_DPKG_STATUS`), as one `Directory` named
//! `dpkg` with a `File` per package: Name, Version, Size (`Installed-Size`
//! KiB × 1024). Without the file it contributes nothing.
#![forbid(unsafe_code)]

use dmagent_plugin_api::{
    CollectRequest, CollectResult, Directory, File, PluginError, ReportCollector, REPORT_SOFTWARE,
};

const STATUS: &str = "/var/lib/dpkg/status";

/// The installed packages of a dpkg status file.
fn parse_status(text: &str) -> Vec<File> {
    let mut files = Vec::new();
    for paragraph in text.split("\n\n") {
        let field = |key: &str| {
            paragraph.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k == key).then(|| v.trim().to_owned())
            })
        };
        let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
        let Some(name) = field("Package").filter(|_| installed) else {
            continue;
        };
        let arch = field("Architecture").filter(|a| a != "all");
        files.push(File {
            name: match arch {
                Some(a) => format!("{name}:{a}"),
                None => name,
            },
            version: field("Version"),
            size: field("Installed-Size")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
                .saturating_mul(1024),
            ..File::default()
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

struct Dpkg;

impl ReportCollector for Dpkg {
    fn collect(&self, _: CollectRequest) -> Result<CollectResult, PluginError> {
        let path = std::env::var("DMAGENT_DPKG_STATUS").unwrap_or_else(|_| STATUS.to_owned());
        let Ok(text) = std::fs::read_to_string(&path) else {
            tracing::debug!(%path, "no dpkg status file");
            return Ok(CollectResult::Software {
                directories: vec![],
            });
        };
        let files = parse_status(&text);
        tracing::debug!(packages = files.len(), "dpkg packages listed");
        Ok(CollectResult::Software {
            directories: vec![Directory {
                name: "dpkg".to_owned(),
                attributes: Some(String::new()),
                files,
                ..Directory::default()
            }],
        })
    }
}

dmagent_plugin_api::export_plugin!(collector {
    name: "dpkg-inventory",
    reports: REPORT_SOFTWARE,
    collector: Dpkg,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_file() {
        let text = "Package: libc6\nStatus: install ok installed\nInstalled-Size: 12\nArchitecture: amd64\nVersion: 2.36-9\nDescription: x\n more\n\n\
                    Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                    Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a\n";
        let files = parse_status(text);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].name, "libc6:amd64");
        assert_eq!(files[0].version.as_deref(), Some("2.36-9"));
        assert_eq!(files[0].size, 12 * 1024);
        assert_eq!(files[1].name, "tzdata");
    }
}
