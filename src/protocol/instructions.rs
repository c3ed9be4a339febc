//! `InstructionsRequest` (device -> server) and `Instructions` (server ->
//! device), part A §7.3 and §7.4, with extensions X1 (`Hash`) and X5
//! (`BandwidthLimit`).

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
