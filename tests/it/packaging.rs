//! Tests: the Debian package, built with cargo-deb from what this test run
//! built, then installed, upgraded over an older build, removed and purged
//! with dpkg on this machine, as an operator would (`apt install ./…deb`
//! does the same through dpkg). Needs root and cargo-deb (.ci/run installs
//! it); anywhere else it fails and says why, unless DMAGENT_SKIP_DPKG_TEST=1.
//! It refuses to run on a machine that already has dmagent installed, and
//! purges everything it installed (package, state, system user) at the end,
//! also when an assertion fails. No daemon is started: the package starts
//! its unit only where systemd runs, which the test checks is not the case.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dmagent::config::Settings;
use dmagent::store::{PackageRecord, PackageState, Store};

const OLD: &str = "0.1.0~old1";
const NEW: &str = "0.1.0-1";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed_version() -> Option<String> {
    let out = run(
        "dpkg-query",
        &["-W", "-f", "${Status} ${Version}", "dmagent"],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.strip_prefix("install ok installed ")
        .map(str::to_owned)
}

fn passwd_entry(name: &str) -> Option<String> {
    let out = run("getent", &["passwd", name]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn group_exists(name: &str) -> bool {
    run("getent", &["group", name]).status.success()
}

/// `(mode & 0o7777, uid, gid)` of a path (not following a symlink).
fn mode(path: &str) -> (u32, u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (meta.permissions().mode() & 0o7777, meta.uid(), meta.gid())
}

/// Purges the package and whatever the test left when dropped.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "dmagent"]);
        if passwd_entry("dmagent").is_some() {
            let _ = run("userdel", &["dmagent"]);
        }
        if group_exists("dmagent") {
            let _ = run("groupdel", &["dmagent"]);
        }
    }
}

fn build_deb(out_dir: &Path, version: &str) -> PathBuf {
    // Packs the binaries this test run built (the plugins through the
    // support builder, dmagent as the test's own binary): no second build.
    crate::support::plugins::built_plugins();
    let profile_dir = crate::support::plugins::profile_dir();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(format!("{root}/packaging/build-deb.sh"))
        .args(["--profile", &profile, "--no-build", "--fast"])
        .args(["--deb-version", version, "--output"])
        .arg(out_dir)
        .env(
            "CARGO_TARGET_DIR",
            profile_dir.parent().expect("target dir"),
        )
        .status()
        .expect("run packaging/build-deb.sh");
    assert!(status.success(), "packaging/build-deb.sh failed");
    let deb = std::fs::read_dir(out_dir)
        .expect("output dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("dmagent_{version}_")) && n.ends_with(".deb")
            })
        })
        .unwrap_or_else(|| panic!("no dmagent_{version}_*.deb in {}", out_dir.display()));
    deb
}

/// Every `/usr/bin/dmagent` process running (there must be none).
fn agent_processes() -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let exe = std::fs::read_link(e.path().join("exe")).ok()?;
            (exe == Path::new("/usr/bin/dmagent"))
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

fn check_installed_files() {
    assert_eq!(mode("/usr/bin/dmagent"), (0o755, 0, 0));
    assert_eq!(mode("/usr/lib/dmagent/plugins"), (0o755, 0, 0));
    for plugin in [
        "exec",
        "archive",
        "machine_inventory",
        "software_inventory",
        "file_collection",
        "dpkg_inventory",
    ] {
        assert_eq!(
            mode(&format!("/usr/lib/dmagent/plugins/{plugin}.so")),
            (0o644, 0, 0),
            "{plugin}.so"
        );
    }
    assert_eq!(
        mode("/usr/lib/dmagent/conf.d/50-debian.toml"),
        (0o644, 0, 0)
    );
    assert_eq!(
        mode("/usr/lib/systemd/system/dmagent.service"),
        (0o644, 0, 0)
    );
    assert_eq!(mode("/usr/share/doc/dmagent/default.toml"), (0o644, 0, 0));
    assert_eq!(mode("/var/lib/dmagent"), (0o700, 0, 0), "state: root only");
    assert_eq!(mode("/var/lib/dmagent/packages"), (0o700, 0, 0));
    assert_eq!(mode("/etc/dmagent/conf.d"), (0o755, 0, 0));
    let user = passwd_entry("dmagent").expect("the dmagent system user");
    let fields: Vec<&str> = user.split(':').collect();
    let uid: u32 = fields[2].parse().expect("uid");
    assert!(uid < 1000, "a system uid: {user}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{user}");
    assert!(group_exists("dmagent"));
    assert!(
        agent_processes().is_empty(),
        "the package started a daemon without systemd: {:?}",
        agent_processes()
    );
}

