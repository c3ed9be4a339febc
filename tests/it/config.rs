//! Tests: config. Real fragment files in temporary directories, loaded the
//! way the agent loads them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dmagent::config::{
    load, ConfigError, ConfigErrorKind, ConfigErrors, IdentitySource, LinkAssume, LogFormat,
    Settings, Sources, BUILT_IN_LABEL, EXIT_CONFIG,
};
use tempfile::TempDir;

fn tempdir() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create dir");
    }
    fs::write(&path, text).expect("write fragment");
    path
}

fn settings(sources: &Sources) -> Settings {
    match load(sources) {
        Ok(loaded) => loaded.settings,
        Err(errors) => panic!("configuration should load:\n{errors}"),
    }
}

fn errors(sources: &Sources) -> ConfigErrors {
    load(sources).expect_err("configuration should be refused")
}

fn label(path: &Path) -> String {
    path.display().to_string()
}

/// The one error about `key` in `file`; fails listing all errors otherwise.
fn find<'a>(errors: &'a ConfigErrors, file: &str, key: &str) -> &'a ConfigError {
    let found: Vec<&ConfigError> = errors
        .iter()
        .filter(|e| e.file == file && e.key == key)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one error for {file} / {key:?}, got:\n{errors}"
    );
    found[0]
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

#[test]
fn built_in_defaults_alone_give_the_documented_values() {
    let loaded = load(&Sources::none()).expect("defaults load");
    assert!(loaded.files.is_empty());
    let s = loaded.settings;
    assert_eq!(s, Settings::default());

    assert_eq!(s.server.url, None);
    assert_eq!(s.server.request_timeout, Duration::from_secs(60));
    assert_eq!(s.server.max_response_bytes, 4 * 1024 * 1024);
    assert_eq!(s.identity.source, IdentitySource::MachineId);
    assert_eq!(s.identity.device_id, None);
    assert_eq!(s.identity.device_name, None);
    assert_eq!(s.identity.machine_id_path, Path::new("/etc/machine-id"));
    assert_eq!(s.paths.state_dir, Path::new("/var/lib/dmagent"));
    assert_eq!(
        s.paths.download_root,
        Path::new("/var/lib/dmagent/packages")
    );
    assert_eq!(s.paths.plugin_dir, Path::new("/usr/lib/dmagent/plugins"));
    assert_eq!(
        s.database_path(),
        Path::new("/var/lib/dmagent/dmagent.redb")
    );
    assert_eq!(s.poll.interval, Duration::from_secs(3600));
    assert_eq!(s.retry.interval, Duration::from_secs(180));
    assert_eq!(s.retry.max_retries, 5);
    assert_eq!(s.tls.ca_bundle, None);
    assert_eq!(s.tls.client_cert, None);
    assert_eq!(s.tls.client_key, None);
    assert_eq!(s.links.docked_interfaces, ["usb*", "rndis*"]);
    assert_eq!(s.links.low_bandwidth_interfaces, ["wwan*", "ppp*"]);
    assert_eq!(s.links.high_bandwidth_threshold_bps, 128_000);
    assert_eq!(s.links.assume, LinkAssume::Auto);
    assert_eq!(s.download.bandwidth_limit, None);
    assert!(!s.download.require_hash);
    assert_eq!(s.log.format, LogFormat::Text);
    assert_eq!(s.log.level, "info");
    assert_eq!(
        loaded.provenance.get("poll.interval").map(String::as_str),
        Some(BUILT_IN_LABEL)
    );
}

#[test]
fn missing_default_directories_are_skipped_but_named_ones_must_exist() {
    let tmp = tempdir();
    let absent = tmp.path().join("absent");

    let defaults = Sources {
        image_dir: Some(absent.join("image")),
        site_dir: Some(absent.join("site")),
        ..Sources::none()
    };
    assert_eq!(settings(&defaults), Settings::default());

    let named = Sources::none()
        .with_image_dir(absent.join("image"))
        .with_site_dir(absent.join("site"))
        .with_local_file(absent.join("local.toml"));
    let errs = errors(&named);
    assert_eq!(errs.len(), 3, "{errs}");
    for path in ["image", "site", "local.toml"] {
        let e = find(&errs, &label(&absent.join(path)), "");
        assert_eq!(e.kind, ConfigErrorKind::Io);
        assert!(e.message.contains("does not exist"), "{e}");
    }

    // From the command line: a flag given is explicit.
    let cli = Sources::from_cli(None, Some(absent.join("site")), None);
    assert!(!cli.image_dir_explicit);
    assert!(cli.site_dir_explicit);
    assert_eq!(errors(&cli).len(), 1);
}

