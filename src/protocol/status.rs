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

use super::error::DecodeError;
use super::literals::parse_u32;
use super::xml::{XmlIn, XmlOut};

type Result<T> = std::result::Result<T, DecodeError>;

pub(crate) fn read_status(p: &mut XmlIn<'_>) -> Result<Status> {
    let mut out = Status::default();
    while let Some(tag) = p.next_child()? {
        if tag.name != "StatusMessage" {
            p.skip()?;
            continue;
        }
        let package_id = p.req_attr(&tag, "packageID")?.to_owned();
        let message_id = MessageId(p.req_parse_attr(&tag, "messageID", parse_u32)?);
        let timestamp: CivilTime = p.req_parse_attr(&tag, "timestamp", str::parse)?;
        let mut parameters = Vec::new();
        while let Some(t) = p.next_child()? {
            if t.name == "Parameter" {
                let name = p.req_attr(&t, "name")?.to_owned();
                let value = p.text()?;
                parameters.push(Parameter { name, value });
            } else {
                p.skip()?;
            }
        }
        out.messages.push(StatusMessage {
            package_id,
            message_id,
            timestamp,
            parameters,
        });
    }
    Ok(out)
}

pub(crate) fn write_status(x: &Status, w: &mut XmlOut) {
    for m in &x.messages {
        let id = m.message_id.0.to_string();
        let ts = m.timestamp.to_string();
        let attrs = [
            ("packageID", Some(m.package_id.as_str())),
            ("messageID", Some(id.as_str())),
            ("timestamp", Some(ts.as_str())),
        ];
        if m.parameters.is_empty() {
            w.empty("StatusMessage", &attrs);
            continue;
        }
        w.open("StatusMessage", &attrs);
        for prm in &m.parameters {
            w.leaf_with("Parameter", &[("name", Some(&prm.name))], &prm.value);
        }
        w.close("StatusMessage");
    }
}
