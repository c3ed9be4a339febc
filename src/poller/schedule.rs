//! From an instruction response to a stored package and its download event.

use crate::protocol::{CivilTime, PackageInstructions, StartTime};
use crate::store::{PackageRecord, PackageState, TaskRecord};

/// Shortest recurrence accepted, so a hostile `Interval` of one second cannot
/// turn the agent into a download loop.
pub const MIN_RECURRENCE_SECS: u64 = 60;

/// Converts `StartTime` to a Unix instant once, when the instructions
/// arrive: a later change of time zone does not move the event (part A
/// §4.6). `local_offset` maps a civil time read as UTC to the local UTC
/// offset in force then (seconds east of UTC).
pub fn start_instant(start: &StartTime, local_offset: &dyn Fn(i64) -> i64) -> i64 {
    let as_utc = start.time.to_unix();
    if start.utc {
        return as_utc;
    }
    // Two passes find the offset in force at the resulting instant, which
    // differs from the first guess only around a DST change.
    let first = as_utc - local_offset(as_utc);
    as_utc - local_offset(first)
}

/// The device's local UTC offset at `unix` from the system time zone (`TZ`,
/// `/etc/localtime`); UTC when none is configured, as on most devices.
pub fn system_local_offset(unix: i64) -> i64 {
    thread_local! {
        static ZONE: Option<tz::TimeZone> = tz::TimeZone::local().ok();
    }
    ZONE.with(|zone| {
        zone.as_ref()
            .and_then(|z| z.find_local_time_type(unix).ok())
            .map_or(0, |t| i64::from(t.ut_offset()))
    })
}

/// What storing one instruction response changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The package record to write.
    pub package: PackageRecord,
    /// Its download event, or `None` while an optional package waits for
    /// `dmagent accept`.
    pub task: Option<TaskRecord>,
}

/// Builds the record and the download event for `instructions`, merging into
/// `existing` (a package requested again keeps its local acceptance).
/// `auto_accept_optional` is the image's policy for optional packages.
pub fn store_instructions(
    instructions: PackageInstructions,
    existing: Option<PackageRecord>,
    now: u64,
    auto_accept_optional: bool,
    local_offset: &dyn Fn(i64) -> i64,
) -> Stored {
    let base = existing.unwrap_or_else(|| PackageRecord::new(instructions.id.clone(), now));
    let accepted = base.accepted || auto_accept_optional;
    let mut package = base.with_instructions(instructions, now);
    package.accepted = accepted;
    let task = (package.required || package.accepted)
        .then(|| download_task(&package, now, local_offset))
        .flatten();
    Stored { package, task }
}

/// The download event of a stored package: due at its start time (or now),
/// on the links its `Flags` allow, recurring when it has a `Recurrence`.
pub fn download_task(
    package: &PackageRecord,
    now: u64,
    local_offset: &dyn Fn(i64) -> i64,
) -> Option<TaskRecord> {
    let instructions = package.instructions.as_ref()?;
    let due = instructions
        .start_time
        .as_ref()
        .map(|s| start_instant(s, local_offset))
        .map_or(now, |t| u64::try_from(t).unwrap_or(0).max(now));
    let flags = instructions.flags.map_or(0, |f| f.0);
    let mut task = TaskRecord::download(&package.id, due, flags, now);
    if let Some(recurrence) = &instructions.recurrence {
        task = task.every(recurrence.interval.as_secs().max(MIN_RECURRENCE_SECS));
    }
    Some(task)
}

/// Marks an optional package accepted and schedules it (`dmagent accept`).
pub fn accept(mut package: PackageRecord, now: u64, local_offset: &dyn Fn(i64) -> i64) -> Stored {
    package.accepted = true;
    package.updated_unix = now;
    if package.state == PackageState::AwaitingInstructions {
        return Stored {
            package,
            task: None,
        };
    }
    let task = download_task(&package, now, local_offset);
    Stored { package, task }
}

/// `CivilTime` of a Unix instant, for messages (UTC).
pub fn civil(unix: u64) -> CivilTime {
    CivilTime::from_unix(i64::try_from(unix).unwrap_or(i64::MAX)).unwrap_or(CivilTime {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::{LinkFlags, Recurrence, RecurrenceBehavior};

    const NOW: u64 = 1_735_689_600; // 2025-01-01 00:00:00 UTC

    fn utc(_: i64) -> i64 {
        0
    }

    fn instructions(id: &str, required: bool) -> PackageInstructions {
        PackageInstructions {
            id: id.into(),
            required,
            ..PackageInstructions::default()
        }
    }

    fn at(text: &str, utc: bool) -> StartTime {
        StartTime {
            utc,
            time: text.parse().expect("civil time"),
        }
    }

    #[test]
    fn start_time_utc_and_local() {
        let start = at("2025-01-16 01:00:00", true);
        assert_eq!(start_instant(&start, &utc), 1_736_989_200);
        // A device two hours east of UTC: local 01:00 is 23:00 UTC the day before.
        let local = at("2025-01-16 01:00:00", false);
        assert_eq!(start_instant(&local, &|_| 7200), 1_736_989_200 - 7200);
    }

    #[test]
    fn a_required_package_is_scheduled_at_its_start_time_with_its_flags_and_recurrence() {
        let mut i = instructions("PKG", true);
        i.flags = Some(LinkFlags(0x6));
        i.start_time = Some(at("2025-01-16 01:00:00", true));
        i.recurrence = Some(Recurrence {
            interval: Duration::from_secs(7 * 86_400),
            behavior: RecurrenceBehavior::ExecuteOnly,
            ..Recurrence::default()
        });
        let stored = store_instructions(i, None, NOW, false, &utc);
        assert_eq!(stored.package.state, PackageState::Pending);
        let task = stored.task.expect("scheduled");
        assert_eq!(task.next_due_unix, 1_736_989_200);
        assert_eq!(task.flags, 0x6);
        assert_eq!(task.period_secs, Some(7 * 86_400));
    }

    #[test]
    fn a_past_or_absent_start_time_means_now() {
        let mut i = instructions("PKG", true);
        i.start_time = Some(at("2001-01-01 00:00:00", true));
        assert_eq!(
            store_instructions(i, None, NOW, false, &utc)
                .task
                .map(|t| t.next_due_unix),
            Some(NOW)
        );
        let i = instructions("PKG", true);
        assert_eq!(
            store_instructions(i, None, NOW, false, &utc)
                .task
                .map(|t| t.next_due_unix),
            Some(NOW)
        );
    }

    #[test]
    fn an_optional_package_waits_for_accept() {
        let stored = store_instructions(instructions("OPT", false), None, NOW, false, &utc);
        assert!(stored.task.is_none());
        assert!(!stored.package.accepted);
        let accepted = accept(stored.package, NOW + 5, &utc);
        assert!(accepted.package.accepted);
        assert_eq!(accepted.task.map(|t| t.next_due_unix), Some(NOW + 5));
        // Policy may accept optional packages up front.
        assert!(
            store_instructions(instructions("OPT", false), None, NOW, true, &utc)
                .task
                .is_some()
        );
    }

    #[test]
    fn a_hostile_recurrence_is_clamped() {
        let mut i = instructions("PKG", true);
        i.recurrence = Some(Recurrence {
            interval: Duration::from_secs(1),
            ..Recurrence::default()
        });
        let task = store_instructions(i, None, NOW, false, &utc)
            .task
            .expect("task");
        assert_eq!(task.period_secs, Some(MIN_RECURRENCE_SECS));
    }
}
