//! Tests: protocol_roundtrip. For every document type, `decode(encode(x)) == x`
//! over generated values.
//!
//! String rule: decoders trim XML whitespace (space, tab, CR, LF) from both
//! ends of every text and attribute value, so generated strings have none
//! there; inside they carry XML-special characters, tabs, CR and LF, and
//! non-ASCII text. Durations are whole seconds (the wire cannot carry
//! fractions); civil times are valid calendar dates.

use std::time::Duration;

use dmagent::protocol::instructions::{PackageHash, PackageInstructions, Recurrence};
use dmagent::protocol::literals::days_in_month;
use dmagent::protocol::{
    CivilTime, ClientLocation, ClientSettings, Connection, DevicePoll, DirectoryEntry, Document,
    FileEntry, FileFilterItem, FileReport, Identification, Instructions, InstructionsRequest,
    Inventory, InventoryItem, IpAddressEntry, LinkFlags, Location, ManagementSystem, MessageId,
    NetworkAdapter, PackageList, PackageLocation, PackageLocationRequest, Parameter, PollResponse,
    Property, RecurrenceBehavior, ReportSettings, Settings, StartTime, Status, StatusMessage,
};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn xml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            'a', 'Z', '0', ' ', '<', '>', '&', '"', '\'', '\t', '\n', '\r', ';', '#', '%', ']',
            '\\', '/', '=', '?', '!', '-', 'é', 'ß', '中', '😀', '\u{85}', '\u{2028}', '\u{a0}',
        ]),
        1 => any::<char>().prop_filter("XML char", |c| is_xml_char(*c)),
    ]
}

/// A string without leading or trailing XML whitespace.
fn s() -> impl Strategy<Value = String> {
    vec(xml_char(), 0..16).prop_map(|v| {
        let s: String = v.into_iter().collect();
        s.trim_matches([' ', '\t', '\r', '\n']).to_owned()
    })
}

fn os() -> impl Strategy<Value = Option<String>> {
    of(s())
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..10_000_000).prop_map(Duration::from_secs),
        any::<u64>().prop_map(Duration::from_secs),
    ]
}

fn civil() -> impl Strategy<Value = CivilTime> {
    (0u16..=9999, 1u8..=12, 1u8..=31, 0u8..24, 0u8..60, 0u8..60).prop_map(
        |(year, month, day, hour, minute, second)| CivilTime {
            year,
            month,
            day: day.min(days_in_month(year, month)),
            hour,
            minute,
            second,
        },
    )
}

fn device_poll() -> impl Strategy<Value = DevicePoll> {
    let ms = of((os(), os()).prop_map(|(name, version)| ManagementSystem { name, version }));
    let adapter = (os(), os(), os()).prop_map(|(ip_address, ip_subnet, mac)| NetworkAdapter {
        ip_address,
        ip_subnet,
        mac,
    });
    let ident = (
        s(),
        (os(), os(), os(), os(), os()),
        of(any::<u32>()),
        of(any::<u32>()),
        vec(adapter, 0..3),
    )
        .prop_map(
            |(id, (device_name, user_name, domain, platform, processor), code_page, lcid, nics)| {
                Identification {
                    id,
                    device_name,
                    user_name,
                    domain,
                    platform,
                    processor,
                    code_page,
                    system_default_lcid: lcid,
                    network_adapters: nics,
                }
            },
        );
    let conn = of(
        (os(), os()).prop_map(|(authorization_token, timestamp)| Connection {
            authorization_token,
            timestamp,
        }),
    );
    (ms, ident, conn).prop_map(
        |(management_system, identification, connection)| DevicePoll {
            management_system,
            identification,
            connection,
        },
    )
}

