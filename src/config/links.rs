//! Link classification rules (`[links]`): which `Flags` class the current
//! network link belongs to.
//!
//! The protocol's `Flags` allow a package download on a low-bandwidth link
//! (0x1, below 128 Kbps), a high-bandwidth link (0x2) or only when docked
//! (0x4, ActiveSync desktop pass-through). How a modern device tells these
//! apart is the image's business, so it is configuration: interface-name
//! patterns for docked and low-bandwidth links, a speed threshold for the rest.

use super::settings::LinkSettings;

/// A forced link class (`links.assume`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkAssume {
    /// Classify the actual link with the rules.
    #[default]
    Auto,
    /// Always high bandwidth.
    High,
    /// Always low bandwidth.
    Low,
    /// Always docked.
    Docked,
    /// Never connected: no package download condition is met.
    None,
}

impl LinkAssume {
    /// The names as written in TOML.
    pub const NAMES: [(&'static str, Self); 5] = [
        ("auto", Self::Auto),
        ("high", Self::High),
        ("low", Self::Low),
        ("docked", Self::Docked),
        ("none", Self::None),
    ];

    /// The name as written in TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::High => "high",
            Self::Low => "low",
            Self::Docked => "docked",
            Self::None => "none",
        }
    }
}

/// The class of a link, as the `Flags` bits see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkClass {
    /// Below the threshold, or a low-bandwidth interface.
    Low,
    /// At or above the threshold.
    High,
    /// A docked interface.
    Docked,
    /// No usable link.
    Offline,
}

impl LinkClass {
    /// The `Flags` bit this class satisfies (0 for offline).
    pub fn flag_bit(self) -> u32 {
        match self {
            Self::Low => 0x1,
            Self::High => 0x2,
            Self::Docked => 0x4,
            Self::Offline => 0,
        }
    }

    /// Whether a package with these `Flags` may download on this link.
    /// `0` means no constraint (any link, but not offline).
    pub fn allows(self, flags: u32) -> bool {
        match self {
            Self::Offline => false,
            _ if flags == 0 => true,
            _ => flags & self.flag_bit() != 0,
        }
    }
}

impl LinkSettings {
    /// Classifies the link through `interface` (its name, e.g. `wlan0`), with
    /// its measured or nominal speed in bits/s when known. Precedence:
    /// `assume` (unless `auto`), then docked patterns, then low-bandwidth
    /// patterns, then the speed threshold; unknown speed counts as high.
    pub fn classify(&self, interface: Option<&str>, speed_bps: Option<u64>) -> LinkClass {
        match self.assume {
            LinkAssume::High => return LinkClass::High,
            LinkAssume::Low => return LinkClass::Low,
            LinkAssume::Docked => return LinkClass::Docked,
            LinkAssume::None => return LinkClass::Offline,
            LinkAssume::Auto => {}
        }
        let Some(name) = interface else {
            return LinkClass::Offline;
        };
        let matches = |patterns: &[String]| patterns.iter().any(|p| glob_match(p, name));
        if matches(&self.docked_interfaces) {
            LinkClass::Docked
        } else if matches(&self.low_bandwidth_interfaces)
            || speed_bps.is_some_and(|bps| bps < self.high_bandwidth_threshold_bps)
        {
            LinkClass::Low
        } else {
            LinkClass::High
        }
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters (also none) and everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return name.is_empty();
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: exact match.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("usb0", "usb0"));
        assert!(!glob_match("usb0", "usb01"));
        assert!(glob_match("rndis*", "rndis0"));
        assert!(glob_match("rndis*", "rndis"));
        assert!(!glob_match("rndis*", "xrndis0"));
        assert!(glob_match("*0", "eth0"));
        assert!(glob_match("w*n*", "wwan0"));
        assert!(glob_match("e*h*0", "eth0"));
        assert!(!glob_match("e*h*1", "eth0"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*a", "aa"));
        assert!(!glob_match("a*a", "a"));
    }

    #[test]
    fn classification() {
        let rules = LinkSettings::default();
        assert_eq!(rules.classify(Some("usb0"), None), LinkClass::Docked);
        assert_eq!(
            rules.classify(Some("wwan0"), Some(100_000_000)),
            LinkClass::Low
        );
        assert_eq!(rules.classify(Some("eth0"), Some(127_999)), LinkClass::Low);
        assert_eq!(rules.classify(Some("eth0"), Some(128_000)), LinkClass::High);
        assert_eq!(rules.classify(Some("wlan0"), None), LinkClass::High);
        assert_eq!(rules.classify(None, None), LinkClass::Offline);
        let forced = LinkSettings {
            assume: LinkAssume::Docked,
            ..LinkSettings::default()
        };
        assert_eq!(forced.classify(Some("wwan0"), None), LinkClass::Docked);
        assert!(LinkClass::High.allows(0x06));
        assert!(!LinkClass::Low.allows(0x06));
        assert!(LinkClass::Low.allows(0));
        assert!(!LinkClass::Offline.allows(0));
    }
}
