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

use std::fmt;
use std::str::FromStr;

/// `X-Device-Action: Report` — the action value of every report.
pub const ACTION_REPORT: &str = "Report";
/// Content type of a file-collection body.
pub const CONTENT_TYPE_OCTET_STREAM: &str = "application/octet-stream";

/// A header value the envelope helpers could not interpret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// `X-Device-Action` holds an unknown value.
    #[error("the X-Device-Action value {0:?} is not a known message kind")]
    UnknownAction(String),
    /// `X-Device-ReportType` holds an unknown value.
    #[error("the X-Device-ReportType value {0:?} is not a known report type")]
    UnknownReportType(String),
    /// `X-Device-Action: Report` without an `X-Device-ReportType`.
    #[error("X-Device-Action is Report but X-Device-ReportType is missing")]
    MissingReportType,
    /// A percent-decoded file name is not UTF-8.
    #[error("the percent-decoded file name is not valid UTF-8")]
    FilenameNotUtf8,
}

impl ReportType {
    /// The exact header value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SoftwareInventory => "SoftwareInventory",
            Self::MachineInventory => "MachineInventory",
            Self::FileCollection => "FileCollection",
        }
    }
}

impl fmt::Display for ReportType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Case-insensitive and trimmed; `HardwareInventory` is read as machine
/// inventory.
impl FromStr for ReportType {
    type Err = EnvelopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "softwareinventory" => Ok(Self::SoftwareInventory),
            "machineinventory" | "hardwareinventory" => Ok(Self::MachineInventory),
            "filecollection" => Ok(Self::FileCollection),
            _ => Err(EnvelopeError::UnknownReportType(s.to_owned())),
        }
    }
}

impl Action {
    /// The exact `X-Device-Action` value.
    pub fn action_value(&self) -> &'static str {
        match self {
            Self::Poll => "Poll",
            Self::InstructionRequest => "InstructionRequest",
            Self::LocationRequest => "LocationRequest",
            Self::Status => "Status",
            Self::Report(_) => ACTION_REPORT,
        }
    }

    /// The `X-Device-ReportType` value, for reports.
    pub fn report_type(&self) -> Option<ReportType> {
        match self {
            Self::Report(r) => Some(*r),
            _ => None,
        }
    }

    /// Reads the two headers (values case-insensitive, trimmed). `PollRequest`
    /// and `DevicePoll` are read as `Poll`; a report type given directly as the
    /// action (`SoftwareInventory`, ...) is read as that report.
    pub fn from_headers(action: &str, report_type: Option<&str>) -> Result<Self, EnvelopeError> {
        match action.trim().to_ascii_lowercase().as_str() {
            "poll" | "pollrequest" | "devicepoll" => Ok(Self::Poll),
            "instructionrequest" | "instructionsrequest" => Ok(Self::InstructionRequest),
            "locationrequest" | "packagelocationrequest" => Ok(Self::LocationRequest),
            "status" => Ok(Self::Status),
            "report" => match report_type.map(str::trim).filter(|r| !r.is_empty()) {
                Some(r) => r.parse().map(Self::Report),
                None => Err(EnvelopeError::MissingReportType),
            },
            _ => action
                .parse::<ReportType>()
                .map(Self::Report)
                .map_err(|_| EnvelopeError::UnknownAction(action.to_owned())),
        }
    }

    /// The message kind implied by a document's root element local name
    /// (fallback routing when `X-Device-Action` is missing). A namespace
    /// prefix is ignored.
    pub fn from_root_element(local_name: &str) -> Option<Self> {
        let name = local_name.rsplit(':').next().unwrap_or(local_name);
        match name {
            "DevicePoll" => Some(Self::Poll),
            "InstructionsRequest" => Some(Self::InstructionRequest),
            "PackageLocationRequest" => Some(Self::LocationRequest),
            "Status" => Some(Self::Status),
            "FileReport" => Some(Self::Report(ReportType::SoftwareInventory)),
            "Inventory" => Some(Self::Report(ReportType::MachineInventory)),
            _ => None,
        }
    }
}

