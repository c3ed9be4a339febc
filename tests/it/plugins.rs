//! Tests: the plugin host with the REAL plugin libraries of the workspace,
//! built by the test itself (once), copied into a private plugin directory,
//! loaded and called through real plugin-host child processes.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::plugins::{library_of, PLUGINS};
use dmagent::config::{Settings, Sha256AllowList};
use dmagent::plugin_host::{EntryStatus, FailureCause, PluginHost};
use dmagent_plugin_api::{
    CollectRequest, CollectResult, FileFilter, PostInstallRequest, ReportKind, PAYLOAD_VERSION,
};

const BIN: &str = env!("CARGO_BIN_EXE_dmagent");

/// A private plugin directory (mode 0755) with the chosen plugins (0644).
struct PluginDir {
    tmp: tempfile::TempDir,
}

impl PluginDir {
    fn with(files: &[&str]) -> PluginDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("plugins");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for name in files {
            let (krate, _) = PLUGINS
                .iter()
                .find(|(_, f)| f == name)
                .expect("known plugin");
            let dest = dir.join(name);
            std::fs::copy(library_of(krate), &dest).expect("copy plugin");
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        PluginDir { tmp }
    }

    fn path(&self) -> PathBuf {
        self.tmp.path().join("plugins")
    }

    fn settings(&self) -> Settings {
        let mut s = Settings::default();
        s.paths.plugin_dir = self.path();
        s.plugins.call_timeout = Duration::from_secs(20);
        s
    }

    fn host(&self) -> PluginHost {
        PluginHost::discover_with(&self.settings(), Path::new(BIN))
    }
}

fn refusal<'a>(host: &'a PluginHost, file: &str) -> &'a dmagent::plugin_host::PluginFailure {
    let entry = host
        .entries()
        .iter()
        .find(|e| e.file.file_name().is_some_and(|n| n == file))
        .unwrap_or_else(|| panic!("{file} not found"));
    match &entry.status {
        EntryStatus::Refused { failure } => failure,
        EntryStatus::Loaded(info) => panic!("{file} was loaded: {info:?}"),
    }
}

fn post_install(package_dir: &Path, command_line: &str) -> PostInstallRequest {
    PostInstallRequest {
        version: PAYLOAD_VERSION,
        package_id: "PKG-1".into(),
        package_dir: package_dir.display().to_string(),
        package_file: None,
        command_line: command_line.into(),
        timeout_secs: 10,
        env: Default::default(),
        allowed_roots: vec![],
    }
}

// ---- misbehaving fixtures -------------------------------------------------

#[test]
fn misbehaving_plugins_are_contained_and_reported() {
    let dir = PluginDir::with(&[
        "panic.so",
        "abort.so",
        "segfault.so",
        "hang.so",
        "wrong_abi.so",
        "missing_symbol.so",
        "bad_utf8.so",
        "oversized.so",
    ]);
    let host = dir.host();
    // The hang fixture gets a short deadline; the others a generous one (a
    // loaded 2-core machine must not turn a slow answer into a timeout).
    let mut settings = dir.settings();
    settings.plugins.call_timeout = Duration::from_secs(2);
    let short = PluginHost::discover_with(&settings, Path::new(BIN));

    let wrong = refusal(&host, "wrong_abi.so");
    assert_eq!(wrong.plugin, "wrong_abi.so");
    assert_eq!(
        wrong.cause,
        FailureCause::AbiMismatch {
            plugin_major: 999,
            plugin_minor: 0,
            host_major: 1,
            host_minor: 0
        }
    );
    assert!(wrong.to_string().contains("999.0") && wrong.to_string().contains("ABI 1.0"));
    let missing = refusal(&host, "missing_symbol.so");
    assert_eq!(missing.kind(), "missing_symbol", "{missing}");
    assert!(
        missing.to_string().contains("dmagent_plugin_v1"),
        "{missing}"
    );

    let pkg = tempfile::tempdir().expect("tempdir");
    let calls: Vec<(&str, _)> = std::thread::scope(|s| {
        let handles: Vec<_> = [
            "panic",
            "abort",
            "segfault",
            "hang",
            "bad-utf8",
            "oversized",
        ]
        .into_iter()
        .map(|name| {
            let host = if name == "hang" { &short } else { &host };
            let req = post_install(pkg.path(), "anything");
            (name, s.spawn(move || host.run_post_install(name, &req)))
        })
        .collect();
        handles
            .into_iter()
            .map(|(n, h)| (n, h.join().expect("join")))
            .collect()
    });
    for (name, result) in calls {
        let failure = result.expect_err(name);
        assert_eq!(failure.plugin, name);
        let text = failure.to_string();
        match name {
            "panic" => {
                assert_eq!(failure.kind(), "panic", "{text}");
                assert!(
                    text.contains("deliberate panic from the panic fixture"),
                    "{text}"
                );
            }
            "abort" => assert_eq!(
                failure.cause,
                FailureCause::Signal {
                    signal: 6,
                    name: "SIGABRT".into()
                }
            ),
            "segfault" => assert_eq!(
                failure.cause,
                FailureCause::Signal {
                    signal: 11,
                    name: "SIGSEGV".into()
                }
            ),
            "hang" => assert_eq!(failure.cause, FailureCause::Timeout { secs: 2 }),
            "bad-utf8" => {
                assert_eq!(failure.kind(), "bad_output", "{text}");
                assert!(text.contains("UTF-8"), "{text}");
            }
            "oversized" => assert_eq!(failure.kind(), "oversized", "{text}"),
            _ => unreachable!(),
        }
    }
    // The host is still usable after all of that.
    let again = host.run_post_install("panic", &post_install(pkg.path(), "x"));
    assert_eq!(again.expect_err("panics again").kind(), "panic");
}

