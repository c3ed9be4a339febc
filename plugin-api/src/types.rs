//! The JSON payloads that cross the ABI as bytes. Every request carries a
//! `version` (1 today); fields are only added, as `Option`s or with
//! `#[serde(default)]`, so an older plugin still reads a newer request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the payload types below.
pub const PAYLOAD_VERSION: u32 = 1;

/// What the host asks for, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Run a post-install command line.
    PostInstall(PostInstallRequest),
    /// Collect a report.
    Collect(CollectRequest),
}

/// A post-install step for one downloaded package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostInstallRequest {
    /// [`PAYLOAD_VERSION`].
    pub version: u32,
    /// The package's ID.
    pub package_id: String,
    /// The package's directory (its destination, inside the download root).
    pub package_dir: String,
    /// The downloaded file, when the package is one file.
    pub package_file: Option<String>,
    /// The `CommandLine`, with any `<handler>:` prefix already stripped.
    pub command_line: String,
    /// How long the command may run, in seconds.
    pub timeout_secs: u64,
    /// Extra environment for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Absolute directories outside the package directory the handler may write to.
    #[serde(default)]
    pub allowed_roots: Vec<String>,
}

/// What a post-install step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostInstallResult {
    /// The command's exit code (0 = success).
    pub exit_code: i32,
    /// The end of the command's combined output (at most a few KiB).
    pub output_tail: String,
}

/// Which report a collector is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Software inventory: a directory tree.
    Software,
    /// Machine inventory: items and properties.
    Machine,
    /// File collection: which files to send.
    Files,
}

impl ReportKind {
    /// The `report_kinds` bit of this kind.
    pub fn bit(self) -> u32 {
        match self {
            Self::Software => crate::REPORT_SOFTWARE,
            Self::Machine => crate::REPORT_MACHINE,
            Self::Files => crate::REPORT_FILES,
        }
    }
}

/// One `FileFilterItem` of the poll response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileFilter {
    /// Wildcard pattern: `*` any run, `?` one character, case-insensitive.
    pub filter: String,
    /// The directory to search.
    pub path: String,
    /// Search subdirectories too.
    #[serde(default)]
    pub recursive: bool,
    /// Drop compressed files (no such notion on Linux: a no-op there).
    #[serde(default)]
    pub exclude_compressed: bool,
    /// Drop encrypted files (no such notion on Linux: a no-op there).
    #[serde(default)]
    pub exclude_encrypted: bool,
}

/// A report collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectRequest {
    /// [`PAYLOAD_VERSION`].
    pub version: u32,
    /// The report wanted.
    pub report: ReportKind,
    /// The server's filters (software inventory, file collection).
    #[serde(default)]
    pub file_filters: Vec<FileFilter>,
    /// Absolute directories the collector may look into. File collection
    /// skips every file outside them (empty: nothing is collected).
    #[serde(default)]
    pub allowed_roots: Vec<String>,
    /// Files larger than this are skipped (file collection).
    #[serde(default)]
    pub max_file_bytes: u64,
}

/// A collected report, tagged by `report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum CollectResult {
    /// Software inventory: top-level directories.
    Software {
        /// The trees, each directory named by its full path.
        directories: Vec<Directory>,
    },
    /// Machine inventory items.
    Machine {
        /// Items; a name may repeat.
        items: Vec<InventoryItem>,
    },
    /// Files selected for collection.
    Files {
        /// The files, never their contents.
        files: Vec<CollectedFile>,
    },
}

/// A directory of the software inventory (mirrors `FileReport/Directory`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Directory {
    /// The fully qualified path.
    pub name: String,
    /// Creation time, UTC `YYYY-MM-DD hh:mm:ss`.
    #[serde(default)]
    pub created: Option<String>,
    /// Last access time, UTC `YYYY-MM-DD hh:mm:ss`.
    #[serde(default)]
    pub last_accessed: Option<String>,
    /// `|`-joined flags (`HIDDEN|READONLY`) or empty.
    #[serde(default)]
    pub attributes: Option<String>,
    /// Files directly inside.
    #[serde(default)]
    pub files: Vec<File>,
    /// Subdirectories, each named by its full path.
    #[serde(default)]
    pub directories: Vec<Directory>,
}

/// A file of the software inventory (mirrors `FileReport//File`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct File {
    /// The file name only.
    pub name: String,
    /// Version, when known.
    #[serde(default)]
    pub version: Option<String>,
    /// Company, when known.
    #[serde(default)]
    pub company: Option<String>,
    /// Description, when known.
    #[serde(default)]
    pub description: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Creation time, UTC `YYYY-MM-DD hh:mm:ss`.
    #[serde(default)]
    pub created: Option<String>,
    /// Modification time, UTC.
    #[serde(default)]
    pub last_modified: Option<String>,
    /// Access time, UTC.
    #[serde(default)]
    pub last_accessed: Option<String>,
    /// `|`-joined flags or empty.
    #[serde(default)]
    pub attributes: Option<String>,
}

/// A machine inventory item (`InventoryItem`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InventoryItem {
    /// Item name, e.g. `Device_System`.
    pub name: String,
    /// `(name, value)` properties in order.
    pub properties: Vec<(String, String)>,
}

/// A file selected for collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectedFile {
    /// Absolute path.
    pub path: String,
    /// Size in bytes when selected.
    pub size: u64,
}

/// A plugin's error (return code [`crate::RC_PLUGIN_ERROR`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginError {
    /// What went wrong, for the log and the status report.
    pub message: String,
}

impl PluginError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged() {
        let r = Request::Collect(CollectRequest {
            version: PAYLOAD_VERSION,
            report: ReportKind::Machine,
            file_filters: vec![],
            allowed_roots: vec![],
            max_file_bytes: 0,
        });
        let text = serde_json::to_string(&r).expect("encode");
        assert!(text.starts_with(r#"{"type":"collect","version":1,"report":"machine""#));
        assert_eq!(serde_json::from_str::<Request>(&text).expect("decode"), r);
        let res = CollectResult::Files { files: vec![] };
        let text = serde_json::to_string(&res).expect("encode");
        assert_eq!(text, r#"{"report":"files","files":[]}"#);
    }
}
