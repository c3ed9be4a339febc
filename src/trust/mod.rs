//! Authenticity of what the agent installs (extension X8).
//!
//! A `Hash` (X1) that comes from the same server as the package proves the
//! bytes arrived intact, not that anyone entitled to sent them. X8 adds
//! Ed25519 signatures that a plain CE server never sends and a plain client
//! ignores:
//!
//! - `Signature` over the instruction response's fields
//!   ([`canonical::instructions`]): the server cannot change the command
//!   line, destination, hash or schedule without the key;
//! - `PackageSignature` over the package file's SHA-256 and size
//!   ([`canonical::package`]), which the downloader then enforces;
//! - `SigningKey`: a new key endorsed by an older trusted one, so a fleet can
//!   move to a new key without a new image ([`canonical::key_endorsement`]).
//!
//! The image's `[trust]` settings say which keys count. [`check`] runs when a
//! download event starts, before anything is fetched or run, on the stored
//! instructions: a refusal is reported like any failed download (11032,
//! `ErrorCode` `signature`), and nothing reaches the install directory.
//!
//! The policy: with `require_signature`, both signatures must verify (the
//! package one only where there is a file). Without it, unsigned work is
//! accepted, but a signature that is present is checked against the keys the
//! image trusts, and a wrong one is refused: it is evidence of tampering.

pub mod canonical;
pub mod key;

pub use key::{KeyError, PublicKey, SigningKeyPair, ALGORITHM};

use crate::protocol::{PackageInstructions, SignatureElement};

/// `[trust]`: the keys an image trusts and whether signatures are required.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustSettings {
    /// Refuse instructions and packages that are not signed by a trusted key.
    /// Default false: plain servers sign nothing.
    pub require_signature: bool,
    /// The trusted keys. Several may be trusted at once (rotation), each for
    /// its own window.
    pub keys: Vec<TrustedKey>,
    /// IDs of keys refused whatever else says, and whatever they endorsed.
    pub revoked: Vec<String>,
}

/// One trusted key and the window in which its signatures count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The key.
    pub key: PublicKey,
    /// Not trusted before this Unix time.
    pub not_before: Option<i64>,
    /// Not trusted after this Unix time.
    pub not_after: Option<i64>,
}

/// Which key vouched for a package's instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Both signatures that apply verified with this key; `endorsed_by` names
    /// the trusted key that endorsed it when it came as a `SigningKey`.
    Signed {
        /// The signing key's ID.
        key_id: String,
        /// The endorsing key's ID, for an endorsed key.
        endorsed_by: Option<String>,
    },
    /// Not signed, or signed with no key configured to check it, and the
    /// image does not require signatures.
    Unverified(&'static str),
}

/// Why instructions were refused; the text goes to the server (`ErrorText`)
/// and to `dmagent status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature refused: {0}")]
pub struct Refused(pub String);

impl TrustSettings {
    fn revoked(&self, id: &str) -> bool {
        self.revoked.iter().any(|r| r.eq_ignore_ascii_case(id))
    }

    /// The trusted key `id`, if it is trusted at `now`.
    fn trusted(&self, id: &str, now: i64) -> Result<&PublicKey, Refused> {
        if self.revoked(id) {
            return Err(Refused(format!("key {id} is revoked (trust.revoked)")));
        }
        let mut known = false;
        for k in self.keys.iter().filter(|k| k.key.id() == id) {
            known = true;
            let early = k.not_before.is_some_and(|t| now < t);
            let late = k.not_after.is_some_and(|t| now > t);
            if !early && !late {
                return Ok(&k.key);
            }
        }
        Err(Refused(if known {
            format!("key {id} is trusted only in a window that does not include now")
        } else {
            format!("key {id} is not a trusted key of this image")
        }))
    }

    /// The key that made `signature`: a trusted key, or one the
    /// instructions' `SigningKey` endorses with a trusted key.
    fn signer(
        &self,
        signature: &SignatureElement,
        instructions: &PackageInstructions,
        now: i64,
    ) -> Result<(PublicKey, Option<String>), Refused> {
        if !signature.algorithm.eq_ignore_ascii_case(ALGORITHM) {
            return Err(Refused(format!(
                "algorithm {:?} is not supported (only {ALGORITHM})",
                signature.algorithm
            )));
        }
        let id = signature.key_id.to_ascii_lowercase();
        let direct = self.trusted(&id, now);
        if direct.is_ok() || self.revoked(&id) {
            return direct.map(|k| (k.clone(), None));
        }
        let Some(endorsement) = instructions
            .signing_key
            .as_ref()
            .filter(|e| PublicKey::parse(&e.public_key).is_ok_and(|k| k.id() == id))
        else {
            return direct.map(|k| (k.clone(), None));
        };
        if !endorsement.algorithm.eq_ignore_ascii_case(ALGORITHM) {
            return Err(Refused(format!(
                "SigningKey algorithm {:?} is not supported",
                endorsement.algorithm
            )));
        }
        let endorser_id = endorsement.endorsed_by.to_ascii_lowercase();
        let endorser = self.trusted(&endorser_id, now).map_err(|Refused(why)| {
            Refused(format!("key {id} is endorsed by {endorser_id}, but {why}"))
        })?;
        endorser
            .verify(
                &canonical::key_endorsement(&endorsement.public_key),
                &endorsement.value,
            )
            .map_err(|e| Refused(format!("the SigningKey endorsement of key {id}: {e}")))?;
        let key = PublicKey::parse(&endorsement.public_key).map_err(|e| Refused(e.0))?;
        Ok((key, Some(endorser_id)))
    }
}