/// The `X-Device-Action` value (`Report` for every report).
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.action_value())
    }
}

/// Percent-encodes a file name for `X-Device-FullyQualifiedFilename`
/// (RFC 3986 `%XX`, uppercase hex): every byte outside printable ASCII
/// (0x20..=0x7E) and `%` itself. Pure printable-ASCII names without `%` come
/// back unchanged.
pub fn percent_encode_filename(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if (0x20..=0x7E).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes [`percent_encode_filename`]. A `%` not followed by two hex digits
/// is kept literally (a legacy client sends names unencoded); the decoded
/// bytes must be UTF-8.
pub fn percent_decode_filename(value: &str) -> Result<String, EnvelopeError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| EnvelopeError::FilenameNotUtf8)
}

impl DeviceHeaders {
    /// The headers to send with a POST of `action`, in the documented order:
    /// UUID, Auth, Timestamp, client version, Action, and ReportType for
    /// reports. `Content-Type` is left to the caller (XML bodies:
    /// [`CONTENT_TYPE_XML`]; file collection: [`CONTENT_TYPE_OCTET_STREAM`]).
    pub fn pairs(&self, action: Action) -> Vec<(&'static str, String)> {
        let mut v = vec![
            (HEADER_UUID, self.uuid.clone()),
            (HEADER_AUTH, self.auth.clone()),
            (HEADER_TIMESTAMP, self.timestamp.clone()),
            (HEADER_CLIENT_VERSION, self.client_version.clone()),
            (HEADER_ACTION, action.action_value().to_owned()),
        ];
        if let Some(r) = action.report_type() {
            v.push((HEADER_REPORT_TYPE, r.as_str().to_owned()));
        }
        v
    }

    /// The headers of one file-collection POST: [`Self::pairs`] for
    /// `Report`/`FileCollection` plus the percent-encoded
    /// `X-Device-FullyQualifiedFilename`.
    pub fn file_collection_pairs(&self, device_path: &str) -> Vec<(&'static str, String)> {
        let mut v = self.pairs(Action::Report(ReportType::FileCollection));
        v.push((
            HEADER_FULLY_QUALIFIED_FILENAME,
            percent_encode_filename(device_path),
        ));
        v
    }

    /// Reads the standard header set through a case-insensitive lookup
    /// (absent headers become empty strings).
    pub fn from_lookup<'h>(lookup: impl Fn(&str) -> Option<&'h str>) -> Self {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        DeviceHeaders {
            uuid: get(HEADER_UUID),
            auth: get(HEADER_AUTH),
            timestamp: get(HEADER_TIMESTAMP),
            client_version: get(HEADER_CLIENT_VERSION),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent() {
        assert_eq!(
            percent_encode_filename(r"\Windows\viewer.log"),
            r"\Windows\viewer.log"
        );
        assert_eq!(percent_encode_filename("\\a b%\u{e9}"), "\\a b%25%C3%A9");
        assert_eq!(
            percent_decode_filename("\\a b%25%C3%A9").as_deref(),
            Ok("\\a b%\u{e9}")
        );
        assert_eq!(percent_decode_filename("50%off").as_deref(), Ok("50%off"));
        assert_eq!(percent_decode_filename("x%4").as_deref(), Ok("x%4"));
        assert_eq!(
            percent_decode_filename("%FF"),
            Err(EnvelopeError::FilenameNotUtf8)
        );
    }

    #[test]
    fn actions() {
        assert_eq!(Action::from_headers("poll", None), Ok(Action::Poll));
        assert_eq!(Action::from_headers("DevicePoll", None), Ok(Action::Poll));
        assert_eq!(
            Action::from_headers("Report", Some("HardwareInventory")),
            Ok(Action::Report(ReportType::MachineInventory))
        );
        assert_eq!(
            Action::from_headers("Report", None),
            Err(EnvelopeError::MissingReportType)
        );
        assert!(Action::from_headers("Bogus", None).is_err());
        assert_eq!(
            Action::from_root_element("Inventory"),
            Some(Action::Report(ReportType::MachineInventory))
        );
    }
}
