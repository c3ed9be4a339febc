//! `machine-inventory`: the machine inventory collector (part B §4.2.1
//! names). Sources: sysinfo for processors, memory, network interfaces and
//! volumes; DMI (`/sys/class/dmi/id`) for the platform; `/sys/class/net/*/speed`
//! for link speed; `/sys/class/power_supply` for power.
//!
//! Volumes (`Device_FileSystem`): one per mounted filesystem backed by a block
//! device (`/dev/...`), pseudo and memory filesystems (proc, sysfs, tmpfs,
//! devtmpfs, overlay, squashfs, ...) skipped; the root filesystem is always
//! reported, even when it is an overlay (containers), so the report is never
//! without storage.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use dmagent_plugin_api::{
    CollectRequest, CollectResult, InventoryItem, PluginError, ReportCollector, REPORT_MACHINE,
};
use sysinfo::{Disks, Networks, System};

/// Filesystem types that are never a volume of the device.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "tmpfs",
    "devtmpfs",
    "devpts",
    "overlay",
    "squashfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "autofs",
    "mqueue",
    "hugetlbfs",
    "fusectl",
    "configfs",
    "ramfs",
    "nsfs",
    "efivarfs",
    "binfmt_misc",
    "rpc_pipefs",
];

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

struct Item(InventoryItem);

impl Item {
    fn new(name: &str) -> Self {
        Item(InventoryItem {
            name: name.to_owned(),
            properties: Vec::new(),
        })
    }
    fn prop(mut self, name: &str, value: impl ToString) -> Self {
        self.0.properties.push((name.to_owned(), value.to_string()));
        self
    }
}

/// Win32 `PROCESSOR_ARCHITECTURE_*` and a processor type code.
fn architecture(arch: &str) -> (u32, u32) {
    match arch {
        "x86" => (0, 586),
        "x86_64" => (9, 8664),
        "arm" => (5, 0),
        "aarch64" => (12, 0),
        _ => (0xFFFF, 0),
    }
}

/// `(level, revision)` from `/proc/cpuinfo`: x86 family and model/stepping;
/// ARM architecture and revision.
fn processor_level_revision(cpuinfo: &str) -> (u32, u32) {
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
    };
    let num = |s: Option<String>| -> u32 {
        s.and_then(|v| {
            let v = v.trim_start_matches("0x");
            v.parse().ok().or_else(|| u32::from_str_radix(v, 16).ok())
        })
        .unwrap_or(0)
    };
    if let Some(family) = field("cpu family") {
        let model = num(field("model"));
        let stepping = num(field("stepping"));
        (num(Some(family)), (model << 8) | (stepping & 0xff))
    } else {
        (num(field("CPU architecture")), num(field("CPU revision")))
    }
}

fn kernel_numbers(release: &str) -> (u32, u32, u32) {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

fn netmask(prefix: u8) -> String {
    let bits: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    std::net::Ipv4Addr::from(bits).to_string()
}

fn power(dir: &Path) -> Item {
    let mut ac = 255u32;
    let mut battery_flag = 128u32; // no system battery
    let mut percent = 255u32;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let p = entry.path();
            match read_trimmed(p.join("type")).as_deref() {
                Some("Mains") => {
                    if let Some(online) = read_trimmed(p.join("online")) {
                        ac = u32::from(online == "1");
                    }
                }
                Some("Battery") => {
                    percent = read_trimmed(p.join("capacity"))
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(255);
                    let charging = read_trimmed(p.join("status")).as_deref() == Some("Charging");
                    battery_flag = match percent {
                        0..=5 => 4,
                        6..=32 => 2,
                        33..=100 => 1,
                        _ => 255,
                    } | if charging { 8 } else { 0 };
                }
                _ => {}
            }
        }
    }
    Item::new("Device_Power")
        .prop("AC", ac)
        .prop("Battery", battery_flag)
        .prop("BatteryPercent", percent)
        .prop("Backup", 128)
        .prop("BackupPercent", 255)
}

struct Machine;

impl ReportCollector for Machine {
    fn collect(&self, _: CollectRequest) -> Result<CollectResult, PluginError> {
        let mut items = Vec::new();
        let fail = |what: &str, e: sysinfo::Error| PluginError::new(format!("{what}: {e}"));
        let mut sys = System::new().map_err(|e| fail("system", e))?;
        sys.refresh_memory();
        sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());

