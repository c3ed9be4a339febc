//! Value literals shared by several documents: durations in the
//! `YYYY-MM-DD hh:mm:ss` shape, booleans, civil date-times, `Flags` masks and
//! the recurrence `Behavior` text.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::DecodeErrorKind;

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

const CIVIL_EXPECTED: &str = "a date-time `YYYY-MM-DD hh:mm:ss` (or `YYYY-MM-DDThh:mm:ss[Z]`)";
const DURATION_EXPECTED: &str =
    "a duration `YYYY-MM-DD hh:mm:ss`, whole seconds or ISO-8601 `PnDTnHnMnS`";
const BOOL_EXPECTED: &str = "a boolean (true/false, yes/no, 1/0)";
const FLAGS_EXPECTED: &str = "a flag mask `xx xx xx xx` (four hex bytes), a decimal or `0x` number";
const BEHAVIOR_EXPECTED: &str = "`Download and Execute` or `Execute Only`";

/// XML whitespace (space, tab, CR, LF).
pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Trims XML whitespace (not every Unicode space) from both ends: the rule
/// applied to every decoded text and attribute value.
pub fn trim_xml(s: &str) -> &str {
    s.trim_matches(is_xml_space)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1..=12) of `year`.
pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(i64::from(year)) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl CivilTime {
    /// Builds a validated value (year 0..=9999, month and day valid for the
    /// month including leap years, 24-hour clock, no leap second).
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<Self> {
        let t = CivilTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        };
        t.is_valid().then_some(t)
    }

    /// Whether every field is in range.
    pub fn is_valid(&self) -> bool {
        self.year <= 9999
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
    }

    /// Seconds since the Unix epoch, reading the value as UTC.
    pub fn to_unix(&self) -> i64 {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The UTC civil time of a Unix timestamp; `None` outside years 0..=9999.
    pub fn from_unix(secs: i64) -> Option<Self> {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return None;
        }
        CivilTime::new(
            u16::try_from(y).ok()?,
            u8::try_from(m).ok()?,
            u8::try_from(d).ok()?,
            u8::try_from(rem / 3600).ok()?,
            u8::try_from(rem % 3600 / 60).ok()?,
            u8::try_from(rem % 60).ok()?,
        )
    }

    /// The UTC civil time of a `SystemTime` (sub-seconds dropped).
    pub fn from_system_time(t: std::time::SystemTime) -> Option<Self> {
        let secs = match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).ok()?,
            Err(e) => {
                let d = e.duration();
                let whole = i64::try_from(d.as_secs()).ok()?;
                if d.subsec_nanos() > 0 {
                    -whole - 1
                } else {
                    -whole
                }
            }
        };
        Self::from_unix(secs)
    }
}

