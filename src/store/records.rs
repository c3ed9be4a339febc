//! The records stored in the client database: one struct per table row.
//!
//! Values are stored as serde_json bytes. New fields added later get
//! `#[serde(default)]` so that rows written by an older agent still decode;
//! a change that an older agent could not read bumps
//! [`SCHEMA_VERSION`](super::SCHEMA_VERSION).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::{self, ReportType};

/// Where a package is in its life on this device (part B §7.1).
///
/// The client database of CE names fewer states; the mapping
/// ([`PackageState::ce_name`]) is:
///
/// | agent state            | CE 5.0 (2006) / CE 6.0 name |
/// |------------------------|-----------------------------|
/// | `AwaitingInstructions` | pending                     |
/// | `Pending`              | pending                     |
/// | `Downloading`          | pending                     |
/// | `Downloaded`           | download success            |
/// | `Installed`            | download success            |
/// | `Failed`               | download failed             |
///
/// A package that the server no longer lists is removed (the row is deleted,
/// see [`WriteTx::remove_package`](super::WriteTx::remove_package)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PackageState {
    /// Listed by a poll response; the instruction response is not yet known.
    AwaitingInstructions,
    /// Instructions received; the download event is scheduled, not yet fired.
    Pending,
    /// The download event fired (11030 sent); not yet succeeded or failed.
    Downloading,
    /// Download complete and its digest matched (11031); the post-install
    /// command has not completed yet.
    Downloaded,
    /// The post-install step was started and has not reported back. Committed
    /// before the handler runs, so an agent that restarts in this state knows
    /// the step may have run and does not silently run it a second time.
    Installing,
    /// The post-install command completed successfully (11035).
    Installed,
    /// Retries exhausted (11032) or the command failed (11036).
    Failed,
}

impl PackageState {
    /// Every state, in life-cycle order.
    pub const ALL: [PackageState; 7] = [
        PackageState::AwaitingInstructions,
        PackageState::Pending,
        PackageState::Downloading,
        PackageState::Downloaded,
        PackageState::Installing,
        PackageState::Installed,
        PackageState::Failed,
    ];

    /// The stable kebab-case name shown to operators (`awaiting-instructions`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            PackageState::AwaitingInstructions => "awaiting-instructions",
            PackageState::Pending => "pending",
            PackageState::Downloading => "downloading",
            PackageState::Downloaded => "downloaded",
            PackageState::Installing => "installing",
            PackageState::Installed => "installed",
            PackageState::Failed => "failed",
        }
    }

    /// The state's code in the package index (part of the file format:
    /// never renumber).
    pub fn code(self) -> u8 {
        match self {
            PackageState::AwaitingInstructions => 0,
            PackageState::Pending => 1,
            PackageState::Downloading => 2,
            PackageState::Downloaded => 3,
            PackageState::Installing => 4,
            PackageState::Installed => 5,
            PackageState::Failed => 6,
        }
    }

    /// The state with this [`code`](Self::code).
    pub fn from_code(code: u8) -> Option<PackageState> {
        match code {
            0 => Some(PackageState::AwaitingInstructions),
            1 => Some(PackageState::Pending),
            2 => Some(PackageState::Downloading),
            3 => Some(PackageState::Downloaded),
            4 => Some(PackageState::Installing),
            5 => Some(PackageState::Installed),
            6 => Some(PackageState::Failed),
            _ => None,
        }
    }

    /// The CE 5.0 (2006) / CE 6.0 status name of this state.
    pub fn ce_name(self) -> &'static str {
        match self {
            PackageState::AwaitingInstructions
            | PackageState::Pending
            | PackageState::Downloading => "pending",
            PackageState::Downloaded | PackageState::Installing | PackageState::Installed => {
                "download success"
            }
            PackageState::Failed => "download failed",
        }
    }
}

impl fmt::Display for PackageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened the last time the agent acted on a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// When, in Unix seconds.
    pub at_unix: u64,
    /// The status `messageID` reported for it, if any (e.g. 11032).
    pub message_id: Option<u32>,
    /// Human-readable detail (an error message, an exit code, …).
    pub detail: String,
}

