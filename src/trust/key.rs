//! Ed25519 keys of X8: their text form, their IDs, and signing (for servers
//! and tools; the agent itself only verifies).
//!
//! ring does the cryptography: rustls already links it for TLS, so the agent
//! gains signature checks without a second crypto library in its binary.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

/// The only signature algorithm of X8.
pub const ALGORITHM: &str = "Ed25519";

/// Why a key, a signature or a key file is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// An Ed25519 public key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl PublicKey {
    /// Parses the text form: standard base64 of the 32 key bytes, optionally
    /// prefixed `ed25519:`, surrounding whitespace ignored (a `.pub` file's
    /// contents work as they are).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let body = text
            .strip_prefix("ed25519:")
            .or_else(|| text.strip_prefix("Ed25519:"))
            .unwrap_or(text);
        let bytes = decode_base64(body, 32, "an Ed25519 public key")?;
        let mut key = [0; 32];
        key.copy_from_slice(&bytes);
        Ok(PublicKey(key))
    }

    /// The text form (standard base64, no prefix).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The key ID: the first 8 bytes of the SHA-256 of the key, in lowercase
    /// hex. Signatures name their key by it.
    pub fn id(&self) -> String {
        hex(&Sha256::digest(self.0)[..8])
    }

    /// Whether `signature` (standard base64) is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature_base64: &str) -> Result<(), KeyError> {
        let signature = decode_base64(signature_base64, 64, "an Ed25519 signature")?;
        UnparsedPublicKey::new(&ED25519, self.0)
            .verify(message, &signature)
            .map_err(|_| {
                KeyError(format!(
                    "the signature does not verify with key {}",
                    self.id()
                ))
            })
    }
}

/// A key pair for signing (the reference server and its `keygen`).
#[derive(Debug)]
pub struct SigningKeyPair {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl Clone for SigningKeyPair {
    fn clone(&self) -> Self {
        // ring's key pair is not Clone; the document it came from parsed once.
        Self::from_pkcs8(&self.pkcs8).unwrap_or_else(|e| unreachable!("{e}"))
    }
}

impl SigningKeyPair {
    /// A new random key pair.
    pub fn generate() -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError("the system random source failed".into()))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| KeyError(format!("not an Ed25519 PKCS#8 private key: {e}")))?;
        Ok(SigningKeyPair {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// Parses a private key file: standard base64 of a PKCS#8 document, as
    /// [`SigningKeyPair::to_private_text`] writes it.
    pub fn parse_private(text: &str) -> Result<Self, KeyError> {
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .concat();
        let der = STANDARD
            .decode(body.trim())
            .map_err(|e| KeyError(format!("a private key file holds base64 PKCS#8: {e}")))?;
        Self::from_pkcs8(&der)
    }

    /// The private key file's contents (keep it secret: mode 0600).
    pub fn to_private_text(&self) -> String {
        format!(
            "# dmagent Ed25519 signing key {} (PKCS#8, base64). Keep secret.\n{}\n",
            self.public().id(),
            STANDARD.encode(&self.pkcs8)
        )
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        let mut key = [0; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(key)
    }

    /// The signature of `message`, standard base64.
    pub fn sign(&self, message: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(message).as_ref())
    }
}

fn decode_base64(text: &str, len: usize, what: &str) -> Result<Vec<u8>, KeyError> {
    // Bound the work before decoding: the text comes from the network.
    if text.len() > len.div_ceil(3) * 4 + 4 {
        return Err(KeyError(format!(
            "{what} is {len} bytes; {} characters of base64 are too many",
            text.len()
        )));
    }
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| KeyError(format!("{what} must be standard base64: {e}")))?;
    if bytes.len() != len {
        return Err(KeyError(format!(
            "{what} is {len} bytes, this is {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_text_forms_round_trip() {
        let pair = SigningKeyPair::generate().expect("key");
        let again = SigningKeyPair::parse_private(&pair.to_private_text()).expect("parse");
        assert_eq!(again.public(), pair.public());
        let public =
            PublicKey::parse(&format!("ed25519:{}\n", pair.public().to_base64())).expect("public");
        let sig = pair.sign(b"hello");
        assert!(public.verify(b"hello", &sig).is_ok());
        assert!(public.verify(b"hellO", &sig).is_err());
        assert_eq!(public.id().len(), 16);
    }

    #[test]
    fn malformed_keys_and_signatures_are_named() {
        assert!(PublicKey::parse("AAAA")
            .expect_err("short")
            .0
            .contains("32 bytes"));
        assert!(PublicKey::parse("not base64!").is_err());
        let pair = SigningKeyPair::generate().expect("key");
        let huge = "A".repeat(10_000);
        assert!(pair
            .public()
            .verify(b"x", &huge)
            .expect_err("huge")
            .0
            .contains("too many"));
    }
}
