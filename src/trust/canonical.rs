//! The exact bytes each X8 signature covers.
//!
//! Signatures cover the *typed* values, not the XML text: a lenient parser
//! accepts `Yes`, `true` and `1` alike, and whitespace or element order may
//! change on the way, so the signer and the verifier each rebuild these bytes
//! from the parsed document. Every field is written as `Name:len:value\n`
//! (the length in bytes, decimal), in a fixed order, absent fields left out:
//! no value can be read as another field, whatever it contains.

use std::fmt::Write as _;

use crate::protocol::PackageInstructions;

/// Domain separation: a signature over one kind of message never verifies
/// as another kind.
const INSTRUCTIONS_V1: &str = "dmagent-instructions-v1\n";
const PACKAGE_V1: &str = "dmagent-package-v1\n";
const KEY_ENDORSEMENT_V1: &str = "dmagent-key-endorsement-v1\n";

fn field(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "{name}:{}:{value}", value.len());
}

fn opt(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        field(out, name, v);
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

/// What `Instructions/Package/Signature` covers: every field of the package's
/// instructions except the three X8 elements themselves: what is installed
/// (ID, hash, size, source files), how (destination, command line), when
/// (start time, recurrence, link flags, bandwidth) and what an operator is
/// shown before accepting it (name, descriptions, `Required`).
pub fn instructions(i: &PackageInstructions) -> Vec<u8> {
    let mut out = String::from(INSTRUCTIONS_V1);
    field(&mut out, "ID", &i.id);
    field(&mut out, "Required", yes_no(i.required));
    opt(&mut out, "Name", i.name.as_deref());
    opt(&mut out, "ShortDescription", i.short_description.as_deref());
    opt(&mut out, "LongDescription", i.long_description.as_deref());
    opt(
        &mut out,
        "PackageSize",
        i.package_size.map(|n| n.to_string()).as_deref(),
    );
    opt(
        &mut out,
        "Flags",
        i.flags.map(|f| f.0.to_string()).as_deref(),
    );
    if let Some(st) = &i.start_time {
        field(&mut out, "StartTime.UTC", yes_no(st.utc));
        field(&mut out, "StartTime", &st.time.to_string());
    }
    if let Some(r) = &i.recurrence {
        field(
            &mut out,
            "Recurrence.Interval",
            &r.interval.as_secs().to_string(),
        );
        field(&mut out, "Recurrence.Behavior", r.behavior.as_str());
        opt(
            &mut out,
            "Recurrence.LocalDestination",
            r.local_destination.as_deref(),
        );
        opt(
            &mut out,
            "Recurrence.CommandLine",
            r.command_line.as_deref(),
        );
    }
    opt(&mut out, "LocalDestination", i.local_destination.as_deref());
    opt(&mut out, "CommandLine", i.command_line.as_deref());
    opt(&mut out, "SourceFiles", i.source_files.map(yes_no));
    if let Some(h) = &i.hash {
        field(&mut out, "Hash.algorithm", &h.algorithm);
        field(&mut out, "Hash", &h.hex.to_ascii_lowercase());
    }
    opt(
        &mut out,
        "BandwidthLimit",
        i.bandwidth_limit.map(|n| n.to_string()).as_deref(),
    );
    out.into_bytes()
}

/// What `Instructions/Package/PackageSignature` covers: the package file's
/// SHA-256 (lowercase hex) and size in bytes. A publisher can sign this once,
/// offline, whatever server later hands the package out.
pub fn package(sha256_hex: &str, size: u64) -> Vec<u8> {
    let mut out = String::from(PACKAGE_V1);
    field(&mut out, "SHA-256", &sha256_hex.to_ascii_lowercase());
    field(&mut out, "Size", &size.to_string());
    out.into_bytes()
}

/// What `SigningKey` carries the signature of: the endorsed public key
/// (its 32 bytes in standard base64).
pub fn key_endorsement(public_key_base64: &str) -> Vec<u8> {
    let mut out = String::from(KEY_ENDORSEMENT_V1);
    field(&mut out, "Ed25519", public_key_base64);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PackageHash, Recurrence};

    fn sample() -> PackageInstructions {
        PackageInstructions {
            id: "PKG-1".into(),
            required: true,
            package_size: Some(42),
            command_line: Some("install.sh".into()),
            hash: Some(PackageHash {
                algorithm: "SHA-256".into(),
                hex: "AB".repeat(32),
            }),
            ..PackageInstructions::default()
        }
    }

    #[test]
    fn fixed_shape() {
        let text = String::from_utf8(instructions(&sample())).expect("utf-8");
        let hex = "ab".repeat(32);
        assert_eq!(
            text,
            format!(
                "dmagent-instructions-v1\nID:5:PKG-1\nRequired:3:Yes\nPackageSize:2:42\n\
                 CommandLine:10:install.sh\nHash.algorithm:7:SHA-256\nHash:64:{hex}\n"
            )
        );
    }

    #[test]
    fn every_meaningful_field_changes_the_bytes() {
        let base = instructions(&sample());
        type Change = Box<dyn Fn(&mut PackageInstructions)>;
        let mut changes: Vec<Change> = vec![
            Box::new(|i| i.id.push('2')),
            Box::new(|i| i.required = false),
            Box::new(|i| i.package_size = Some(43)),
            Box::new(|i| i.command_line = Some("install.sh; rm -rf /".into())),
            Box::new(|i| i.local_destination = Some("elsewhere".into())),
            Box::new(|i| i.source_files = Some(false)),
            Box::new(|i| i.bandwidth_limit = Some(1)),
            Box::new(|i| i.flags = Some(crate::protocol::LinkFlags(4))),
            Box::new(|i| i.name = Some("n".into())),
            Box::new(|i| {
                i.recurrence = Some(Recurrence {
                    interval: std::time::Duration::from_secs(60),
                    ..Recurrence::default()
                })
            }),
            Box::new(|i| {
                if let Some(h) = &mut i.hash {
                    h.hex = "cd".repeat(32);
                }
            }),
        ];
        for (n, change) in changes.iter_mut().enumerate() {
            let mut i = sample();
            change(&mut i);
            assert_ne!(
                instructions(&i),
                base,
                "change {n} left the signed bytes as they were"
            );
        }
    }

    #[test]
    fn a_value_cannot_forge_a_field() {
        // A command line that contains what looks like another field is still
        // one field: its length says where it ends.
        let mut a = sample();
        a.command_line = Some("x\nLocalDestination:1:y".into());
        let mut b = sample();
        b.command_line = Some("x".into());
        b.local_destination = Some("y".into());
        assert_ne!(instructions(&a), instructions(&b));
    }

    #[test]
    fn hash_case_does_not_matter() {
        assert_eq!(package(&"AB".repeat(32), 1), package(&"ab".repeat(32), 1));
    }
}
