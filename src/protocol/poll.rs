//! `DevicePoll` (device -> server) and `PollResponse` (server -> device),
//! part A §7.1 and §7.2.

use std::time::Duration;

use bytes::Bytes;
// The bit of a span's start that puts it in `PackageList::own`: spans are
// laid out as the poller's join reads them (`package_join::Listed`).
use package_join::OWN;
use serde::{Deserialize, Serialize};

/// The poll request: who the device is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DevicePoll {
    /// `ManagementSystem`: name and version of the management client.
    pub management_system: Option<ManagementSystem>,
    /// `Identification`: the device's identity (required).
    pub identification: Identification,
    /// `Connection`: echoed server-issued values.
    pub connection: Option<Connection>,
}

/// `DevicePoll/ManagementSystem`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManagementSystem {
    /// `Name`.
    pub name: Option<String>,
    /// `Version`.
    pub version: Option<String>,
}

/// `DevicePoll/Identification`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identification {
    /// `ID`: the device's unique ID, same value as `X-Device-UUID` (required).
    pub id: String,
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `UserName`.
    pub user_name: Option<String>,
    /// `Domain`.
    pub domain: Option<String>,
    /// `Platform`.
    pub platform: Option<String>,
    /// `Processor`: free text; real CE devices send a number (e.g. `586`).
    pub processor: Option<String>,
    /// `codePage` (emitted) / `CodePage` (also accepted).
    pub code_page: Option<u32>,
    /// `SystemDefaultLCID`: decimal on the wire; `0x0409` is accepted too.
    pub system_default_lcid: Option<u32>,
    /// `NetworkAdapter`s: emitted inside `Identification`, accepted directly
    /// under `DevicePoll` too.
    pub network_adapters: Vec<NetworkAdapter>,
}

/// `NetworkAdapter`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkAdapter {
    /// `IPAddress`.
    pub ip_address: Option<String>,
    /// `IPSubnet` (a mask, e.g. `255.255.255.0`).
    pub ip_subnet: Option<String>,
    /// `MAC`.
    pub mac: Option<String>,
}

/// `DevicePoll/Connection`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Connection {
    /// `AuthorizationToken`: same value as `X-Device-Auth`.
    pub authorization_token: Option<String>,
    /// `Timestamp`: the opaque server-issued value, same as `X-Device-Timestamp`.
    pub timestamp: Option<String>,
}

/// The poll response: every package the device should have, and setting changes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PollResponse {
    /// `Settings`: absent means no setting changes.
    pub settings: Option<Settings>,
    /// `ApplicablePackages`: `None` when the element is absent (no change to
    /// the package list, part A G16); `Some(vec![])` when present and empty
    /// (remove everything).
    pub applicable_packages: Option<PackageList>,
}

/// `PollResponse/Settings`. Each section may also appear directly under
/// `PollResponse`; decoders accept both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Settings {
    /// `ClientSettings`.
    pub client: Option<ClientSettings>,
    /// `SoftwareInventorySettings`.
    pub software_inventory: Option<ReportSettings>,
    /// `FileCollectionSettings`.
    pub file_collection: Option<ReportSettings>,
    /// `MachineInventorySettings` (never carries `FileFilterItem`s).
    pub machine_inventory: Option<ReportSettings>,
}

/// `ClientSettings`: absent children keep the current value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClientSettings {
    /// `@version`: opaque; an unchanged version may be skipped.
    pub version: Option<String>,
    /// `PollServer`: a URL or a bare host name.
    pub poll_server: Option<String>,
    /// `PollInterval`.
    pub poll_interval: Option<Duration>,
    /// `FailureRetryCount`.
    pub failure_retry_count: Option<u32>,
    /// `FailureRetryInterval`.
    pub failure_retry_interval: Option<Duration>,
}

