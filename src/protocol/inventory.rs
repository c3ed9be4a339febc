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

use super::error::DecodeError;
use super::literals::parse_u64;
use super::xml::{Tag, XmlIn, XmlOut};

type Result<T> = std::result::Result<T, DecodeError>;

fn civil(p: &XmlIn<'_>, tag: &Tag<'_>, name: &str) -> Result<Option<CivilTime>> {
    p.parse_attr(tag, name, str::parse)
}

pub(crate) fn read_file_report(p: &mut XmlIn<'_>) -> Result<FileReport> {
    let mut out = FileReport::default();
    while let Some(tag) = p.next_child()? {
        if tag.name == "Directory" {
            out.directories.push(read_directory(p, &tag)?);
        } else {
            p.skip()?;
        }
    }
    Ok(out)
}

fn read_directory(p: &mut XmlIn<'_>, tag: &Tag<'_>) -> Result<DirectoryEntry> {
    let mut out = DirectoryEntry {
        name: p.req_attr(tag, "Name")?.to_owned(),
        created: civil(p, tag, "Created")?,
        last_accessed: civil(p, tag, "LastAccessed")?,
        attributes: tag.attr("Attributes").map(str::to_owned),
        ..DirectoryEntry::default()
    };
    while let Some(t) = p.next_child()? {
        match t.name() {
            "Directory" => out.directories.push(read_directory(p, &t)?),
            "File" => {
                out.files.push(FileEntry {
                    name: p.req_attr(&t, "Name")?.to_owned(),
                    version: t.attr("Version").map(str::to_owned),
                    company: t.attr("Company").map(str::to_owned),
                    description: t.attr("Description").map(str::to_owned),
                    size: p.req_parse_attr(&t, "Size", parse_u64)?,
                    created: civil(p, &t, "Created")?,
                    last_modified: civil(p, &t, "LastModified")?,
                    last_accessed: civil(p, &t, "LastAccessed")?,
                    attributes: t.attr("Attributes").map(str::to_owned),
                });
                p.skip()?;
            }
            _ => p.skip()?,
        }
    }
    Ok(out)
}

fn write_directory(d: &DirectoryEntry, w: &mut XmlOut) {
    let created = d.created.map(|t| t.to_string());
    let accessed = d.last_accessed.map(|t| t.to_string());
    let attrs = [
        ("Name", Some(d.name.as_str())),
        ("Created", created.as_deref()),
        ("LastAccessed", accessed.as_deref()),
        ("Attributes", d.attributes.as_deref()),
    ];
    if d.files.is_empty() && d.directories.is_empty() {
        w.empty("Directory", &attrs);
        return;
    }
    w.open("Directory", &attrs);
    for f in &d.files {
        let size = f.size.to_string();
        let created = f.created.map(|t| t.to_string());
        let modified = f.last_modified.map(|t| t.to_string());
        let accessed = f.last_accessed.map(|t| t.to_string());
        w.empty(
            "File",
            &[
                ("Name", Some(f.name.as_str())),
                ("Version", f.version.as_deref()),
                ("Company", f.company.as_deref()),
                ("Description", f.description.as_deref()),
                ("Size", Some(size.as_str())),
                ("Created", created.as_deref()),
                ("LastModified", modified.as_deref()),
                ("LastAccessed", accessed.as_deref()),
                ("Attributes", f.attributes.as_deref()),
            ],
        );
    }
    for sub in &d.directories {
        write_directory(sub, w);
    }
    w.close("Directory");
}

pub(crate) fn write_file_report(x: &FileReport, w: &mut XmlOut) {
    for d in &x.directories {
        write_directory(d, w);
    }
}

pub(crate) fn read_inventory(p: &mut XmlIn<'_>, root: &Tag<'_>) -> Result<Inventory> {
    let mut out = Inventory {
        kind: root.attr("type").map(str::to_owned),
        items: Vec::new(),
    };
    while let Some(tag) = p.next_child()? {
        if tag.name != "InventoryItem" {
            p.skip()?;
            continue;
        }
        let mut item = InventoryItem {
            name: p.req_attr(&tag, "name")?.to_owned(),
            properties: Vec::new(),
        };
        while let Some(t) = p.next_child()? {
            if t.name == "Property" {
                let name = p.req_attr(&t, "name")?.to_owned();
                let value = p.text()?;
                item.properties.push(Property { name, value });
            } else {
                p.skip()?;
            }
        }
        out.items.push(item);
    }
    Ok(out)
}

pub(crate) fn inventory_root_attrs(x: &Inventory) -> Vec<(&'static str, Option<&str>)> {
    vec![("type", x.kind.as_deref())]
}

pub(crate) fn write_inventory(x: &Inventory, w: &mut XmlOut) {
    for item in &x.items {
        if item.properties.is_empty() {
            w.empty("InventoryItem", &[("name", Some(&item.name))]);
            continue;
        }
        w.open("InventoryItem", &[("name", Some(&item.name))]);
        for prm in &item.properties {
            w.leaf_with("Property", &[("name", Some(&prm.name))], &prm.value);
        }
        w.close("InventoryItem");
    }
}
