//! Tests: `dmagent plugin-check`, the vendors' test kit, run as a vendor
//! would (the real binary on a real library): the first-party plugins and the
//! C example pass; every misbehaving fixture fails on the right row for the
//! right reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::plugins::library_of;

const BIN: &str = env!("CARGO_BIN_EXE_dmagent");

struct Checked {
    passed: bool,
    exit_ok: bool,
    rows: Vec<(String, String, Option<String>)>,
    table: String,
}

fn plugin_check(file: &Path, extra: &[&str]) -> Checked {
    let json = Command::new(BIN)
        .arg("plugin-check")
        .args(extra)
        .arg("--json")
        .arg(file)
        .output()
        .expect("run dmagent plugin-check --json");
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| {
        panic!(
            "plugin-check --json: {e}: {}",
            String::from_utf8_lossy(&json.stdout)
        )
    });
    let rows = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|r| {
            (
                r["check"].as_str().unwrap_or_default().to_owned(),
                r["result"].as_str().unwrap_or_default().to_owned(),
                r["cause"].as_str().map(str::to_owned),
            )
        })
        .collect();
    // The table too, except for the slow fixtures (it repeats every call).
    let table = if extra.is_empty() {
        let table = Command::new(BIN)
            .arg("plugin-check")
            .arg(file)
            .output()
            .expect("run dmagent plugin-check");
        assert_eq!(table.status.success(), json.status.success());
        String::from_utf8_lossy(&table.stdout).into_owned()
    } else {
        serde_json::to_string_pretty(&report).unwrap_or_default()
    };
    Checked {
        passed: report["passed"] == true,
        exit_ok: json.status.success(),
        rows,
        table,
    }
}

fn assert_passes(file: &Path, rows: usize) {
    let c = plugin_check(file, &[]);
    assert!(c.passed && c.exit_ok, "{}", c.table);
    assert_eq!(c.rows.len(), rows, "{}", c.table);
    assert!(c.rows.iter().all(|(_, r, _)| r == "pass"), "{}", c.table);
    assert!(c.table.contains("PASS: "), "{}", c.table);
}

#[test]
fn first_party_plugins_pass() {
    // file, loads, symbol, ABI, descriptor + the four fixtures of one kind.
    for krate in [
        "dmagent-plugin-exec",
        "dmagent-plugin-archive",
        "dmagent-plugin-machine-inventory",
        "dmagent-plugin-software-inventory",
        "dmagent-plugin-file-collection",
        "dmagent-plugin-dpkg-inventory",
    ] {
        assert_passes(&library_of(krate), 9);
    }
    let exec = plugin_check(&library_of("dmagent-plugin-exec"), &[]);
    let names: Vec<&str> = exec.rows.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "file",
            "loads",
            "entry symbol",
            "ABI version",
            "descriptor",
            "package directory",
            "empty directory",
            "huge output",
            "slow call"
        ]
    );
    // exec really ran the fixtures: the huge output came back as a capped tail.
    assert!(
        exec.table
            .contains("exit code 0, 4096 bytes of output tail"),
        "{}",
        exec.table
    );
    assert!(exec.table.contains("command timed out"), "{}", exec.table);
}

#[test]
fn the_c_example_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let so = dir.path().join("c_example.so");
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-Wall", "-Werror", "-I"])
        .arg(format!("{root}/plugin-api/include"))
        .arg("-o")
        .arg(&so)
        .arg(format!("{root}/plugins/c-example/example.c"))
        .status()
        .expect("run cc (a C compiler is needed: apt-get install gcc)");
    assert!(status.success());
    assert_passes(&so, 9);
}

/// `(fixture crate, row that must fail, cause)`: the rows before it pass.
const MISBEHAVING: &[(&str, &str, &str)] = &[
    ("dmagent-fixture-wrong-abi", "ABI version", "abi_mismatch"),
    (
        "dmagent-fixture-missing-symbol",
        "entry symbol",
        "missing_symbol",
    ),
    ("dmagent-fixture-panic", "package directory", "panic"),
    ("dmagent-fixture-abort", "package directory", "signal"),
    ("dmagent-fixture-segfault", "package directory", "signal"),
    ("dmagent-fixture-hang", "package directory", "timeout"),
    (
        "dmagent-fixture-bad-utf8",
        "package directory",
        "bad_output",
    ),
    (
        "dmagent-fixture-oversized",
        "package directory",
        "oversized",
    ),
    (
        "dmagent-fixture-panic-collector",
        "package directory (machine)",
        "panic",
    ),
    (
        "dmagent-fixture-hang-collector",
        "package directory (machine)",
        "timeout",
    ),
];

#[test]
fn misbehaving_fixtures_fail_with_the_right_reason() {
    for (krate, row, cause) in MISBEHAVING {
        let c = plugin_check(&library_of(krate), &["--timeout", "2"]);
        assert!(!c.passed && !c.exit_ok, "{krate} passed:\n{}", c.table);
        let at = c
            .rows
            .iter()
            .position(|(_, r, _)| r == "fail")
            .unwrap_or_else(|| panic!("{krate}: no failing row\n{}", c.table));
        let (name, _, found) = &c.rows[at];
        assert_eq!(name, row, "{krate}:\n{}", c.table);
        assert_eq!(found.as_deref(), Some(*cause), "{krate}:\n{}", c.table);
        assert!(
            c.rows[..at].iter().all(|(_, r, _)| r == "pass"),
            "{krate}:\n{}",
            c.table
        );
        // Every call fixture fails the same way; load failures skip the rest.
        for (name, result, found) in &c.rows[at..] {
            assert!(
                (result == "fail" && found.as_deref() == Some(*cause)) || result == "skip",
                "{krate}: row {name} is {result} ({found:?})\n{}",
                c.table
            );
        }
    }
    let signal = plugin_check(&library_of("dmagent-fixture-segfault"), &[]);
    assert!(
        signal.table.contains("FAIL: 4 of 9 checks failed"),
        "{}",
        signal.table
    );
    assert!(signal.table.contains("(SIGSEGV)"), "{}", signal.table);
}

#[test]
fn a_file_that_is_not_there_or_not_a_plugin_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing: PathBuf = dir.path().join("libnothing.so");
    let c = plugin_check(&missing, &[]);
    assert!(!c.passed && !c.exit_ok);
    assert_eq!(c.rows.len(), 1, "{}", c.table);
    assert!(
        c.table
            .contains(&format!("cannot read {}", missing.display())),
        "{}",
        c.table
    );
    let text = dir.path().join("libtext.so");
    std::fs::write(&text, "not an ELF file").expect("write");
    let c = plugin_check(&text, &[]);
    assert!(!c.passed);
    assert_eq!(c.rows[1].0, "loads", "{}", c.table);
    assert_eq!(c.rows[1].2.as_deref(), Some("open_failed"), "{}", c.table);
}
