//! Tests: protocol_hostile. A table of malformed and hostile inputs: each
//! row names the decoder, the input and the expected error kind (and path
//! where meaningful). Nothing may panic, and every refusal must be fast.

use std::time::{Duration, Instant};

use dmagent::protocol::{
    root_element_name, DecodeError, DecodeErrorKind, DevicePoll, Document, FileReport,
    Instructions, InstructionsRequest, Inventory, Limits, PackageLocation, PackageLocationRequest,
    PollResponse, Status,
};

type Decoder = fn(&[u8]) -> Result<(), DecodeError>;

fn dec<T: Document>(bytes: &[u8]) -> Result<(), DecodeError> {
    T::decode(bytes).map(|_| ())
}

/// Input of a row: literal, or generated (large inputs are built only when
/// their row runs).
enum Input {
    Text(&'static str),
    Bytes(&'static [u8]),
    Gen(fn() -> Vec<u8>),
}

struct Row {
    name: &'static str,
    decoder: Decoder,
    input: Input,
    kind: &'static str,
    path: Option<&'static str>,
}

const fn row(
    name: &'static str,
    decoder: Decoder,
    input: Input,
    kind: &'static str,
    path: Option<&'static str>,
) -> Row {
    Row {
        name,
        decoder,
        input,
        kind,
        path,
    }
}

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<DevicePoll><Identification><ID>&lol9;</ID></Identification></DevicePoll>"#;

const XXE: &str = r#"<?xml version="1.0"?>
<!DOCTYPE DevicePoll [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<DevicePoll><Identification><ID>&xxe;</ID></Identification></DevicePoll>"#;

/// ~100 MiB of `<a>`: refused by the size cap before parsing.
fn hundred_mib_nest() -> Vec<u8> {
    "<a>".repeat(35_000_000).into_bytes()
}

/// ~1 MiB of nesting, within the size cap: refused by the depth cap.
fn one_mib_nest() -> Vec<u8> {
    let mut s = String::from("<DevicePoll>");
    s.push_str(&"<a>".repeat(350_000));
    s.into_bytes()
}

/// A 70 KiB value: over the string cap.
fn long_string() -> Vec<u8> {
    format!(
        "<DevicePoll><Identification><ID>x</ID><DeviceName>{}</DeviceName></Identification></DevicePoll>",
        "n".repeat(70 * 1024)
    )
    .into_bytes()
}

/// A 70 KiB attribute value.
fn long_attr() -> Vec<u8> {
    format!(
        "<InstructionsRequest><Package ID=\"{}\"/></InstructionsRequest>",
        "i".repeat(70 * 1024)
    )
    .into_bytes()
}

/// A UTF-16LE document with BOM.
fn utf16_doc() -> Vec<u8> {
    let mut v = vec![0xFF, 0xFE];
    for u in "<Status/>".encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

fn rows() -> Vec<Row> {
    use Input::{Bytes, Gen, Text};
    let dp: Decoder = dec::<DevicePoll>;
    let pr: Decoder = dec::<PollResponse>;
    let ir: Decoder = dec::<InstructionsRequest>;
    let ins: Decoder = dec::<Instructions>;
    let lr: Decoder = dec::<PackageLocationRequest>;
    let loc: Decoder = dec::<PackageLocation>;
    let st: Decoder = dec::<Status>;
    let fr: Decoder = dec::<FileReport>;
    let inv: Decoder = dec::<Inventory>;
    vec![
        // --- well-formedness ---
        row("truncated document", dp, Text("<DevicePoll><Identification><ID>x</ID>"), "malformed", Some("DevicePoll/Identification")),
        row("truncated inside a tag", dp, Text("<DevicePoll><Identifi"), "malformed", None),
        row("truncated inside text", st, Text("<Status><StatusMessage packageID=\"p\" messageID=\"1\" timestamp=\"2005-03-14 09:05:12\"><Parameter name=\"x\">abc"), "malformed", None),
        row("mismatched end tag", dp, Text("<DevicePoll><Identification><ID>x</Identification></DevicePoll>"), "malformed", None),
        row("stray end tag", st, Text("<Status></StatusMessage></Status>"), "malformed", None),
        row("unclosed attribute", ir, Text("<InstructionsRequest><Package ID=\"abc/></InstructionsRequest>"), "malformed", None),
        row("duplicate attribute", ir, Text("<InstructionsRequest><Package ID=\"a\" ID=\"b\"/></InstructionsRequest>"), "malformed", None),
        row("unclosed comment", st, Text("<Status><!-- never closed </Status>"), "malformed", None),
        row("dangling ampersand", dp, Text("<DevicePoll><Identification><ID>a & b</ID></Identification></DevicePoll>"), "malformed", None),
        row("text outside root", st, Text("<Status/>junk"), "malformed", None),
        row("text before root", st, Text("junk<Status/>"), "malformed", None),
        row("two roots", st, Text("<Status/><Status/>"), "malformed", Some("Status")),
        row("invalid char ref &#0;", dp, Text("<DevicePoll><Identification><ID>&#0;</ID></Identification></DevicePoll>"), "malformed", Some("DevicePoll/Identification/ID")),
        row("surrogate char ref", dp, Text("<DevicePoll><Identification><ID>&#xD800;</ID></Identification></DevicePoll>"), "malformed", Some("DevicePoll/Identification/ID")),
        row("char ref out of range", ir, Text("<InstructionsRequest><Package ID=\"&#x110000;\"/></InstructionsRequest>"), "malformed", Some("InstructionsRequest/Package/@ID")),
        row("raw control character", dp, Text("<DevicePoll><Identification><ID>a\u{1}b</ID></Identification></DevicePoll>"), "malformed", Some("DevicePoll/Identification/ID")),
        row("`<` in attribute", ir, Text("<InstructionsRequest><Package ID=\"a<b\"/></InstructionsRequest>"), "malformed", None),
        // --- DTDs and entities ---
        row("billion laughs", dp, Text(BILLION_LAUGHS), "doctype_forbidden", None),
        row("external entity (XXE)", dp, Text(XXE), "doctype_forbidden", None),
        row("bare DOCTYPE", st, Text("<!DOCTYPE Status><Status/>"), "doctype_forbidden", None),
        row("DOCTYPE after root", st, Text("<Status/><!DOCTYPE x>"), "doctype_forbidden", None),
        row("undefined entity in text", dp, Text("<DevicePoll><Identification><ID>&xxe;</ID></Identification></DevicePoll>"), "entity_forbidden", Some("DevicePoll/Identification/ID")),
        row("undefined entity in attribute", ir, Text("<InstructionsRequest><Package ID=\"&lol;\"/></InstructionsRequest>"), "entity_forbidden", Some("InstructionsRequest/Package/@ID")),
        row("undefined entity in skipped element", dp, Text("<DevicePoll><Unknown><X>&lol;</X></Unknown><Identification><ID>a</ID></Identification></DevicePoll>"), "entity_forbidden", Some("DevicePoll/Unknown/X")),
        // --- resource caps ---
        row("100 MiB nest (size cap)", dp, Gen(hundred_mib_nest), "too_large", None),
        row("1 MiB nest (depth cap)", dp, Gen(one_mib_nest), "too_deep", None),
        row("over-long text", dp, Gen(long_string), "too_long", Some("DevicePoll/Identification/DeviceName")),
        row("over-long attribute", ir, Gen(long_attr), "too_long", Some("InstructionsRequest/Package/@ID")),
        // --- encoding and emptiness ---
        row("non-UTF-8 bytes", dp, Bytes(b"<DevicePoll><Identification><ID>\xff\xfe</ID></Identification></DevicePoll>"), "not_utf8", None),
        row("UTF-16 document", st, Gen(utf16_doc), "not_utf8", None),
        row("empty input", st, Text(""), "empty", None),
        row("only whitespace", st, Text(" \n\t\r\n "), "empty", None),
        row("only a declaration and a comment", st, Text("<?xml version=\"1.0\"?><!-- nothing -->"), "empty", None),
        // --- roots ---
        row("wrong root", dp, Text("<PollResponse/>"), "wrong_root", Some("PollResponse")),
        row("wrong root (prefixed)", inv, Text("<x:FileReport xmlns:x=\"u\"/>"), "wrong_root", Some("FileReport")),
        // --- numbers ---
        row("negative PackageSize", ins, Text("<Instructions><Package><ID>p</ID><PackageSize>-1</PackageSize></Package></Instructions>"), "overflow", Some("Instructions/Package/PackageSize")),
        row("PackageSize 2^64", ins, Text("<Instructions><Package><ID>p</ID><PackageSize>18446744073709551616</PackageSize></Package></Instructions>"), "overflow", Some("Instructions/Package/PackageSize")),
        row("FailureRetryCount > u32", pr, Text("<PollResponse><Settings><ClientSettings><FailureRetryCount>4294967296</FailureRetryCount></ClientSettings></Settings></PollResponse>"), "overflow", Some("PollResponse/Settings/ClientSettings/FailureRetryCount")),
        row("messageID > u32", st, Text("<Status><StatusMessage packageID=\"p\" messageID=\"99999999999\" timestamp=\"2005-03-14 09:05:12\"/></Status>"), "overflow", Some("Status/StatusMessage/@messageID")),
        row("negative metric", loc, Text("<PackageLocation><PackageID>p</PackageID><Locations><Location metric=\"-1\"/></Locations></PackageLocation>"), "overflow", Some("PackageLocation/Locations/Location/@metric")),
        row("LCID > u32", dp, Text("<DevicePoll><Identification><ID>x</ID><SystemDefaultLCID>0x100000000</SystemDefaultLCID></Identification></DevicePoll>"), "overflow", Some("DevicePoll/Identification/SystemDefaultLCID")),
        row("duration overflow", pr, Text("<PollResponse><ClientSettings><PollInterval>99999999999999999999</PollInterval></ClientSettings></PollResponse>"), "overflow", Some("PollResponse/ClientSettings/PollInterval")),
        row("non-numeric codePage", dp, Text("<DevicePoll><Identification><ID>x</ID><codePage>utf-8</codePage></Identification></DevicePoll>"), "invalid_value", Some("DevicePoll/Identification/codePage")),
        row("CDATA inside numeric", ins, Text("<Instructions><Package><ID>p</ID><PackageSize><![CDATA[12<3]]></PackageSize></Package></Instructions>"), "invalid_value", Some("Instructions/Package/PackageSize")),
        row("empty numeric", ins, Text("<Instructions><Package><ID>p</ID><PackageSize/></Package></Instructions>"), "invalid_value", Some("Instructions/Package/PackageSize")),
        row("File Size not a number", fr, Text("<FileReport><Directory Name=\"\\a\"><File Name=\"f\" Size=\"12kB\"/></Directory></FileReport>"), "invalid_value", Some("FileReport/Directory/File/@Size")),
        // --- literals ---
        row("bad Flags (three bytes)", ins, Text("<Instructions><Package><ID>p</ID><Flags>06 00 00</Flags></Package></Instructions>"), "invalid_value", Some("Instructions/Package/Flags")),
        row("bad Flags (not hex)", ins, Text("<Instructions><Package><ID>p</ID><Flags>zz 00 00 00</Flags></Package></Instructions>"), "invalid_value", Some("Instructions/Package/Flags")),
        row("bad duration (words)", pr, Text("<PollResponse><Settings><ClientSettings><PollInterval>2 hours</PollInterval></ClientSettings></Settings></PollResponse>"), "invalid_value", Some("PollResponse/Settings/ClientSettings/PollInterval")),
        row("bad duration (25 h)", pr, Text("<PollResponse><Settings><ClientSettings><PollInterval>0000-00-00 25:00:00</PollInterval></ClientSettings></Settings></PollResponse>"), "invalid_value", Some("PollResponse/Settings/ClientSettings/PollInterval")),
        row("bad date (month 13)", ins, Text("<Instructions><Package><ID>p</ID><StartTime UTC=\"true\">2025-13-01 00:00:00</StartTime></Package></Instructions>"), "invalid_value", Some("Instructions/Package/StartTime")),
        row("bad date (Feb 30)", st, Text("<Status><StatusMessage packageID=\"p\" messageID=\"11030\" timestamp=\"2005-02-30 09:05:12\"/></Status>"), "invalid_value", Some("Status/StatusMessage/@timestamp")),
        row("bad date (Feb 29, 2023)", fr, Text("<FileReport><Directory Name=\"\\a\" Created=\"2023-02-29 00:00:00\"/></FileReport>"), "invalid_value", Some("FileReport/Directory/@Created")),
        row("bad boolean", pr, Text("<PollResponse><Settings><MachineInventorySettings><Enabled>maybe</Enabled></MachineInventorySettings></Settings></PollResponse>"), "invalid_value", Some("PollResponse/Settings/MachineInventorySettings/Enabled")),
        row("bad Required", ins, Text("<Instructions><Package><ID>p</ID><Required>perhaps</Required></Package></Instructions>"), "invalid_value", Some("Instructions/Package/Required")),
        row("bad UTC attribute", ins, Text("<Instructions><Package><ID>p</ID><StartTime UTC=\"maybe\">2025-01-01 00:00:00</StartTime></Package></Instructions>"), "invalid_value", Some("Instructions/Package/StartTime/@UTC")),
        row("bad Behavior", ins, Text("<Instructions><Package><ID>p</ID><Recurrence><Interval>60</Interval><Behavior>Sometimes</Behavior></Recurrence></Package></Instructions>"), "invalid_value", Some("Instructions/Package/Recurrence/Behavior")),
        // --- required content ---
        row("missing Identification", dp, Text("<DevicePoll><Connection/></DevicePoll>"), "missing", Some("DevicePoll/Identification")),
        row("missing Identification/ID", dp, Text("<DevicePoll><Identification><DeviceName>d</DeviceName></Identification></DevicePoll>"), "missing", Some("DevicePoll/Identification/ID")),
        row("missing Instructions/Package/ID", ins, Text("<Instructions><Package><Name>n</Name></Package></Instructions>"), "missing", Some("Instructions/Package/ID")),
        row("missing Recurrence/Interval", ins, Text("<Instructions><Package><ID>p</ID><Recurrence><Behavior>Execute Only</Behavior></Recurrence></Package></Instructions>"), "missing", Some("Instructions/Package/Recurrence/Interval")),
        row("missing Package/@ID in request", ir, Text("<InstructionsRequest><Package/></InstructionsRequest>"), "missing", Some("InstructionsRequest/Package/@ID")),
        row("missing Package in request", ir, Text("<InstructionsRequest/>"), "missing", Some("InstructionsRequest/Package")),
        row("missing ApplicablePackages/Package/@ID", pr, Text("<PollResponse><ApplicablePackages><Package/></ApplicablePackages></PollResponse>"), "missing", Some("PollResponse/ApplicablePackages/Package/@ID")),
        row("missing FileFilterItem/Filter", pr, Text("<PollResponse><Settings><SoftwareInventorySettings><FileFilterItem><Path>\\</Path></FileFilterItem></SoftwareInventorySettings></Settings></PollResponse>"), "missing", Some("PollResponse/Settings/SoftwareInventorySettings/FileFilterItem/Filter")),
        row("missing StatusMessage/@messageID", st, Text("<Status><StatusMessage packageID=\"p\" timestamp=\"2005-03-14 09:05:12\"/></Status>"), "missing", Some("Status/StatusMessage/@messageID")),
        row("missing StatusMessage/@timestamp", st, Text("<Status><StatusMessage packageID=\"p\" messageID=\"11030\"/></Status>"), "missing", Some("Status/StatusMessage/@timestamp")),
        row("missing File/@Size", fr, Text("<FileReport><Directory Name=\"\\a\"><File Name=\"f\"/></Directory></FileReport>"), "missing", Some("FileReport/Directory/File/@Size")),
        row("missing Directory/@Name", fr, Text("<FileReport><Directory/></FileReport>"), "missing", Some("FileReport/Directory/@Name")),
        row("missing PackageID", lr, Text("<PackageLocationRequest><ClientLocation/></PackageLocationRequest>"), "missing", Some("PackageLocationRequest/PackageID")),
        row("missing IPAddress/@address", lr, Text("<PackageLocationRequest><PackageID>p</PackageID><ClientLocation><IPAddresses><IPAddress subnet=\"x\"/></IPAddresses></ClientLocation></PackageLocationRequest>"), "missing", Some("PackageLocationRequest/ClientLocation/IPAddresses/IPAddress/@address")),
        row("missing Property/@name", inv, Text("<Inventory><InventoryItem name=\"i\"><Property>v</Property></InventoryItem></Inventory>"), "missing", Some("Inventory/InventoryItem/Property/@name")),
    ]
}

fn bytes_of(input: &Input) -> Vec<u8> {
    match input {
        Input::Text(s) => s.as_bytes().to_vec(),
        Input::Bytes(b) => b.to_vec(),
        Input::Gen(f) => f(),
    }
}

#[test]
fn hostile_inputs_are_refused_with_the_right_kind() {
    let rows = rows();
    assert!(
        rows.len() >= 30,
        "at least 30 hostile cases ({})",
        rows.len()
    );
    let mut failures = Vec::new();
    for r in &rows {
        let input = bytes_of(&r.input);
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| (r.decoder)(&input));
        let elapsed = started.elapsed();
        drop(input);
        let result = match outcome {
            Ok(res) => res,
            Err(_) => {
                failures.push(format!("{}: PANICKED", r.name));
                continue;
            }
        };
        match result {
            Ok(()) => failures.push(format!("{}: accepted", r.name)),
            Err(e) => {
                if e.kind() != r.kind {
                    failures.push(format!(
                        "{}: kind {} (expected {}): {e}",
                        r.name,
                        e.kind(),
                        r.kind
                    ));
                } else if let Some(p) = r.path {
                    if e.path != p {
                        failures.push(format!(
                            "{}: path {:?} (expected {p:?}): {e}",
                            r.name, e.path
                        ));
                    }
                }
                // Every message is a sentence that is not empty.
                assert!(e.to_string().len() > 10, "{}", r.name);
            }
        }
        if elapsed > Duration::from_secs(2) {
            failures.push(format!("{}: took {elapsed:?}", r.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The depth bomb fails at the limit, not after reading the input: the error
/// path holds exactly `max_depth + 1` elements, the refusal is fast even with
/// the size cap lifted (so no input-proportional work or memory: the reader
/// borrows the buffer, and our stack never holds more than 33 names).
#[test]
fn depth_bomb_fails_at_the_limit() {
    let mut s = String::from("<DevicePoll>");
    s.push_str(&"<a>".repeat(20 * 1024 * 1024 / 3));
    let limits = Limits {
        max_size: usize::MAX,
        ..Limits::default()
    };
    let started = Instant::now();
    let err = DevicePoll::decode_with(s.as_bytes(), &limits).expect_err("refused");
    let elapsed = started.elapsed();
    assert_eq!(err.kind, DecodeErrorKind::TooDeep { limit: 32 });
    assert_eq!(err.path.split('/').count(), 33, "{}", err.path);
    assert!(err.path.starts_with("DevicePoll/a/a/"), "{}", err.path);
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");

    // A configurable cap.
    let limits = Limits {
        max_depth: 4,
        ..Limits::default()
    };
    let err = DevicePoll::decode_with(
        b"<DevicePoll><Identification><NetworkAdapter><MAC><x/></MAC></NetworkAdapter></Identification></DevicePoll>",
        &limits,
    )
    .expect_err("too deep");
    assert_eq!(err.kind, DecodeErrorKind::TooDeep { limit: 4 });
    assert_eq!(err.path, "DevicePoll/Identification/NetworkAdapter/MAC/x");
    // Exactly at the cap is fine.
    let limits = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    DevicePoll::decode_with(
        b"<DevicePoll><Identification><ID>a</ID></Identification></DevicePoll>",
        &limits,
    )
    .expect("depth 3 is within a cap of 3");
}

#[test]
fn size_cap_is_checked_before_parsing_and_configurable() {
    let limits = Limits {
        max_size: 16,
        ..Limits::default()
    };
    // Not even XML: the size is all that is looked at.
    let err = Status::decode_with(&[0xFF; 17], &limits).expect_err("too large");
    assert_eq!(
        err.kind,
        DecodeErrorKind::TooLarge {
            limit: 16,
            size: 17
        }
    );
    assert_eq!(
        err.to_string(),
        "The document is 17 bytes, larger than the limit of 16 bytes"
    );
    let err = root_element_name(&vec![b' '; Limits::DEFAULT_MAX_SIZE + 1]).expect_err("too large");
    assert_eq!(err.kind(), "too_large");
}

#[test]
fn root_name_is_defensive_too() {
    assert_eq!(
        root_element_name(BILLION_LAUGHS.as_bytes()).map_err(|e| e.kind()),
        Err("doctype_forbidden")
    );
    assert_eq!(root_element_name(b"").map_err(|e| e.kind()), Err("empty"));
    assert_eq!(
        root_element_name(b"\xff").map_err(|e| e.kind()),
        Err("not_utf8")
    );
    assert_eq!(
        root_element_name(b"<?xml version=\"1.0\"?>\n<Inventory type=\"machine\">").as_deref(),
        Ok("Inventory")
    );
}

#[test]
fn error_messages_name_the_element() {
    let err = PollResponse::decode(
        b"<PollResponse><Settings><ClientSettings><PollInterval>soon</PollInterval></ClientSettings></Settings></PollResponse>",
    )
    .expect_err("bad");
    let msg = err.to_string();
    assert!(
        msg.contains("`PollResponse/Settings/ClientSettings/PollInterval`"),
        "{msg}"
    );
    assert!(msg.contains("\"soon\""), "{msg}");
    let err = Status::decode(
        b"<Status><StatusMessage packageID=\"p\" timestamp=\"2005-03-14 09:05:12\"/></Status>",
    )
    .expect_err("missing");
    assert_eq!(
        err.to_string(),
        "The required attribute `Status/StatusMessage/@messageID` is missing"
    );
    let err = DevicePoll::decode(b"<PollResponse/>").expect_err("wrong root");
    assert_eq!(
        err.kind,
        DecodeErrorKind::WrongRoot {
            expected: "DevicePoll",
            found: "PollResponse".into()
        }
    );
    assert!(err.to_string().contains("`DevicePoll`"), "{err}");
}