/// One row of the `packages` table: what the agent knows about a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRecord {
    /// Package ID assigned by the server (normally a GUID); the table key.
    pub id: String,
    /// Package name.
    pub name: Option<String>,
    /// One-line description.
    pub short_description: Option<String>,
    /// Longer description.
    pub long_description: Option<String>,
    /// Whether the package is mandatory.
    pub required: bool,
    /// Current state.
    pub state: PackageState,
    /// The instruction response for it, once received.
    pub instructions: Option<protocol::PackageInstructions>,
    /// An optional package that was accepted locally.
    pub accepted: bool,
    /// What happened last time.
    pub last_outcome: Option<Outcome>,
    /// When the package was first listed, Unix seconds.
    pub first_seen_unix: u64,
    /// When this row last changed, Unix seconds.
    pub updated_unix: u64,
    /// The verified package file on disk, once downloaded (an `Execute Only`
    /// recurrence runs its command against it without downloading again).
    #[serde(default)]
    pub downloaded_file: Option<String>,
    /// The attempt of its download event that ended with the current state
    /// (`Installed`, `Failed`, or `Pending` for a retry), committed with that
    /// state. An agent killed before the scheduler committed the attempt
    /// finds the task unchanged and must not run the attempt a second time.
    #[serde(default)]
    pub ended_attempt: Option<AttemptKey>,
}

/// Names one attempt of one download task: the task's creation time, the
/// due time of the occurrence, and the retries spent on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptKey {
    /// `TaskRecord::created_unix`.
    pub created_unix: u64,
    /// `TaskRecord::next_due_unix` when it ran.
    pub due_unix: u64,
    /// `TaskRecord::attempts` when it ran.
    pub attempts: u32,
}

impl PackageRecord {
    /// A package just listed by a poll response: awaiting instructions,
    /// required until the instructions say otherwise.
    pub fn new(id: impl Into<String>, now_unix: u64) -> Self {
        PackageRecord {
            id: id.into(),
            name: None,
            short_description: None,
            long_description: None,
            required: true,
            state: PackageState::AwaitingInstructions,
            instructions: None,
            accepted: false,
            last_outcome: None,
            first_seen_unix: now_unix,
            updated_unix: now_unix,
            downloaded_file: None,
            ended_attempt: None,
        }
    }

    /// Record received instructions: copies the descriptive fields and moves
    /// the package to [`PackageState::Pending`].
    pub fn with_instructions(
        mut self,
        instructions: protocol::PackageInstructions,
        now_unix: u64,
    ) -> Self {
        self.name.clone_from(&instructions.name);
        self.short_description
            .clone_from(&instructions.short_description);
        self.long_description
            .clone_from(&instructions.long_description);
        self.required = instructions.required;
        self.instructions = Some(instructions);
        self.state = PackageState::Pending;
        self.updated_unix = now_unix;
        // New instructions, a new event: nothing of it has ended yet.
        self.ended_attempt = None;
        self
    }
}

/// The key of a task in the `tasks` table: `poll`, `download:<package id>`,
/// `report:software`, `report:machine` or `report:files`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    /// The poll task.
    pub fn poll() -> Self {
        TaskId("poll".to_owned())
    }

    /// The download event of one package.
    pub fn download(package_id: &str) -> Self {
        TaskId(format!("download:{package_id}"))
    }

    /// The periodic report of one type.
    pub fn report(report: ReportType) -> Self {
        let name = match report {
            ReportType::SoftwareInventory => "software",
            ReportType::MachineInventory => "machine",
            ReportType::FileCollection => "files",
        };
        TaskId(format!("report:{name}"))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What a task does when it comes due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskKind {
    /// Poll the server.
    Poll,
    /// Run the download event of a package.
    Download {
        /// The package.
        package_id: String,
    },
    /// Send a periodic report.
    Report {
        /// Which report.
        report: ReportType,
    },
}

impl TaskKind {
    /// The table key a task of this kind is stored under.
    pub fn id(&self) -> TaskId {
        match self {
            TaskKind::Poll => TaskId::poll(),
            TaskKind::Download { package_id } => TaskId::download(package_id),
            TaskKind::Report { report } => TaskId::report(*report),
        }
    }
}

/// One row of the `tasks` table: a scheduled piece of work (part B §8.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The key; always equal to `kind.id()`.
    pub id: TaskId,
    /// What to do.
    pub kind: TaskKind,
    /// When it is next due, Unix seconds.
    pub next_due_unix: u64,
    /// Start-to-start period of a recurring task.
    pub period_secs: Option<u64>,
    /// `ADL_*` link-class bits the task may run on (0 = any).
    pub flags: u32,
    /// Retries spent on the current occurrence.
    pub attempts: u32,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When the task was created, Unix seconds.
    pub created_unix: u64,
}