/// `SoftwareInventorySettings`, `FileCollectionSettings` or `MachineInventorySettings`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReportSettings {
    /// `@version`: opaque; an unchanged version changes nothing.
    pub version: Option<String>,
    /// `Enabled`.
    pub enabled: Option<bool>,
    /// `Interval`.
    pub interval: Option<Duration>,
    /// `FileFilterItem`s, in document order.
    pub file_filters: Vec<FileFilterItem>,
    /// `@sendUnchanged` (extension X9): send the report at every interval,
    /// even when its content is the one the server last accepted. Absent (a
    /// plain server): only changed reports are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_unchanged: Option<bool>,
}

/// `FileFilterItem`: one search directive.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileFilterItem {
    /// `Filter`: wildcard pattern with `*` (and `?`).
    pub filter: String,
    /// `Path`: the directory to search.
    pub path: String,
    /// `Recursive`.
    pub recursive: Option<bool>,
    /// `ExcludeCompressed`.
    pub exclude_compressed: Option<bool>,
    /// `ExcludeEncrypted`.
    pub exclude_encrypted: Option<bool>,
}

/// `ApplicablePackages/Package`: one package the device should have.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PackageRef {
    /// `@ID`.
    pub id: String,
}

/// `ApplicablePackages`: the listed package IDs in document order.
///
/// Decoded from a response body ([`PollResponse::decode_shared`]), the list
/// refers to the body for every ID the body spells as it is, which is all
/// of them as servers write them: a catalog of 10,000 packages costs the
/// spans (80 KiB), not a second copy of its IDs (~360 KiB, whose fresh
/// pages were most of a poll's page faults, benchmark P7). IDs with a
/// character reference, and IDs pushed one by one, are kept in one buffer
/// of the list's own.
#[derive(Clone, Default)]
pub struct PackageList {
    /// The document the IDs were decoded from (empty when not shared).
    text: Bytes,
    /// IDs that are not spelled out in `text`.
    own: String,
    /// Start and end of each ID: in `own` when the start has [`OWN`] set,
    /// else in `text`.
    spans: Vec<(u32, u32)>,
}

impl PackageList {
    /// An empty list.
    pub fn new() -> Self {
        PackageList::default()
    }

    /// An empty list whose [`push`](Self::push)es of slices of `text`
    /// refer to it instead of copying (a text of 2 GiB or more is not
    /// shared: its offsets would not fit).
    pub(crate) fn sharing(text: Bytes) -> Self {
        PackageList {
            text: if text.len() < OWN as usize {
                text
            } else {
                Bytes::new()
            },
            ..PackageList::default()
        }
    }

    /// Room for every ID that `bytes` of XML could list, so that the list
    /// never grows by copying itself. The room is address space until it is
    /// written: an allocation this large is mapped on demand, so only the
    /// pages the IDs fill become resident.
    pub(crate) fn reserve_within(&mut self, bytes: usize) {
        // The shortest element: `<Package ID=""/>`.
        const SHORTEST: usize = 16;
        if self.text.is_empty() {
            self.own.reserve(bytes);
        }
        self.spans.reserve(bytes / SHORTEST + 1);
    }

    /// Appends one ID: a span of the shared text when `id` is a slice of
    /// it, else a copy.
    ///
    /// # Panics
    ///
    /// Past 2 GiB of copied IDs (a decoded list copies at most its
    /// document, and [`Limits::max_size`](super::Limits::max_size) caps that).
    pub fn push(&mut self, id: &str) {
        let text = self.text.as_ptr_range();
        let at = (id.as_ptr() as usize).wrapping_sub(text.start as usize);
        if !self.text.is_empty() && at <= self.text.len() && id.len() <= self.text.len() - at {
            // `text` is under 2 GiB: both ends fit below `OWN`.
            self.spans.push((at as u32, (at + id.len()) as u32));
            return;
        }
        let start = self.own.len();
        self.own.push_str(id);
        let end = u32::try_from(self.own.len())
            .ok()
            .filter(|&end| end < OWN)
            .expect("less than 2 GiB of copied package IDs");
        self.spans.push((start as u32 | OWN, end));
    }

