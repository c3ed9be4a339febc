//! `PackageLocationRequest` (device -> server) and `PackageLocation`
//! (server -> device), part B §2.

use serde::{Deserialize, Serialize};

/// Phase 1 of a download event: where is this package now?
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PackageLocationRequest {
    /// `PackageID`.
    pub package_id: String,
    /// `ClientLocation`: always emitted.
    pub client_location: ClientLocation,
}

/// `ClientLocation`: where the client sits, so the server can pick a mirror.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClientLocation {
    /// `DirectoryService/Name`.
    pub directory_service: Option<String>,
    /// `IPAddresses/IPAddress`, one per active non-loopback interface.
    pub ip_addresses: Vec<IpAddressEntry>,
}

/// `IPAddress` with `@address` and `@subnet` (a mask).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IpAddressEntry {
    /// `@address`.
    pub address: String,
    /// `@subnet`.
    pub subnet: Option<String>,
}

/// The location response: candidate sources of the package.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PackageLocation {
    /// `PackageID`.
    pub package_id: String,
    /// `Locations/Location`, in document order.
    pub locations: Vec<Location>,
}

/// One candidate source. The agent uses the lowest `metric` among the
/// locations that have an HTTP URL.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Location {
    /// `@metric`: lower is preferred (part B G5).
    pub metric: Option<u32>,
    /// `SMB/SMBPath` (not used by this agent, kept for the server's view).
    pub smb_path: Option<String>,
    /// `HTTP/URL`.
    pub http_url: Option<String>,
    /// `DirectoryService/Name`.
    pub directory_service: Option<String>,
    /// `IPSubnets/Subnet`.
    pub subnets: Vec<String>,
}
