//! What the server signs instructions with (extension X8), and the key files
//! of `dm-server keygen` and `dm-server endorse`.
//!
//! Files: `NAME.key` holds the private key (base64 PKCS#8, mode 0600),
//! `NAME.pub` the public key (base64 of its 32 bytes: what a device image
//! lists in `[trust] keys`), `NAME.endorsement` a JSON `SigningKey`: the
//! public key signed by an older key, sent with every signature so devices
//! that trust only the older key accept the new one.

use std::path::{Path, PathBuf};

use dmagent::protocol::{KeyEndorsement, PackageInstructions};
use dmagent::trust::{self, PublicKey, SigningKeyPair};

/// The server's signing key and, for a rotated key, its endorsement.
#[derive(Debug)]
pub struct Signer {
    pair: SigningKeyPair,
    endorsement: Option<KeyEndorsement>,
}

impl Signer {
    /// A signer from a key pair (tests) and an optional endorsement.
    pub fn new(pair: SigningKeyPair, endorsement: Option<KeyEndorsement>) -> Self {
        Signer { pair, endorsement }
    }

    /// Loads `NAME.key` and, if given, `NAME.endorsement`; checks that the
    /// endorsement is of this very key.
    pub fn load(key: &Path, endorsement: Option<&Path>) -> Result<Self, String> {
        let text = std::fs::read_to_string(key).map_err(|e| format!("{}: {e}", key.display()))?;
        let pair =
            SigningKeyPair::parse_private(&text).map_err(|e| format!("{}: {e}", key.display()))?;
        let endorsement = match endorsement {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let e: KeyEndorsement = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: not an endorsement: {e}", path.display()))?;
                if PublicKey::parse(&e.public_key).ok() != Some(pair.public()) {
                    return Err(format!(
                        "{}: endorses another key than {} ({})",
                        path.display(),
                        key.display(),
                        pair.public().id()
                    ));
                }
                Some(e)
            }
        };
        Ok(Signer { pair, endorsement })
    }

    /// The signing key's ID.
    pub fn key_id(&self) -> String {
        self.pair.public().id()
    }

    /// `instructions` with `Signature`, `PackageSignature` and, for a rotated
    /// key, `SigningKey`.
    pub fn sign(&self, mut instructions: PackageInstructions) -> PackageInstructions {
        trust::sign(&mut instructions, &self.pair, self.endorsement.as_ref());
        instructions
    }
}

/// `dm-server keygen --out PREFIX`: writes `PREFIX.key` (0600) and
/// `PREFIX.pub`; returns the key ID. Refuses to overwrite a key.
pub fn keygen(prefix: &Path) -> Result<String, String> {
    let pair = SigningKeyPair::generate().map_err(|e| e.to_string())?;
    let (private, public) = (with_ext(prefix, "key"), with_ext(prefix, "pub"));
    for p in [&private, &public] {
        if p.exists() {
            return Err(format!("{} exists; not overwriting a key", p.display()));
        }
    }
    write_new(&private, &pair.to_private_text(), 0o600)?;
    write_new(&public, &format!("{}\n", pair.public().to_base64()), 0o644)?;
    Ok(pair.public().id())
}

/// `dm-server endorse --key OLD.key --public NEW.pub --out NEW.endorsement`.
pub fn endorse(old_key: &Path, new_public: &Path, out: &Path) -> Result<String, String> {
    let old = Signer::load(old_key, None)?;
    let text = std::fs::read_to_string(new_public)
        .map_err(|e| format!("{}: {e}", new_public.display()))?;
    let new = PublicKey::parse(&text).map_err(|e| format!("{}: {e}", new_public.display()))?;
    let endorsement = trust::endorse(&old.pair, &new);
    let json = serde_json::to_string_pretty(&endorsement).map_err(|e| e.to_string())?;
    write_new(out, &format!("{json}\n"), 0o644)?;
    Ok(format!("{} endorsed by {}", new.id(), old.key_id()))
}

fn with_ext(prefix: &Path, ext: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}