#[test]
fn layers_override_key_by_key_in_order() {
    let tmp = tempdir();
    let image = tmp.path().join("image");
    let site = tmp.path().join("site");
    // Written out of order: file-name order decides, not creation order.
    let image_b = write(
        &image,
        "20-b.toml",
        "[poll]\ninterval = \"2h\"\n[links]\ndocked_interfaces = [\"eth9\"]\n",
    );
    let image_a = write(
        &image,
        "10-a.toml",
        "[poll]\ninterval = \"3h\"\n[retry]\nmax_retries = 7\n[log]\nlevel = \"debug\"\n",
    );
    // Not fragments: ignored.
    write(&image, "README.md", "not toml [");
    write(&image, ".#10-a.toml", "not toml [");
    write(&image, "30-c.toml.disabled", "not toml [");
    let site_a = write(
        &site,
        "50-site.toml",
        "[poll]\ninterval = \"45m\"\n[retry]\ninterval = \"1m\"\n[links]\ndocked_interfaces = [\"usb0\", \"usb1\"]\n",
    );
    let local = write(
        tmp.path(),
        "local.toml",
        "[poll]\ninterval = 600\n[server]\nurl = \"http://127.0.0.1:8080/dm\"\n",
    );

    let image_only = Sources::none().with_image_dir(&image);
    let s = settings(&image_only);
    assert_eq!(
        s.poll.interval,
        Duration::from_secs(2 * 3600),
        "20-b after 10-a"
    );
    assert_eq!(s.retry.max_retries, 7);

    let all = Sources::none()
        .with_image_dir(&image)
        .with_site_dir(&site)
        .with_local_file(&local);
    let loaded = load(&all).expect("loads");
    assert_eq!(
        loaded.files,
        vec![image_a.clone(), image_b, site_a.clone(), local.clone()]
    );
    let s = loaded.settings;
    assert_eq!(s.poll.interval, Duration::from_secs(600), "local wins");
    assert_eq!(s.server.url.as_deref(), Some("http://127.0.0.1:8080/dm"));
    // Deep merge: the site set retry.interval, the image's max_retries stays.
    assert_eq!(s.retry.interval, Duration::from_secs(60));
    assert_eq!(s.retry.max_retries, 7);
    assert_eq!(s.log.level, "debug");
    // Arrays replace, they do not append.
    assert_eq!(s.links.docked_interfaces, ["usb0", "usb1"]);
    // Untouched keys keep their defaults.
    assert_eq!(s.links.low_bandwidth_interfaces, ["wwan*", "ppp*"]);

    let from = |key: &str| loaded.provenance.get(key).cloned().unwrap_or_default();
    assert_eq!(from("poll.interval"), label(&local));
    assert_eq!(from("retry.interval"), label(&site_a));
    assert_eq!(from("retry.max_retries"), label(&image_a));
    assert_eq!(from("links.assume"), BUILT_IN_LABEL);
}

