//! Tests: protocol_examples. Every example document of the spec decodes to
//! the expected values and survives a re-encode; real-CE-device shapes are
//! accepted; the header sample of part A §3.1 works with the envelope helpers.

use std::time::Duration;

use dmagent::protocol::envelope::{
    HEADER_ACTION, HEADER_AUTH, HEADER_REPORT_TYPE, HEADER_TIMESTAMP, HEADER_UUID,
};
use dmagent::protocol::{
    root_element_name, Action, CivilTime, DeviceHeaders, DevicePoll, Document, FileReport,
    Instructions, InstructionsRequest, Inventory, LinkFlags, MessageId, PackageList,
    PackageLocation, PackageLocationRequest, PollResponse, RecurrenceBehavior, ReportType, Status,
    NAMESPACE,
};

/// Part A §7.1.
pub(crate) const DEVICE_POLL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<DevicePoll xmlns="http://www.microsoft.com/DeviceManagement.xsd">
  <ManagementSystem>
    <Name>RustDM</Name>
    <Version>1.0</Version>
  </ManagementSystem>
  <Identification>
    <ID>6F1C2B0A-93D4-4E5B-8C21-7A0B3C9D1E42</ID>
    <DeviceName>KIOSK-017</DeviceName>
    <UserName>operator</UserName>
    <Domain>PLANT1</Domain>
    <Platform>Linux</Platform>
    <Processor>ARM</Processor>
    <codePage>65001</codePage>
    <SystemDefaultLCID>1033</SystemDefaultLCID>
    <NetworkAdapter>
      <IPAddress>10.20.30.41</IPAddress>
      <IPSubnet>255.255.255.0</IPSubnet>
      <MAC>00:1A:2B:3C:4D:5E</MAC>
    </NetworkAdapter>
  </Identification>
  <Connection>
    <AuthorizationToken>5b0f6d3e-1c2a-4e7f-9a31-0d9c8b7a6e15</AuthorizationToken>
    <Timestamp></Timestamp>
  </Connection>
</DevicePoll>
"#;

/// Part A §7.2.
const POLL_RESPONSE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<PollResponse xmlns="http://www.microsoft.com/DeviceManagement.xsd">
  <Settings>
    <ClientSettings version="7">
      <PollServer>https://dm.example.com/devicemgmt/server.aspx</PollServer>
      <PollInterval>0000-00-00 02:00:00</PollInterval>
      <FailureRetryCount>5</FailureRetryCount>
      <FailureRetryInterval>0000-00-00 00:03:00</FailureRetryInterval>
    </ClientSettings>
    <SoftwareInventorySettings>
      <Enabled>true</Enabled>
      <Interval>0000-00-01 00:00:00</Interval>
      <FileFilterItem>
        <Filter>*.exe</Filter>
        <Path>\Program Files</Path>
        <Recursive>true</Recursive>
        <ExcludeCompressed>false</ExcludeCompressed>
        <ExcludeEncrypted>true</ExcludeEncrypted>
      </FileFilterItem>
    </SoftwareInventorySettings>
    <FileCollectionSettings>
      <Enabled>false</Enabled>
    </FileCollectionSettings>
    <MachineInventorySettings>
      <Enabled>true</Enabled>
      <Interval>0000-00-07 00:00:00</Interval>
    </MachineInventorySettings>
  </Settings>
  <ApplicablePackages>
    <Package ID="9A437CA5-5B17-4486-9E87-260742074A72"/>
    <Package ID="1F0E2D3C-4B5A-4968-8776-655443322110"/>
  </ApplicablePackages>
</PollResponse>
"#;

/// Part A §7.3.
const INSTRUCTIONS_REQUEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<InstructionsRequest xmlns="http://www.microsoft.com/DeviceManagement.xsd">
  <Package ID="1F0E2D3C-4B5A-4968-8776-655443322110"/>
</InstructionsRequest>
"#;

/// Part A §7.4.
const INSTRUCTIONS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Instructions xmlns="http://www.microsoft.com/DeviceManagement.xsd">
  <Package>
    <ID>1F0E2D3C-4B5A-4968-8776-655443322110</ID>
    <Required>Yes</Required>
    <Name>Scanner driver 2.4</Name>
    <ShortDescription>Barcode scanner driver update</ShortDescription>
    <LongDescription>Replaces scanner driver 2.3; fixes wake-from-suspend bug.</LongDescription>
    <PackageSize>482304</PackageSize>
    <Flags>06 00 00 00</Flags>
    <StartTime UTC="true">2025-01-16 01:00:00</StartTime>
    <Recurrence>
      <Interval>0000-00-07 00:00:00</Interval>
      <Behavior>Execute Only</Behavior>
    </Recurrence>
    <LocalDestination>\Temp\DM\scanner24</LocalDestination>
    <CommandLine>\Temp\DM\scanner24\setup.exe /quiet</CommandLine>
    <SourceFiles>Yes</SourceFiles>
  </Package>