fn report_settings() -> impl Strategy<Value = ReportSettings> {
    let filter = (
        s(),
        s(),
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
    )
        .prop_map(
            |(filter, path, recursive, exclude_compressed, exclude_encrypted)| FileFilterItem {
                filter,
                path,
                recursive,
                exclude_compressed,
                exclude_encrypted,
            },
        );
    (
        os(),
        of(any::<bool>()),
        of(duration()),
        vec(filter, 0..3),
        of(any::<bool>()),
    )
        .prop_map(
            |(version, enabled, interval, file_filters, send_unchanged)| ReportSettings {
                version,
                enabled,
                interval,
                file_filters,
                send_unchanged,
            },
        )
}

fn poll_response() -> impl Strategy<Value = PollResponse> {
    let client = (os(), os(), of(duration()), of(any::<u32>()), of(duration())).prop_map(
        |(version, poll_server, poll_interval, failure_retry_count, failure_retry_interval)| {
            ClientSettings {
                version,
                poll_server,
                poll_interval,
                failure_retry_count,
                failure_retry_interval,
            }
        },
    );
    let settings = (
        of(client),
        of(report_settings()),
        of(report_settings()),
        of(report_settings()),
    )
        .prop_map(
            |(client, software_inventory, file_collection, machine_inventory)| Settings {
                client,
                software_inventory,
                file_collection,
                machine_inventory,
            },
        );
    let packages = of(vec(s(), 0..4).prop_map(PackageList::from_iter));
    (of(settings), packages).prop_map(|(settings, applicable_packages)| PollResponse {
        settings,
        applicable_packages,
    })
}

fn package_instructions() -> impl Strategy<Value = PackageInstructions> {
    let behavior = prop::sample::select(vec![
        RecurrenceBehavior::DownloadAndExecute,
        RecurrenceBehavior::ExecuteOnly,
    ]);
    let recurrence = (duration(), behavior, os(), os()).prop_map(
        |(interval, behavior, local_destination, command_line)| Recurrence {
            interval,
            behavior,
            local_destination,
            command_line,
        },
    );
    let start = (any::<bool>(), civil()).prop_map(|(utc, time)| StartTime { utc, time });
    let hash = (s(), s()).prop_map(|(algorithm, hex)| PackageHash { algorithm, hex });
    (
        (s(), any::<bool>(), os(), os(), os()),
        (
            of(any::<u64>()),
            of(any::<u32>().prop_map(LinkFlags)),
            of(start),
        ),
        (of(recurrence), os(), os(), of(any::<bool>())),
        (of(hash), of(any::<u64>())),
    )
        .prop_map(
            |(
                (id, required, name, short_description, long_description),
                (package_size, flags, start_time),
                (recurrence, local_destination, command_line, source_files),
                (hash, bandwidth_limit),
            )| PackageInstructions {
                id,
                required,
                name,
                short_description,
                long_description,
                package_size,
                flags,
                start_time,
                recurrence,
                local_destination,
                command_line,
                source_files,
                hash,
                bandwidth_limit,
                ..PackageInstructions::default()
            },
        )
}

fn location_request() -> impl Strategy<Value = PackageLocationRequest> {
    let ip = (s(), os()).prop_map(|(address, subnet)| IpAddressEntry { address, subnet });
    (s(), os(), vec(ip, 0..3)).prop_map(|(package_id, directory_service, ip_addresses)| {
        PackageLocationRequest {
            package_id,
            client_location: ClientLocation {
                directory_service,
                ip_addresses,
            },
        }
    })
}

fn location() -> impl Strategy<Value = PackageLocation> {
    let loc = (of(any::<u32>()), os(), os(), os(), vec(s(), 0..3)).prop_map(
        |(metric, smb_path, http_url, directory_service, subnets)| Location {
            metric,
            smb_path,
            http_url,
            directory_service,
            subnets,
        },
    );
    (s(), vec(loc, 0..3)).prop_map(|(package_id, locations)| PackageLocation {
        package_id,
        locations,
    })
}

fn status() -> impl Strategy<Value = Status> {
    let param = (s(), s()).prop_map(|(name, value)| Parameter { name, value });
    let msg = (s(), any::<u32>(), civil(), vec(param, 0..3)).prop_map(
        |(package_id, id, timestamp, parameters)| StatusMessage {
            package_id,
            message_id: MessageId(id),
            timestamp,
            parameters,
        },
    );
    vec(msg, 0..4).prop_map(|messages| Status { messages })
}