impl TaskRecord {
    /// The attempt this task runs now.
    pub fn attempt_key(&self) -> AttemptKey {
        AttemptKey {
            created_unix: self.created_unix,
            due_unix: self.next_due_unix,
            attempts: self.attempts,
        }
    }

    /// A task of any kind, due at `next_due_unix`, not recurring, any link.
    pub fn new(kind: TaskKind, next_due_unix: u64, now_unix: u64) -> Self {
        TaskRecord {
            id: kind.id(),
            kind,
            next_due_unix,
            period_secs: None,
            flags: 0,
            attempts: 0,
            last_error: None,
            created_unix: now_unix,
        }
    }

    /// The poll task, repeating every `period_secs`.
    pub fn poll(next_due_unix: u64, period_secs: u64, now_unix: u64) -> Self {
        Self::new(TaskKind::Poll, next_due_unix, now_unix).every(period_secs)
    }

    /// The download event of a package, on links admitted by `flags`.
    pub fn download(package_id: &str, next_due_unix: u64, flags: u32, now_unix: u64) -> Self {
        let mut task = Self::new(
            TaskKind::Download {
                package_id: package_id.to_owned(),
            },
            next_due_unix,
            now_unix,
        );
        task.flags = flags;
        task
    }

    /// The periodic report of one type, repeating every `period_secs`.
    pub fn report(report: ReportType, next_due_unix: u64, period_secs: u64, now_unix: u64) -> Self {
        Self::new(TaskKind::Report { report }, next_due_unix, now_unix).every(period_secs)
    }

    /// Make the task recurring with the given period.
    pub fn every(mut self, period_secs: u64) -> Self {
        self.period_secs = Some(period_secs);
        self
    }
}

/// One row of the `checkpoints` table: the database's view of a download's
/// progress (part B §6). The `~PD-<id>` file next to the partial download is
/// separate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// The package; the table key.
    pub package_id: String,
    /// The URL being downloaded.
    pub url: String,
    /// The server's `ETag`, for `If-Range`.
    pub etag: Option<String>,
    /// Bytes written and synced so far.
    pub bytes_done: u64,
    /// Total size, if known.
    pub total: Option<u64>,
    /// When this row last changed, Unix seconds.
    pub updated_unix: u64,
}

/// What an outbox item carries to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxBody {
    /// One status message (batched into `Status` documents on delivery).
    Status(protocol::StatusMessage),
    /// An encoded report document.
    Report {
        /// `X-Device-ReportType`.
        report_type: ReportType,
        /// The encoded XML document.
        xml: Vec<u8>,
    },
    /// A file to upload for a file-collection report.
    CollectedFile {
        /// Device path of the file.
        path: String,
    },
}

impl OutboxBody {
    /// What the item is, in a few words, for `dmagent status`.
    pub fn summary(&self) -> String {
        match self {
            OutboxBody::Status(message) => {
                format!("status {} for {}", message.message_id.0, message.package_id)
            }
            OutboxBody::Report { report_type, xml } => {
                format!("report {report_type:?} ({} bytes)", xml.len())
            }
            OutboxBody::CollectedFile { path } => format!("collected file {path}"),
        }
    }
}

/// One row of the `outbox` table: something to deliver to the server.
/// Delivered in ascending `seq`; removed only after the server accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Sequence number; the table key. Monotonic, never reused.
    pub seq: u64,
    /// When it was queued, Unix seconds.
    pub queued_unix: u64,
    /// The payload.
    pub body: OutboxBody,
    /// How often the server refused it for good (a 4xx other than 408 and
    /// 429). Kept, not dropped (part B §8.5), but sent alone and behind the
    /// rest from then on, so that it blocks nothing. Absent in records of
    /// agents before it: 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The server-issued values, kept as one record (the single row of the
/// `server` table). Each settings block carries its own `version`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServerValues {
    /// Latest `X-Device-Timestamp` issued by the server.
    pub timestamp: Option<String>,
    /// Latest `X-Device-Auth` issued by the server.
    pub auth_token: Option<String>,
    /// `ClientSettings`.
    pub client_settings: Option<protocol::ClientSettings>,
    /// `SoftwareInventorySettings`.
    pub software_inventory: Option<protocol::ReportSettings>,
    /// `MachineInventorySettings`.
    pub machine_inventory: Option<protocol::ReportSettings>,
    /// `FileCollectionSettings`.
    pub file_collection: Option<protocol::ReportSettings>,
    /// Since when the server has not answered (Unix seconds), while it does
    /// not; kept here so `dmagent status` can say why work is parked.
    #[serde(default)]
    pub unreachable_since: Option<u64>,
}