    /// How many IDs (duplicates included).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// ID `k` as bytes (see `PackageStates::get_bytes`).
    #[inline(always)]
    pub(crate) fn get_bytes(&self, k: usize) -> Option<&[u8]> {
        // Every span is in range (`push` makes them): only `k` is checked.
        let k = u32::try_from(k)
            .ok()
            .filter(|&k| (k as usize) < self.len())?;
        Some(self.as_listed().id(k))
    }

    /// The IDs as the poller's join reads them.
    pub(crate) fn as_listed(&self) -> package_join::Listed<'_> {
        package_join::Listed {
            text: &self.text,
            own: self.own.as_bytes(),
            spans: &self.spans,
        }
    }

    /// ID `k`.
    pub fn get(&self, k: usize) -> Option<&str> {
        // Every span is the bytes of a `str` that `push` was given.
        std::str::from_utf8(self.get_bytes(k)?).ok()
    }

    /// The IDs in document order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|k| self.get(k).unwrap_or_default())
    }

    /// How many bytes of IDs the list holds a copy of (not shared).
    pub fn copied_bytes(&self) -> usize {
        self.own.len()
    }
}

/// Lists are equal when they list the same IDs in the same order, however
/// each is kept.
impl PartialEq for PackageList {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for PackageList {}

impl std::hash::Hash for PackageList {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for id in self.iter() {
            id.hash(state);
        }
    }
}

impl std::fmt::Debug for PackageList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<S> for PackageList {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut out = PackageList::new();
        for id in iter {
            out.push(id.as_ref());
        }
        out
    }
}

impl FromIterator<PackageRef> for PackageList {
    fn from_iter<I: IntoIterator<Item = PackageRef>>(iter: I) -> Self {
        let mut out = PackageList::new();
        for p in iter {
            out.push(&p.id);
        }
        out
    }
}

/// Serialised as the list of [`PackageRef`]s it stands for.
impl Serialize for PackageList {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(|id| PackageRef { id: id.to_owned() }))
    }
}

impl<'de> Deserialize<'de> for PackageList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Vec::<PackageRef>::deserialize(d)?.into_iter().collect())
    }
}

use super::error::DecodeError;
use super::literals::{
    format_bool, format_duration, parse_bool, parse_duration, parse_u32, parse_u32_dec_or_hex,
};
use super::xml::{Child, XmlIn, XmlOut};

type Result<T> = std::result::Result<T, DecodeError>;

pub(crate) fn read_device_poll(p: &mut XmlIn<'_>) -> Result<DevicePoll> {
    let here = p.path();
    let mut out = DevicePoll::default();
    let mut ident: Option<Identification> = None;
    let mut stray_adapters = Vec::new();
    while let Some(tag) = p.next_child()? {
        match tag.name() {
            "ManagementSystem" => {
                let mut ms = ManagementSystem::default();
                while let Some(t) = p.next_child()? {
                    match t.name() {
                        "Name" => ms.name = Some(p.text()?),
                        "Version" => ms.version = Some(p.text()?),
                        _ => p.skip()?,
                    }
                }
                out.management_system = Some(ms);
            }
            "Identification" => {
                let mut id = read_identification(p)?;
                if let Some(prev) = ident.take() {
                    // A repeated Identification: keep adapters of both.
                    let mut adapters = prev.network_adapters;
                    adapters.append(&mut id.network_adapters);
                    id.network_adapters = adapters;
                }
                ident = Some(id);
            }
            "NetworkAdapter" => stray_adapters.push(read_adapter(p)?),
            "Connection" => {
                let mut c = Connection::default();
                while let Some(t) = p.next_child()? {
                    match t.name() {
                        "AuthorizationToken" => c.authorization_token = Some(p.text()?),
                        "Timestamp" => c.timestamp = Some(p.text()?),
                        _ => p.skip()?,
                    }
                }
                out.connection = Some(c);
            }
            _ => p.skip()?,
        }
    }
    let mut ident = ident.ok_or_else(|| XmlIn::missing(&here, "Identification"))?;
    ident.network_adapters.append(&mut stray_adapters);
    out.identification = ident;
    Ok(out)
}