// ---- trust checks -----------------------------------------------------------

#[test]
fn writable_plugins_and_digest_mismatches_are_refused() {
    let dir = PluginDir::with(&["exec.so", "archive.so"]);
    std::fs::set_permissions(
        dir.path().join("archive.so"),
        std::fs::Permissions::from_mode(0o666),
    )
    .expect("chmod");
    let host = dir.host();
    let failure = refusal(&host, "archive.so");
    assert_eq!(failure.kind(), "untrusted");
    assert!(failure.to_string().contains("world-writable"), "{failure}");
    assert_eq!(
        host.loaded().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["exec"]
    );

    std::fs::set_permissions(
        dir.path().join("archive.so"),
        std::fs::Permissions::from_mode(0o620),
    )
    .expect("chmod");
    let host = dir.host();
    assert_eq!(refusal(&host, "archive.so").kind(), "untrusted");

    // A group-writable directory taints every file in it.
    std::fs::set_permissions(
        dir.path().join("archive.so"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o775)).expect("chmod");
    let host = dir.host();
    assert!(refusal(&host, "exec.so").to_string().contains("directory"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");

    // SHA-256 allow-list: the right digest loads, a wrong one is refused.
    let host = dir.host();
    let exec_digest = host
        .loaded()
        .find(|i| i.name == "exec")
        .expect("exec loaded")
        .sha256
        .clone();
    let mut settings = dir.settings();
    settings.plugins.allowed_sha256 = Some(Sha256AllowList::ByFile(
        [
            ("exec.so".to_owned(), exec_digest.clone()),
            ("archive.so".to_owned(), "0".repeat(64)),
        ]
        .into(),
    ));
    let host = PluginHost::discover_with(&settings, Path::new(BIN));
    let failure = refusal(&host, "archive.so");
    assert_eq!(failure.kind(), "digest_mismatch");
    assert!(failure.to_string().contains(&"0".repeat(64)), "{failure}");
    assert!(host.loaded().any(|i| i.name == "exec"));

    settings.plugins.allowed_sha256 = Some(Sha256AllowList::AnyOf(vec![exec_digest]));
    let host = PluginHost::discover_with(&settings, Path::new(BIN));
    assert_eq!(refusal(&host, "archive.so").kind(), "digest_mismatch");
    assert!(host.loaded().any(|i| i.name == "exec"));
}

#[test]
fn plugins_command_lists_loaded_and_refused() {
    let dir = PluginDir::with(&["exec.so", "wrong_abi.so"]);
    let config = dir.tmp.path().join("local.toml");
    std::fs::write(
        &config,
        format!("[paths]\nplugin_dir = \"{}\"\n", dir.path().display()),
    )
    .expect("config");
    let out = Command::new(BIN)
        .args(["--no-system-config", "--config"])
        .arg(&config)
        .arg("plugins")
        .output()
        .expect("run dmagent plugins");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("loaded   exec.so: exec"), "{text}");
    assert!(
        text.contains("refused  wrong_abi.so: ABI mismatch"),
        "{text}"
    );
    let help = Command::new(BIN).arg("--help").output().expect("help");
    assert!(!String::from_utf8_lossy(&help.stdout).contains("__plugin-host"));
}

/// `dmagent plugins` with `paths.plugin_dir` set to `dir` (nothing else configured).
fn plugins_command(dir: &Path, json: bool) -> (bool, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("local.toml");
    std::fs::write(
        &config,
        format!("[paths]\nplugin_dir = \"{}\"\n", dir.display()),
    )
    .expect("config");
    let mut cmd = Command::new(BIN);
    cmd.args(["--no-system-config", "--config"])
        .arg(&config)
        .arg("plugins");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run dmagent plugins");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn plugins_command_on_a_fresh_install_says_where_it_looked_and_why_nothing_is_listed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("no-such-dir");
    let (ok, text) = plugins_command(&missing, false);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("plugin directory: {}", missing.display())),
        "{text}"
    );
    assert!(text.contains("the directory does not exist"), "{text}");
    assert!(text.contains("install a plugin by copying"), "{text}");
    let (ok, json) = plugins_command(&missing, true);
    assert!(ok, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["plugin_dir"], missing.display().to_string());
    assert_eq!(v["directory"]["state"], "missing");
    assert_eq!(v["plugins"], serde_json::json!([]));

    let empty = PluginDir::with(&[]);
    std::fs::write(empty.path().join("README"), "not a plugin").expect("write");
    let (ok, text) = plugins_command(&empty.path(), false);
    assert!(ok, "{text}");
    assert!(text.contains("holds no *.so files"), "{text}");
    let (_, json) = plugins_command(&empty.path(), true);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["directory"]["state"], "empty");

    let not_a_dir = tmp.path().join("plugins-file");
    std::fs::write(&not_a_dir, "").expect("write");
    let (ok, text) = plugins_command(&not_a_dir, false);
    assert!(ok, "{text}");
    assert!(text.contains("the directory cannot be read ("), "{text}");

    let some = PluginDir::with(&["exec.so", "wrong_abi.so"]);
    let (_, text) = plugins_command(&some.path(), false);
    assert!(text.contains("2 file(s): 1 loaded, 1 refused"), "{text}");
    let (_, json) = plugins_command(&some.path(), true);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        v["directory"],
        serde_json::json!({"state": "found", "files": 2})
    );
    assert_eq!(v["plugins"].as_array().map(Vec::len), Some(2));
}