#[test]
fn every_error_is_reported_at_once_with_file_and_key() {
    let tmp = tempdir();
    let image = tmp.path().join("image");
    let site = tmp.path().join("site");
    let syntax = write(
        &image,
        "10-syntax.toml",
        "[poll]\ninterval = \"1h\"\n[server\nurl = \"https://x.example/\"\n",
    );
    let keys = write(
        &site,
        "20-keys.toml",
        r#"
[telemetry]
enabled = true

[poll]
intervall = "1h"

[retry]
max_retries = "five"

[server]
url = "ftp://dm.example.com/"

[links]
assume = "sometimes"
docked_interfaces = ["usb0", 7]
"#,
    );
    let values = write(
        tmp.path(),
        "local.toml",
        r#"
[retry]
interval = "5 minutes"

[paths]
state_dir = "var/lib/dmagent"

[tls]
client_cert = "/etc/dmagent/tls/client.pem"

[identity]
device_id = "bad	tab"
"#,
    );
    let sources = Sources::none()
        .with_image_dir(&image)
        .with_site_dir(&site)
        .with_local_file(&values);
    let errs = errors(&sources);
    let (syntax, keys, values) = (label(&syntax), label(&keys), label(&values));

    let e = find(&errs, &syntax, "");
    assert_eq!(e.kind, ConfigErrorKind::Syntax);
    assert_eq!(e.position.map(|(line, _)| line), Some(3), "{e}");

    let e = find(&errs, &keys, "telemetry");
    assert_eq!(e.kind, ConfigErrorKind::UnknownKey);
    assert!(e.message.contains("unknown table [telemetry]"), "{e}");
    let e = find(&errs, &keys, "poll.intervall");
    assert_eq!(e.kind, ConfigErrorKind::UnknownKey);
    assert!(e.message.contains("did you mean \"interval\""), "{e}");
    assert_eq!(
        find(&errs, &keys, "retry.max_retries").kind,
        ConfigErrorKind::Type
    );
    let e = find(&errs, &keys, "server.url");
    assert_eq!(e.kind, ConfigErrorKind::Value);
    assert!(e.message.contains("ftp"), "{e}");
    assert_eq!(
        find(&errs, &keys, "links.assume").kind,
        ConfigErrorKind::Value
    );
    assert_eq!(
        find(&errs, &keys, "links.docked_interfaces").kind,
        ConfigErrorKind::Type
    );

    let e = find(&errs, &values, "retry.interval");
    assert_eq!(e.kind, ConfigErrorKind::Value);
    assert!(e.message.contains("5 minutes"), "{e}");
    let e = find(&errs, &values, "paths.state_dir");
    assert!(e.message.contains("not an absolute path"), "{e}");
    let e = find(&errs, &values, "tls.client_cert");
    assert_eq!(e.kind, ConfigErrorKind::Conflict);
    assert!(e.message.contains("tls.client_key"), "{e}");
    assert_eq!(
        find(&errs, &values, "identity.device_id").kind,
        ConfigErrorKind::Value
    );

    // Nothing else: a refused device_id is not reported a second time as a
    // conflict with identity.source.
    assert_eq!(errs.len(), 11, "{errs}");

    // One line per error, each naming its file.
    let text = errs.to_string();
    assert_eq!(text.lines().count(), errs.len(), "{text}");
    for (line, error) in text.lines().zip(errs.iter()) {
        assert!(line.starts_with(&error.file), "{line}");
        assert!(line.contains(&error.key), "{line}");
    }
    assert!(
        text.contains(&format!(
            "{keys}: retry.max_retries: expected an integer, found string \"five\" (type)"
        )),
        "{text}"
    );
    assert_eq!(EXIT_CONFIG, 78);
}

#[test]
fn the_shipped_broken_example_reports_all_its_errors() {
    let dir = repo_path("config/examples/broken");
    let errs = errors(&Sources::none().with_site_dir(&dir));
    let file = |name: &str| label(&dir.join(name));
    let expected = [
        ("10-syntax.toml", "", ConfigErrorKind::Syntax),
        ("20-keys.toml", "telemetry", ConfigErrorKind::UnknownKey),
        (
            "20-keys.toml",
            "poll.intervall",
            ConfigErrorKind::UnknownKey,
        ),
        ("20-keys.toml", "retry.max_retries", ConfigErrorKind::Type),
        ("20-keys.toml", "server.url", ConfigErrorKind::Value),
        ("30-values.toml", "retry.interval", ConfigErrorKind::Value),
        ("30-values.toml", "paths.state_dir", ConfigErrorKind::Value),
        (
            "30-values.toml",
            "tls.client_cert",
            ConfigErrorKind::Conflict,
        ),
    ];
    for (name, key, kind) in expected {
        assert_eq!(find(&errs, &file(name), key).kind, kind, "{name} {key}");
    }
    assert_eq!(errs.len(), expected.len(), "{errs}");
    assert_eq!(
        find(&errs, &file("10-syntax.toml"), "")
            .position
            .map(|p| p.0),
        Some(4)
    );
}

