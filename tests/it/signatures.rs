//! Tests: X8 signed updates end to end — `dm-server` signing with its key
//! over real HTTP on loopback, the in-process agent with the image's
//! `[trust]` settings, the real redb file and the real plugins. Each
//! refusal must stop the event before anything is fetched or run, reach the
//! server as 11032 with `ErrorCode` `signature`, and show in the status.

use std::sync::Arc;

use dm_server::signing::Signer;
use dm_server::Faults;
use dmagent::control::{Request, Response};
use dmagent::daemon::store_actor::{execute, ControlContext};
use dmagent::store::PackageState;
use dmagent::trust::{self, SigningKeyPair, TrustSettings, TrustedKey};

use crate::support::agent::{settings, TestAgent};
use crate::support::server::{self, TestServer};

fn key() -> SigningKeyPair {
    SigningKeyPair::generate().expect("key pair")
}

/// A server that signs with `pair` (and sends `endorsement` with it).
fn signing_server(pair: SigningKeyPair, endorsed_by: Option<&SigningKeyPair>) -> TestServer {
    let endorsement = endorsed_by.map(|old| trust::endorse(old, &pair.public()));
    let signer = Arc::new(Signer::new(pair, endorsement));
    server::start_with(move |cfg| cfg.signer = Some(signer))
}

fn trusting(keys: &[&SigningKeyPair], require: bool) -> TrustSettings {
    TrustSettings {
        require_signature: require,
        keys: keys
            .iter()
            .map(|k| TrustedKey {
                key: k.public(),
                not_before: None,
                not_after: None,
            })
            .collect(),
        revoked: Vec::new(),
    }
}

fn agent(server: &TestServer, device: &str, trust: TrustSettings) -> TestAgent {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = settings(dir.path(), &server.server.endpoint_url(), device);
    s.trust = trust;
    TestAgent::start(dir, s)
}

fn messages(server: &TestServer, device: &str, package: &str) -> Vec<u32> {
    server::messages(&server.server, device, package)
}

/// The parameter `name` of the last status message `device` sent for `package`.
fn last_parameter(server: &TestServer, device: &str, package: &str, name: &str) -> String {
    let statuses = server.server.state().statuses(device).expect("statuses");
    let last = statuses
        .iter()
        .rev()
        .find(|s| s.package_id == package)
        .expect("a status message");
    last.parameters
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.clone())
        .unwrap_or_default()
}

/// `dmagent status` as JSON text.
fn status_json(agent: &TestAgent) -> String {
    let context = ControlContext {
        settings: agent.settings.clone(),
        device_id: None,
        daemon_running: true,
        clock: Arc::new(agent.clock.clone()),
    };
    match execute(&agent.store, &context, &Request::Status) {
        Response::Status(report) => serde_json::to_string(&report).expect("json"),
        other => panic!("status answered {other:?}"),
    }
}

/// Waits for `package` to be refused and checks every promise of a refusal:
/// 11032 `signature` the only message (the event stopped before 11030;
/// each poll asks again, as for any failed package, and is refused again),
/// the reason in the record and in `dmagent status`, nothing in the
/// package's install directory.
fn assert_refused(
    server: &TestServer,
    agent: &TestAgent,
    device: &str,
    package: &str,
    destination: &str,
    why: &str,
) {
    agent.wait_for("the refusal to reach the server", |_| {
        !messages(server, device, package).is_empty()
    });
    agent.wait_delivered();
    let sent = messages(server, device, package);
    assert!(
        sent.iter().all(|&m| m == 11032),
        "{package}: refused before 11030, yet sent {sent:?}"
    );
    assert_eq!(
        last_parameter(server, device, package, "ErrorCode"),
        "signature"
    );
    let text = last_parameter(server, device, package, "ErrorText");
    assert!(
        text.contains(why),
        "{package}: ErrorText {text:?} lacks {why:?}"
    );
    let record = agent.package(package).expect("record");
    let outcome = record.last_outcome.expect("outcome").detail;
    assert!(outcome.contains("signature refused"), "{outcome}");
    let dir = agent.package_dir(destination);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{}: left behind {left:?}", dir.display());
    let status = status_json(agent);
    assert!(
        status.contains("signature refused") && status.contains(why),
        "dmagent status does not show the reason: {status}"
    );
}

#[test]
fn a_signed_catalog_installs_under_the_policy() {
    let k = key();
    let trust = trusting(&[&k], true);
    let server = signing_server(k, None);
    let agent = agent(&server, "SIG-OK", trust);
    for id in ["DEMO-APP", "DEMO-RECURRING", "BIG"] {
        agent.wait_state(id, PackageState::Installed);
    }
    agent.wait_delivered();
    assert_eq!(
        messages(&server, "SIG-OK", "DEMO-APP"),
        [11030, 11031, 11035]
    );
    assert!(agent.package_dir("demo-app").join("app").is_dir());
    let stored = agent
        .package("DEMO-APP")
        .expect("record")
        .instructions
        .expect("instructions");
    assert!(stored.signature.is_some() && stored.package_signature.is_some());
}