</Instructions>
"#;

/// Part B §2.2.
const LOCATION_REQUEST: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<PackageLocationRequest xmlns="http://www.microsoft.com/DeviceManagement.xsd">
  <PackageID>5F0C1D2E-3A4B-4C5D-8E9F-0A1B2C3D4E5F</PackageID>
  <ClientLocation>
    <DirectoryService>
      <Name>OU=Kiosks,DC=corp,DC=example,DC=com</Name>
    </DirectoryService>
    <IPAddresses>
      <IPAddress address="10.20.30.41" subnet="255.255.255.0" />
    </IPAddresses>
  </ClientLocation>
</PackageLocationRequest>
"#;

/// Part B §2.6.
const LOCATION: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<PackageLocation xmlns="http://www.microsoft.com/DeviceManagement.xsd">
  <PackageID>5F0C1D2E-3A4B-4C5D-8E9F-0A1B2C3D4E5F</PackageID>
  <Locations>
    <Location metric="1">
      <HTTP>
        <URL>http://pkg-east.example.com/apps/viewer-2.1.cab</URL>
      </HTTP>
      <DirectoryService>
        <Name>OU=Kiosks,DC=corp,DC=example,DC=com</Name>
      </DirectoryService>
      <IPSubnets>
        <Subnet>10.20.30.0/24</Subnet>
      </IPSubnets>
    </Location>
    <Location metric="5">
      <SMB>
        <SMBPath>\\fileserver\packages\viewer-2.1.cab</SMBPath>
      </SMB>
      <HTTP>
        <URL>http://pkg.example.com/apps/viewer-2.1.cab</URL>
      </HTTP>
    </Location>
  </Locations>
</PackageLocation>
"#;

/// Part B §3.6, start of download.
const STATUS_START: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<Status xmlns="http://www.microsoft.com/DeviceManagement.xsd">
  <StatusMessage packageID="5F0C1D2E-3A4B-4C5D-8E9F-0A1B2C3D4E5F"
                 messageID="11030"
                 timestamp="2005-03-14 09:05:12">
    <Parameter name="URL">http://pkg.example.com/apps/viewer-2.1.cab</Parameter>
  </StatusMessage>
</Status>
"#;

/// Part B §3.6, batched failure/success/execution.
const STATUS_BATCH: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<Status xmlns="http://www.microsoft.com/DeviceManagement.xsd">
  <StatusMessage packageID="5F0C1D2E-3A4B-4C5D-8E9F-0A1B2C3D4E5F"
                 messageID="11032" timestamp="2005-03-14 09:06:40">
    <Parameter name="ErrorCode">0x80072EFE</Parameter>
  </StatusMessage>
  <StatusMessage packageID="5F0C1D2E-3A4B-4C5D-8E9F-0A1B2C3D4E5F"
                 messageID="11031" timestamp="2005-03-14 09:21:02" />
  <StatusMessage packageID="5F0C1D2E-3A4B-4C5D-8E9F-0A1B2C3D4E5F"
                 messageID="11035" timestamp="2005-03-14 09:21:09">
    <Parameter name="ExitCode">0</Parameter>
  </StatusMessage>
</Status>
"#;

/// Part B §4.1.
pub(crate) const FILE_REPORT: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<FileReport>
  <Directory Name="\Program Files\Viewer" Created="2005-03-14 09:21:05"
             LastAccessed="2005-03-14 09:29:41" Attributes="">
    <File Name="viewer.exe" Version="2.1.0.17" Company="Example Corp"
          Description="Document viewer" Size="245760"
          Created="2005-03-14 09:21:06" LastModified="2005-03-01 17:02:11"
          LastAccessed="2005-03-14 09:29:41" Attributes="ARCHIVE" />
    <Directory Name="\Program Files\Viewer\res" Created="2005-03-14 09:21:05"
               LastAccessed="2005-03-14 09:21:05" Attributes="HIDDEN">
      <File Name="strings.dat" Version="0.0.0" Company="" Description=""
            Size="8192" Attributes="READONLY|HIDDEN" />
    </Directory>
  </Directory>
</FileReport>
"#;