#[test]
fn cross_key_rules_blame_the_file_that_set_the_key() {
    let tmp = tempdir();
    let site = tmp.path().join("site");
    let a = write(&site, "10-a.toml", "[identity]\nsource = \"configured\"\n");
    let b = write(&site, "20-b.toml", "[tls]\nclient_key = \"/k.pem\"\n");
    let c = write(
        &site,
        "30-c.toml",
        "[paths]\nplugin_dir = \"/var/lib/dmagent/packages/plugins\"\n",
    );
    let errs = errors(&Sources::none().with_site_dir(&site));
    assert_eq!(
        find(&errs, &label(&a), "identity.source").kind,
        ConfigErrorKind::Conflict
    );
    assert_eq!(
        find(&errs, &label(&b), "tls.client_key").kind,
        ConfigErrorKind::Conflict
    );
    assert_eq!(
        find(&errs, &label(&c), "paths.plugin_dir").kind,
        ConfigErrorKind::Conflict
    );
    assert_eq!(errs.len(), 3, "{errs}");

    let d = write(tmp.path(), "d.toml", "[identity]\ndevice_id = \"X\"\n");
    let errs = errors(&Sources::none().with_local_file(&d));
    assert_eq!(
        find(&errs, &label(&d), "identity.device_id").kind,
        ConfigErrorKind::Conflict
    );
}

#[test]
fn wrong_shapes_and_toml_errors() {
    let tmp = tempdir();
    let f = write(
        tmp.path(),
        "f.toml",
        "poll = 5\nfoo = 1\n[[retry]]\nmax_retries = 1\n[server]\nmax_response_bytes = 5\n[download]\nrequire_hash = \"yes\"\n",
    );
    let errs = errors(&Sources::none().with_local_file(&f));
    let file = label(&f);
    assert_eq!(find(&errs, &file, "poll").kind, ConfigErrorKind::Type);
    assert_eq!(find(&errs, &file, "foo").kind, ConfigErrorKind::UnknownKey);
    assert_eq!(find(&errs, &file, "retry").kind, ConfigErrorKind::Type);
    assert_eq!(
        find(&errs, &file, "server.max_response_bytes").kind,
        ConfigErrorKind::Value
    );
    assert_eq!(
        find(&errs, &file, "download.require_hash").kind,
        ConfigErrorKind::Type
    );
    assert_eq!(errs.len(), 5, "{errs}");

    let dup = write(
        tmp.path(),
        "dup.toml",
        "[poll]\ninterval = 1\ninterval = 2\n",
    );
    let errs = errors(&Sources::none().with_local_file(&dup));
    let e = find(&errs, &label(&dup), "");
    assert_eq!(e.kind, ConfigErrorKind::Syntax);
    assert_eq!(e.position.map(|p| p.0), Some(3), "{e}");
}

#[test]
fn durations_in_every_accepted_form() {
    let tmp = tempdir();
    let f = write(
        tmp.path(),
        "d.toml",
        "[poll]\ninterval = \"0000-00-00 01:30:00\"\n[retry]\ninterval = 90\n[server]\nrequest_timeout = 00:02:00\n",
    );
    let s = settings(&Sources::none().with_local_file(&f));
    assert_eq!(s.poll.interval, Duration::from_secs(5400));
    assert_eq!(s.retry.interval, Duration::from_secs(90));
    assert_eq!(s.server.request_timeout, Duration::from_secs(120));

    let zero = write(tmp.path(), "z.toml", "[poll]\ninterval = \"0s\"\n");
    let errs = errors(&Sources::none().with_local_file(&zero));
    assert!(find(&errs, &label(&zero), "poll.interval")
        .message
        .contains("too short"));
}

