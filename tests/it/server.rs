//! `dm-server` over real HTTP on loopback: every message type with the
//! spec's documents and real-device shapes, state, auth, catalog reload,
//! views and fault injection. One suite, run on both state backends
//! (`embedded::*` on redb, `postgres::*` on PostgreSQL).

use std::time::{Duration, Instant};

use dmagent::protocol::{Document, Instructions, PackageLocation, PollResponse};

use crate::support::server::*;

const NS: &str = "http://www.microsoft.com/DeviceManagement.xsd";

/// Part A §7.1, verbatim (shared with the codec tests).
use crate::protocol_examples::DEVICE_POLL as SPEC_POLL;
const SPEC_ID: &str = "6F1C2B0A-93D4-4E5B-8C21-7A0B3C9D1E42";

fn spec_headers(action: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("Content-Type", "text/xml; charset=utf-8"),
        ("X-Device-UUID", SPEC_ID),
        ("X-Device-Auth", "5b0f6d3e-1c2a-4e7f-9a31-0d9c8b7a6e15"),
        ("X-Device-Timestamp", ""),
        ("X-Device-client-version", "1.0"),
        ("X-Device-Action", action),
    ]
}

fn poll_spec_example_lists_packages_settings_and_fresh_timestamp(backend: Backend) {
    let ts = start_on(backend, |_| {});
    let r1 = post(&ts, &spec_headers("Poll"), SPEC_POLL.as_bytes());
    assert_eq!(r1.status, 200, "{}", r1.text());
    assert!(r1
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/xml"));
    assert_eq!(
        r1.header("X-Device-Auth"),
        Some("5b0f6d3e-1c2a-4e7f-9a31-0d9c8b7a6e15")
    );
    let t1 = r1
        .header("X-Device-Timestamp")
        .expect("timestamp")
        .to_owned();
    assert!(r1.text().contains(NS));
    let doc = PollResponse::decode(&r1.body).expect("decodes");
    let ids: Vec<String> = doc
        .applicable_packages
        .expect("ApplicablePackages present")
        .iter()
        .map(str::to_owned)
        .collect();
    // KIOSK-017 matches the device-name glob of the docked-only rule.
    assert_eq!(
        ids,
        [
            "DEMO-APP",
            "DEMO-TOOLS",
            "DEMO-RECURRING",
            "BIG",
            "DEMO-DOCKED"
        ]
    );
    let settings = doc.settings.expect("settings");
    assert_eq!(
        settings.client.expect("client").version.as_deref(),
        Some("1")
    );
    assert_eq!(
        settings.machine_inventory.expect("machine").enabled,
        Some(true)
    );
    std::thread::sleep(Duration::from_millis(5));
    let r2 = post(&ts, &spec_headers("Poll"), SPEC_POLL.as_bytes());
    let t2 = r2.header("X-Device-Timestamp").expect("timestamp");
    assert_ne!(t1, t2, "a fresh timestamp on each poll");

    // The identity is stored: every DevicePoll field, headers, last seen.
    let dev = ts.server.state().device(SPEC_ID).expect("db").expect("row");
    assert_eq!(dev.poll_count, 2);
    assert_eq!(dev.headers.client_version, "1.0");
    let ident = &dev.poll.as_ref().expect("poll").identification;
    assert_eq!(ident.user_name.as_deref(), Some("operator"));
    assert_eq!(
        ident.network_adapters[0].mac.as_deref(),
        Some("00:1A:2B:3C:4D:5E")
    );
    assert!(!dev.last_seen.is_empty());

    // A device that matches no device-name rule gets no docked package and
    // an empty-but-present list only when nothing is assigned.
    let r = poll(&ts, "OTHER", "POS-1");
    let doc = PollResponse::decode(&r.body).expect("decodes");
    assert!(!doc
        .applicable_packages
        .expect("present")
        .iter()
        .any(|id| id == "DEMO-DOCKED"));
}

fn real_device_shapes_are_accepted(backend: Backend) {
    let ts = start_on(backend, |_| {});
    // No namespace, no declaration, CodePage spelling, hex UUID, lower-case
    // header names and action value, PollRequest variant.
    let hex_id = "43004500500043000000434550434B5335343934350000000000";
    let body = format!(
        "<DevicePoll><Identification><ID>{hex_id}</ID><DeviceName>CEPC</DeviceName>\
         <Platform>CEPC</Platform><Processor>586</Processor><CodePage>1252</CodePage>\
         <SystemDefaultLCID>0x0409</SystemDefaultLCID></Identification></DevicePoll>"
    );
    for action in ["poll", "PollRequest", "DevicePoll", " Poll "] {
        let r = post(
            &ts,
            &[("x-device-uuid", hex_id), ("x-device-action", action)],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{action}: {}", r.text());
    }
    // Missing X-Device-Action: dispatch on the root element.
    let r = post(&ts, &[("X-Device-UUID", hex_id)], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(PollResponse::decode(&r.body).is_ok());
    // Unknown action value: root element fallback too.
    let r = post(
        &ts,
        &[("X-Device-UUID", hex_id), ("X-Device-Action", "Hello")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Machine inventory as captured from a real CE device (no namespace, no
    // declaration), with the header spelled X-Device-Reporttype.
    let inv = r#"<Inventory type="machine"><InventoryItem name="Device_System"><Property name="PlatformType">CEPC</Property><Property name="OEMInfo">Shtrih-M</Property></InventoryItem><InventoryItem name="Device_Network"><Property name="MAC">00-08-22-05-26-CB</Property></InventoryItem></Inventory>"#;
    let r = post(
        &ts,
        &[
            ("X-Device-UUID", hex_id),
            ("X-Device-Action", "Report"),
            ("X-Device-Reporttype", "MachineInventory"),
        ],
        inv.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    let invs = ts.server.state().inventories(hex_id).expect("db");
    assert_eq!(invs.len(), 1);
    assert_eq!(invs[0].kind, "machine");
    assert!(invs[0].document.to_string().contains("Shtrih-M"));
    let dev = ts.server.state().device(hex_id).expect("db").expect("row");
    assert_eq!(dev.poll.expect("poll").identification.code_page, Some(1252));
}

fn instructions_location_and_download_of_the_spec_cycle(backend: Backend) {
    let ts = start_on(backend, |_| {});
    post(&ts, &spec_headers("Poll"), SPEC_POLL.as_bytes());
    let req = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<InstructionsRequest xmlns=\"{NS}\">\n  <Package ID=\"DEMO-DOCKED\"/>\n</InstructionsRequest>"
    );
    let r = post(&ts, &spec_headers("InstructionRequest"), req.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let ins = Instructions::decode(&r.body).expect("decodes");
    let p = &ins.packages[0];
    let file = std::fs::read(ts.catalog.path().join("files/docked.txt")).expect("read");
    assert_eq!(p.id, "DEMO-DOCKED");
    assert_eq!(p.package_size, Some(file.len() as u64));
    assert_eq!(p.flags.map(|f| f.0), Some(4));
    assert_eq!(p.bandwidth_limit, Some(1_048_576));
    let hash = p.hash.as_ref().expect("X1 hash");
    assert_eq!(hash.algorithm, "SHA-256");
    assert_eq!(hash.hex, sha256_hex(&file));
    assert!(r.text().contains("<Hash algorithm=\"SHA-256\">"));

    // The recurring Execute Only package.
    let r = post(
        &ts,
        &spec_headers("InstructionRequest"),
        b"<InstructionsRequest><Package ID=\"DEMO-RECURRING\"/></InstructionsRequest>",
    );
    assert!(
        r.text().contains("<Behavior>Execute Only</Behavior>"),
        "{}",
        r.text()
    );

    // Unknown and not-assigned packages: 404.
    let r = post(
        &ts,
        &spec_headers("InstructionRequest"),
        b"<InstructionsRequest><Package ID=\"NOPE\"/></InstructionsRequest>",
    );
    assert_eq!(r.status, 404);
    poll(&ts, "POS-DEVICE", "POS-1");
    let r = post(
        &ts,
        &[
            ("X-Device-UUID", "POS-DEVICE"),
            ("X-Device-Action", "InstructionRequest"),
        ],
        b"<InstructionsRequest><Package ID=\"DEMO-DOCKED\"/></InstructionsRequest>",
    );
    assert_eq!(r.status, 404, "not assigned to a non-kiosk");

    // Location request (part B §2.2 shape) -> own download route -> bytes.
    let loc = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<PackageLocationRequest xmlns=\"{NS}\">\n  <PackageID>DEMO-APP</PackageID>\n  <ClientLocation>\n    <DirectoryService>\n      <Name>OU=Kiosks,DC=corp,DC=example,DC=com</Name>\n    </DirectoryService>\n    <IPAddresses>\n      <IPAddress address=\"10.20.30.41\" subnet=\"255.255.255.0\" />\n    </IPAddresses>\n  </ClientLocation>\n</PackageLocationRequest>"
    );
    let r = post(&ts, &spec_headers("LocationRequest"), loc.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let pl = PackageLocation::decode(&r.body).expect("decodes");
    assert_eq!(pl.package_id, "DEMO-APP");
    assert_eq!(pl.locations.len(), 1);
    assert_eq!(pl.locations[0].metric, Some(1));
    let url = pl.locations[0].http_url.clone().expect("url");
    let prefix = format!("http://{}", ts.server.addr());
    let path = url.strip_prefix(&prefix).expect("own route");
    assert_eq!(path, "/packages/DEMO-APP/app.tar.gz");
    let d = get(&ts, path, &[]);
    assert_eq!(d.status, 200);
    let tar = std::fs::read(ts.catalog.path().join("files/app.tar.gz")).expect("read");
    assert_eq!(d.body, tar);
    let r = post(
        &ts,
        &spec_headers("LocationRequest"),
        b"<PackageLocationRequest><PackageID>NOPE</PackageID></PackageLocationRequest>",
    );
    assert_eq!(r.status, 404);
}

fn status_messages_are_stored_once_per_report_id_and_drive_the_views(backend: Backend) {
    let ts = start_on(backend, |_| {});
    post(&ts, &spec_headers("Poll"), SPEC_POLL.as_bytes());
    let status = format!(
        r#"<?xml version="1.0" encoding="utf-8" ?>
<Status xmlns="{NS}">
  <StatusMessage packageID="DEMO-APP" messageID="11030" timestamp="2005-03-14 09:05:12">
    <Parameter name="URL">http://pkg.example.com/apps/viewer-2.1.cab</Parameter>
    <Parameter name="ReportID">0b7c8a52-0000-4000-8000-000000000001</Parameter>
  </StatusMessage>
  <StatusMessage packageID="DEMO-APP" messageID="11031" timestamp="2005-03-14 09:21:02">
    <Parameter name="ReportID">0b7c8a52-0000-4000-8000-000000000002</Parameter>
  </StatusMessage>
</Status>"#
    );
    let r = post(&ts, &spec_headers("Status"), status.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    // Redelivery of the same reports plus one new: only the new one is stored.
    let again = status.replace(
        "</Status>",
        r#"<StatusMessage packageID="DEMO-APP" messageID="11035" timestamp="2005-03-14 09:21:09"><Parameter name="ExitCode">0</Parameter><Parameter name="ReportID">0b7c8a52-0000-4000-8000-000000000003</Parameter></StatusMessage></Status>"#,
    );
    let r = post(&ts, &spec_headers("Status"), again.as_bytes());
    assert_eq!(r.status, 200);
    // A legacy message without ReportID and the root-element fallback.
    let legacy = r#"<Status><StatusMessage packageID="DEMO-TOOLS" messageID="11032" timestamp="2005-03-14 09:06:40"><Parameter name="ErrorCode">0x80072EFE</Parameter></StatusMessage></Status>"#;
    let r = post(&ts, &[("X-Device-UUID", SPEC_ID)], legacy.as_bytes());
    assert_eq!(r.status, 200);
    let hist = ts.server.state().statuses(SPEC_ID).expect("db");
    let ids: Vec<u32> = hist.iter().map(|s| s.message_id).collect();
    assert_eq!(ids, [11030, 11031, 11035, 11032]);
    assert_eq!(hist[0].parameters[0].name, "URL");
    assert!(!hist[0].received_at.is_empty());

    let api = get(&ts, &format!("/api/devices/{SPEC_ID}"), &[]);
    assert_eq!(api.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&api.body).expect("json");
    let pkgs = v["packages"].as_array().expect("packages");
    let state_of = |id: &str| {
        pkgs.iter()
            .find(|p| p["id"] == id)
            .map(|p| p["state"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(state_of("DEMO-APP").as_deref(), Some("installed"));
    assert_eq!(state_of("DEMO-TOOLS").as_deref(), Some("failed"));
    assert_eq!(state_of("DEMO-RECURRING").as_deref(), Some("pending"));
    let html = get(&ts, &format!("/devices/{SPEC_ID}"), &[]).text();
    assert!(html.contains("installed") && html.contains("0x80072EFE"));
}

fn inventories_and_collected_files_are_stored(backend: Backend) {
    let ts = start_on(backend, |_| {});
    post(&ts, &spec_headers("Poll"), SPEC_POLL.as_bytes());
    // Part B §4.1, verbatim (shared with the codec tests).
    let sw = crate::protocol_examples::FILE_REPORT;
    let mut h = spec_headers("Report");
    h.push(("X-Device-ReportType", "SoftwareInventory"));
    let r = post(&ts, &h, sw.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    // A second report replaces the first.
    let r = post(&ts, &h, sw.replace("viewer.exe", "viewer2.exe").as_bytes());
    assert_eq!(r.status, 200);
    let invs = ts.server.state().inventories(SPEC_ID).expect("db");
    assert_eq!(invs.len(), 1);
    assert!(invs[0].document.to_string().contains("viewer2.exe"));

    // File collection: raw body, percent-encoded name.
    let content = pattern(200_000);
    let mut h = spec_headers("Report");
    h.push(("X-Device-ReportType", "FileCollection"));
    h.push(("Content-Type", "application/octet-stream"));
    h.push((
        "X-Device-FullyQualifiedFilename",
        r"\Windows\caf%C3%A9 log.txt",
    ));
    let r = post(&ts, &h, &content);
    assert_eq!(r.status, 200, "{}", r.text());
    let files = ts.server.state().files(SPEC_ID).expect("db");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].original_path, "\\Windows\\caf\u{e9} log.txt");
    assert_eq!(files[0].sha256, sha256_hex(&content));
    let stored = ts.state.path().join(&files[0].stored_path);
    assert!(stored.starts_with(ts.state.path().join("files")));
    assert_eq!(std::fs::read(&stored).expect("stored"), content);

    // Names that could escape: refused, nothing stored.
    for bad in [r"\..\..\etc\passwd", "a/%2E%2E/b", "x%00y", r"\\"] {
        let mut h = spec_headers("Report");
        h.push(("X-Device-ReportType", "FileCollection"));
        h.push(("X-Device-FullyQualifiedFilename", bad));
        let r = post(&ts, &h, b"evil");
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let mut h = spec_headers("Report");
    h.push(("X-Device-ReportType", "FileCollection"));
    let r = post(&ts, &h, b"no name");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("X-Device-FullyQualifiedFilename"));
    assert_eq!(ts.server.state().files(SPEC_ID).expect("db").len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(ts.state.path().join("files"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".incoming"))
        .collect();
    assert!(leftovers.is_empty());
}

fn bad_and_oversize_requests_are_refused_and_not_stored(backend: Backend) {
    let ts = start_on(backend, |c| {
        c.max_xml_body = 4096;
        c.max_file_body = 1000;
    });
    let r = post(&ts, &spec_headers("Poll"), b"<DevicePoll><Identification>");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("DevicePoll"), "{}", r.text());
    let r = post(
        &ts,
        &spec_headers("Poll"),
        b"<!DOCTYPE x [<!ENTITY a \"b\">]><DevicePoll/>",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(
        &ts,
        &spec_headers("Status"),
        b"<Status><StatusMessage packageID=\"P\" messageID=\"99999999999\" timestamp=\"2005-03-14 09:05:12\"/></Status>",
    );
    assert_eq!(r.status, 400, "overflow: {}", r.text());
    let r = post(
        &ts,
        &spec_headers("Poll"),
        b"<InstructionsRequest><Package ID=\"X\"/></InstructionsRequest>",
    );
    assert_eq!(r.status, 400, "wrong root for the action");
    let big = format!("<DevicePoll>{}</DevicePoll>", " ".repeat(5000));
    let r = post(&ts, &spec_headers("Poll"), big.as_bytes());
    assert_eq!(r.status, 413);
    let mut h = spec_headers("Report");
    h.push(("X-Device-ReportType", "FileCollection"));
    h.push(("X-Device-FullyQualifiedFilename", "\\big.bin"));
    let r = post(&ts, &h, &[0u8; 2000]);
    assert_eq!(r.status, 413);
    let r = post(&ts, &[("X-Device-Action", "Status")], b"<Status/>");
    assert_eq!(r.status, 400, "no device id");
    assert!(ts.server.state().devices().expect("db").is_empty());
    assert!(ts.server.state().files(SPEC_ID).expect("db").is_empty());
}

fn auth_tokens_enrol_on_first_poll_and_refuse_wrong_tokens(backend: Backend) {
    let ts = start_on(backend, |c| c.auth = true);
    let h = |tok: &'static str, action: &'static str| {
        vec![
            ("X-Device-UUID", "AUTH-1"),
            ("X-Device-Auth", tok),
            ("X-Device-Action", action),
        ]
    };
    let status = b"<Status><StatusMessage packageID=\"DEMO-APP\" messageID=\"11030\" timestamp=\"2005-03-14 09:05:12\"/></Status>";
    let r = post(&ts, &h("", "Status"), status);
    assert_eq!(r.status, 401, "not enrolled");
    let body = b"<DevicePoll><Identification><ID>AUTH-1</ID></Identification></DevicePoll>";
    let r = post(&ts, &h("", "Poll"), body);
    assert_eq!(r.status, 200);
    let token = r.header("X-Device-Auth").expect("issued").to_owned();
    assert_eq!(token.len(), 36);
    let tok: &'static str = Box::leak(token.clone().into_boxed_str());
    // The reply was lost: polling again without a token enrols nothing new.
    let r = post(&ts, &h("", "Poll"), body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Device-Auth"), Some(tok), "the same token again");
    let r = post(&ts, &h("wrong", "Poll"), body);
    assert_eq!(r.status, 401);
    assert!(r.header("X-Device-Auth").is_none());
    let r = post(&ts, &h("wrong", "Status"), status);
    assert_eq!(r.status, 401);
    let r = post(&ts, &h(tok, "Status"), status);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Device-Auth"), Some(tok));
    let r = post(&ts, &h(tok, "Poll"), body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Device-Auth"), Some(tok));
    // Shown on a poll: from now on a token-less poll is someone else.
    let r = post(&ts, &h("", "Poll"), body);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("X-Device-Auth").is_none());
    assert_eq!(ts.server.state().statuses("AUTH-1").expect("db").len(), 1);
    // The views never show the token.
    assert!(!get(&ts, "/api/devices/AUTH-1", &[]).text().contains(tok));
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn package_ids(ts: &TestServer) -> Vec<String> {
    let r = poll(ts, "CAT-1", "POS-1");
    PollResponse::decode(&r.body)
        .expect("decodes")
        .applicable_packages
        .unwrap_or_default()
        .iter()
        .map(str::to_owned)
        .collect()
}

fn catalog_reloads_on_change_and_keeps_the_old_one_on_error(backend: Backend) {
    let ts = start_on(backend, |_| {});
    let dir = ts.catalog.path();
    assert!(!package_ids(&ts).contains(&"NEW".to_owned()));
    // A bad file (unknown key): reported with file and key; old catalog stays.
    std::fs::write(
        dir.join("packages/bad.toml"),
        "id = \"BAD\"\nfile = \"files/tools.txt\"\ncolour = \"red\"\n",
    )
    .expect("write");
    wait_until("the reload error", || {
        ts.server.catalog().last_error().is_some()
    });
    let err = ts.server.catalog().last_error().expect("error").to_string();
    assert!(err.contains("bad.toml") && err.contains("colour"), "{err}");
    assert!(package_ids(&ts).contains(&"DEMO-APP".to_owned()));
    let page = get(&ts, "/", &[]).text();
    assert!(page.contains("colour"), "the index shows the reload error");
    // A semantic error names the key.
    std::fs::write(
        dir.join("packages/bad.toml"),
        "id = \"BAD\"\nfile = \"files/tools.txt\"\nflags = \"zz\"\n",
    )
    .expect("write");
    wait_until("the flags error", || {
        ts.server
            .catalog()
            .last_error()
            .is_some_and(|e| e.key.as_deref() == Some("flags"))
    });
    std::fs::remove_file(dir.join("packages/bad.toml")).expect("rm");
    // A new package and rule: picked up without a restart.
    std::fs::write(dir.join("files/new.txt"), "new").expect("write");
    std::fs::write(
        dir.join("packages/new.toml"),
        "id = \"NEW\"\nfile = \"files/new.txt\"\n",
    )
    .expect("write");
    let mut cat = std::fs::read_to_string(dir.join("catalog.toml")).expect("read");
    cat.push_str("\n[[assign]]\nplatform = \"linux\"\npackages = [\"NEW\"]\n");
    std::fs::write(dir.join("catalog.toml"), cat).expect("write");
    wait_until("the new package", || {
        package_ids(&ts).contains(&"NEW".to_owned())
    });
    assert!(ts.server.catalog().last_error().is_none());
    // Changing a package file recomputes its digest.
    std::fs::write(dir.join("files/new.txt"), "newer contents").expect("write");
    wait_until("the new digest", || {
        ts.server.catalog().get().packages["NEW"].sha256 == sha256_hex(b"newer contents")
    });
}

fn views_escape_hostile_device_data(backend: Backend) {
    let ts = start_on(backend, |_| {});
    let body = "<DevicePoll><Identification><ID>EVIL</ID><DeviceName>&lt;script&gt;alert(1)&lt;/script&gt;</DeviceName><Platform>\"&gt;&lt;img src=x&gt;</Platform></Identification></DevicePoll>";
    let r = post(&ts, &[("X-Device-UUID", "<b>EVIL</b>")], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let index = get(&ts, "/", &[]);
    assert_eq!(index.status, 200);
    let html = index.text();
    assert!(!html.contains("<script>") && !html.contains("<img") && !html.contains("<b>EVIL"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let detail = get(&ts, "/devices/%3Cb%3EEVIL%3C%2Fb%3E", &[]);
    assert_eq!(detail.status, 200, "{}", detail.text());
    assert!(!detail.text().contains("<script>"));
    let api: serde_json::Value =
        serde_json::from_slice(&get(&ts, "/api/devices", &[]).body).expect("json");
    assert_eq!(api[0]["name"], "<script>alert(1)</script>");
    assert_eq!(get(&ts, "/devices/none", &[]).status, 404);
}

fn fault_injection_503_delay_relocate_cut_flip_and_ignore_range(backend: Backend) {
    let ts = start_on(backend, |_| {});
    let addr = ts.server.addr();
    let faults = |json: &str| {
        let r = request(
            addr,
            "PUT",
            "/admin/faults",
            &[("Content-Type", "application/json")],
            json.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    // 503 with Retry-After for the next 2 requests.
    faults(r#"{"unavailable_count": 2, "retry_after_secs": 7}"#);
    for _ in 0..2 {
        let r = poll(&ts, "F-1", "POS");
        assert_eq!(r.status, 503);
        assert_eq!(r.header("Retry-After"), Some("7"));
    }
    assert_eq!(poll(&ts, "F-1", "POS").status, 200);
    // Unknown fault keys are refused.
    let r = request(addr, "PUT", "/admin/faults", &[], br#"{"explode": true}"#);
    assert_eq!(r.status, 400);
    // Delay.
    faults(r#"{"delay_ms": 300}"#);
    let t = Instant::now();
    assert_eq!(poll(&ts, "F-1", "POS").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    // Relocate.
    faults(r#"{"relocate": {"DEMO-APP": "http://mirror.invalid/app.tar.gz"}}"#);
    let r = post(
        &ts,
        &[
            ("X-Device-UUID", "F-1"),
            ("X-Device-Action", "LocationRequest"),
        ],
        b"<PackageLocationRequest><PackageID>DEMO-APP</PackageID></PackageLocationRequest>",
    );
    assert!(
        r.text()
            .contains("<URL>http://mirror.invalid/app.tar.gz</URL>"),
        "{}",
        r.text()
    );
    let big = pattern(BIG_LEN);
    // Cut after N bytes, once.
    faults(r#"{"cut_after_bytes": 100000, "cut_count": 1}"#);
    let r = get(&ts, "/packages/BIG/big.bin", &[]);
    assert_eq!(r.status, 200);
    assert!(!r.complete, "the connection closed mid-body");
    assert_eq!(r.body.len(), 100_000);
    assert_eq!(r.body[..], big[..100_000]);
    let r = get(&ts, "/packages/BIG/big.bin", &[]);
    assert!(r.complete && r.body == big, "only one download is cut");
    // Flip a byte.
    faults(r#"{"flip_byte_at": 500000}"#);
    let r = get(&ts, "/packages/BIG/big.bin", &[]);
    assert_eq!(r.body.len(), BIG_LEN);
    assert_eq!(r.body[500_000], big[500_000] ^ 0xFF);
    assert_eq!(r.body[..500_000], big[..500_000]);
    assert_eq!(r.body[500_001..], big[500_001..]);
    let r = get(
        &ts,
        "/packages/BIG/big.bin",
        &[("Range", "bytes=499999-500001")],
    );
    assert_eq!(r.body, [big[499_999], big[500_000] ^ 0xFF, big[500_001]]);
    // Range answered with 200.
    faults(r#"{"ignore_range": true}"#);
    let r = get(&ts, "/packages/BIG/big.bin", &[("Range", "bytes=0-9")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), BIG_LEN);
    // Clear.
    assert_eq!(
        request(addr, "DELETE", "/admin/faults", &[], b"").status,
        200
    );
    let r = get(&ts, "/packages/BIG/big.bin", &[("Range", "bytes=0-9")]);
    assert_eq!(r.status, 206);
    // The in-process switch is the same set.
    ts.server.faults().set(dm_server::Faults {
        unavailable_count: 1,
        ..Default::default()
    });
    assert_eq!(get(&ts, "/packages/BIG/big.bin", &[]).status, 503);
}

/// Runs each test of the suite once per backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[test]
            fn $name() {
                super::$name(crate::support::server::Backend::Embedded)
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                super::$name(crate::support::server::Backend::Postgres)
            })*
        }
    };
}

on_both_backends!(
    poll_spec_example_lists_packages_settings_and_fresh_timestamp,
    real_device_shapes_are_accepted,
    instructions_location_and_download_of_the_spec_cycle,
    status_messages_are_stored_once_per_report_id_and_drive_the_views,
    inventories_and_collected_files_are_stored,
    bad_and_oversize_requests_are_refused_and_not_stored,
    auth_tokens_enrol_on_first_poll_and_refuse_wrong_tokens,
    catalog_reloads_on_change_and_keeps_the_old_one_on_error,
    views_escape_hostile_device_data,
    fault_injection_503_delay_relocate_cut_flip_and_ignore_range,
);

/// `GET /admin/received` counts the polls that read their record from the
/// database (what benchmark P8's rarely polling line checks): a device's
/// first poll does, the next one, its record in memory, does not, and after
/// two flushes, which take the record out of memory, the next one does again.
#[test]
fn polls_that_read_their_record_from_the_database_are_counted() {
    let ts = start();
    assert_eq!(poll(&ts, "COUNTED-1", "one").status, 200);
    assert_eq!(poll(&ts, "COUNTED-1", "one").status, 200);
    assert_eq!(ts.server.polls_from_database(), 1);
    ts.server.state().flush().expect("flush");
    ts.server.state().flush().expect("flush");
    assert_eq!(poll(&ts, "COUNTED-1", "one").status, 200);
    let r = get(&ts, "/admin/received", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["polls_from_database"], 2, "{v}");
    assert_eq!(v["by_kind"]["Poll"]["requests"], 3, "{v}");
}