fn file_entry() -> impl Strategy<Value = FileEntry> {
    (
        (s(), os(), os(), os(), any::<u64>()),
        (of(civil()), of(civil()), of(civil()), os()),
    )
        .prop_map(
            |(
                (name, version, company, description, size),
                (created, last_modified, last_accessed, attributes),
            )| FileEntry {
                name,
                version,
                company,
                description,
                size,
                created,
                last_modified,
                last_accessed,
                attributes,
            },
        )
}

fn directory() -> impl Strategy<Value = DirectoryEntry> {
    let leaf = (s(), of(civil()), of(civil()), os(), vec(file_entry(), 0..3)).prop_map(
        |(name, created, last_accessed, attributes, files)| DirectoryEntry {
            name,
            created,
            last_accessed,
            attributes,
            files,
            directories: Vec::new(),
        },
    );
    leaf.prop_recursive(3, 12, 3, |inner| {
        (
            s(),
            of(civil()),
            of(civil()),
            os(),
            vec(file_entry(), 0..3),
            vec(inner, 0..3),
        )
            .prop_map(
                |(name, created, last_accessed, attributes, files, directories)| DirectoryEntry {
                    name,
                    created,
                    last_accessed,
                    attributes,
                    files,
                    directories,
                },
            )
    })
}

fn inventory() -> impl Strategy<Value = Inventory> {
    let prop_ = (s(), s()).prop_map(|(name, value)| Property { name, value });
    let item =
        (s(), vec(prop_, 0..4)).prop_map(|(name, properties)| InventoryItem { name, properties });
    (os(), vec(item, 0..4)).prop_map(|(kind, items)| Inventory { kind, items })
}

fn check<T: Document + PartialEq + std::fmt::Debug>(value: &T) -> Result<(), TestCaseError> {
    let bytes = value.encode();
    let text = String::from_utf8_lossy(&bytes);
    let back = T::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    prop_assert_eq!(&back, value, "{}", text);
    // Encoding is deterministic and stable under a second trip.
    prop_assert_eq!(back.encode(), bytes);
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        // No regression files in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn device_poll_roundtrips(x in device_poll()) { check(&x)?; }

    #[test]
    fn poll_response_roundtrips(x in poll_response()) { check(&x)?; }

    #[test]
    fn instructions_request_roundtrips(package_id in s()) {
        check(&InstructionsRequest { package_id })?;
    }

    #[test]
    fn instructions_roundtrip(packages in vec(package_instructions(), 0..3)) {
        check(&Instructions { packages })?;
    }

    #[test]
    fn location_request_roundtrips(x in location_request()) { check(&x)?; }

    #[test]
    fn location_roundtrips(x in location()) { check(&x)?; }

    #[test]
    fn status_roundtrips(x in status()) { check(&x)?; }

    #[test]
    fn file_report_roundtrips(directories in vec(directory(), 0..3)) {
        check(&FileReport { directories })?;
    }

    #[test]
    fn inventory_roundtrips(x in inventory()) { check(&x)?; }

    #[test]
    fn civil_time_text_and_unix_roundtrip(t in civil()) {
        prop_assert_eq!(t.to_string().parse::<CivilTime>(), Ok(t));
        prop_assert_eq!(CivilTime::from_unix(t.to_unix()), Some(t));
    }

    #[test]
    fn flags_roundtrip(v in any::<u32>()) {
        prop_assert_eq!(LinkFlags(v).to_string().parse::<LinkFlags>(), Ok(LinkFlags(v)));
    }

    #[test]
    fn decoders_never_panic_on_mutated_documents(
        x in status(),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = x.encode();
        let i = cut.index(bytes.len());
        bytes[i] = byte;
        let _ = Status::decode(&bytes);
        bytes.truncate(i);
        let _ = Status::decode(&bytes);
    }
}