        let arch = std::env::consts::ARCH;
        let (code, ptype) = architecture(arch);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let (level, revision) = processor_level_revision(&cpuinfo);
        let cpus = sys.cpus().len().max(1);
        items.push(
            Item::new("Device_System")
                .prop(
                    "PlatformType",
                    read_trimmed("/sys/class/dmi/id/product_name")
                        .unwrap_or_else(|| "Linux".into()),
                )
                .prop(
                    "OEMInfo",
                    read_trimmed("/sys/class/dmi/id/sys_vendor").unwrap_or_default(),
                )
                .prop("NumberOfProcessors", cpus)
                .prop("ProcessorArchitecture", code)
                .prop("ProcessorType", ptype)
                .prop("ProcessorLevel", level)
                .prop("ProcessorRevision", revision),
        );

        let release = System::kernel_version().unwrap_or_default();
        let (major, minor, build) = kernel_numbers(&release);
        items.push(
            Item::new("Device_OS")
                .prop("Platform", 100)
                .prop("MajorVersion", major)
                .prop("MinorVersion", minor)
                .prop("BuildNumber", build),
        );

        let networks = Networks::new_with_refreshed_list().map_err(|e| fail("networks", e))?;
        let mut names: Vec<_> = networks.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, data) in names {
            let name = name.to_string_lossy();
            if name == "lo" {
                continue;
            }
            let v4 = data
                .ip_networks()
                .iter()
                .find(|n| matches!(n.addr, IpAddr::V4(_)));
            let Some(net) = v4 else { continue };
            if net.addr.is_loopback() {
                continue;
            }
            let mac = data
                .mac_address()
                .to_string()
                .replace(':', "-")
                .to_ascii_uppercase();
            let mut item = Item::new("Device_Network")
                .prop("IPAddress", net.addr)
                .prop("IPSubnet", netmask(net.prefix))
                .prop("MAC", mac);
            let speed = read_trimmed(format!("/sys/class/net/{name}/speed"))
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|s| *s > 0);
            if let Some(mbits) = speed {
                item = item.prop("Bandwidth", mbits * 1_000_000);
            }
            items.push(item);
        }

        items.push(power(Path::new("/sys/class/power_supply")));

        let disks = Disks::new_with_refreshed_list().map_err(|e| fail("disks", e))?;
        let kb = |b: u64| b / 1024;
        let root = disks.iter().find(|d| d.mount_point() == Path::new("/"));
        let (storage, storage_free) =
            root.map_or((0, 0), |d| (kb(d.total_space()), kb(d.available_space())));
        items.push(
            Item::new("Device_Memory")
                .prop("Total", kb(sys.total_memory()))
                .prop(
                    "Program",
                    kb(sys.total_memory().saturating_sub(sys.available_memory())),
                )
                .prop("ProgramFree", kb(sys.available_memory()))
                .prop("Storage", storage)
                .prop("StorageFree", storage_free),
        );

        let mut seen = BTreeSet::new();
        for disk in disks.iter() {
            let fs = disk.file_system().to_string_lossy();
            let device = disk.name().to_string_lossy();
            let mount = disk.mount_point();
            let real = device.starts_with("/dev/") && !PSEUDO_FS.contains(&fs.as_ref());
            if !(real || mount == Path::new("/")) || !seen.insert(mount.to_path_buf()) {
                continue;
            }
            items.push(
                Item::new("Device_FileSystem")
                    .prop("Name", mount.display())
                    .prop("Size", kb(disk.total_space()))
                    .prop(
                        "UsedSpace",
                        kb(disk.total_space().saturating_sub(disk.available_space())),
                    ),
            );
        }
        tracing::debug!(items = items.len(), "machine inventory collected");
        Ok(CollectResult::Machine {
            items: items.into_iter().map(|i| i.0).collect(),
        })
    }
}

dmagent_plugin_api::export_plugin!(collector {
    name: "machine-inventory",
    reports: REPORT_MACHINE,
    collector: Machine,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(kernel_numbers("6.8.0-45-generic"), (6, 8, 0));
        assert_eq!(kernel_numbers("5.15.167.4-microsoft"), (5, 15, 167));
        assert_eq!(netmask(24), "255.255.255.0");
        assert_eq!(netmask(0), "0.0.0.0");
        assert_eq!(architecture("aarch64").0, 12);
        let x86 = "cpu family\t: 6\nmodel\t\t: 85\nstepping\t: 7\n";
        assert_eq!(processor_level_revision(x86), (6, (85 << 8) | 7));
        let arm = "CPU architecture: 8\nCPU revision\t: 4\n";
        assert_eq!(processor_level_revision(arm), (8, 4));
    }
}