/// The policy in words, for `dmagent status`.
pub fn describe(trust: &TrustSettings) -> String {
    let policy = if trust.require_signature {
        "required"
    } else {
        "not required"
    };
    let keys: Vec<String> = trust.keys.iter().map(|k| k.key.id()).collect();
    let mut text = if keys.is_empty() {
        format!("{policy}; no key trusted")
    } else {
        format!("{policy}; trusted keys {}", keys.join(", "))
    };
    if !trust.revoked.is_empty() {
        text.push_str(&format!("; revoked {}", trust.revoked.join(", ")));
    }
    text
}

/// Decides whether `instructions` may be acted on at `now` (Unix seconds).
/// See the module docs for the policy.
pub fn check(
    trust: &TrustSettings,
    instructions: &PackageInstructions,
    now: i64,
) -> Result<Verdict, Refused> {
    let has_file = instructions.source_files != Some(false);
    let signed =
        instructions.signature.is_some() || (has_file && instructions.package_signature.is_some());
    if !trust.require_signature {
        if !signed {
            return Ok(Verdict::Unverified("not signed"));
        }
        if trust.keys.is_empty() {
            return Ok(Verdict::Unverified("signed, but the image trusts no key"));
        }
    }
    let Some(signature) = &instructions.signature else {
        if trust.require_signature {
            return Err(Refused(
                "the instructions carry no Signature and the image requires one \
                 (trust.require_signature)"
                    .into(),
            ));
        }
        // Only the package is signed: its signature still has to hold.
        check_package(trust, instructions, now)?;
        return Ok(Verdict::Unverified("only the package is signed"));
    };
    let (key, endorsed_by) = trust.signer(signature, instructions, now)?;
    key.verify(&canonical::instructions(instructions), &signature.value)
        .map_err(|e| {
            Refused(format!(
                "the instructions were altered or signed by another key: {e}"
            ))
        })?;
    if has_file {
        check_package(trust, instructions, now)?;
    }
    Ok(Verdict::Signed {
        key_id: key.id(),
        endorsed_by,
    })
}

fn check_package(
    trust: &TrustSettings,
    instructions: &PackageInstructions,
    now: i64,
) -> Result<(), Refused> {
    let Some(signature) = &instructions.package_signature else {
        if trust.require_signature {
            return Err(Refused(
                "the package carries no PackageSignature and the image requires one".into(),
            ));
        }
        return Ok(());
    };
    let (Some(hash), Some(size)) = (&instructions.hash, instructions.package_size) else {
        return Err(Refused(
            "a PackageSignature covers the Hash and PackageSize, and the instructions lack one"
                .into(),
        ));
    };
    if !hash.algorithm.eq_ignore_ascii_case("SHA-256") {
        return Err(Refused(format!(
            "a PackageSignature covers a SHA-256, not {:?}",
            hash.algorithm
        )));
    }
    let (key, _) = trust.signer(signature, instructions, now)?;
    key.verify(&canonical::package(&hash.hex, size), &signature.value)
        .map_err(|e| Refused(format!("the package's hash or size was altered: {e}")))
}

/// Signs `instructions` in place with `pair`: `Signature`, and
/// `PackageSignature` where the instructions carry a SHA-256 and a size.
/// `endorsement` is the `SigningKey` to send with them, for a rotated key.
pub fn sign(
    instructions: &mut PackageInstructions,
    pair: &SigningKeyPair,
    endorsement: Option<&crate::protocol::KeyEndorsement>,
) {
    let key_id = pair.public().id();
    instructions.signature = None;
    instructions.package_signature = None;
    instructions.signing_key = endorsement.cloned();
    if let (Some(hash), Some(size)) = (&instructions.hash, instructions.package_size) {
        instructions.package_signature = Some(SignatureElement {
            algorithm: ALGORITHM.into(),
            key_id: key_id.clone(),
            value: pair.sign(&canonical::package(&hash.hex, size)),
        });
    }
    instructions.signature = Some(SignatureElement {
        algorithm: ALGORITHM.into(),
        key_id,
        value: pair.sign(&canonical::instructions(instructions)),
    });
}

/// The `SigningKey` element by which `old` endorses `new`.
pub fn endorse(old: &SigningKeyPair, new: &PublicKey) -> crate::protocol::KeyEndorsement {
    let public_key = new.to_base64();
    crate::protocol::KeyEndorsement {
        algorithm: ALGORITHM.into(),
        value: old.sign(&canonical::key_endorsement(&public_key)),
        public_key,
        endorsed_by: old.public().id(),
    }
}

#[cfg(test)]
mod tests;