// ---- the C example ------------------------------------------------------------

#[test]
fn c_plugin_loads_and_runs() {
    let dir = PluginDir::with(&[]);
    let so = dir.path().join("c_example.so");
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-Wall", "-Werror", "-I"])
        .arg(format!("{root}/plugin-api/include"))
        .arg("-o")
        .arg(&so)
        .arg(format!("{root}/plugins/c-example/example.c"))
        .status()
        .expect("run cc");
    assert!(status.success());
    std::fs::set_permissions(&so, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let host = dir.host();
    let info = host.loaded().next().expect("the C plugin loads");
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("c-example", "1.0.0")
    );
    let pkg = tempfile::tempdir().expect("tempdir");
    let result = host
        .run_post_install("c-example", &post_install(pkg.path(), "whatever"))
        .expect("C plugin runs");
    assert_eq!(result.exit_code, 0);
    assert!(pkg.path().join("c-example.marker").exists());
}

// ---- exec ---------------------------------------------------------------------

#[test]
fn exec_runs_in_the_package_dir_with_a_clean_environment() {
    let dir = PluginDir::with(&["exec.so"]);
    let host = dir.host();
    let pkg = tempfile::tempdir().expect("tempdir");
    std::fs::write(pkg.path().join("install.sh"), "#!/bin/sh\necho \"in $(pwd)\"\necho \"id=$DM_PACKAGE_ID file=$DM_PACKAGE_FILE path=$PATH home=${HOME:-unset}\"\necho oops >&2\nexit 3\n")
        .expect("script");
    std::fs::set_permissions(
        pkg.path().join("install.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let mut req = post_install(pkg.path(), "./install.sh 'two words'");
    req.package_file = Some("app.bin".into());
    let (handler, rest) = dmagent::plugin_host::route_command_line(&req.command_line);
    assert_eq!((handler, rest), ("exec", "./install.sh 'two words'"));
    let result = host.run_post_install(handler, &req).expect("exec runs");
    assert_eq!(result.exit_code, 3);
    let real = pkg.path().canonicalize().expect("canonical");
    assert!(
        result
            .output_tail
            .contains(&format!("in {}", real.display())),
        "{}",
        result.output_tail
    );
    assert!(
        result
            .output_tail
            .contains("id=PKG-1 file=app.bin path=/usr/sbin:/usr/bin:/sbin:/bin home=unset"),
        "{}",
        result.output_tail
    );
    assert!(result.output_tail.contains("oops"));

    // Only the tail of a long output comes back.
    let req = post_install(
        pkg.path(),
        "sh -c 'head -c 100000 /dev/zero | tr \"\\0\" a; echo END'",
    );
    let result = host.run_post_install("exec", &req).expect("exec runs");
    assert_eq!(result.exit_code, 0);
    assert!(result.output_tail.len() <= 4096 && result.output_tail.ends_with("END\n"));

    // A command past its own timeout is killed and reported.
    let mut req = post_install(pkg.path(), "sleep 30");
    req.timeout_secs = 1;
    let failure = host.run_post_install("exec", &req).expect_err("times out");
    assert!(failure.to_string().contains("timed out"), "{failure}");
}

// ---- archive -------------------------------------------------------------------

/// Every path under `root`, except those under `skip`.
fn listing(root: &Path, skip: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.starts_with(skip) {
                continue;
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.insert(path);
        }
    }
    out
}

/// A tar header with a raw (unchecked) name, like a hostile archive has.
fn raw_header(name: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h
}

fn write_tar(path: &Path, entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) {
    let file = std::fs::File::create(path).expect("create");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, kind, data, link) in entries {
        let h = raw_header(name, *kind, data.len() as u64, *link);
        b.append(&h, *data).expect("append");
    }
    b.into_inner()
        .expect("finish tar")
        .finish()
        .expect("finish gz");
}

