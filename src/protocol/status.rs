//! `Status` documents with `StatusMessage`/`Parameter`, part B §3.

use serde::{Deserialize, Serialize};

use super::literals::CivilTime;

/// A status document: one or more status messages, processed in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Status {
    /// `StatusMessage`s.
    pub messages: Vec<StatusMessage>,
}

/// One `StatusMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMessage {
    /// `@packageID`.
    pub package_id: String,
    /// `@messageID`.
    pub message_id: MessageId,
    /// `@timestamp`: event time, UTC.
    pub timestamp: CivilTime,
    /// `Parameter`s, in order. Every message we emit carries `ReportID` (X3).
    pub parameters: Vec<Parameter>,
}

/// A `messageID`. Unknown values are kept: a server treats them as
/// informational rather than as errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(pub u32);

impl MessageId {
    /// 11030: package download is starting.
    pub const DOWNLOAD_STARTED: MessageId = MessageId(11030);
    /// 11031: package download completed successfully.
    pub const DOWNLOAD_SUCCEEDED: MessageId = MessageId(11031);
    /// 11032: package download failed.
    pub const DOWNLOAD_FAILED: MessageId = MessageId(11032);
    /// 11035: post-install command executed successfully.
    pub const COMMAND_SUCCEEDED: MessageId = MessageId(11035);
    /// 11036 (extension X2): post-install command failed.
    pub const COMMAND_FAILED: MessageId = MessageId(11036);
}

/// `Parameter name="...">value</Parameter>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    /// `@name` (case-sensitive).
    pub name: String,
    /// Text content.
    pub value: String,
}