/// Part B §4.2.1.
const INVENTORY: &str = r#"<Inventory type="machine">
  <InventoryItem name="Device_System">
    <Property name="PlatformType">Example Kiosk K2</Property>
    <Property name="OEMInfo">Example Corp</Property>
    <Property name="NumberOfProcessors">4</Property>
    <Property name="ProcessorArchitecture">12</Property>
  </InventoryItem>
  <InventoryItem name="Device_Network">
    <Property name="IPAddress">10.20.30.41</Property>
    <Property name="IPSubnet">255.255.255.0</Property>
    <Property name="MAC">02-11-22-33-44-55</Property>
    <Property name="Bandwidth">100000000</Property>
  </InventoryItem>
  <InventoryItem name="Device_FileSystem">
    <Property name="Name">root</Property>
    <Property name="Size">7340032</Property>
    <Property name="UsedSpace">2097152</Property>
  </InventoryItem>
</Inventory>
"#;

/// Part B §4.5.1: the shape of the third-party server that works with real
/// devices (`version="1.0"` on every section, bare host, `True`, 10 retries).
const POLL_RESPONSE_THIRD_PARTY: &str = r#"<PollResponse>
  <Settings>
    <ClientSettings version="1.0">
      <PollServer>192.168.1.1</PollServer>
      <PollInterval>0000-00-00 00:10:00</PollInterval>
      <FailureRetryCount>10</FailureRetryCount>
      <FailureRetryInterval>0000-00-00 00:01:00</FailureRetryInterval>
    </ClientSettings>
    <SoftwareInventorySettings version="1.0">
      <Enabled>True</Enabled>
      <Interval>0000-00-00 00:01:00</Interval>
      <FileFilterItem>
        <Filter>*</Filter>
        <Path>\Windows</Path>
        <Recursive>false</Recursive>
        <ExcludeCompressed>false</ExcludeCompressed>
        <ExcludeEncrypted>false</ExcludeEncrypted>
      </FileFilterItem>
    </SoftwareInventorySettings>
    <FileCollectionSettings version="1.0">
      <Enabled>false</Enabled>
      <Interval>0000-00-00 00:10:00</Interval>
      <FileFilterItem>
        <Filter>*.log</Filter>
        <Path>\Temp</Path>
        <Recursive>true</Recursive>
        <ExcludeCompressed>true</ExcludeCompressed>
        <ExcludeEncrypted>true</ExcludeEncrypted>
      </FileFilterItem>
    </FileCollectionSettings>
    <MachineInventorySettings version="1.0">
      <Enabled>true</Enabled>
      <Interval>0000-00-00 00:01:00</Interval>
    </MachineInventorySettings>
  </Settings>
  <ApplicablePackages>
  </ApplicablePackages>
</PollResponse>"#;

/// A real CE device's poll: no namespace, no declaration, `CodePage` after
/// `NetworkAdapter`, a numeric `Processor`, `Timestamp` 0.
const CE_DEVICE_POLL: &str = r#"<DevicePoll>
<ManagementSystem><Name>DM Client</Name><Version>1.0</Version></ManagementSystem>
<Identification>
<ID>43004500500043000000434550434B5335343934350000000000</ID>
<DeviceName>CEPC</DeviceName>
<Platform>CEPC</Platform>
<Processor>586</Processor>
<NetworkAdapter><IPAddress>192.168.1.50</IPAddress><IPSubnet>255.255.255.0</IPSubnet><MAC>00-08-22-05-26-CB</MAC></NetworkAdapter>
<CodePage>1252</CodePage>
<SystemDefaultLCID>1033</SystemDefaultLCID>
</Identification>
<Connection><AuthorizationToken></AuthorizationToken><Timestamp>0</Timestamp></Connection>
</DevicePoll>"#;

fn ct(s: &str) -> CivilTime {
    s.parse().expect("valid civil time")
}

/// Decodes, re-encodes, checks our namespace and declaration, decodes again
/// to an equal value.
fn reencode<T: Document + PartialEq + std::fmt::Debug>(value: &T) {
    let text = value.encode_string();
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("<{} xmlns=\"{NAMESPACE}\"", T::ROOT)),
        "{text}"
    );
    let again = T::decode(text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&again, value, "{text}");
}

