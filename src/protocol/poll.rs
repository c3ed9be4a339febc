//! `DevicePoll` (device -> server) and `PollResponse` (server -> device),
//! part A §7.1 and §7.2.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The poll request: who the device is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DevicePoll {
    /// `ManagementSystem`: name and version of the management client.
    pub management_system: Option<ManagementSystem>,
    /// `Identification`: the device's identity (required).
    pub identification: Identification,
    /// `Connection`: echoed server-issued values.
    pub connection: Option<Connection>,
}

/// `DevicePoll/ManagementSystem`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManagementSystem {
    /// `Name`.
    pub name: Option<String>,
    /// `Version`.
    pub version: Option<String>,
}

/// `DevicePoll/Identification`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identification {
    /// `ID`: the device's unique ID, same value as `X-Device-UUID` (required).
    pub id: String,
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `UserName`.
    pub user_name: Option<String>,
    /// `Domain`.
    pub domain: Option<String>,
    /// `Platform`.
    pub platform: Option<String>,
    /// `Processor`: free text; real CE devices send a number (e.g. `586`).
    pub processor: Option<String>,
    /// `codePage` (emitted) / `CodePage` (also accepted).
    pub code_page: Option<u32>,
    /// `SystemDefaultLCID`: decimal on the wire; `0x0409` is accepted too.
    pub system_default_lcid: Option<u32>,
    /// `NetworkAdapter`s: emitted inside `Identification`, accepted directly
    /// under `DevicePoll` too.
    pub network_adapters: Vec<NetworkAdapter>,
}

/// `NetworkAdapter`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkAdapter {
    /// `IPAddress`.
    pub ip_address: Option<String>,
    /// `IPSubnet` (a mask, e.g. `255.255.255.0`).
    pub ip_subnet: Option<String>,
    /// `MAC`.
    pub mac: Option<String>,
}

/// `DevicePoll/Connection`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Connection {
    /// `AuthorizationToken`: same value as `X-Device-Auth`.
    pub authorization_token: Option<String>,
    /// `Timestamp`: the opaque server-issued value, same as `X-Device-Timestamp`.
    pub timestamp: Option<String>,
}

/// The poll response: every package the device should have, and setting changes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PollResponse {
    /// `Settings`: absent means no setting changes.
    pub settings: Option<Settings>,
    /// `ApplicablePackages`: `None` when the element is absent (no change to
    /// the package list, part A G16); `Some(vec![])` when present and empty
    /// (remove everything).
    pub applicable_packages: Option<Vec<PackageRef>>,
}

/// `PollResponse/Settings`. Each section may also appear directly under
/// `PollResponse`; decoders accept both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Settings {
    /// `ClientSettings`.
    pub client: Option<ClientSettings>,
    /// `SoftwareInventorySettings`.
    pub software_inventory: Option<ReportSettings>,
    /// `FileCollectionSettings`.
    pub file_collection: Option<ReportSettings>,
    /// `MachineInventorySettings` (never carries `FileFilterItem`s).
    pub machine_inventory: Option<ReportSettings>,
}

/// `ClientSettings`: absent children keep the current value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClientSettings {
    /// `@version`: opaque; an unchanged version may be skipped.
    pub version: Option<String>,
    /// `PollServer`: a URL or a bare host name.
    pub poll_server: Option<String>,
    /// `PollInterval`.
    pub poll_interval: Option<Duration>,
    /// `FailureRetryCount`.
    pub failure_retry_count: Option<u32>,
    /// `FailureRetryInterval`.
    pub failure_retry_interval: Option<Duration>,
}

/// `SoftwareInventorySettings`, `FileCollectionSettings` or `MachineInventorySettings`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReportSettings {
    /// `@version`: opaque; an unchanged version changes nothing.
    pub version: Option<String>,
    /// `Enabled`.
    pub enabled: Option<bool>,
    /// `Interval`.
    pub interval: Option<Duration>,
    /// `FileFilterItem`s, in document order.
    pub file_filters: Vec<FileFilterItem>,
}

/// `FileFilterItem`: one search directive.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileFilterItem {
    /// `Filter`: wildcard pattern with `*` (and `?`).
    pub filter: String,
    /// `Path`: the directory to search.
    pub path: String,
    /// `Recursive`.
    pub recursive: Option<bool>,
    /// `ExcludeCompressed`.
    pub exclude_compressed: Option<bool>,
    /// `ExcludeEncrypted`.
    pub exclude_encrypted: Option<bool>,
}

/// `ApplicablePackages/Package`: one package the device should have.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PackageRef {
    /// `@ID`.
    pub id: String,
}
