//! The HTTP envelope shared by every device POST: the `X-Device-*` headers
//! (part A §6, spec README) and the message kinds they name.

use serde::{Deserialize, Serialize};

/// `X-Device-UUID`.
pub const HEADER_UUID: &str = "X-Device-UUID";
/// `X-Device-Auth`.
pub const HEADER_AUTH: &str = "X-Device-Auth";
/// `X-Device-Timestamp`.
pub const HEADER_TIMESTAMP: &str = "X-Device-Timestamp";
/// `X-Device-client-version` (mixed case exactly as documented).
pub const HEADER_CLIENT_VERSION: &str = "X-Device-client-version";
/// `X-Device-Action`.
pub const HEADER_ACTION: &str = "X-Device-Action";
/// `X-Device-ReportType`.
pub const HEADER_REPORT_TYPE: &str = "X-Device-ReportType";
/// `X-Device-FullyQualifiedFilename` (file collection).
pub const HEADER_FULLY_QUALIFIED_FILENAME: &str = "X-Device-FullyQualifiedFilename";
/// Content type of every XML body.
pub const CONTENT_TYPE_XML: &str = "text/xml; charset=utf-8";

/// The message kind a POST carries (`X-Device-Action`, with
/// `X-Device-ReportType` for reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// `Poll`.
    Poll,
    /// `InstructionRequest`.
    InstructionRequest,
    /// `LocationRequest`.
    LocationRequest,
    /// `Status`.
    Status,
    /// `Report` with its `X-Device-ReportType`.
    Report(ReportType),
}

/// `X-Device-ReportType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReportType {
    /// `SoftwareInventory`.
    SoftwareInventory,
    /// `MachineInventory`.
    MachineInventory,
    /// `FileCollection`.
    FileCollection,
}

/// The values of the standard header set that go on every device POST.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeviceHeaders {
    /// `X-Device-UUID`.
    pub uuid: String,
    /// `X-Device-Auth`: the latest server-issued value, empty if none.
    pub auth: String,
    /// `X-Device-Timestamp`: the latest server-issued value, empty if none.
    pub timestamp: String,
    /// `X-Device-client-version`.
    pub client_version: String,
}
