//! `InstructionsRequest` (device -> server) and `Instructions` (server ->
//! device), part A §7.3 and §7.4, with extensions X1 (`Hash`), X5
//! (`BandwidthLimit`) and X8 (`Signature`, `PackageSignature`, `SigningKey`;
//! what they cover is in [`crate::trust`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::literals::{LinkFlags, RecurrenceBehavior, StartTime};

/// The instruction request: one package per request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InstructionsRequest {
    /// `Package/@ID`.
    pub package_id: String,
}

/// The instruction response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Instructions {
    /// `Package` elements (our server sends exactly one: the requested package).
    pub packages: Vec<PackageInstructions>,
}

/// `Instructions/Package`: everything the device needs to schedule, fetch and
/// install one package.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PackageInstructions {
    /// `ID` (a child element here, unlike the request's attribute).
    pub id: String,
    /// `Required`: `Yes`/`No` on the wire. Absent = required.
    pub required: bool,
    /// `Name`.
    pub name: Option<String>,
    /// `ShortDescription`.
    pub short_description: Option<String>,
    /// `LongDescription`.
    pub long_description: Option<String>,
    /// `PackageSize` in bytes.
    pub package_size: Option<u64>,
    /// `Flags`: link classes that may carry the download.
    pub flags: Option<LinkFlags>,
    /// `StartTime`: absent = as soon as conditions allow.
    pub start_time: Option<StartTime>,
    /// `Recurrence`: present = recurring event.
    pub recurrence: Option<Recurrence>,
    /// `LocalDestination`: a device path, resolved inside the download root (X7).
    pub local_destination: Option<String>,
    /// `CommandLine`: the post-install command, optionally `<handler>:`-prefixed (X6).
    pub command_line: Option<String>,
    /// `SourceFiles`: `No` = command-only package, nothing to download.
    /// Absent = `Yes`.
    pub source_files: Option<bool>,
    /// X1 `Hash`: lowercase hex SHA-256 of the package file.
    pub hash: Option<PackageHash>,
    /// X5 `BandwidthLimit`: bytes per second.
    pub bandwidth_limit: Option<u64>,
    /// X8 `Signature`: over the canonical form of every other field above
    /// ([`crate::trust::canonical::instructions`]).
    pub signature: Option<SignatureElement>,
    /// X8 `PackageSignature`: over the package file's SHA-256 and size
    /// ([`crate::trust::canonical::package`]).
    pub package_signature: Option<SignatureElement>,
    /// X8 `SigningKey`: the key that made the signatures, endorsed by
    /// another key (key rotation).
    pub signing_key: Option<KeyEndorsement>,
}

/// X8: `<Signature algorithm="Ed25519" keyID="…">base64</Signature>` (also
/// `PackageSignature`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SignatureElement {
    /// `@algorithm`; only `Ed25519` is verified.
    pub algorithm: String,
    /// `@keyID`: the signing key's ID (16 hex digits).
    pub key_id: String,
    /// The signature, standard base64.
    pub value: String,
}

/// X8: `<SigningKey algorithm="Ed25519" publicKey="base64" endorsedBy="…">base64</SigningKey>`:
/// a public key and the signature of an older key over it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyEndorsement {
    /// `@algorithm`; only `Ed25519`.
    pub algorithm: String,
    /// `@publicKey`: the endorsed key, standard base64 of its 32 bytes.
    pub public_key: String,
    /// `@endorsedBy`: the ID of the key that signed it.
    pub endorsed_by: String,
    /// The endorsement signature, standard base64.
    pub value: String,
}

/// `Recurrence`: how a recurring event repeats.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Recurrence {
    /// `Interval`: start-to-start period.
    pub interval: Duration,
    /// `Behavior`.
    pub behavior: RecurrenceBehavior,
    /// `LocalDestination` given inside `Recurrence` (CE 5.0 placement); it
    /// overrides the package-level value for recurrences.
    pub local_destination: Option<String>,
    /// `CommandLine` given inside `Recurrence` (CE 6.0 placement); it overrides
    /// the package-level value for recurrences.
    pub command_line: Option<String>,
}

