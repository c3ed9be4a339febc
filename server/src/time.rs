//! Wall-clock strings for stored records and issued timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use dmagent::protocol::CivilTime;

/// RFC 3339 UTC with milliseconds, e.g. `2025-01-15T09:30:00.123Z`.
pub fn now_rfc3339() -> String {
    format_rfc3339(SystemTime::now())
}

/// Formats `t` as RFC 3339 UTC with milliseconds.
pub fn format_rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    match CivilTime::from_unix(secs) {
        Some(c) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            d.subsec_millis()
        ),
        None => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}
