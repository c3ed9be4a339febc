//! The inventory collector: which report tasks the server's report settings
//! call for, and how a report is built from the collector plugins' output.
//! Pure; `actor.rs` runs the plugins and queues the documents.
//!
//! Part A §2.7 and part B §4: each of `SoftwareInventorySettings`,
//! `MachineInventorySettings` and `FileCollectionSettings` has `Enabled` and
//! `Interval`; software inventory and file collection add `FileFilterItem`s.
//! A section that is present without `Enabled` counts as enabled. An
//! unchanged `version` changes nothing (the poller does not even store it).
//!
//! A software or machine inventory is queued only when its document differs
//! from the last one the server accepted (its SHA-256 is kept in the store's
//! `report_digests`, written by the reporter after the 2xx) and from any one
//! still queued, unless the settings carry X9 `sendUnchanged="true"`. New
//! settings forget the digest, so they always bring one fresh report.

pub mod actor;

use dmagent_plugin_api::{CollectRequest, FileFilter, ReportKind, PAYLOAD_VERSION};

use crate::protocol::{ReportSettings, ReportType};
use crate::store::{OutboxBody, ServerValues, StoreError, TaskRecord, WriteTx};

/// Cadence of an enabled report whose settings carry no `Interval`.
pub const DEFAULT_INTERVAL_SECS: u64 = 86_400;

/// The three report kinds, in the order they are scheduled.
pub const REPORTS: [ReportType; 3] = [
    ReportType::SoftwareInventory,
    ReportType::MachineInventory,
    ReportType::FileCollection,
];

/// The stored settings of one report kind.
pub fn settings_of(values: &ServerValues, report: ReportType) -> Option<&ReportSettings> {
    match report {
        ReportType::SoftwareInventory => values.software_inventory.as_ref(),
        ReportType::MachineInventory => values.machine_inventory.as_ref(),
        ReportType::FileCollection => values.file_collection.as_ref(),
    }
}

/// What new settings of one report kind do to its task: `Some(task)` to
/// (re)schedule it, due `now` (the first run follows the poll that enabled
/// it), or `None` to remove it.
pub fn report_task(report: ReportType, settings: &ReportSettings, now: u64) -> Option<TaskRecord> {
    if !settings.enabled.unwrap_or(true) {
        return None;
    }
    let period = settings
        .interval
        .map_or(DEFAULT_INTERVAL_SECS, |i| i.as_secs())
        .max(crate::poller::schedule::MIN_RECURRENCE_SECS);
    Some(TaskRecord::report(report, now, period, now))
}

/// SHA-256 of a report document as sent.
pub fn report_digest(xml: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(xml).into()
}

/// Whether a freshly built report document goes into the outbox: always when
/// the server asks for every interval (`send_unchanged`), otherwise only when
/// it is not the one the server last accepted nor one still queued.
pub fn should_queue(
    send_unchanged: bool,
    digest: &[u8; 32],
    accepted: Option<&[u8; 32]>,
    queued_identical: bool,
) -> bool {
    send_unchanged || (accepted != Some(digest) && !queued_identical)
}

