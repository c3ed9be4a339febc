//! From the plugin payloads to the protocol's report documents.

use dmagent_plugin_api::{CollectResult, Directory, File};

use crate::protocol::{DirectoryEntry, FileEntry, FileReport, Inventory, InventoryItem, Property};

/// Merges software-inventory results into one `FileReport`. Unparsable
/// times are dropped (the attributes are optional), not the entries.
pub fn file_report<'a>(results: impl IntoIterator<Item = &'a CollectResult>) -> FileReport {
    let mut report = FileReport::default();
    for result in results {
        if let CollectResult::Software { directories } = result {
            report.directories.extend(directories.iter().map(directory));
        }
    }
    report
}

/// Concatenates machine-inventory results under one `Inventory type="machine"`
/// (part B §4.2: several providers' items are concatenated).
pub fn machine_inventory<'a>(results: impl IntoIterator<Item = &'a CollectResult>) -> Inventory {
    let mut inventory = Inventory {
        kind: Some("machine".to_owned()),
        items: Vec::new(),
    };
    for result in results {
        if let CollectResult::Machine { items } = result {
            inventory.items.extend(items.iter().map(|item| {
                InventoryItem {
                    name: item.name.clone(),
                    properties: item
                        .properties
                        .iter()
                        .map(|(name, value)| Property {
                            name: name.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                }
            }));
        }
    }
    inventory
}

fn time(t: &Option<String>) -> Option<crate::protocol::CivilTime> {
    t.as_deref().and_then(|s| s.parse().ok())
}

fn directory(d: &Directory) -> DirectoryEntry {
    DirectoryEntry {
        name: d.name.clone(),
        created: time(&d.created),
        last_accessed: time(&d.last_accessed),
        attributes: d.attributes.clone(),
        files: d.files.iter().map(file).collect(),
        directories: d.directories.iter().map(directory).collect(),
    }
}

fn file(f: &File) -> FileEntry {
    FileEntry {
        name: f.name.clone(),
        version: f.version.clone(),
        company: f.company.clone(),
        description: f.description.clone(),
        size: f.size,
        created: time(&f.created),
        last_modified: time(&f.last_modified),
        last_accessed: time(&f.last_accessed),
        attributes: f.attributes.clone(),
    }
}