/// X1: `Hash algorithm="SHA-256"` with the lowercase hex digest as text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PackageHash {
    /// `@algorithm`, e.g. `SHA-256`.
    pub algorithm: String,
    /// Lowercase hex digest.
    pub hex: String,
}

use super::error::DecodeError;
use super::literals::{
    format_bool, format_duration, format_yes_no, parse_bool, parse_duration, parse_u64, CivilTime,
};
use super::xml::{XmlIn, XmlOut};

type Result<T> = std::result::Result<T, DecodeError>;

pub(crate) fn read_instructions_request(p: &mut XmlIn<'_>) -> Result<InstructionsRequest> {
    let here = p.path();
    let mut id = None;
    while let Some(tag) = p.next_child()? {
        if tag.name == "Package" && id.is_none() {
            id = Some(p.req_attr(&tag, "ID")?.to_owned());
        }
        p.skip()?;
    }
    Ok(InstructionsRequest {
        package_id: id.ok_or_else(|| XmlIn::missing(&here, "Package"))?,
    })
}

pub(crate) fn write_instructions_request(x: &InstructionsRequest, w: &mut XmlOut) {
    w.empty("Package", &[("ID", Some(&x.package_id))]);
}

pub(crate) fn read_instructions(p: &mut XmlIn<'_>) -> Result<Instructions> {
    let mut out = Instructions::default();
    while let Some(tag) = p.next_child()? {
        if tag.name == "Package" {
            let attr_id = tag.attr("ID").map(str::to_owned);
            out.packages.push(read_package(p, attr_id)?);
        } else {
            p.skip()?;
        }
    }
    Ok(out)
}

fn read_package(p: &mut XmlIn<'_>, attr_id: Option<String>) -> Result<PackageInstructions> {
    let here = p.path();
    let mut id = None;
    let mut out = PackageInstructions {
        required: true,
        ..PackageInstructions::default()
    };
    while let Some(tag) = p.next_child()? {
        match tag.name() {
            "ID" => id = Some(p.text()?),
            "Required" => out.required = p.parse_text(parse_bool)?,
            "Name" => out.name = Some(p.text()?),
            "ShortDescription" => out.short_description = Some(p.text()?),
            "LongDescription" => out.long_description = Some(p.text()?),
            "PackageSize" => out.package_size = Some(p.parse_text(parse_u64)?),
            "Flags" => out.flags = Some(p.parse_text(str::parse)?),
            "StartTime" => {
                let utc = p.parse_attr(&tag, "UTC", parse_bool)?.unwrap_or(false);
                let time: CivilTime = p.parse_text(str::parse)?;
                out.start_time = Some(StartTime { utc, time });
            }
            "Recurrence" => out.recurrence = Some(read_recurrence(p)?),
            "LocalDestination" => out.local_destination = Some(p.text()?),
            "CommandLine" => out.command_line = Some(p.text()?),
            "SourceFiles" => out.source_files = Some(p.parse_text(parse_bool)?),
            "Hash" => {
                let algorithm = tag.attr("algorithm").unwrap_or("SHA-256").to_owned();
                let hex = p.text()?;
                out.hash = Some(PackageHash { algorithm, hex });
            }
            "BandwidthLimit" => out.bandwidth_limit = Some(p.parse_text(parse_u64)?),
            "Signature" => out.signature = Some(read_signature(p, &tag)?),
            "PackageSignature" => out.package_signature = Some(read_signature(p, &tag)?),
            "SigningKey" => {
                let algorithm = tag.attr("algorithm").unwrap_or("Ed25519").to_owned();
                let public_key = p.req_attr(&tag, "publicKey")?.to_owned();
                let endorsed_by = p.req_attr(&tag, "endorsedBy")?.to_owned();
                let value = p.text()?;
                out.signing_key = Some(KeyEndorsement {
                    algorithm,
                    public_key,
                    endorsed_by,
                    value,
                });
            }
            _ => p.skip()?,
        }
    }
    out.id = id.or(attr_id).ok_or_else(|| XmlIn::missing(&here, "ID"))?;
    Ok(out)
}