fn decode<T: Document>(s: &str) -> T {
    T::decode(s.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn device_poll_example() {
    let p: DevicePoll = decode(DEVICE_POLL);
    let ms = p.management_system.as_ref().expect("ManagementSystem");
    assert_eq!(ms.name.as_deref(), Some("RustDM"));
    assert_eq!(ms.version.as_deref(), Some("1.0"));
    let id = &p.identification;
    assert_eq!(id.id, "6F1C2B0A-93D4-4E5B-8C21-7A0B3C9D1E42");
    assert_eq!(id.device_name.as_deref(), Some("KIOSK-017"));
    assert_eq!(id.user_name.as_deref(), Some("operator"));
    assert_eq!(id.domain.as_deref(), Some("PLANT1"));
    assert_eq!(id.platform.as_deref(), Some("Linux"));
    assert_eq!(id.processor.as_deref(), Some("ARM"));
    assert_eq!(id.code_page, Some(65001));
    assert_eq!(id.system_default_lcid, Some(1033));
    assert_eq!(id.network_adapters.len(), 1);
    let a = &id.network_adapters[0];
    assert_eq!(a.ip_address.as_deref(), Some("10.20.30.41"));
    assert_eq!(a.ip_subnet.as_deref(), Some("255.255.255.0"));
    assert_eq!(a.mac.as_deref(), Some("00:1A:2B:3C:4D:5E"));
    let c = p.connection.as_ref().expect("Connection");
    assert_eq!(
        c.authorization_token.as_deref(),
        Some("5b0f6d3e-1c2a-4e7f-9a31-0d9c8b7a6e15")
    );
    assert_eq!(c.timestamp.as_deref(), Some(""));
    reencode(&p);
    // Emitted with the lower-case codePage and the empty Timestamp kept.
    let text = p.encode_string();
    assert!(text.contains("<codePage>65001</codePage>"), "{text}");
    assert!(text.contains("<Timestamp></Timestamp>"), "{text}");
}

#[test]
fn poll_response_example() {
    let r: PollResponse = decode(POLL_RESPONSE);
    let s = r.settings.as_ref().expect("Settings");
    let c = s.client.as_ref().expect("ClientSettings");
    assert_eq!(c.version.as_deref(), Some("7"));
    assert_eq!(
        c.poll_server.as_deref(),
        Some("https://dm.example.com/devicemgmt/server.aspx")
    );
    assert_eq!(c.poll_interval, Some(Duration::from_secs(2 * 3600)));
    assert_eq!(c.failure_retry_count, Some(5));
    assert_eq!(c.failure_retry_interval, Some(Duration::from_secs(180)));
    let si = s
        .software_inventory
        .as_ref()
        .expect("SoftwareInventorySettings");
    assert_eq!(si.version, None);
    assert_eq!(si.enabled, Some(true));
    assert_eq!(si.interval, Some(Duration::from_secs(86_400)));
    assert_eq!(si.file_filters.len(), 1);
    let f = &si.file_filters[0];
    assert_eq!(f.filter, "*.exe");
    assert_eq!(f.path, r"\Program Files");
    assert_eq!(f.recursive, Some(true));
    assert_eq!(f.exclude_compressed, Some(false));
    assert_eq!(f.exclude_encrypted, Some(true));
    let fc = s.file_collection.as_ref().expect("FileCollectionSettings");
    assert_eq!(fc.enabled, Some(false));
    assert_eq!(fc.interval, None);
    assert!(fc.file_filters.is_empty());
    let mi = s
        .machine_inventory
        .as_ref()
        .expect("MachineInventorySettings");
    assert_eq!(mi.enabled, Some(true));
    assert_eq!(mi.interval, Some(Duration::from_secs(7 * 86_400)));
    let pk = r.applicable_packages.as_ref().expect("ApplicablePackages");
    let ids: Vec<&str> = pk.iter().collect();
    assert_eq!(
        ids,
        [
            "9A437CA5-5B17-4486-9E87-260742074A72",
            "1F0E2D3C-4B5A-4968-8776-655443322110"
        ]
    );
    reencode(&r);
    let text = r.encode_string();
    assert!(
        text.contains("<PollInterval>0000-00-00 02:00:00</PollInterval>"),
        "{text}"
    );
    assert!(text.contains("<Enabled>true</Enabled>"), "{text}");
}

#[test]
fn instructions_request_example() {
    let r: InstructionsRequest = decode(INSTRUCTIONS_REQUEST);
    assert_eq!(r.package_id, "1F0E2D3C-4B5A-4968-8776-655443322110");
    reencode(&r);
}

#[test]
fn instructions_example() {
    let r: Instructions = decode(INSTRUCTIONS);
    assert_eq!(r.packages.len(), 1);
    let p = &r.packages[0];
    assert_eq!(p.id, "1F0E2D3C-4B5A-4968-8776-655443322110");
    assert!(p.required);
    assert_eq!(p.name.as_deref(), Some("Scanner driver 2.4"));
    assert_eq!(
        p.short_description.as_deref(),
        Some("Barcode scanner driver update")
    );
    assert_eq!(
        p.long_description.as_deref(),
        Some("Replaces scanner driver 2.3; fixes wake-from-suspend bug.")
    );
    assert_eq!(p.package_size, Some(482_304));
    let flags = p.flags.expect("Flags");
    assert_eq!(flags, LinkFlags(6));
    assert!(flags.allows_high() && flags.allows_cradled() && !flags.allows_low());
    let st = p.start_time.expect("StartTime");
    assert!(st.utc);
    assert_eq!(st.time, ct("2025-01-16 01:00:00"));
    let rec = p.recurrence.as_ref().expect("Recurrence");
    assert_eq!(rec.interval, Duration::from_secs(7 * 86_400));
    assert_eq!(rec.behavior, RecurrenceBehavior::ExecuteOnly);
    assert_eq!(rec.local_destination, None);
    assert_eq!(rec.command_line, None);
    assert_eq!(p.local_destination.as_deref(), Some(r"\Temp\DM\scanner24"));
    assert_eq!(
        p.command_line.as_deref(),
        Some(r"\Temp\DM\scanner24\setup.exe /quiet")
    );
    assert_eq!(p.source_files, Some(true));
    assert_eq!(p.hash, None);
    assert_eq!(p.bandwidth_limit, None);
    reencode(&r);

    // The emitted element order is the documented one, extensions last.
    let mut with_ext = r.clone();
    with_ext.packages[0].hash = Some(dmagent::protocol::PackageHash {
        algorithm: "SHA-256".into(),
        hex: "ab".repeat(32),
    });
    with_ext.packages[0].bandwidth_limit = Some(65_536);
    let text = with_ext.encode_string();
    let order = [
        "<ID>",
        "<Required>Yes</Required>",
        "<Name>",
        "<ShortDescription>",
        "<LongDescription>",
        "<PackageSize>",
        "<Flags>06 00 00 00</Flags>",
        "<StartTime UTC=\"true\">2025-01-16 01:00:00</StartTime>",
        "<Recurrence>",
        "<Interval>0000-00-07 00:00:00</Interval>",
        "<Behavior>Execute Only</Behavior>",
        "<LocalDestination>",
        "<CommandLine>",
        "<SourceFiles>Yes</SourceFiles>",
        "<Hash algorithm=\"SHA-256\">",
        "<BandwidthLimit>65536</BandwidthLimit>",
    ];
    let mut at = 0;
    for needle in order {
        let pos = text[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing or out of order in\n{text}"));
        at += pos + needle.len();
    }
    reencode(&with_ext);
}

#[test]
fn location_request_example() {
    let r: PackageLocationRequest = decode(LOCATION_REQUEST);
    assert_eq!(r.package_id, "5F0C1D2E-3A4B-4C5D-8E9F-0A1B2C3D4E5F");
    assert_eq!(
        r.client_location.directory_service.as_deref(),
        Some("OU=Kiosks,DC=corp,DC=example,DC=com")
    );
    assert_eq!(r.client_location.ip_addresses.len(), 1);
    assert_eq!(r.client_location.ip_addresses[0].address, "10.20.30.41");
    assert_eq!(
        r.client_location.ip_addresses[0].subnet.as_deref(),
        Some("255.255.255.0")
    );
    reencode(&r);
}

#[test]
fn location_example() {
    let r: PackageLocation = decode(LOCATION);
    assert_eq!(r.package_id, "5F0C1D2E-3A4B-4C5D-8E9F-0A1B2C3D4E5F");
    assert_eq!(r.locations.len(), 2);
    let a = &r.locations[0];
    assert_eq!(a.metric, Some(1));
    assert_eq!(
        a.http_url.as_deref(),
        Some("http://pkg-east.example.com/apps/viewer-2.1.cab")
    );
    assert_eq!(
        a.directory_service.as_deref(),
        Some("OU=Kiosks,DC=corp,DC=example,DC=com")
    );
    assert_eq!(a.subnets, ["10.20.30.0/24"]);
    assert_eq!(a.smb_path, None);
    let b = &r.locations[1];
    assert_eq!(b.metric, Some(5));
    assert_eq!(
        b.smb_path.as_deref(),
        Some(r"\\fileserver\packages\viewer-2.1.cab")
    );
    assert_eq!(
        b.http_url.as_deref(),
        Some("http://pkg.example.com/apps/viewer-2.1.cab")
    );
    assert!(b.subnets.is_empty());
    assert_eq!(b.directory_service, None);
    reencode(&r);
}

#[test]
fn status_examples() {
    let s: Status = decode(STATUS_START);
    assert_eq!(s.messages.len(), 1);
    let m = &s.messages[0];
    assert_eq!(m.package_id, "5F0C1D2E-3A4B-4C5D-8E9F-0A1B2C3D4E5F");
    assert_eq!(m.message_id, MessageId::DOWNLOAD_STARTED);
    assert_eq!(m.timestamp, ct("2005-03-14 09:05:12"));
    assert_eq!(m.parameters.len(), 1);
    assert_eq!(m.parameters[0].name, "URL");
    assert_eq!(
        m.parameters[0].value,
        "http://pkg.example.com/apps/viewer-2.1.cab"
    );
    reencode(&s);

    let s: Status = decode(STATUS_BATCH);
    let ids: Vec<MessageId> = s.messages.iter().map(|m| m.message_id).collect();
    assert_eq!(
        ids,
        [
            MessageId::DOWNLOAD_FAILED,
            MessageId::DOWNLOAD_SUCCEEDED,
            MessageId::COMMAND_SUCCEEDED
        ]
    );
    assert_eq!(s.messages[0].parameters[0].name, "ErrorCode");
    assert_eq!(s.messages[0].parameters[0].value, "0x80072EFE");
    assert_eq!(s.messages[0].timestamp, ct("2005-03-14 09:06:40"));
    assert!(s.messages[1].parameters.is_empty());
    assert_eq!(s.messages[1].timestamp, ct("2005-03-14 09:21:02"));
    assert_eq!(s.messages[2].parameters[0].name, "ExitCode");
    assert_eq!(s.messages[2].parameters[0].value, "0");
    reencode(&s);
}

#[test]
fn file_report_example() {
    let r: FileReport = decode(FILE_REPORT);
    assert_eq!(r.directories.len(), 1);
    let d = &r.directories[0];
    assert_eq!(d.name, r"\Program Files\Viewer");
    assert_eq!(d.created, Some(ct("2005-03-14 09:21:05")));
    assert_eq!(d.last_accessed, Some(ct("2005-03-14 09:29:41")));
    assert_eq!(d.attributes.as_deref(), Some(""));
    assert_eq!(d.files.len(), 1);
    let f = &d.files[0];
    assert_eq!(f.name, "viewer.exe");
    assert_eq!(f.version.as_deref(), Some("2.1.0.17"));
    assert_eq!(f.company.as_deref(), Some("Example Corp"));
    assert_eq!(f.description.as_deref(), Some("Document viewer"));
    assert_eq!(f.size, 245_760);
    assert_eq!(f.created, Some(ct("2005-03-14 09:21:06")));
    assert_eq!(f.last_modified, Some(ct("2005-03-01 17:02:11")));
    assert_eq!(f.last_accessed, Some(ct("2005-03-14 09:29:41")));
    assert_eq!(f.attributes.as_deref(), Some("ARCHIVE"));
    assert_eq!(d.directories.len(), 1);
    let sub = &d.directories[0];
    assert_eq!(sub.name, r"\Program Files\Viewer\res");
    assert_eq!(sub.attributes.as_deref(), Some("HIDDEN"));
    let g = &sub.files[0];
    assert_eq!(g.name, "strings.dat");
    assert_eq!(g.version.as_deref(), Some("0.0.0"));
    assert_eq!(g.company.as_deref(), Some(""));
    assert_eq!(g.description.as_deref(), Some(""));
    assert_eq!(g.size, 8192);
    assert_eq!(g.created, None);
    assert_eq!(g.attributes.as_deref(), Some("READONLY|HIDDEN"));
    reencode(&r);
    // Files are emitted before nested directories.
    let text = r.encode_string();
    let file = text.find("viewer.exe").expect("file");
    let sub = text.find(r"Viewer\res").expect("subdir");
    assert!(file < sub, "{text}");
}

#[test]
fn inventory_example() {
    let r: Inventory = decode(INVENTORY);
    assert_eq!(r.kind.as_deref(), Some("machine"));
    let names: Vec<&str> = r.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["Device_System", "Device_Network", "Device_FileSystem"]
    );
    assert_eq!(r.items[0].properties.len(), 4);
    assert_eq!(r.items[0].properties[0].name, "PlatformType");
    assert_eq!(r.items[0].properties[0].value, "Example Kiosk K2");
    assert_eq!(r.items[1].properties[2].name, "MAC");
    assert_eq!(r.items[1].properties[2].value, "02-11-22-33-44-55");
    assert_eq!(r.items[2].properties[2].value, "2097152");
    reencode(&r);
}

#[test]
fn third_party_poll_response_shape() {
    let r: PollResponse = decode(POLL_RESPONSE_THIRD_PARTY);
    let s = r.settings.as_ref().expect("Settings");
    let c = s.client.as_ref().expect("ClientSettings");
    assert_eq!(c.version.as_deref(), Some("1.0"));
    assert_eq!(c.poll_server.as_deref(), Some("192.168.1.1"));
    assert_eq!(c.poll_interval, Some(Duration::from_secs(600)));
    assert_eq!(c.failure_retry_count, Some(10));
    assert_eq!(c.failure_retry_interval, Some(Duration::from_secs(60)));
    for section in [
        &s.software_inventory,
        &s.file_collection,
        &s.machine_inventory,
    ] {
        assert_eq!(
            section.as_ref().expect("section").version.as_deref(),
            Some("1.0")
        );
    }
    let si = s.software_inventory.as_ref().expect("si");
    assert_eq!(si.enabled, Some(true), "`True` is a boolean");
    assert_eq!(si.interval, Some(Duration::from_secs(60)));
    assert_eq!(si.file_filters[0].filter, "*");
    assert_eq!(si.file_filters[0].path, r"\Windows");
    let fc = s.file_collection.as_ref().expect("fc");
    assert_eq!(fc.enabled, Some(false));
    assert_eq!(fc.file_filters[0].filter, "*.log");
    assert_eq!(fc.file_filters[0].recursive, Some(true));
    assert_eq!(
        s.machine_inventory.as_ref().expect("mi").enabled,
        Some(true)
    );
    assert_eq!(r.applicable_packages, Some(PackageList::new()));
    reencode(&r);
}

#[test]
fn real_ce_device_poll_shape() {
    let p: DevicePoll = decode(CE_DEVICE_POLL);
    let id = &p.identification;
    assert_eq!(
        id.id,
        "43004500500043000000434550434B5335343934350000000000"
    );
    assert_eq!(id.processor.as_deref(), Some("586"));
    assert_eq!(id.code_page, Some(1252));
    assert_eq!(id.system_default_lcid, Some(1033));
    assert_eq!(id.network_adapters.len(), 1);
    assert_eq!(
        id.network_adapters[0].mac.as_deref(),
        Some("00-08-22-05-26-CB")
    );
    let c = p.connection.as_ref().expect("Connection");
    assert_eq!(c.timestamp.as_deref(), Some("0"));
    assert_eq!(c.authorization_token.as_deref(), Some(""));
    reencode(&p);
}

#[test]
fn lenient_placements_and_literals() {
    // NetworkAdapter directly under DevicePoll, prefixed namespace.
    let p: DevicePoll = decode(
        r#"<dm:DevicePoll xmlns:dm="urn:x"><dm:Identification><dm:ID> A </dm:ID>
           <dm:SystemDefaultLCID>0x0409</dm:SystemDefaultLCID></dm:Identification>
           <dm:NetworkAdapter><dm:MAC>001A2B3C4D5E</dm:MAC></dm:NetworkAdapter>
           <Unknown a="1"><Deep><Deeper/></Deep></Unknown></dm:DevicePoll>"#,
    );
    assert_eq!(p.identification.id, "A");
    assert_eq!(p.identification.system_default_lcid, Some(0x409));
    assert_eq!(p.identification.network_adapters.len(), 1);

    // Settings sections directly under PollResponse, literal variants.
    let r: PollResponse = decode(
        r#"<PollResponse><ClientSettings><PollInterval> 3600 </PollInterval>
           <FailureRetryInterval>00-00-00 00:03:00</FailureRetryInterval></ClientSettings>
           <MachineInventorySettings><Enabled> yes </Enabled>
           <Interval>0000-00-00 01-00-00</Interval></MachineInventorySettings></PollResponse>"#,
    );
    let s = r.settings.expect("settings");
    let c = s.client.expect("client");
    assert_eq!(c.poll_interval, Some(Duration::from_secs(3600)));
    assert_eq!(c.failure_retry_interval, Some(Duration::from_secs(180)));
    let mi = s.machine_inventory.expect("mi");
    assert_eq!(mi.enabled, Some(true));
    assert_eq!(mi.interval, Some(Duration::from_secs(3600)));
    assert_eq!(r.applicable_packages, None);

    // Instructions: any order, Required absent = true, CE placements, ISO time.
    let i: Instructions = decode(
        r#"<Instructions><Package><SourceFiles>no</SourceFiles>
           <Recurrence><CommandLine>run.exe</CommandLine><Behavior>  download AND execute </Behavior>
           <LocalDestination>\Apps</LocalDestination><Interval>0000-00-01 00:00:00</Interval></Recurrence>
           <StartTime>2025-03-01T02:00:00Z</StartTime><Flags>0x3</Flags><ID>P1</ID></Package></Instructions>"#,
    );
    let p = &i.packages[0];
    assert!(p.required);
    assert_eq!(p.source_files, Some(false));
    assert_eq!(p.flags, Some(LinkFlags(3)));
    let st = p.start_time.expect("start");
    assert!(!st.utc, "absent UTC = local");
    assert_eq!(st.time, ct("2025-03-01 02:00:00"));
    let rec = p.recurrence.as_ref().expect("rec");
    assert_eq!(rec.behavior, RecurrenceBehavior::DownloadAndExecute);
    assert_eq!(rec.command_line.as_deref(), Some("run.exe"));
    assert_eq!(rec.local_destination.as_deref(), Some(r"\Apps"));
    reencode(&i);
}

/// Part A §3.1 header sample, through the envelope helpers.
#[test]
fn header_sample_part_a() {
    const SAMPLE: &str = "X-Device-UUID:43004500500043000000434550434B5335343934350000000000\n\
                          X-Device-Auth:d302b047-c9a2-4a11-a392-df84195d2808\n\
                          X-Device-Timestamp:11/11/2002 10:40:30 AM\n\
                          X-Device-Action:InstructionRequest";
    let pairs: Vec<(&str, &str)> = SAMPLE
        .lines()
        .map(|l| l.split_once(':').expect("name:value"))
        .collect();
    let lookup = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let headers = DeviceHeaders::from_lookup(lookup);
    assert_eq!(
        headers.uuid,
        "43004500500043000000434550434B5335343934350000000000"
    );
    assert_eq!(headers.auth, "d302b047-c9a2-4a11-a392-df84195d2808");
    assert_eq!(
        headers.timestamp, "11/11/2002 10:40:30 AM",
        "opaque, echoed verbatim"
    );
    assert_eq!(headers.client_version, "");
    let action = Action::from_headers(lookup(HEADER_ACTION).expect("action"), None);
    assert_eq!(action, Ok(Action::InstructionRequest));

    let out = headers.pairs(Action::InstructionRequest);
    assert_eq!(out[0], (HEADER_UUID, headers.uuid.clone()));
    assert_eq!(out[1], (HEADER_AUTH, headers.auth.clone()));
    assert_eq!(
        out[2],
        (HEADER_TIMESTAMP, "11/11/2002 10:40:30 AM".to_owned())
    );
    assert_eq!(out[4], (HEADER_ACTION, "InstructionRequest".to_owned()));
    assert_eq!(out.len(), 5);

    let out = headers.pairs(Action::Report(ReportType::MachineInventory));
    assert!(out.contains(&(HEADER_REPORT_TYPE, "MachineInventory".to_owned())));
    assert!(out.contains(&(HEADER_ACTION, "Report".to_owned())));

    let fc = headers.file_collection_pairs("\\Windows\\viewer.log");
    assert_eq!(
        fc.last().map(|(_, v)| v.as_str()),
        Some("\\Windows\\viewer.log"),
        "pure ASCII unchanged"
    );
}

#[test]
fn dispatch_by_root_element() {
    let cases: [(&str, Action); 6] = [
        (DEVICE_POLL, Action::Poll),
        (INSTRUCTIONS_REQUEST, Action::InstructionRequest),
        (LOCATION_REQUEST, Action::LocationRequest),
        (STATUS_BATCH, Action::Status),
        (FILE_REPORT, Action::Report(ReportType::SoftwareInventory)),
        (INVENTORY, Action::Report(ReportType::MachineInventory)),
    ];
    for (doc, action) in cases {
        let root = root_element_name(doc.as_bytes()).expect("root");
        assert_eq!(Action::from_root_element(&root), Some(action), "{root}");
    }
    assert_eq!(
        root_element_name(b"<p:Status xmlns:p='x'/>").as_deref(),
        Ok("Status")
    );
    assert_eq!(Action::from_root_element("PollResponse"), None);
    assert_eq!(
        Action::from_headers("Report", Some("SoftwareInventory")),
        Ok(Action::Report(ReportType::SoftwareInventory))
    );
    assert_eq!(Action::from_headers("PollRequest", None), Ok(Action::Poll));
    assert_eq!(Action::Status.to_string(), "Status");
}