#[test]
fn archive_unpacks_tar_gz_and_zip() {
    let dir = PluginDir::with(&["archive.so"]);
    let host = dir.host();
    let pkg = tempfile::tempdir().expect("tempdir");
    use tar::EntryType as T;
    write_tar(
        &pkg.path().join("app.tar.gz"),
        &[
            ("bin/", T::Directory, b"", None),
            ("bin/app", T::Regular, b"#!/bin/sh\n", None),
            ("bin/app-link", T::Symlink, b"", Some("app")),
            ("bin/app-hard", T::Link, b"", Some("bin/app")),
        ],
    );
    let (handler, rest) = dmagent::plugin_host::route_command_line("archive: app.tar.gz out");
    let result = host
        .run_post_install(handler, &post_install(pkg.path(), rest))
        .expect("unpacks");
    assert_eq!(result.exit_code, 0, "{}", result.output_tail);
    let out = pkg.path().join("out");
    assert_eq!(
        std::fs::read(out.join("bin/app")).expect("file"),
        b"#!/bin/sh\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("bin/app-link")).expect("link"),
        Path::new("app")
    );
    assert!(out.join("bin/app-hard").is_file());

    // zip, into an absolute target inside an allowed root.
    let zip_path = pkg.path().join("data.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("create"));
    let options = zip::write::SimpleFileOptions::default();
    zip.add_directory("docs/", options).expect("dir");
    zip.start_file("docs/readme.txt", options).expect("file");
    zip.write_all(b"hello").expect("write");
    zip.finish().expect("finish");
    let root = tempfile::tempdir().expect("tempdir");
    let target = root.path().join("opt/app");
    let mut req = post_install(pkg.path(), &format!("data.zip {}", target.display()));
    let refused = host
        .run_post_install("archive", &req)
        .expect_err("outside allowed roots");
    assert!(refused.to_string().contains("allowed root"), "{refused}");
    req.allowed_roots = vec![root.path().display().to_string()];
    host.run_post_install("archive", &req).expect("unpacks zip");
    assert_eq!(
        std::fs::read(target.join("docs/readme.txt")).expect("file"),
        b"hello"
    );
}

#[test]
fn archive_refuses_hostile_archives() {
    let dir = PluginDir::with(&["archive.so"]);
    let host = dir.host();
    let tmp = tempfile::tempdir().expect("tempdir");
    let pkg = tmp.path().join("pkg");
    std::fs::create_dir(&pkg).expect("mkdir");
    std::fs::create_dir(tmp.path().join("victim")).expect("mkdir");
    let target = pkg.join("out");
    use tar::EntryType as T;
    type Entry<'a> = (&'a str, T, &'a [u8], Option<&'a str>);
    let cases: Vec<(&str, Vec<Entry<'_>>, &str)> = vec![
        (
            "dotdot",
            vec![("../../victim/pwned", T::Regular, b"x", None)],
            "'..'",
        ),
        (
            "absolute",
            vec![("/tmp/dmagent-pwned-abs", T::Regular, b"x", None)],
            "absolute",
        ),
        (
            "symlink-escape",
            vec![
                ("evil", T::Symlink, b"", Some("../../victim")),
                ("evil/pwned", T::Regular, b"x", None),
            ],
            "escapes",
        ),
        (
            "symlink-write-through",
            vec![
                ("inner/", T::Directory, b"", None),
                ("hop", T::Symlink, b"", Some("inner")),
                ("hop/pwned", T::Regular, b"x", None),
            ],
            "through the symlink",
        ),
        (
            "hardlink-escape",
            vec![("h", T::Link, b"", Some("../../victim/secret"))],
            "'..'",
        ),
        (
            "hardlink-absolute",
            vec![("h", T::Link, b"", Some("/etc/passwd"))],
            "absolute",
        ),
        ("device", vec![("null", T::Char, b"", None)], "device node"),
        (
            "fifo",
            vec![("pipe", T::Fifo, b"", None)],
            "device node or fifo",
        ),
    ];
    let before = listing(tmp.path(), &target);
    for (name, entries, why) in cases {
        let file = format!("{name}.tar.gz");
        write_tar(&pkg.join(&file), &entries);
        let before = before.clone();
        let mut before = before;
        before.insert(pkg.join(&file));
        let failure = host
            .run_post_install("archive", &post_install(&pkg, &format!("{file} out")))
            .expect_err(name);
        assert_eq!(failure.kind(), "plugin_error", "{name}: {failure}");
        assert!(failure.to_string().contains(why), "{name}: {failure}");
        assert_eq!(
            listing(tmp.path(), &target),
            before,
            "{name} wrote outside the target"
        );
        std::fs::remove_file(pkg.join(&file)).expect("rm");
    }
    assert!(!Path::new("/tmp/dmagent-pwned-abs").exists());
    assert!(std::fs::read_dir(tmp.path().join("victim"))
        .expect("victim")
        .next()
        .is_none());

    // 1 GiB of zeros in a small tar.gz, written by streaming.
    let bomb = pkg.join("bomb.tar.gz");
    {
        let file = std::fs::File::create(&bomb).expect("create");
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        let h = raw_header("zeros.bin", T::Regular, 1 << 30, None);
        b.append(&h, std::io::repeat(0).take(1 << 30))
            .expect("append");
        b.into_inner().expect("tar").finish().expect("gz");
    }
    assert!(std::fs::metadata(&bomb).expect("bomb").len() < 8 << 20);
    let failure = host
        .run_post_install("archive", &post_install(&pkg, "bomb.tar.gz out"))
        .expect_err("bomb refused");
    assert!(failure.to_string().contains("cap"), "{failure}");
    assert!(!target.join("zeros.bin").exists());
}

