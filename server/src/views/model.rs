//! The data behind the views (also served as JSON).

use serde::Serialize;

use crate::catalog::DeviceFacts;
use crate::http::AppState;
use crate::state::{DeviceRecord, FileRecord, InventoryRecord, StateError, StatusRecord};

/// One row of the device list.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceSummary {
    /// Device ID.
    pub id: String,
    /// `DeviceName`.
    pub name: Option<String>,
    /// `Platform`.
    pub platform: Option<String>,
    /// Last poll (RFC 3339 UTC).
    pub last_seen: String,
    /// Number of polls.
    pub poll_count: u64,
}

/// One package of a device with its latest state.
#[derive(Debug, Clone, Serialize)]
pub struct PackageState {
    /// Package ID.
    pub id: String,
    /// Package name from the catalog.
    pub name: Option<String>,
    /// Whether the catalog assigns it to the device now.
    pub assigned: bool,
    /// The last status message ID for it.
    pub last_message_id: Option<u32>,
    /// Its meaning (`downloading`, `downloaded`, `failed`, `installed`,
    /// `command failed`, `pending`).
    pub state: String,
    /// When that message was received.
    pub updated_at: Option<String>,
}

/// Everything about one device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceDetail {
    /// The stored record.
    pub device: DeviceRecord,
    /// Assigned packages and those with status history.
    pub packages: Vec<PackageState>,
    /// The status history, oldest first.
    pub status: Vec<StatusRecord>,
    /// Latest inventories.
    pub inventories: Vec<InventoryRecord>,
    /// Collected files.
    pub files: Vec<FileRecord>,
}

/// The label of a status message ID.
pub fn package_state_label(message_id: u32) -> String {
    match message_id {
        11030 => "downloading".into(),
        11031 => "downloaded".into(),
        11032 => "failed".into(),
        11035 => "installed".into(),
        11036 => "command failed".into(),
        n => format!("message {n}"),
    }
}

pub(super) fn summaries(app: &AppState) -> Result<Vec<DeviceSummary>, StateError> {
    Ok(app
        .state
        .devices()?
        .into_iter()
        .map(|d| DeviceSummary {
            name: d.name().map(str::to_owned),
            platform: d.platform().map(str::to_owned),
            id: d.id,
            last_seen: d.last_seen,
            poll_count: d.poll_count,
        })
        .collect())
}

pub(super) fn detail(app: &AppState, id: &str) -> Result<Option<DeviceDetail>, StateError> {
    let Some(mut device) = app.state.device(id)? else {
        return Ok(None);
    };
    // Tokens are credentials: views say only whether one is set.
    let mask = |t: &mut String| {
        if !t.is_empty() {
            *t = "(set)".into();
        }
    };
    if let Some(t) = device.auth_token.as_mut() {
        mask(t);
    }
    mask(&mut device.headers.auth);
    if let Some(t) = device
        .poll
        .as_mut()
        .and_then(|p| p.connection.as_mut())
        .and_then(|c| c.authorization_token.as_mut())
    {
        mask(t);
    }
    let status = app.state.statuses(id)?;
    let catalog = app.catalog.get();
    let facts = DeviceFacts {
        id: &device.id,
        name: device.name(),
        platform: device.platform(),
    };
    let (assigned, _) = catalog.for_device(&facts);
    let mut ids: Vec<String> = assigned.iter().map(|p| p.id.clone()).collect();
    for s in &status {
        if !ids.contains(&s.package_id) {
            ids.push(s.package_id.clone());
        }
    }
    let packages = ids
        .into_iter()
        .map(|pid| {
            let last = status.iter().rev().find(|s| s.package_id == pid);
            PackageState {
                name: catalog
                    .packages
                    .get(&pid)
                    .and_then(|p| p.instructions.name.clone()),
                assigned: assigned.iter().any(|a| a.id == pid),
                last_message_id: last.map(|s| s.message_id),
                state: last.map_or_else(|| "pending".into(), |s| package_state_label(s.message_id)),
                updated_at: last.map(|s| s.received_at.clone()),
                id: pid,
            }
        })
        .collect();
    Ok(Some(DeviceDetail {
        inventories: app.state.inventories(id)?,
        files: app.state.files(id)?,
        device,
        packages,
        status,
    }))
}