fn read_identification(p: &mut XmlIn<'_>) -> Result<Identification> {
    let here = p.path();
    let mut out = Identification::default();
    let mut id = None;
    while let Some(tag) = p.next_child()? {
        match tag.name() {
            "ID" => id = Some(p.text()?),
            "DeviceName" => out.device_name = Some(p.text()?),
            "UserName" => out.user_name = Some(p.text()?),
            "Domain" => out.domain = Some(p.text()?),
            "Platform" => out.platform = Some(p.text()?),
            "Processor" => out.processor = Some(p.text()?),
            "codePage" | "CodePage" => out.code_page = Some(p.parse_text(parse_u32)?),
            "SystemDefaultLCID" => {
                out.system_default_lcid = Some(p.parse_text(parse_u32_dec_or_hex)?)
            }
            "NetworkAdapter" => out.network_adapters.push(read_adapter(p)?),
            _ => p.skip()?,
        }
    }
    out.id = id.ok_or_else(|| XmlIn::missing(&here, "ID"))?;
    Ok(out)
}

fn read_adapter(p: &mut XmlIn<'_>) -> Result<NetworkAdapter> {
    let mut out = NetworkAdapter::default();
    while let Some(tag) = p.next_child()? {
        match tag.name() {
            "IPAddress" => out.ip_address = Some(p.text()?),
            "IPSubnet" => out.ip_subnet = Some(p.text()?),
            "MAC" => out.mac = Some(p.text()?),
            _ => p.skip()?,
        }
    }
    Ok(out)
}

pub(crate) fn write_device_poll(x: &DevicePoll, w: &mut XmlOut) {
    if let Some(ms) = &x.management_system {
        w.open("ManagementSystem", &[]);
        w.opt("Name", ms.name.as_deref());
        w.opt("Version", ms.version.as_deref());
        w.close("ManagementSystem");
    }
    let id = &x.identification;
    w.open("Identification", &[]);
    w.leaf("ID", &id.id);
    w.opt("DeviceName", id.device_name.as_deref());
    w.opt("UserName", id.user_name.as_deref());
    w.opt("Domain", id.domain.as_deref());
    w.opt("Platform", id.platform.as_deref());
    w.opt("Processor", id.processor.as_deref());
    w.opt_display("codePage", id.code_page);
    w.opt_display("SystemDefaultLCID", id.system_default_lcid);
    for a in &id.network_adapters {
        w.open("NetworkAdapter", &[]);
        w.opt("IPAddress", a.ip_address.as_deref());
        w.opt("IPSubnet", a.ip_subnet.as_deref());
        w.opt("MAC", a.mac.as_deref());
        w.close("NetworkAdapter");
    }
    w.close("Identification");
    if let Some(c) = &x.connection {
        w.open("Connection", &[]);
        w.opt("AuthorizationToken", c.authorization_token.as_deref());
        w.opt("Timestamp", c.timestamp.as_deref());
        w.close("Connection");
    }
}

pub(crate) fn read_poll_response(p: &mut XmlIn<'_>) -> Result<PollResponse> {
    let mut out = PollResponse::default();
    while let Some(tag) = p.next_child()? {
        match tag.name() {
            "Settings" => {
                let settings = out.settings.get_or_insert_with(Settings::default);
                while let Some(t) = p.next_child()? {
                    if !read_settings_section(p, &t, settings)? {
                        p.skip()?;
                    }
                }
            }
            "ClientSettings"
            | "SoftwareInventorySettings"
            | "FileCollectionSettings"
            | "MachineInventorySettings" => {
                let settings = out.settings.get_or_insert_with(Settings::default);
                read_settings_section(p, &tag, settings)?;
            }
            "ApplicablePackages" => {
                let list = out.applicable_packages.get_or_insert_with(|| {
                    p.shared()
                        .map_or_else(PackageList::new, PackageList::sharing)
                });
                list.reserve_within(p.unread_len());
                // `<Package ID="..."/>` as servers write it is read straight
                // from the input (benchmark P7); anything else, one child at
                // a time by the general path.
                loop {
                    p.plain_run("Package", "ID", |id| list.push(id));
                    match p.next_child_or_value(Some(("Package", "ID")))? {
                        None => break,
                        Some(Child::Value(id)) => list.push(id),
                        Some(Child::Tag(t)) if t.name == "Package" => {
                            let id = p.req_attr(&t, "ID")?;
                            list.push(id);
                            p.skip()?;
                        }
                        Some(Child::Tag(_)) => p.skip()?,
                    }
                }
            }
            _ => p.skip()?,
        }
    }
    Ok(out)
}

