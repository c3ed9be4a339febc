//! Time for the agent. Everything that decides by the clock takes the time as
//! an argument, so tests inject it instead of sleeping; this module is the one
//! place that reads the system clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, from the system clock (0 if the clock is set
/// before 1970, which a device with a dead RTC battery can do).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
