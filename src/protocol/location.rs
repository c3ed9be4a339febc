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

use super::error::DecodeError;
use super::literals::parse_u32;
use super::xml::{XmlIn, XmlOut};

type Result<T> = std::result::Result<T, DecodeError>;

/// Reads `DirectoryService/Name`; a `DirectoryService` without `Name` is `None`.
fn read_directory_service(p: &mut XmlIn<'_>) -> Result<Option<String>> {
    let mut name = None;
    while let Some(t) = p.next_child()? {
        if t.name == "Name" {
            name = Some(p.text()?);
        } else {
            p.skip()?;
        }
    }
    Ok(name)
}

pub(crate) fn read_location_request(p: &mut XmlIn<'_>) -> Result<PackageLocationRequest> {
    let here = p.path();
    let mut id = None;
    let mut out = PackageLocationRequest::default();
    while let Some(tag) = p.next_child()? {
        match tag.name() {
            "PackageID" => id = Some(p.text()?),
            "ClientLocation" => {
                let mut cl = ClientLocation::default();
                while let Some(t) = p.next_child()? {
                    match t.name() {
                        "DirectoryService" => cl.directory_service = read_directory_service(p)?,
                        "IPAddresses" => {
                            while let Some(a) = p.next_child()? {
                                if a.name == "IPAddress" {
                                    let address = p.req_attr(&a, "address")?.to_owned();
                                    let subnet = a.attr("subnet").map(str::to_owned);
                                    cl.ip_addresses.push(IpAddressEntry { address, subnet });
                                }
                                p.skip()?;
                            }
                        }
                        _ => p.skip()?,
                    }
                }
                out.client_location = cl;
            }
            _ => p.skip()?,
        }
    }
    out.package_id = id.ok_or_else(|| XmlIn::missing(&here, "PackageID"))?;
    Ok(out)
}

pub(crate) fn write_location_request(x: &PackageLocationRequest, w: &mut XmlOut) {
    w.leaf("PackageID", &x.package_id);
    let cl = &x.client_location;
    w.open("ClientLocation", &[]);
    if let Some(d) = &cl.directory_service {
        w.open("DirectoryService", &[]);
        w.leaf("Name", d);
        w.close("DirectoryService");
    }
    if !cl.ip_addresses.is_empty() {
        w.open("IPAddresses", &[]);
        for a in &cl.ip_addresses {
            w.empty(
                "IPAddress",
                &[
                    ("address", Some(&a.address)),
                    ("subnet", a.subnet.as_deref()),
                ],
            );
        }
        w.close("IPAddresses");
    }
    w.close("ClientLocation");
}

pub(crate) fn read_location(p: &mut XmlIn<'_>) -> Result<PackageLocation> {
    let here = p.path();
    let mut id = None;
    let mut out = PackageLocation::default();
    while let Some(tag) = p.next_child()? {
        match tag.name() {
            "PackageID" => id = Some(p.text()?),
            "Locations" => {
                while let Some(t) = p.next_child()? {
                    if t.name == "Location" {
                        out.locations.push(read_one_location(p, &t)?);
                    } else {
                        p.skip()?;
                    }
                }
            }
            // Lenient: a Location directly under the root.
            "Location" => out.locations.push(read_one_location(p, &tag)?),
            _ => p.skip()?,
        }
    }
    out.package_id = id.ok_or_else(|| XmlIn::missing(&here, "PackageID"))?;
    Ok(out)
}

fn read_one_location(p: &mut XmlIn<'_>, tag: &super::xml::Tag<'_>) -> Result<Location> {
    let mut out = Location {
        metric: p.parse_attr(tag, "metric", parse_u32)?,
        ..Location::default()
    };
    while let Some(t) = p.next_child()? {
        match t.name() {
            "SMB" => {
                while let Some(c) = p.next_child()? {
                    if c.name == "SMBPath" {
                        out.smb_path = Some(p.text()?);
                    } else {
                        p.skip()?;
                    }
                }
            }
            "HTTP" => {
                while let Some(c) = p.next_child()? {
                    if c.name == "URL" {
                        out.http_url = Some(p.text()?);
                    } else {
                        p.skip()?;
                    }
                }
            }
            "DirectoryService" => out.directory_service = read_directory_service(p)?,
            "IPSubnets" => {
                while let Some(c) = p.next_child()? {
                    if c.name == "Subnet" {
                        out.subnets.push(p.text()?);
                    } else {
                        p.skip()?;
                    }
                }
            }
            _ => p.skip()?,
        }
    }
    Ok(out)
}

pub(crate) fn write_location(x: &PackageLocation, w: &mut XmlOut) {
    w.leaf("PackageID", &x.package_id);
    w.open("Locations", &[]);
    for l in &x.locations {
        let metric = l.metric.map(|m| m.to_string());
        w.open("Location", &[("metric", metric.as_deref())]);
        if let Some(s) = &l.smb_path {
            w.open("SMB", &[]);
            w.leaf("SMBPath", s);
            w.close("SMB");
        }
        if let Some(u) = &l.http_url {
            w.open("HTTP", &[]);
            w.leaf("URL", u);
            w.close("HTTP");
        }
        if let Some(d) = &l.directory_service {
            w.open("DirectoryService", &[]);
            w.leaf("Name", d);
            w.close("DirectoryService");
        }
        if !l.subnets.is_empty() {
            w.open("IPSubnets", &[]);
            for s in &l.subnets {
                w.leaf("Subnet", s);
            }
            w.close("IPSubnets");
        }
        w.close("Location");
    }
    w.close("Locations");
}