#[test]
fn printed_configuration_loads_back_to_the_same_settings() {
    let tmp = tempdir();
    let local = write(
        tmp.path(),
        "local.toml",
        r#"
[identity]
source = "configured"
device_id = "KIOSK-0042"
device_name = "lobby"
[tls]
ca_bundle = "/etc/dmagent/ca.pem"
client_cert = "/etc/dmagent/c.pem"
client_key = "/etc/dmagent/c.key"
[log]
format = "json"
level = "info,dmagent=debug"
[poll]
interval = "1h30m"
"#,
    );
    let sources = Sources::none()
        .with_image_dir(repo_path("config/images"))
        .with_local_file(&local);
    let original = settings(&sources);
    assert_eq!(
        original.download.bandwidth_limit.map(|n| n.get()),
        Some(262_144)
    );

    for s in [original, Settings::default()] {
        let printed = s.to_toml_string();
        let file = write(tmp.path(), "printed.toml", &printed);
        assert_eq!(
            settings(&Sources::none().with_local_file(&file)),
            s,
            "{printed}"
        );
    }
}

#[test]
fn the_shipped_kiosk_image_fragment_is_valid() {
    let s = settings(&Sources::none().with_image_dir(repo_path("config/images")));
    assert_eq!(s.identity.source, IdentitySource::Generated);
    assert_eq!(s.links.docked_interfaces, ["eth0", "usb*"]);
    assert!(s.download.require_hash);
}

fn with_identity(state_dir: &Path, toml: &str) -> Settings {
    let file = state_dir.join("identity.toml");
    fs::write(
        &file,
        format!(
            "[paths]\nstate_dir = {:?}\n{toml}",
            state_dir.display().to_string()
        ),
    )
    .expect("write");
    settings(&Sources::none().with_local_file(&file))
}

#[test]
fn identity_configured() {
    let tmp = tempdir();
    let s = with_identity(
        tmp.path(),
        "[identity]\nsource = \"configured\"\ndevice_id = \"DEV-1\"\ndevice_name = \"front desk\"\n",
    );
    assert_eq!(s.resolve_device_id().expect("id"), "DEV-1");
    assert_eq!(s.resolve_device_name().expect("name"), "front desk");
}

#[test]
fn identity_from_machine_id_file() {
    let tmp = tempdir();
    let machine_id = write(
        tmp.path(),
        "machine-id",
        "0123456789abcdef0123456789abcdef\n",
    );
    let s = with_identity(
        tmp.path(),
        &format!("[identity]\nmachine_id_path = {:?}\n", label(&machine_id)),
    );
    assert_eq!(s.identity.source, IdentitySource::MachineId);
    assert_eq!(
        s.resolve_device_id().expect("id"),
        "0123456789abcdef0123456789abcdef"
    );

    fs::write(&machine_id, "  \n").expect("write");
    let e = s.resolve_device_id().expect_err("empty");
    assert!(e.to_string().contains(&label(&machine_id)), "{e}");

    fs::remove_file(&machine_id).expect("remove");
    let e = s.resolve_device_id().expect_err("missing");
    assert_eq!(e.kind(), "read");
    assert!(e.to_string().contains(&label(&machine_id)), "{e}");
}

#[test]
fn identity_generated_once_and_persisted() {
    let tmp = tempdir();
    let state = tmp.path().join("state");
    fs::create_dir(&state).expect("mkdir");
    let s = with_identity(&state, "[identity]\nsource = \"generated\"\n");
    let first = s.resolve_device_id().expect("generated");
    assert_eq!(first.len(), 36);
    assert!(first
        .chars()
        .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_uppercase()));
    assert_eq!(first.as_bytes()[14], b'4', "UUID version 4: {first}");
    let stored = fs::read_to_string(s.generated_id_path()).expect("persisted");
    assert_eq!(stored.trim(), first);
    assert_eq!(s.resolve_device_id().expect("again"), first);
    // No temp files left behind.
    let names: Vec<_> = fs::read_dir(&state)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}"); // identity.toml + device-id

    let other = tmp.path().join("other");
    let s2 = Settings {
        paths: dmagent::config::PathSettings {
            state_dir: other.clone(),
            ..s.paths.clone()
        },
        ..s.clone()
    };
    let second = s2
        .resolve_device_id()
        .expect("generated in a new state dir");
    assert_ne!(second, first);
    assert!(other.join("device-id").is_file());
}