#[test]
fn debian_package_installs_upgrades_and_purges_cleanly() {
    // /proc/self belongs to this process's effective uid.
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    if euid != 0 {
        if std::env::var_os("DMAGENT_SKIP_DPKG_TEST").is_some() {
            eprintln!("packaging test skipped: not root and DMAGENT_SKIP_DPKG_TEST is set");
            return;
        }
        panic!(
            "the Debian package test installs with dpkg and needs root (CI runs as root); \
             run as root or set DMAGENT_SKIP_DPKG_TEST=1 to skip it knowingly"
        );
    }
    for tool in ["dpkg", "dpkg-query", "useradd", "userdel", "cargo-deb"] {
        assert!(
            run("sh", &["-c", &format!("command -v {tool}")])
                .status
                .success(),
            "{tool} is missing: the package test needs it (.ci/run installs cargo-deb: \
             cargo install --locked cargo-deb)"
        );
    }
    assert!(
        !Path::new("/run/systemd/system").exists(),
        "systemd runs here: installing would start a real dmagent daemon; \
         this test runs only where systemd does not"
    );
    assert_eq!(
        installed_version(),
        None,
        "dmagent is already installed on this machine: refusing to touch it"
    );
    for path in ["/var/lib/dmagent", "/etc/dmagent", "/usr/lib/dmagent"] {
        assert!(
            !Path::new(path).exists(),
            "{path} exists: this machine is not clean, refusing to touch it"
        );
    }
    assert!(
        passwd_entry("dmagent").is_none(),
        "a dmagent user already exists: refusing to touch it"
    );

    let debs = tempfile::tempdir().expect("tempdir");
    let old = build_deb(&debs.path().join("old"), OLD);
    let new = build_deb(&debs.path().join("new"), NEW);
    let info = ok(
        "dpkg-deb",
        &[
            "-f",
            new.to_str().expect("utf-8"),
            "Package",
            "Version",
            "Depends",
        ],
    );
    assert!(
        info.contains("Package: dmagent") && info.contains(NEW),
        "{info}"
    );

    let _cleanup = Cleanup;
    // Install the older build.
    ok("dpkg", &["-i", old.to_str().expect("utf-8")]);
    assert_eq!(installed_version().as_deref(), Some(OLD));
    check_installed_files();
    let uid_before = passwd_entry("dmagent");

    // A fresh install with no configuration: the plugins from the package.
    let plugins = ok("/usr/bin/dmagent", &["plugins"]);
    assert!(
        plugins.contains("plugin directory: /usr/lib/dmagent/plugins")
            && plugins.contains("6 file(s): 6 loaded, 0 refused"),
        "{plugins}"
    );
    // The machine inventory runs as the system user (50-debian.toml).
    let inventory = ok("/usr/bin/dmagent", &["inventory", "--kind", "machine"]);
    assert!(inventory.contains("Device_Memory"), "{inventory}");
    ok(
        "/usr/bin/dmagent",
        &["plugin-check", "/usr/lib/dmagent/plugins/exec.so"],
    );

    // The client database, as the agent keeps it at the default path.
    let database = Settings::default().database_path();
    assert!(
        database.starts_with("/var/lib/dmagent"),
        "{}",
        database.display()
    );
    {
        let store = Store::open(&database).expect("open the installed agent's database");
        let mut record = PackageRecord::new("PKG-KEPT", 1_700_000_000);
        record.state = PackageState::Installed;
        record.name = Some("survives upgrades".into());
        store.write(|tx| tx.put_package(&record)).expect("write");
    }
    let status = ok("/usr/bin/dmagent", &["status", "--json"]);
    assert!(status.contains("PKG-KEPT"), "{status}");
    let bytes_before = std::fs::read(&database).expect("read database");

    // Upgrade over it.
    ok("dpkg", &["-i", new.to_str().expect("utf-8")]);
    assert_eq!(installed_version().as_deref(), Some(NEW));
    check_installed_files();
    assert_eq!(passwd_entry("dmagent"), uid_before, "the same system user");
    assert_eq!(
        std::fs::read(&database).expect("read database"),
        bytes_before,
        "the upgrade left the client database byte for byte"
    );
    let status = ok("/usr/bin/dmagent", &["status", "--json"]);
    assert!(status.contains("PKG-KEPT"), "{status}");
    let store = Store::open(&database).expect("open after the upgrade");
    assert_eq!(
        store.package("PKG-KEPT").expect("read").map(|p| p.state),
        Some(PackageState::Installed)
    );
    drop(store);

    // Remove: the program goes, the state stays.
    ok("dpkg", &["-r", "dmagent"]);
    assert!(!Path::new("/usr/bin/dmagent").exists());
    assert!(!Path::new("/usr/lib/dmagent/plugins/exec.so").exists());
    assert!(database.exists(), "remove keeps the client database");

    // Purge: nothing is left.
    ok("dpkg", &["--purge", "dmagent"]);
    assert_eq!(installed_version(), None);
    for path in [
        "/var/lib/dmagent",
        "/etc/dmagent",
        "/usr/lib/dmagent",
        "/usr/share/doc/dmagent",
        "/usr/lib/systemd/system/dmagent.service",
    ] {
        assert!(!Path::new(path).exists(), "{path} left after purge");
    }
    assert!(passwd_entry("dmagent").is_none(), "purge removes the user");
    assert!(!group_exists("dmagent"), "purge removes the group");
    let status = run("dpkg-query", &["-W", "dmagent"]);
    assert!(!status.status.success(), "dpkg forgot the package");
}
