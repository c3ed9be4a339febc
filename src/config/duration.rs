//! Durations as written in configuration files.
//!
//! Accepted forms (whole seconds only: nothing in the agent's timing needs
//! less, and it keeps the effective configuration printable exactly):
//!
//! - units: `"90s"`, `"3m"`, `"1h"`, `"1d"`, and combinations from the largest
//!   unit to the smallest, each unit at most once: `"1h30m"`, `"1d 12h"`;
//! - a plain number of seconds: `180` (a TOML integer) or `"180"`;
//! - the protocol's date-time shape `"0000-00-00 01:00:00"` (also with a
//!   two-digit year as in the registry default `"00-00-00 00:03:00"`, and with
//!   `hh-mm-ss`), read as days + hours + minutes + seconds. Years and months
//!   have no fixed length, so non-zero ones are refused rather than guessed.
//!
//! This is the configuration's own parser, deliberately independent of the
//! protocol codec's (which must be lenient with servers; a configuration file
//! should be strict with its author).

use std::fmt;
use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    /// The text as written.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Hint appended to error messages.
pub const DURATION_FORMS: &str =
    "write e.g. \"90s\", \"3m\", \"1h30m\", \"1d\", a number of seconds, or \"0000-00-00 01:00:00\"";

fn fail(input: &str, reason: impl fmt::Display) -> DurationError {
    DurationError {
        input: input.to_owned(),
        reason: reason.to_string(),
    }
}

/// Parses a duration in one of the accepted forms.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(fail(input, "empty"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| fail(input, "too large"));
    }
    if text.contains(' ') && text.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        // Either the date-time shape or spaced units ("1h 30m").
        if let Some(result) = parse_date_time_shape(input, text) {
            return result;
        }
    }
    parse_units(input, text)
}

/// `YYYY-MM-DD hh:mm:ss` (or `YY-`, or `hh-mm-ss`); `None` when the text does
/// not have that shape at all.
fn parse_date_time_shape(input: &str, text: &str) -> Option<Result<Duration, DurationError>> {
    let (date, time) = text.split_once(' ')?;
    let date: Vec<&str> = date.split('-').collect();
    let time: Vec<&str> = time.trim_start().split([':', '-']).collect();
    let digits = |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if date.len() != 3 || time.len() != 3 || !date.iter().all(digits) || !time.iter().all(digits) {
        return None;
    }
    Some(date_time_fields(input, &date, &time))
}

fn date_time_fields(input: &str, date: &[&str], time: &[&str]) -> Result<Duration, DurationError> {
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| fail(input, "number too large"))
    };
    let (years, months, days) = (number(date[0])?, number(date[1])?, number(date[2])?);
    let (hours, minutes, seconds) = (number(time[0])?, number(time[1])?, number(time[2])?);
    if years != 0 || months != 0 {
        return Err(fail(
            input,
            "years and months have no fixed length; express the interval in days",
        ));
    }
    if hours > 23 || minutes > 59 || seconds > 59 {
        return Err(fail(input, "hours must be 0-23, minutes and seconds 0-59"));
    }
    days.checked_mul(86_400)
        .and_then(|d| d.checked_add(hours * 3600 + minutes * 60 + seconds))
        .map(Duration::from_secs)
        .ok_or_else(|| fail(input, "too large"))
}

/// `1d2h3m4s`, largest unit first, each at most once, optional spaces between
/// components and between a number and its unit.
fn parse_units(input: &str, text: &str) -> Result<Duration, DurationError> {
    const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut rest = text;
    let mut total: u64 = 0;
    // Index into UNITS of the next unit allowed: enforces order and uniqueness.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(fail(
                input,
                format!("expected a number at {rest:?}; {DURATION_FORMS}"),
            ));
        }
        let value: u64 = rest[..digits_end]
            .parse()
            .map_err(|_| fail(input, "number too large"))?;
        rest = rest[digits_end..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        if unit.is_empty() {
            return Err(fail(
                input,
                format!("a number without a unit; {DURATION_FORMS}"),
            ));
        }
        let Some(position) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(fail(
                input,
                format!("unknown unit {unit:?}; {DURATION_FORMS}"),
            ));
        };
        if position < next_unit {
            return Err(fail(
                input,
                "units must go from largest to smallest (d, h, m, s), each at most once",
            ));
        }
        next_unit = position + 1;
        total = value
            .checked_mul(UNITS[position].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| fail(input, "too large"))?;
        rest = rest[unit_end..].trim_start();
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration in the unit form the parser reads back (`"1h30m"`,
/// `"0s"`). Sub-second parts are dropped (configuration durations are whole seconds).
pub fn format_duration(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        let n = secs / size;
        secs %= size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> u64 {
        match parse_duration(text) {
            Ok(d) => d.as_secs(),
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    #[test]
    fn unit_forms() {
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("3m"), 180);
        assert_eq!(secs("1h"), 3600);
        assert_eq!(secs("1d"), 86_400);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("1d2h3m4s"), 93_784);
        assert_eq!(secs("1h 30m"), 5400);
        assert_eq!(secs("  2m  "), 120);
        assert_eq!(secs("0s"), 0);
        assert_eq!(secs("90m"), 5400, "a unit may exceed the next one up");
    }

    #[test]
    fn plain_seconds() {
        assert_eq!(secs("180"), 180);
        assert_eq!(secs("0"), 0);
    }

    #[test]
    fn protocol_shape() {
        assert_eq!(secs("0000-00-00 01:00:00"), 3600);
        assert_eq!(secs("0000-00-01 00:00:00"), 86_400);
        assert_eq!(
            secs("0000-00-02 03:04:05"),
            2 * 86_400 + 3 * 3600 + 4 * 60 + 5
        );
        assert_eq!(
            secs("00-00-00 00:03:00"),
            180,
            "the registry's RetryTime default"
        );
        assert_eq!(
            secs("00-00-00 00-03-00"),
            180,
            "the documented hh-mm-ss separator"
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "   ",
            "5 minutes",
            "1x",
            "h",
            "1.5h",
            "-1s",
            "1m1h",
            "1h1h",
            "1H",
            "5m garbage",
            "0001-00-00 00:00:00",
            "0000-01-00 00:00:00",
            "0000-00-00 24:00:00",
            "0000-00-00 00:60:00",
            "0000-00-00 01:00",
            "99999999999999999999s",
            "999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn error_names_input_and_forms() {
        let err = parse_duration("5 minutes").expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("\"5 minutes\""), "{text}");
        assert!(text.contains("unknown unit \"minutes\""), "{text}");
    }

    #[test]
    fn format_round_trips() {
        for s in [
            0,
            1,
            59,
            60,
            61,
            3600,
            5400,
            86_400,
            93_784,
            10 * 86_400 + 1,
        ] {
            let d = Duration::from_secs(s);
            let text = format_duration(d);
            assert_eq!(parse_duration(&text), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(0)), "0s");
    }
}