use std::io::Read as _;

// ---- report collectors ---------------------------------------------------------

fn collect_request(kind: ReportKind, filters: Vec<FileFilter>) -> CollectRequest {
    CollectRequest {
        version: PAYLOAD_VERSION,
        report: kind,
        file_filters: filters,
        allowed_roots: vec![],
        max_file_bytes: 1 << 20,
    }
}

#[test]
fn machine_inventory_reports_the_documented_items() {
    let dir = PluginDir::with(&["machine_inventory.so"]);
    let host = dir.host();
    let results = host.collect(
        ReportKind::Machine,
        &collect_request(ReportKind::Machine, vec![]),
    );
    assert_eq!(results.len(), 1);
    let (name, result) = &results[0];
    assert_eq!(name, "machine-inventory");
    let result = result.as_ref().expect("collects");
    let inventory = dmagent::plugin_host::machine_inventory([result]);
    assert_eq!(inventory.kind.as_deref(), Some("machine"));
    let item = |n: &str| inventory.items.iter().find(|i| i.name == n);
    let prop = |i: &str, p: &str| {
        item(i)
            .and_then(|i| i.properties.iter().find(|x| x.name == p))
            .map(|x| x.value.clone())
    };
    for p in [
        "PlatformType",
        "OEMInfo",
        "NumberOfProcessors",
        "ProcessorArchitecture",
    ] {
        assert!(prop("Device_System", p).is_some(), "Device_System/{p}");
    }
    assert_eq!(prop("Device_OS", "Platform").as_deref(), Some("100"));
    assert!(prop("Device_OS", "MajorVersion").is_some());
    let total: u64 = prop("Device_Memory", "Total")
        .expect("memory")
        .parse()
        .expect("KB");
    assert!(total > 0);
    assert!(item("Device_Power").is_some());
    assert!(inventory
        .items
        .iter()
        .any(|i| i.name == "Device_FileSystem"));
}

