//! Value literals shared by several documents: durations in the
//! `YYYY-MM-DD hh:mm:ss` shape, booleans, civil date-times, `Flags` masks and
//! the recurrence `Behavior` text.

use serde::{Deserialize, Serialize};

/// A calendar date and time of day with no zone attached, as the protocol
/// writes it: `YYYY-MM-DD hh:mm:ss`, 24-hour clock. Whether it is UTC or local
/// time is said by the context (`StartTime/@UTC`); status and report
/// timestamps are UTC by our decision (part B, G4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CivilTime {
    /// Four-digit year.
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31, valid for the month.
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59 (no leap seconds on the wire).
    pub second: u8,
}

/// `StartTime` of an instruction response: when the download event first fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartTime {
    /// `UTC="true"`: the value is UTC; otherwise it is the device's local time
    /// (absent attribute = local, part A §4.6).
    pub utc: bool,
    /// The time as written.
    pub time: CivilTime,
}

/// The `Flags` mask of an instruction response: which link classes may carry
/// the download. Written on the wire as four hex bytes, least significant first
/// (`06 00 00 00`). Zero means "no constraint" (part A G19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct LinkFlags(pub u32);

impl LinkFlags {
    /// `01 00 00 00`: a low-bandwidth link (< 128 Kbps) may be used.
    pub const LOW_BANDWIDTH: u32 = 0x1;
    /// `02 00 00 00`: a high-bandwidth link (>= 128 Kbps) may be used.
    pub const HIGH_BANDWIDTH: u32 = 0x2;
    /// `04 00 00 00`: the device may download while cradled/docked.
    pub const CRADLED: u32 = 0x4;
}

/// `Recurrence/Behavior`: what later occurrences of a recurring event do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum RecurrenceBehavior {
    /// `Download and Execute`: every occurrence runs all four phases (the
    /// default when `Behavior` is absent).
    #[default]
    DownloadAndExecute,
    /// `Execute Only`: download on the first occurrence, then only re-run the
    /// post-install command.
    ExecuteOnly,
}