fn read_signature(p: &mut XmlIn<'_>, tag: &super::xml::Tag<'_>) -> Result<SignatureElement> {
    let algorithm = tag.attr("algorithm").unwrap_or("Ed25519").to_owned();
    let key_id = p.req_attr(tag, "keyID")?.to_owned();
    let value = p.text()?;
    Ok(SignatureElement {
        algorithm,
        key_id,
        value,
    })
}

fn read_recurrence(p: &mut XmlIn<'_>) -> Result<Recurrence> {
    let here = p.path();
    let mut interval = None;
    let mut out = Recurrence::default();
    while let Some(tag) = p.next_child()? {
        match tag.name() {
            "Interval" => interval = Some(p.parse_text(parse_duration)?),
            "Behavior" => out.behavior = p.parse_text(str::parse)?,
            "LocalDestination" => out.local_destination = Some(p.text()?),
            "CommandLine" => out.command_line = Some(p.text()?),
            _ => p.skip()?,
        }
    }
    out.interval = interval.ok_or_else(|| XmlIn::missing(&here, "Interval"))?;
    Ok(out)
}

pub(crate) fn write_instructions(x: &Instructions, w: &mut XmlOut) {
    for pkg in &x.packages {
        w.open("Package", &[]);
        w.leaf("ID", &pkg.id);
        w.leaf("Required", format_yes_no(pkg.required));
        w.opt("Name", pkg.name.as_deref());
        w.opt("ShortDescription", pkg.short_description.as_deref());
        w.opt("LongDescription", pkg.long_description.as_deref());
        w.opt_display("PackageSize", pkg.package_size);
        w.opt_display("Flags", pkg.flags);
        if let Some(st) = &pkg.start_time {
            w.leaf_with(
                "StartTime",
                &[("UTC", Some(format_bool(st.utc)))],
                &st.time.to_string(),
            );
        }
        if let Some(r) = &pkg.recurrence {
            w.open("Recurrence", &[]);
            w.leaf("Interval", &format_duration(r.interval));
            w.leaf("Behavior", r.behavior.as_str());
            w.opt("LocalDestination", r.local_destination.as_deref());
            w.opt("CommandLine", r.command_line.as_deref());
            w.close("Recurrence");
        }
        w.opt("LocalDestination", pkg.local_destination.as_deref());
        w.opt("CommandLine", pkg.command_line.as_deref());
        w.opt("SourceFiles", pkg.source_files.map(format_yes_no));
        if let Some(h) = &pkg.hash {
            w.leaf_with("Hash", &[("algorithm", Some(&h.algorithm))], &h.hex);
        }
        w.opt_display("BandwidthLimit", pkg.bandwidth_limit);
        for (name, sig) in [
            ("Signature", &pkg.signature),
            ("PackageSignature", &pkg.package_signature),
        ] {
            if let Some(sig) = sig {
                w.leaf_with(
                    name,
                    &[
                        ("algorithm", Some(&sig.algorithm)),
                        ("keyID", Some(&sig.key_id)),
                    ],
                    &sig.value,
                );
            }
        }
        if let Some(k) = &pkg.signing_key {
            w.leaf_with(
                "SigningKey",
                &[
                    ("algorithm", Some(&k.algorithm)),
                    ("publicKey", Some(&k.public_key)),
                    ("endorsedBy", Some(&k.endorsed_by)),
                ],
                &k.value,
            );
        }
        w.close("Package");
    }
}
