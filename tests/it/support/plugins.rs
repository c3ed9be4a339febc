//! The workspace's plugin libraries, built once per test run in the same
//! profile and target directory as the test binary, so a fresh clone needs
//! no prior build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_dmagent");

/// `(crate, file name in the plugin dir)`.
pub const PLUGINS: &[(&str, &str)] = &[
    ("dmagent-plugin-exec", "exec.so"),
    ("dmagent-plugin-archive", "archive.so"),
    ("dmagent-plugin-machine-inventory", "machine_inventory.so"),
    ("dmagent-plugin-software-inventory", "software_inventory.so"),
    ("dmagent-plugin-file-collection", "file_collection.so"),
    ("dmagent-plugin-dpkg-inventory", "dpkg_inventory.so"),
    ("dmagent-fixture-panic", "panic.so"),
    ("dmagent-fixture-abort", "abort.so"),
    ("dmagent-fixture-segfault", "segfault.so"),
    ("dmagent-fixture-hang", "hang.so"),
    ("dmagent-fixture-wrong-abi", "wrong_abi.so"),
    ("dmagent-fixture-missing-symbol", "missing_symbol.so"),
    ("dmagent-fixture-bad-utf8", "bad_utf8.so"),
    ("dmagent-fixture-oversized", "oversized.so"),
    ("dmagent-fixture-panic-collector", "panic_collector.so"),
    ("dmagent-fixture-hang-collector", "hang_collector.so"),
];

/// The profile directory the test binary was built into (`target/debug`).
pub fn profile_dir() -> PathBuf {
    Path::new(BIN).parent().expect("bin dir").to_path_buf()
}

/// Builds every plugin crate once per test run, in the same profile and
/// target directory as this test, so a fresh clone needs no prior build.
pub fn built_plugins() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let target_dir = dir.parent().expect("target dir");
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .arg("--profile")
            .arg(if profile == "debug" { "dev" } else { profile });
        for (krate, _) in PLUGINS {
            cmd.arg("-p").arg(krate);
        }
        let status = cmd.status().expect("run cargo build for the plugins");
        assert!(status.success(), "building the plugins failed");
        dir
    })
}

pub fn library_of(krate: &str) -> PathBuf {
    built_plugins().join(format!("lib{}.so", krate.replace('-', "_")))
}

/// Copies the first-party plugins into `dir` (created mode 0755, files
/// 0644) under their installed names, so the plugin host trusts them.
pub fn install_first_party(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("plugin dir");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    for (krate, name) in PLUGINS
        .iter()
        .filter(|(k, _)| k.starts_with("dmagent-plugin-"))
    {
        let target = dir.join(name);
        std::fs::copy(library_of(krate), &target).expect("copy plugin");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))
            .expect("chmod plugin");
    }
}

/// Copies one fixture plugin into an installed plugin directory (mode 0644).
pub fn install_fixture(dir: &Path, krate: &str) {
    use std::os::unix::fs::PermissionsExt;
    let (_, name) = PLUGINS
        .iter()
        .find(|(k, _)| *k == krate)
        .expect("known fixture");
    let target = dir.join(name);
    std::fs::copy(library_of(krate), &target).expect("copy fixture");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))
        .expect("chmod fixture");
}