/// Parses exactly `n` ASCII digits.
fn fixed_digits(s: &str, n: usize) -> Option<u32> {
    if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD hh:mm:ss`, also with `T` instead of the space and a trailing `Z`.
impl FromStr for CivilTime {
    type Err = DecodeErrorKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DecodeErrorKind::invalid(s, CIVIL_EXPECTED);
        let t = trim_xml(s);
        let t = t.strip_suffix(['Z', 'z']).unwrap_or(t);
        let (date, time) = t
            .split_once(' ')
            .or_else(|| t.split_once(['T', 't']))
            .ok_or_else(bad)?;
        let time = time.trim_start_matches(' ');
        let mut d = date.split('-');
        let (Some(y), Some(mo), Some(da), None) = (d.next(), d.next(), d.next(), d.next()) else {
            return Err(bad());
        };
        let mut h = time.split(':');
        let (Some(hh), Some(mi), Some(ss), None) = (h.next(), h.next(), h.next(), h.next()) else {
            return Err(bad());
        };
        let field = |v: &str, n: usize| fixed_digits(v, n).ok_or_else(bad);
        let year = u16::try_from(field(y, 4)?).map_err(|_| bad())?;
        let num = |v: &str| -> Result<u8, DecodeErrorKind> {
            u8::try_from(field(v, 2)?).map_err(|_| bad())
        };
        CivilTime::new(year, num(mo)?, num(da)?, num(hh)?, num(mi)?, num(ss)?).ok_or_else(bad)
    }
}

/// `YYYY-MM-DD hh:mm:ss`.
impl fmt::Display for CivilTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl LinkFlags {
    /// No constraint (`00 00 00 00`, also the meaning of an absent `Flags`).
    pub fn is_unconstrained(&self) -> bool {
        self.0 == 0
    }

    /// A low-bandwidth link may carry the download (bit 0x1, or no constraint).
    pub fn allows_low(&self) -> bool {
        self.is_unconstrained() || self.0 & Self::LOW_BANDWIDTH != 0
    }

    /// A high-bandwidth link may carry the download (bit 0x2, or no constraint).
    pub fn allows_high(&self) -> bool {
        self.is_unconstrained() || self.0 & Self::HIGH_BANDWIDTH != 0
    }

    /// The download may run while cradled/docked (bit 0x4, or no constraint).
    pub fn allows_cradled(&self) -> bool {
        self.is_unconstrained() || self.0 & Self::CRADLED != 0
    }
}

/// Four hex bytes, least significant first: `06 00 00 00`.
impl fmt::Display for LinkFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0.to_le_bytes();
        write!(f, "{a:02X} {b:02X} {c:02X} {d:02X}")
    }
}

/// `xx xx xx xx` (hex bytes, least significant first), or a plain decimal or
/// `0x`-prefixed hex number.
impl FromStr for LinkFlags {
    type Err = DecodeErrorKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DecodeErrorKind::invalid(s, FLAGS_EXPECTED);
        let t = trim_xml(s);
        let parts: Vec<&str> = t.split_ascii_whitespace().collect();
        if parts.len() == 4 {
            let mut bytes = [0u8; 4];
            for (slot, p) in bytes.iter_mut().zip(&parts) {
                if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad());
                }
                *slot = u8::from_str_radix(p, 16).map_err(|_| bad())?;
            }
            return Ok(LinkFlags(u32::from_le_bytes(bytes)));
        }
        if parts.len() != 1 {
            return Err(bad());
        }
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            return parse_radix(hex, 16, "a 32-bit mask")
                .and_then(|v| {
                    u32::try_from(v).map_err(|_| DecodeErrorKind::overflow(s, "a 32-bit mask"))
                })
                .map(LinkFlags)
                .map_err(|e| match e {
                    DecodeErrorKind::InvalidValue { .. } => bad(),
                    e => e,
                });
        }
        parse_u32(t).map(LinkFlags).map_err(|e| match e {
            DecodeErrorKind::InvalidValue { .. } => bad(),
            e => e,
        })
    }
}

impl RecurrenceBehavior {
    /// The exact wire text.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::DownloadAndExecute => "Download and Execute",
            Self::ExecuteOnly => "Execute Only",
        }
    }
}

impl fmt::Display for RecurrenceBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Case-insensitive, surrounding whitespace trimmed, inner runs of whitespace
/// read as one space.
impl FromStr for RecurrenceBehavior {
    type Err = DecodeErrorKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let words: Vec<&str> = s.split_ascii_whitespace().collect();
        let norm = words.join(" ").to_ascii_lowercase();
        match norm.as_str() {
            "download and execute" => Ok(Self::DownloadAndExecute),
            "execute only" => Ok(Self::ExecuteOnly),
            _ => Err(DecodeErrorKind::invalid(s, BEHAVIOR_EXPECTED)),
        }
    }
}

/// Parses a boolean: `true/false`, `yes/no`, `1/0`, case-insensitive, trimmed.
pub fn parse_bool(s: &str) -> Result<bool, DecodeErrorKind> {
    let t = trim_xml(s).to_ascii_lowercase();
    match t.as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(DecodeErrorKind::invalid(s, BOOL_EXPECTED)),
    }
}

fn parse_radix(digits: &str, radix: u32, target: &'static str) -> Result<u64, DecodeErrorKind> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(DecodeErrorKind::invalid(digits, "a number"));
    }
    let mut v: u64 = 0;
    for c in digits.chars() {
        let d = u64::from(c.to_digit(radix).unwrap_or(0));
        v = v
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(d))
            .ok_or_else(|| DecodeErrorKind::overflow(digits, target))?;
    }
    Ok(v)
}

fn parse_unsigned(
    s: &str,
    target: &'static str,
    expected: &'static str,
) -> Result<u64, DecodeErrorKind> {
    let t = trim_xml(s);
    if let Some(rest) = t.strip_prefix('-') {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            // A negative number for an unsigned field: out of range, never wrapped.
            return Err(DecodeErrorKind::overflow(s, target));
        }
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeErrorKind::invalid(s, expected));
    }
    parse_radix(t, 10, target).map_err(|e| match e {
        DecodeErrorKind::Overflow { .. } => DecodeErrorKind::overflow(s, target),
        _ => DecodeErrorKind::invalid(s, expected),
    })
}

/// An unsigned 64-bit decimal; negative or too-large values are
/// [`DecodeErrorKind::Overflow`].
pub fn parse_u64(s: &str) -> Result<u64, DecodeErrorKind> {
    parse_unsigned(
        s,
        "an unsigned 64-bit integer",
        "an unsigned decimal integer",
    )
}

/// An unsigned 32-bit decimal; negative or too-large values are
/// [`DecodeErrorKind::Overflow`].
pub fn parse_u32(s: &str) -> Result<u32, DecodeErrorKind> {
    let target = "an unsigned 32-bit integer";
    let v = parse_unsigned(s, target, "an unsigned decimal integer")?;
    u32::try_from(v).map_err(|_| DecodeErrorKind::overflow(s, target))
}

/// A `u32` given in decimal or as `0x` hex (`SystemDefaultLCID` = `0x0409`).
pub fn parse_u32_dec_or_hex(s: &str) -> Result<u32, DecodeErrorKind> {
    let target = "an unsigned 32-bit integer";
    let t = trim_xml(s);
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => {
            let v = parse_radix(hex, 16, target).map_err(|e| match e {
                DecodeErrorKind::Overflow { .. } => DecodeErrorKind::overflow(s, target),
                _ => DecodeErrorKind::invalid(s, "a decimal or `0x` hex integer"),
            })?;
            u32::try_from(v).map_err(|_| DecodeErrorKind::overflow(s, target))
        }
        None => parse_u32(s),
    }
}

/// Parses a duration: `YYYY-MM-DD hh:mm:ss` (year = 365 days, month = 30
/// days; 2-digit years and `hh-mm-ss` accepted; day, month and year fields
/// may have any width), plain whole seconds, or ISO-8601 `PnYnMnDTnHnMnS`.
pub fn parse_duration(s: &str) -> Result<Duration, DecodeErrorKind> {
    let bad = || DecodeErrorKind::invalid(s, DURATION_EXPECTED);
    let over = || DecodeErrorKind::overflow(s, "a duration in seconds");
    let t = trim_xml(s);
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return parse_radix(t, 10, "a duration in seconds")
            .map(Duration::from_secs)
            .map_err(|_| over());
    }
    if t.starts_with(['P', 'p']) {
        return parse_iso_duration(&t[1..])
            .ok_or_else(bad)?
            .map(Duration::from_secs)
            .ok_or_else(over);
    }
    let (date, time) = t.split_once(' ').ok_or_else(bad)?;
    let time = trim_xml(time);
    let digits = |v: &str| -> Result<u64, DecodeErrorKind> {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        parse_radix(v, 10, "a duration").map_err(|_| over())
    };
    let d: Vec<&str> = date.split('-').collect();
    let sep = if time.contains(':') { ':' } else { '-' };
    let h: Vec<&str> = time.split(sep).collect();
    let ([y, mo, da], [hh, mi, ss]) = (d.as_slice(), h.as_slice()) else {
        return Err(bad());
    };
    let (y, mo, da) = (digits(y)?, digits(mo)?, digits(da)?);
    let small = |v: &str, max: u64| -> Result<u64, DecodeErrorKind> {
        if v.is_empty() || v.len() > 2 {
            return Err(bad());
        }
        let n = digits(v)?;
        if n > max {
            return Err(bad());
        }
        Ok(n)
    };
    let (hh, mi, ss) = (small(hh, 23)?, small(mi, 59)?, small(ss, 59)?);
    let days = y
        .checked_mul(365)
        .and_then(|v| mo.checked_mul(30).and_then(|m| v.checked_add(m)))
        .and_then(|v| v.checked_add(da))
        .ok_or_else(over)?;
    days.checked_mul(86_400)
        .and_then(|v| v.checked_add(hh * 3600 + mi * 60 + ss))
        .map(Duration::from_secs)
        .ok_or_else(over)
}

/// ISO-8601 duration body after the `P`. Outer `None` = bad shape; inner
/// `None` = overflow.
fn parse_iso_duration(body: &str) -> Option<Option<u64>> {
    let mut total: Option<u64> = Some(0);
    let mut in_time = false;
    let mut num = String::new();
    let mut any = false;
    for c in body.chars() {
        match c.to_ascii_uppercase() {
            '0'..='9' => num.push(c),
            'T' if !in_time && num.is_empty() => in_time = true,
            unit @ ('Y' | 'M' | 'W' | 'D' | 'H' | 'S') => {
                if num.is_empty() {
                    return None;
                }
                let factor: u64 = match (unit, in_time) {
                    ('Y', false) => 365 * 86_400,
                    ('M', false) => 30 * 86_400,
                    ('W', false) => 7 * 86_400,
                    ('D', false) => 86_400,
                    ('H', true) => 3600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return None,
                };
                let n = parse_radix(&num, 10, "").ok();
                total = total
                    .zip(n)
                    .and_then(|(t, n)| n.checked_mul(factor).and_then(|v| t.checked_add(v)));
                num.clear();
                any = true;
            }
            _ => return None,
        }
    }
    (any && num.is_empty()).then_some(total)
}

/// The canonical duration form `0000-00-DD hh:mm:ss` (days zero-padded to two
/// digits and as wide as needed; sub-second parts dropped).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let days = s / 86_400;
    let rem = s % 86_400;
    format!(
        "0000-00-{days:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `true`/`false`.
pub(crate) fn format_bool(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// `Yes`/`No` (for `Required` and `SourceFiles`).
pub(crate) fn format_yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_roundtrip() {
        for secs in [
            0i64,
            1,
            86_399,
            951_782_400,
            1_700_000_000,
            -1,
            -86_400 * 365,
        ] {
            let t = CivilTime::from_unix(secs).expect("in range");
            assert_eq!(t.to_unix(), secs, "{t}");
        }
        let t = CivilTime::from_unix(951_782_400).expect("in range");
        assert_eq!(t.to_string(), "2000-02-29 00:00:00");
        assert_eq!(
            CivilTime::from_unix(0).map(|t| t.to_string()).as_deref(),
            Some("1970-01-01 00:00:00")
        );
    }

    #[test]
    fn civil_parse() {
        let t: CivilTime = "2024-02-29 23:59:59".parse().expect("leap day");
        assert_eq!(t.to_string(), "2024-02-29 23:59:59");
        assert!("2023-02-29 00:00:00".parse::<CivilTime>().is_err());
        assert!("2023-13-01 00:00:00".parse::<CivilTime>().is_err());
        assert!("1900-02-29 00:00:00".parse::<CivilTime>().is_err());
        assert!("2000-02-29 00:00:00".parse::<CivilTime>().is_ok());
        assert_eq!(
            "2025-01-16T01:00:00Z".parse::<CivilTime>(),
            "2025-01-16 01:00:00".parse::<CivilTime>()
        );
    }

    #[test]
    fn durations() {
        let p = |s: &str| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(p("0000-00-00 01:00:00"), Ok(3600));
        assert_eq!(p("00-00-00 00:03:00"), Ok(180));
        assert_eq!(p("0000-00-00 00-03-00"), Ok(180));
        assert_eq!(p("0000-01-00 00:00:00"), Ok(30 * 86_400));
        assert_eq!(p("0001-00-00 00:00:00"), Ok(365 * 86_400));
        assert_eq!(p(" 3600 "), Ok(3600));
        assert_eq!(p("PT1H"), Ok(3600));
        assert_eq!(p("P1DT2M"), Ok(86_520));
        assert!(p("0000-00-00 24:00:00").is_err());
        assert!(p("1h").is_err());
        assert_eq!(
            format_duration(Duration::from_secs(45 * 86_400)),
            "0000-00-45 00:00:00"
        );
        let max = Duration::from_secs(u64::MAX);
        assert_eq!(parse_duration(&format_duration(max)), Ok(max));
    }

    #[test]
    fn flags() {
        let f: LinkFlags = "06 00 00 00".parse().expect("flags");
        assert_eq!(f, LinkFlags(6));
        assert!(f.allows_high() && f.allows_cradled() && !f.allows_low());
        assert_eq!(f.to_string(), "06 00 00 00");
        assert_eq!("0x10".parse::<LinkFlags>(), Ok(LinkFlags(16)));
        assert_eq!("3".parse::<LinkFlags>(), Ok(LinkFlags(3)));
        assert!("06 00 00".parse::<LinkFlags>().is_err());
        assert!("zz 00 00 00".parse::<LinkFlags>().is_err());
        assert_eq!(LinkFlags(0x0403_0201).to_string(), "01 02 03 04");
    }

    #[test]
    fn numbers_and_bools() {
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        assert!(matches!(
            parse_u64("18446744073709551616"),
            Err(DecodeErrorKind::Overflow { .. })
        ));
        assert!(matches!(
            parse_u64("-1"),
            Err(DecodeErrorKind::Overflow { .. })
        ));
        assert!(matches!(
            parse_u32("4294967296"),
            Err(DecodeErrorKind::Overflow { .. })
        ));
        assert_eq!(parse_u32_dec_or_hex("0x0409"), Ok(1033));
        assert_eq!(parse_bool(" True "), Ok(true));
        assert_eq!(parse_bool("NO"), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(
            " execute   ONLY ".parse(),
            Ok(RecurrenceBehavior::ExecuteOnly)
        );
    }
}