#[test]
fn dpkg_inventory_lists_installed_packages() {
    let dir = PluginDir::with(&["dpkg_inventory.so"]);
    let host = dir.host();
    let results = host.collect(
        ReportKind::Software,
        &collect_request(ReportKind::Software, vec![]),
    );
    assert_eq!(results.len(), 1);
    let Ok(result) = &results[0].1 else {
        panic!("{:?}", results[0]);
    };
    let report = dmagent::plugin_host::file_report([result]);
    if Path::new("/var/lib/dpkg/status").exists() {
        let dpkg = &report.directories[0];
        assert_eq!(dpkg.name, "dpkg");
        assert!(dpkg
            .files
            .iter()
            .any(|f| f.name.starts_with("dpkg") && f.size > 0));
    } else {
        assert!(report.directories.is_empty());
    }
}

#[test]
fn software_inventory_and_file_collection_walk_the_filters() {
    let dir = PluginDir::with(&["software_inventory.so", "file_collection.so"]);
    let host = dir.host();
    let tree = tempfile::tempdir().expect("tempdir");
    let root = tree.path().canonicalize().expect("canonical");
    std::fs::create_dir_all(root.join("app/.hidden")).expect("mkdir");
    std::fs::write(root.join("app/viewer.EXE"), b"12345").expect("write");
    std::fs::write(root.join("app/notes.txt"), b"1").expect("write");
    std::fs::write(root.join("app/.hidden/x.exe"), b"123").expect("write");
    std::fs::write(root.join("app/big.exe"), vec![0u8; 4096]).expect("write");
    std::fs::set_permissions(
        root.join("app/viewer.EXE"),
        std::fs::Permissions::from_mode(0o444),
    )
    .expect("chmod");
    let filters = vec![FileFilter {
        filter: "*.exe".into(),
        path: root.join("app").display().to_string(),
        recursive: true,
        ..FileFilter::default()
    }];
    let results = host.collect(
        ReportKind::Software,
        &collect_request(ReportKind::Software, filters.clone()),
    );
    let software = results
        .iter()
        .find(|(n, _)| n == "software-inventory")
        .expect("software-inventory ran");
    let software = software.1.as_ref().expect("collects");
    let report = dmagent::plugin_host::file_report([software]);
    let top = &report.directories[0];
    assert_eq!(top.name, root.join("app").display().to_string());
    let names: BTreeSet<&str> = top.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["big.exe", "viewer.EXE"]));
    let viewer = top
        .files
        .iter()
        .find(|f| f.name == "viewer.EXE")
        .expect("viewer");
    assert_eq!(viewer.size, 5);
    assert!(viewer.last_modified.is_some());
    assert_eq!(viewer.attributes.as_deref(), Some("READONLY"));
    let hidden = &top.directories[0];
    assert_eq!(hidden.name, root.join("app/.hidden").display().to_string());
    assert_eq!(hidden.attributes.as_deref(), Some("HIDDEN"));
    assert_eq!(hidden.files[0].name, "x.exe");

    let mut request = collect_request(ReportKind::Files, filters);
    request.max_file_bytes = 1000;
    request.allowed_roots = vec![root.display().to_string()];
    let results = host.collect(ReportKind::Files, &request);
    assert_eq!(results.len(), 1);
    let Ok(CollectResult::Files { files }) = &results[0].1 else {
        panic!("{:?}", results[0]);
    };
    let mut paths: Vec<(String, u64)> = files.iter().map(|f| (f.path.clone(), f.size)).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            (root.join("app/.hidden/x.exe").display().to_string(), 3),
            (root.join("app/viewer.EXE").display().to_string(), 5),
        ]
    );
    // Outside the allowed roots: nothing.
    request.allowed_roots = vec!["/nonexistent".into()];
    let results = host.collect(ReportKind::Files, &request);
    let Ok(CollectResult::Files { files }) = &results[0].1 else {
        panic!("{:?}", results[0]);
    };
    assert!(files.is_empty());
}