/// Reads one `*Settings` section into `settings`; `false` if `tag` is not one
/// (the caller then skips it).
fn read_settings_section(
    p: &mut XmlIn<'_>,
    tag: &super::xml::Tag<'_>,
    settings: &mut Settings,
) -> Result<bool> {
    match tag.name() {
        "ClientSettings" => {
            let mut c = ClientSettings {
                version: tag.attr("version").map(str::to_owned),
                ..ClientSettings::default()
            };
            while let Some(t) = p.next_child()? {
                match t.name() {
                    "PollServer" => c.poll_server = Some(p.text()?),
                    "PollInterval" => c.poll_interval = Some(p.parse_text(parse_duration)?),
                    "FailureRetryCount" => c.failure_retry_count = Some(p.parse_text(parse_u32)?),
                    "FailureRetryInterval" => {
                        c.failure_retry_interval = Some(p.parse_text(parse_duration)?)
                    }
                    _ => p.skip()?,
                }
            }
            settings.client = Some(c);
        }
        "SoftwareInventorySettings" => {
            settings.software_inventory = Some(read_report_settings(p, tag)?)
        }
        "FileCollectionSettings" => settings.file_collection = Some(read_report_settings(p, tag)?),
        "MachineInventorySettings" => {
            settings.machine_inventory = Some(read_report_settings(p, tag)?)
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn read_report_settings(p: &mut XmlIn<'_>, tag: &super::xml::Tag<'_>) -> Result<ReportSettings> {
    let mut out = ReportSettings {
        version: tag.attr("version").map(str::to_owned),
        send_unchanged: p.parse_attr(tag, "sendUnchanged", parse_bool)?,
        ..ReportSettings::default()
    };
    while let Some(t) = p.next_child()? {
        match t.name() {
            "Enabled" => out.enabled = Some(p.parse_text(parse_bool)?),
            "Interval" => out.interval = Some(p.parse_text(parse_duration)?),
            "FileFilterItem" => out.file_filters.push(read_filter(p)?),
            _ => p.skip()?,
        }
    }
    Ok(out)
}

fn read_filter(p: &mut XmlIn<'_>) -> Result<FileFilterItem> {
    let here = p.path();
    let mut filter = None;
    let mut path = None;
    let mut out = FileFilterItem::default();
    while let Some(t) = p.next_child()? {
        match t.name() {
            "Filter" => filter = Some(p.text()?),
            "Path" => path = Some(p.text()?),
            "Recursive" => out.recursive = Some(p.parse_text(parse_bool)?),
            "ExcludeCompressed" => out.exclude_compressed = Some(p.parse_text(parse_bool)?),
            "ExcludeEncrypted" => out.exclude_encrypted = Some(p.parse_text(parse_bool)?),
            _ => p.skip()?,
        }
    }
    out.filter = filter.ok_or_else(|| XmlIn::missing(&here, "Filter"))?;
    out.path = path.ok_or_else(|| XmlIn::missing(&here, "Path"))?;
    Ok(out)
}

fn write_report_settings(name: &str, s: &ReportSettings, w: &mut XmlOut) {
    w.open(
        name,
        &[
            ("version", s.version.as_deref()),
            ("sendUnchanged", s.send_unchanged.map(format_bool)),
        ],
    );
    w.opt("Enabled", s.enabled.map(format_bool));
    w.opt("Interval", s.interval.map(format_duration).as_deref());
    for f in &s.file_filters {
        w.open("FileFilterItem", &[]);
        w.leaf("Filter", &f.filter);
        w.leaf("Path", &f.path);
        w.opt("Recursive", f.recursive.map(format_bool));
        w.opt("ExcludeCompressed", f.exclude_compressed.map(format_bool));
        w.opt("ExcludeEncrypted", f.exclude_encrypted.map(format_bool));
        w.close("FileFilterItem");
    }
    w.close(name);
}

pub(crate) fn write_poll_response(x: &PollResponse, w: &mut XmlOut) {
    if let Some(s) = &x.settings {
        w.open("Settings", &[]);
        if let Some(c) = &s.client {
            w.open("ClientSettings", &[("version", c.version.as_deref())]);
            w.opt("PollServer", c.poll_server.as_deref());
            w.opt(
                "PollInterval",
                c.poll_interval.map(format_duration).as_deref(),
            );
            w.opt_display("FailureRetryCount", c.failure_retry_count);
            w.opt(
                "FailureRetryInterval",
                c.failure_retry_interval.map(format_duration).as_deref(),
            );
            w.close("ClientSettings");
        }
        if let Some(r) = &s.software_inventory {
            write_report_settings("SoftwareInventorySettings", r, w);
        }
        if let Some(r) = &s.file_collection {
            write_report_settings("FileCollectionSettings", r, w);
        }
        if let Some(r) = &s.machine_inventory {
            write_report_settings("MachineInventorySettings", r, w);
        }
        w.close("Settings");
    }
    if let Some(list) = &x.applicable_packages {
        w.open("ApplicablePackages", &[]);
        for id in list.iter() {
            w.empty("Package", &[("ID", Some(id))]);
        }
        w.close("ApplicablePackages");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Document;

    fn doc(packages: &str) -> Bytes {
        Bytes::from(format!(
            "<PollResponse xmlns=\"{}\"><ApplicablePackages>{packages}</ApplicablePackages></PollResponse>",
            crate::protocol::NAMESPACE
        ))
    }

    #[test]
    fn a_shared_decode_refers_to_the_body_and_reads_as_a_copying_one() {
        let plain =
            doc(r#"<Package ID="A"/> <Package ID="9A437CA5-5B17-4486-9E87-260742074A72"/>"#);
        let shared = PollResponse::decode_shared(&plain).expect("decodes");
        let list = shared.applicable_packages.as_ref().expect("listed");
        assert_eq!(
            list.copied_bytes(),
            0,
            "every ID is spelled out in the body"
        );
        assert_eq!(shared, PollResponse::decode(&plain).expect("decodes"));

        // A reference cannot be a slice of the body: that ID is copied.
        let mixed = doc(r#"<Package ID="A&amp;B"/><Package ID="C"/><Package ID = 'D' ></Package>"#);
        let shared = PollResponse::decode_shared(&mixed).expect("decodes");
        let list = shared.applicable_packages.as_ref().expect("listed");
        assert_eq!(list.iter().collect::<Vec<_>>(), ["A&B", "C", "D"]);
        assert!(list.copied_bytes() >= 3, "{}", list.copied_bytes());
        assert_eq!(shared, PollResponse::decode(&mixed).expect("decodes"));
        assert_eq!(list.get(1), Some("C"));
        assert_eq!(list.get(3), None);
    }

    #[test]
    fn lists_compare_and_hash_by_their_ids_however_kept() {
        use std::hash::BuildHasher;
        let body = Bytes::from_static(b"xAByCD");
        let mut shared = PackageList::sharing(body.clone());
        let text = std::str::from_utf8(&body).expect("ascii");
        shared.push(&text[1..3]);
        shared.push("CD"); // not a slice of the body: copied
        assert_eq!(shared.copied_bytes(), 2);
        let copied: PackageList = ["AB", "CD"].iter().collect();
        assert_eq!(shared, copied);
        let h = std::hash::RandomState::new();
        assert_eq!(h.hash_one(&shared), h.hash_one(&copied));
        assert_ne!(shared, ["AB"].iter().collect::<PackageList>());
        assert_ne!(shared, ["AB", "C", "D"].iter().collect::<PackageList>());
    }
}
