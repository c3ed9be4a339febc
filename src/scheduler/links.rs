//! Which link classes are up: the input of the `Flags` gate.
//!
//! A device can have several links at once (Wi-Fi and a USB cradle); a
//! package may download when any link up is a class its `Flags` allow. The
//! classes come from the image's `[links]` rules applied to the interfaces
//! the kernel reports as up.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{LinkClass, LinkSettings};

/// The set of link classes currently up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Links {
    /// A low-bandwidth link is up (`Flags` bit 0x1).
    pub low: bool,
    /// A high-bandwidth link is up (0x2).
    pub high: bool,
    /// A docked link is up (0x4).
    pub docked: bool,
}

impl Links {
    /// No link at all.
    pub const OFFLINE: Links = Links {
        low: false,
        high: false,
        docked: false,
    };

    /// Adds one classified link.
    pub fn with(mut self, class: LinkClass) -> Links {
        match class {
            LinkClass::Low => self.low = true,
            LinkClass::High => self.high = true,
            LinkClass::Docked => self.docked = true,
            LinkClass::Offline => {}
        }
        self
    }

    /// Whether nothing is up.
    pub fn is_offline(self) -> bool {
        !(self.low || self.high || self.docked)
    }

    /// The `Flags` bits the links up satisfy.
    pub fn bits(self) -> u32 {
        u32::from(self.low) | u32::from(self.high) << 1 | u32::from(self.docked) << 2
    }

    /// Whether a download with these `Flags` may run now: any link for 0,
    /// otherwise a link of an allowed class.
    pub fn admits(self, flags: u32) -> bool {
        !self.is_offline() && (flags & 0x7 == 0 || flags & self.bits() != 0)
    }
}

impl std::fmt::Display for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_offline() {
            return f.write_str("offline");
        }
        let names: Vec<&str> = [
            (self.low, "low bandwidth"),
            (self.high, "high bandwidth"),
            (self.docked, "docked"),
        ]
        .into_iter()
        .filter_map(|(up, name)| up.then_some(name))
        .collect();
        f.write_str(&names.join(" + "))
    }
}

/// Classifies the interfaces under `sys_class_net` (normally
/// `/sys/class/net`) that are up, skipping loopback. `links.assume` forces a
/// class without looking. Blocking (reads sysfs): call it off the async threads.
pub fn probe(rules: &LinkSettings, sys_class_net: &Path) -> Links {
    let forced = rules.classify(None, None);
    if rules.assume != crate::config::LinkAssume::Auto {
        return Links::OFFLINE.with(forced);
    }
    let Ok(entries) = std::fs::read_dir(sys_class_net) else {
        return Links::OFFLINE;
    };
    let mut links = Links::OFFLINE;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
        if name == "lo" || read("flags").is_some_and(|f| is_loopback_flags(&f)) {
            continue;
        }
        let up = match read("operstate").as_deref().map(str::trim) {
            Some("up") => true,
            // Tunnels and some virtual links report "unknown" but carry traffic.
            Some("unknown") => read("carrier").is_some_and(|c| c.trim() == "1"),
            _ => false,
        };
        if !up {
            continue;
        }
        // sysfs speed is in Mbit/s, -1 when unknown.
        let speed_bps = read("speed")
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|&mbps| mbps > 0)
            .map(|mbps| mbps as u64 * 1_000_000);
        links = links.with(rules.classify(Some(&name), speed_bps));
    }
    links
}

/// `IFF_LOOPBACK` (0x8) in the hex `flags` file.
fn is_loopback_flags(flags: &str) -> bool {
    u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).is_ok_and(|f| f & 0x8 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(root: &Path, name: &str, operstate: &str, speed: &str) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("operstate"), operstate).expect("write");
        std::fs::write(dir.join("speed"), speed).expect("write");
        std::fs::write(dir.join("flags"), "0x1003\n").expect("write");
    }

    #[test]
    fn admits_follows_the_flag_bits() {
        let wifi = Links::OFFLINE.with(LinkClass::High);
        assert!(wifi.admits(0));
        assert!(wifi.admits(0x2));
        assert!(wifi.admits(0x6));
        assert!(
            !wifi.admits(0x4),
            "docked-only waits while only Wi-Fi is up"
        );
        assert!(!wifi.admits(0x1));
        assert!(!Links::OFFLINE.admits(0));
        let both = wifi.with(LinkClass::Docked);
        assert!(both.admits(0x4));
        assert_eq!(both.to_string(), "high bandwidth + docked");
    }

    #[test]
    fn probe_classifies_interfaces_that_are_up() {
        let root = tempfile::tempdir().expect("tempdir");
        iface(root.path(), "lo", "unknown\n", "-1\n");
        iface(root.path(), "eth0", "up\n", "1000\n");
        iface(root.path(), "usb0", "down\n", "-1\n");
        let rules = LinkSettings::default();
        assert_eq!(
            probe(&rules, root.path()),
            Links::OFFLINE.with(LinkClass::High)
        );
        iface(root.path(), "usb0", "up\n", "-1\n");
        let links = probe(&rules, root.path());
        assert!(links.high && links.docked && !links.low);
        assert_eq!(probe(&rules, &root.path().join("missing")), Links::OFFLINE);
    }

    #[test]
    fn assume_forces_the_class() {
        let rules = LinkSettings {
            assume: crate::config::LinkAssume::Docked,
            ..LinkSettings::default()
        };
        assert_eq!(
            probe(&rules, Path::new("/nonexistent")),
            Links::OFFLINE.with(LinkClass::Docked)
        );
        let rules = LinkSettings {
            assume: crate::config::LinkAssume::None,
            ..LinkSettings::default()
        };
        assert!(probe(&rules, Path::new("/nonexistent")).is_offline());
    }
}
