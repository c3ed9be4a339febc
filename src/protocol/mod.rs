//! The wire protocol of `../shared/spec/`: typed documents and their XML codec.
//!
//! No I/O lives here. Every document type implements [`Document`], which
//! decodes leniently (any namespace or none, elements in any order, unknown
//! elements ignored) and defensively (no DOCTYPE or entities, size and depth
//! caps, overflow is an error), and encodes strictly (our namespace, the
//! documented element order and literals).
//!
//! Element, attribute and header names are copied from the spec and must not
//! be "tidied": real devices and servers match them byte for byte.

pub mod envelope;
pub mod error;
pub mod instructions;
pub mod inventory;
pub mod literals;
pub mod location;
pub mod poll;
pub mod status;

pub use envelope::{Action, DeviceHeaders, ReportType};
pub use error::{DecodeError, DecodeErrorKind};
pub use instructions::{Instructions, InstructionsRequest, PackageInstructions, Recurrence};
pub use inventory::{DirectoryEntry, FileEntry, FileReport, Inventory, InventoryItem, Property};
pub use literals::{CivilTime, LinkFlags, RecurrenceBehavior, StartTime};
pub use location::{
    ClientLocation, IpAddressEntry, Location, PackageLocation, PackageLocationRequest,
};
pub use poll::{
    ClientSettings, Connection, DevicePoll, FileFilterItem, Identification, ManagementSystem,
    NetworkAdapter, PackageRef, PollResponse, ReportSettings, Settings,
};
pub use status::{MessageId, Parameter, Status, StatusMessage};

/// The namespace emitted on every document (spec README, G16). Decoders ignore
/// namespaces entirely.
pub const NAMESPACE: &str = "http://www.microsoft.com/DeviceManagement.xsd";