/// The plugin request for one report.
pub fn collect_request(
    report: ReportType,
    settings: Option<&ReportSettings>,
    max_file_bytes: u64,
) -> CollectRequest {
    CollectRequest {
        version: PAYLOAD_VERSION,
        report: kind_of(report),
        file_filters: settings
            .map(|s| {
                s.file_filters
                    .iter()
                    .map(|f| FileFilter {
                        filter: f.filter.clone(),
                        path: f.path.clone(),
                        recursive: f.recursive.unwrap_or(false),
                        exclude_compressed: f.exclude_compressed.unwrap_or(false),
                        exclude_encrypted: f.exclude_encrypted.unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        allowed_roots: vec!["/".to_owned()],
        max_file_bytes,
    }
}

/// Queues a report (or a collected file) within the outbox cap: while the
/// outbox holds `cap` items or more, the oldest queued report or file is
/// dropped first. Status messages are never dropped; when only they fill the
/// outbox, the new report still goes in. Returns the sequence numbers dropped.
pub fn enqueue_within_cap(
    tx: &mut WriteTx<'_>,
    body: OutboxBody,
    cap: u64,
) -> Result<Vec<u64>, StoreError> {
    let mut dropped = Vec::new();
    let mut items = tx.outbox(usize::MAX)?;
    while items.len() as u64 >= cap {
        let Some(at) = items
            .iter()
            .position(|i| !matches!(i.body, OutboxBody::Status(_)))
        else {
            break;
        };
        let oldest = items.remove(at);
        tx.dequeue(&[oldest.seq])?;
        dropped.push(oldest.seq);
    }
    tx.enqueue(body)?;
    Ok(dropped)
}

/// The plugin-side name of a report type.
pub fn kind_of(report: ReportType) -> ReportKind {
    match report {
        ReportType::SoftwareInventory => ReportKind::Software,
        ReportType::MachineInventory => ReportKind::Machine,
        ReportType::FileCollection => ReportKind::Files,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::{CivilTime, FileFilterItem, MessageId};
    use crate::store::Store;

    #[test]
    fn at_the_cap_the_oldest_report_goes_first_and_status_messages_never() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("db.redb")).expect("store");
        let report = |n: u8| OutboxBody::Report {
            report_type: ReportType::MachineInventory,
            xml: vec![n],
        };
        let status = || {
            let at = CivilTime::from_unix(0).expect("time");
            OutboxBody::Status(crate::reporter::status_message(
                "P",
                MessageId::DOWNLOAD_STARTED,
                at,
                &[],
            ))
        };
        store
            .write(|tx| {
                tx.enqueue(status())?;
                tx.enqueue(report(1))?;
                tx.enqueue(status())?;
                tx.enqueue(report(2))?;
                Ok(())
            })
            .expect("fill");
        let dropped = store
            .write(|tx| enqueue_within_cap(tx, report(3), 4))
            .expect("enqueue");
        assert_eq!(dropped, [2], "the oldest report (seq 2) made room");
        let bodies: Vec<OutboxBody> = store
            .outbox(10)
            .expect("outbox")
            .into_iter()
            .map(|i| i.body)
            .collect();
        assert_eq!(
            bodies
                .iter()
                .filter(|b| matches!(b, OutboxBody::Status(_)))
                .count(),
            2
        );
        assert_eq!(bodies[3], report(3));
        // Only status messages left to drop: none goes, the report is added.
        let status_only = tempfile::tempdir().expect("tempdir");
        let store = Store::open(status_only.path().join("db.redb")).expect("store");
        store
            .write(|tx| tx.enqueue(status()).map(drop))
            .expect("status");
        let dropped = store
            .write(|tx| enqueue_within_cap(tx, report(9), 1))
            .expect("enqueue");
        assert!(dropped.is_empty());
        assert_eq!(store.outbox_len().expect("len"), 2);
    }

    #[test]
    fn enabled_reports_get_a_task_due_now_at_their_interval() {
        let settings = ReportSettings {
            enabled: Some(true),
            interval: Some(Duration::from_secs(3600)),
            ..ReportSettings::default()
        };
        let task = report_task(ReportType::MachineInventory, &settings, 100).expect("task");
        assert_eq!(task.next_due_unix, 100);
        assert_eq!(task.period_secs, Some(3600));
        assert_eq!(task.id.as_str(), "report:machine");
        let off = ReportSettings {
            enabled: Some(false),
            ..settings.clone()
        };
        assert!(report_task(ReportType::MachineInventory, &off, 100).is_none());
        let bare = ReportSettings::default();
        assert_eq!(
            report_task(ReportType::SoftwareInventory, &bare, 0).and_then(|t| t.period_secs),
            Some(DEFAULT_INTERVAL_SECS),
            "present without Enabled or Interval: on, daily"
        );
    }

    #[test]
    fn only_changed_reports_are_queued_unless_the_server_asks_for_every_interval() {
        let old = report_digest(b"<Inventory>old</Inventory>");
        let new = report_digest(b"<Inventory>new</Inventory>");
        assert!(should_queue(false, &new, None, false), "first report");
        assert!(should_queue(false, &new, Some(&old), false), "changed");
        assert!(!should_queue(false, &new, Some(&new), false), "unchanged");
        assert!(
            !should_queue(false, &new, Some(&old), true),
            "already queued"
        );
        assert!(should_queue(true, &new, Some(&new), true), "sendUnchanged");
    }

    #[test]
    fn filters_reach_the_collectors() {
        let settings = ReportSettings {
            file_filters: vec![FileFilterItem {
                filter: "*.so".into(),
                path: "/opt/app".into(),
                recursive: Some(true),
                ..FileFilterItem::default()
            }],
            ..ReportSettings::default()
        };
        let request = collect_request(ReportType::SoftwareInventory, Some(&settings), 1 << 20);
        assert_eq!(request.report, ReportKind::Software);
        assert_eq!(request.file_filters.len(), 1);
        assert!(request.file_filters[0].recursive);
        assert_eq!(request.file_filters[0].path, "/opt/app");
    }
}