#[test]
fn a_tampered_command_is_refused_and_never_runs() {
    let k = key();
    let server = signing_server(k.clone(), None);
    let mut faults = Faults::default();
    faults
        .tamper_command
        .insert("DEMO-RECURRING".into(), "/bin/sh -c 'touch pwned'".into());
    server.server.faults().set(faults);
    // Refused with the policy, and without it: a signature that is present
    // and wrong is evidence of tampering either way.
    for (device, require) in [("SIG-CMD-REQ", true), ("SIG-CMD-OPT", false)] {
        let agent = agent(&server, device, trusting(&[&k], require));
        assert_refused(
            &server,
            &agent,
            device,
            "DEMO-RECURRING",
            "demo-recurring",
            "altered",
        );
        // The untouched packages still install.
        agent.wait_state("DEMO-APP", PackageState::Installed);
    }
}

#[test]
fn a_tampered_package_byte_never_reaches_the_post_install_step() {
    let k = key();
    let server = signing_server(k.clone(), None);
    server::assign_only(server.catalog.path(), &["DEMO-RECURRING"]);
    server.server.faults().set(Faults {
        flip_byte_at: Some(3),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = settings(dir.path(), &server.server.endpoint_url(), "SIG-BYTE");
    s.trust = trusting(&[&k], true);
    s.retry.max_retries = 0;
    let agent = TestAgent::start(dir, s);
    agent.wait_for("the failed download's report", |_| {
        messages(&server, "SIG-BYTE", "DEMO-RECURRING").contains(&11032)
    });
    agent.wait_delivered();
    // The signed hash caught the byte: the download failed, no step ran
    // (a later attempt may already have started: it fails the same way).
    let sent = messages(&server, "SIG-BYTE", "DEMO-RECURRING");
    assert_eq!(sent[..2], [11030, 11032], "{sent:?}");
    assert!(!sent.contains(&11031) && !sent.contains(&11035), "{sent:?}");
    let text = last_parameter(&server, "SIG-BYTE", "DEMO-RECURRING", "ErrorText");
    assert!(text.contains("SHA-256 mismatch"), "{text}");
    let left: Vec<_> = std::fs::read_dir(agent.package_dir("demo-recurring"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind {left:?}");
}

#[test]
fn a_wrong_key_is_refused() {
    let (trusted, other) = (key(), key());
    let server = signing_server(other, None);
    let agent = agent(&server, "SIG-WRONG", trusting(&[&trusted], true));
    assert_refused(
        &server,
        &agent,
        "SIG-WRONG",
        "DEMO-APP",
        "demo-app",
        "not a trusted key",
    );
}

#[test]
fn a_revoked_key_is_refused() {
    let k = key();
    let mut trust = trusting(&[&k], true);
    trust.revoked.push(k.public().id());
    let server = signing_server(k, None);
    let agent = agent(&server, "SIG-REVOKED", trust);
    assert_refused(
        &server,
        &agent,
        "SIG-REVOKED",
        "DEMO-APP",
        "demo-app",
        "revoked",
    );
}

#[test]
fn a_rotated_key_endorsed_by_the_trusted_one_is_accepted_until_that_is_revoked() {
    let (old, new) = (key(), key());
    let server = signing_server(new, Some(&old));
    let accepted = agent(&server, "SIG-ROTATED", trusting(&[&old], true));
    accepted.wait_state("DEMO-APP", PackageState::Installed);
    accepted.wait_delivered();
    assert_eq!(
        messages(&server, "SIG-ROTATED", "DEMO-APP"),
        [11030, 11031, 11035]
    );
    let mut revoked = trusting(&[&old], true);
    revoked.revoked.push(old.public().id());
    let refused = agent(&server, "SIG-ROTATED-REVOKED", revoked);
    assert_refused(
        &server,
        &refused,
        "SIG-ROTATED-REVOKED",
        "DEMO-APP",
        "demo-app",
        "revoked",
    );
}

#[test]
fn unsigned_work_is_refused_only_under_the_policy() {
    let k = key();
    let server = server::start();
    let plain = agent(&server, "UNSIGNED-OPT", trusting(&[&k], false));
    plain.wait_state("DEMO-APP", PackageState::Installed);
    let strict = agent(&server, "UNSIGNED-REQ", trusting(&[&k], true));
    assert_refused(
        &server,
        &strict,
        "UNSIGNED-REQ",
        "DEMO-APP",
        "demo-app",
        "no Signature",
    );
}