#[test]
fn trust_keys_inline_from_files_with_windows_and_revocations() {
    let tmp = tempdir();
    let (a, b) = (
        dmagent::trust::SigningKeyPair::generate().expect("key"),
        dmagent::trust::SigningKeyPair::generate().expect("key"),
    );
    let pub_file = write(
        tmp.path(),
        "keys/b.pub",
        &format!("{}\n", b.public().to_base64()),
    );
    let local = write(
        tmp.path(),
        "local.toml",
        &format!(
            r#"
[trust]
require_signature = true
keys = [
  "{a}",
  {{ file = "{file}", id = "{b_id}", not_before = 2027-01-01T00:00:00Z, not_after = "2028-01-01 00:00:00" }},
]
revoked = ["{a_id}", "{a}"]
"#,
            a = a.public().to_base64(),
            file = pub_file.display(),
            b_id = b.public().id(),
            a_id = a.public().id().to_uppercase(),
        ),
    );
    let s = settings(&Sources::none().with_local_file(&local));
    assert!(s.trust.require_signature);
    assert_eq!(s.trust.keys.len(), 2);
    assert_eq!(s.trust.keys[1].key, b.public());
    assert_eq!(s.trust.keys[1].not_before, Some(1_798_761_600));
    assert_eq!(s.trust.keys[1].not_after, Some(1_830_297_600));
    assert_eq!(s.trust.revoked, [a.public().id(), a.public().id()]);
    // The printed form loads back to the same trust settings.
    let printed = write(tmp.path(), "printed.toml", &s.to_toml_string());
    assert_eq!(settings(&Sources::none().with_local_file(&printed)), s);
}

#[test]
fn every_trust_mistake_is_named_at_once() {
    let tmp = tempdir();
    let key = dmagent::trust::SigningKeyPair::generate().expect("key");
    let other = write(
        tmp.path(),
        "bad.toml",
        &format!(
            r#"
[trust]
keys = [
  "AAAA",
  {{ file = "{missing}" }},
  {{ key = "{k}", file = "/x.pub" }},
  {{ key = "{k}", id = "0000000000000000" }},
  {{ key = "{k}", not_before = "2028-01-01 00:00:00", not_after = "2027-01-01 00:00:00" }},
  {{ key = "{k}", expires = 1 }},
]
revoked = ["nope"]
"#,
            missing = tmp.path().join("missing.pub").display(),
            k = key.public().to_base64(),
        ),
    );
    let errs = errors(&Sources::none().with_local_file(&other));
    let file = label(&other);
    // One bad item refuses the key (the earlier value stays); each is named.
    let keys = find(&errs, &file, "trust.keys");
    assert_eq!(keys.kind, ConfigErrorKind::Value, "{errs}");
    assert!(
        keys.message.contains("index 0") && keys.message.contains("32 bytes"),
        "{errs}"
    );
    assert!(find(&errs, &file, "trust.revoked")
        .message
        .contains("index 0"));

    for (item, expected) in [
        (
            format!(
                "{{ file = \"{}\" }}",
                tmp.path().join("missing.pub").display()
            ),
            "cannot read",
        ),
        (
            format!(
                "{{ key = \"{}\", file = \"/x.pub\" }}",
                key.public().to_base64()
            ),
            "exactly one",
        ),
        (
            format!(
                "{{ key = \"{}\", id = \"0000000000000000\" }}",
                key.public().to_base64()
            ),
            "not \"0000000000000000\"",
        ),
        (
            format!(
                "{{ key = \"{}\", not_before = 2028-01-01, not_after = 2027-01-01 }}",
                key.public().to_base64()
            ),
            "after not_after",
        ),
        (
            format!("{{ key = \"{}\", expires = 1 }}", key.public().to_base64()),
            "unknown key \"expires\"",
        ),
    ] {
        let f = write(
            tmp.path(),
            "one.toml",
            &format!("[trust]\nkeys = [{item}]\n"),
        );
        let errs = errors(&Sources::none().with_local_file(&f));
        let e = find(&errs, &label(&f), "trust.keys");
        assert!(e.message.contains(expected), "{item}: {e}");
    }

    // The policy without a key could never accept an update.
    let f = write(
        tmp.path(),
        "policy.toml",
        "[trust]\nrequire_signature = true\n",
    );
    let errs = errors(&Sources::none().with_local_file(&f));
    assert!(find(&errs, &label(&f), "trust.require_signature")
        .message
        .contains("names no key"));
}
