//! The software inventory report (`FileReport`/`Directory`/`File`, part B
//! §4.1) and the machine inventory report (`Inventory`/`InventoryItem`/
//! `Property`, part B §4.2). Attribute names are PascalCase here except
//! `Inventory/@type` and the lowercase `name`s of the machine inventory.

use serde::{Deserialize, Serialize};

use super::literals::CivilTime;

/// `FileReport`: the software inventory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileReport {
    /// Top-level `Directory` elements.
    pub directories: Vec<DirectoryEntry>,
}

/// `Directory`: its `Name` is always the fully qualified path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DirectoryEntry {
    /// `@Name`.
    pub name: String,
    /// `@Created`.
    pub created: Option<CivilTime>,
    /// `@LastAccessed`.
    pub last_accessed: Option<CivilTime>,
    /// `@Attributes`: `""` or `|`-joined flags (`HIDDEN|READONLY`).
    pub attributes: Option<String>,
    /// `File` children.
    pub files: Vec<FileEntry>,
    /// Nested `Directory` children.
    pub directories: Vec<DirectoryEntry>,
}

/// `File`: an empty element.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileEntry {
    /// `@Name`: file name only.
    pub name: String,
    /// `@Version`.
    pub version: Option<String>,
    /// `@Company`.
    pub company: Option<String>,
    /// `@Description`.
    pub description: Option<String>,
    /// `@Size` in bytes (required).
    pub size: u64,
    /// `@Created`.
    pub created: Option<CivilTime>,
    /// `@LastModified`.
    pub last_modified: Option<CivilTime>,
    /// `@LastAccessed`.
    pub last_accessed: Option<CivilTime>,
    /// `@Attributes`.
    pub attributes: Option<String>,
}

/// `Inventory`: the machine inventory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Inventory {
    /// `@type` (`machine` from real devices).
    pub kind: Option<String>,
    /// `InventoryItem`s; a name may repeat (one `Device_FileSystem` per volume).
    pub items: Vec<InventoryItem>,
}

/// `InventoryItem name="..."`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InventoryItem {
    /// `@name`, e.g. `Device_System`.
    pub name: String,
    /// `Property` children.
    pub properties: Vec<Property>,
}

/// `Property name="...">value</Property>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Property {
    /// `@name`.
    pub name: String,
    /// Text content.
    pub value: String,
}
