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

pub use envelope::{
    percent_decode_filename, percent_encode_filename, Action, DeviceHeaders, EnvelopeError,
    ReportType,
};
pub use error::{DecodeError, DecodeErrorKind};
pub use instructions::PackageHash;
pub use instructions::{
    Instructions, InstructionsRequest, KeyEndorsement, PackageInstructions, Recurrence,
    SignatureElement,
};
pub use inventory::{DirectoryEntry, FileEntry, FileReport, Inventory, InventoryItem, Property};
pub use literals::{CivilTime, LinkFlags, RecurrenceBehavior, StartTime};
pub use location::{
    ClientLocation, IpAddressEntry, Location, PackageLocation, PackageLocationRequest,
};
pub use poll::{
    ClientSettings, Connection, DevicePoll, FileFilterItem, Identification, ManagementSystem,
    NetworkAdapter, PackageList, PackageRef, PollResponse, ReportSettings, Settings,
};
pub use status::{MessageId, Parameter, Status, StatusMessage};

/// The namespace emitted on every document (spec README, G16). Decoders ignore
/// namespaces entirely.
pub const NAMESPACE: &str = "http://www.microsoft.com/DeviceManagement.xsd";

mod xml;

pub use error::Limits;

/// A protocol document: decodes leniently and defensively, encodes strictly.
///
/// ```
/// use dmagent::protocol::{Document, InstructionsRequest};
/// let req = InstructionsRequest { package_id: "PKG-1".into() };
/// let bytes = req.encode();
/// assert_eq!(InstructionsRequest::decode(&bytes).unwrap(), req);
/// ```
pub trait Document: Sized {
    /// The local name of the root element.
    const ROOT: &'static str;

    /// Decodes with the default [`Limits`].
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with(bytes, &Limits::default())
    }

    /// Decodes with explicit limits.
    fn decode_with(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError>;

    /// Encodes as a UTF-8 XML document (declaration, our namespace on the root).
    fn encode_string(&self) -> String;

    /// Encodes as UTF-8 bytes.
    fn encode(&self) -> Vec<u8> {
        self.encode_string().into_bytes()
    }
}

/// The local name of the root element of `bytes` (for dispatch when
/// `X-Device-Action` is missing). The same size cap, encoding check and
/// DOCTYPE refusal apply as for a full decode; only the prolog and the root
/// start tag are parsed.
pub fn root_element_name(bytes: &[u8]) -> Result<String, DecodeError> {
    root_element_name_with(bytes, &Limits::default())
}

/// [`root_element_name`] with explicit limits.
pub fn root_element_name_with(bytes: &[u8], limits: &Limits) -> Result<String, DecodeError> {
    let mut p = xml::XmlIn::new(bytes, limits)?;
    Ok(p.any_root()?.name.into_owned())
}

macro_rules! document {
    ($ty:ty, $root:literal, |$p:ident, $tag:ident| $read:expr, $write:path $(, $attrs:path)?) => {
        impl $ty {
            /// The whole document from `p`: root, content, nothing after.
            fn read_whole(mut $p: xml::XmlIn<'_>) -> Result<Self, DecodeError> {
                #[allow(unused_variables)]
                let $tag = $p.root(<Self as Document>::ROOT)?;
                let value = $read;
                $p.finish()?;
                Ok(value)
            }
        }

        impl Document for $ty {
            const ROOT: &'static str = $root;

            fn decode_with(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
                <$ty>::read_whole(xml::XmlIn::new(bytes, limits)?)
            }

            fn encode_string(&self) -> String {
                let attrs: Vec<xml::Attr<'_>> = document!(@attrs self $(, $attrs)?);
                let mut w = xml::XmlOut::new(Self::ROOT, &attrs);
                $write(self, &mut w);
                w.finish(Self::ROOT)
            }
        }
    };
    (@attrs $self:ident) => { Vec::new() };
    (@attrs $self:ident, $attrs:path) => { $attrs($self) };
}

document!(
    DevicePoll,
    "DevicePoll",
    |p, t| poll::read_device_poll(&mut p)?,
    poll::write_device_poll
);
document!(
    PollResponse,
    "PollResponse",
    |p, t| poll::read_poll_response(&mut p)?,
    poll::write_poll_response
);

impl PollResponse {
    /// [`Document::decode`] of a body the caller holds as a shared buffer
    /// (as the transport hands it over): the package list refers to the
    /// body instead of copying its IDs.
    pub fn decode_shared(body: &bytes::Bytes) -> Result<Self, DecodeError> {
        Self::decode_shared_with(body, &Limits::default())
    }

    /// [`Self::decode_shared`] with explicit limits.
    pub fn decode_shared_with(body: &bytes::Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        Self::read_whole(xml::XmlIn::new_shared(body, limits)?)
    }
}
document!(
    InstructionsRequest,
    "InstructionsRequest",
    |p, t| instructions::read_instructions_request(&mut p)?,
    instructions::write_instructions_request
);
document!(
    Instructions,
    "Instructions",
    |p, t| instructions::read_instructions(&mut p)?,
    instructions::write_instructions
);
document!(
    PackageLocationRequest,
    "PackageLocationRequest",
    |p, t| location::read_location_request(&mut p)?,
    location::write_location_request
);
document!(
    PackageLocation,
    "PackageLocation",
    |p, t| location::read_location(&mut p)?,
    location::write_location
);
document!(
    Status,
    "Status",
    |p, t| status::read_status(&mut p)?,
    status::write_status
);
document!(
    FileReport,
    "FileReport",
    |p, t| inventory::read_file_report(&mut p)?,
    inventory::write_file_report
);
document!(
    Inventory,
    "Inventory",
    |p, t| inventory::read_inventory(&mut p, &t)?,
    inventory::write_inventory,
    inventory::inventory_root_attrs
);
