//! Key material kept outside the database: the JWT signing secret and the API-key
//! pepper. Each is a file the administrator may provide (or a systemd credential);
//! missing files are created with 64 random hex characters and mode 0600.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

use crate::config::Config;
use crate::domain::audit::hex;

pub const MIN_SECRET_BYTES: usize = 32;

/// Secret bytes with a `Debug` that shows nothing.
#[derive(Clone)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

pub struct Secrets {
    pub jwt: SecretBytes,
    pub api_key_pepper: SecretBytes,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read or create the secret file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the secret file {0} holds fewer than 32 bytes; put 64 random hex characters in it (e.g. `openssl rand -hex 32`)")]
    TooShort(String),
    #[error("the system random generator failed")]
    Random,
}

impl Secrets {
    pub fn load(config: &Config, create_missing: bool) -> Result<Secrets, SecretError> {
        Ok(Secrets {
            jwt: load_or_create(&config.jwt_secret_path(), create_missing)?,
            api_key_pepper: load_or_create(&config.pepper_path(), create_missing)?,
        })
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SecretError + '_ {
    move |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn load_or_create(path: &Path, create_missing: bool) -> Result<SecretBytes, SecretError> {
    if !path.exists() && create_missing {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SecretError::Random)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(path))?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))
                .map_err(io_error(path))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error(path))?;
        file.write_all(hex(&bytes).as_bytes())
            .map_err(io_error(path))?;
        file.sync_all().map_err(io_error(path))?;
        tracing::info!(path = %path.display(), "created a new secret file");
    }
    let text = std::fs::read(path).map_err(io_error(path))?;
    let trimmed = text.trim_ascii().to_vec();
    if trimmed.len() < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort(path.display().to_string()));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "secret file is readable by other users; chmod 600 it");
        }
    }
    Ok(SecretBytes(trimmed))
}

/// Encrypts small secrets the service must read back (webhook signing
/// secrets) with AES-256-GCM under a key derived from a secret file, so the
/// database alone does not hold them in clear.
pub struct SealingKey(ring::aead::LessSafeKey);

impl SealingKey {
    /// A key for one purpose; other purposes derive other keys from the same file.
    pub fn derive(material: &SecretBytes, purpose: &'static str) -> SealingKey {
        use ring::{aead, hkdf};
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"enterprise-sync sealing");
        let info = [purpose.as_bytes()];
        let prk = salt.extract(material.expose());
        // expand only fails for outputs longer than 255 hash lengths; 32 bytes is not.
        let key = match prk.expand(&info, &aead::AES_256_GCM) {
            Ok(okm) => aead::UnboundKey::from(okm),
            Err(_) => unreachable_key(),
        };
        SealingKey(aead::LessSafeKey::new(key))
    }

    /// Nonce followed by the ciphertext and tag; `context` (the row's id) must
    /// be given again to open it, so sealed values cannot be swapped between rows.
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        use ring::aead;
        let mut nonce = [0u8; aead::NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut sealed = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SecretError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Option<Vec<u8>> {
        use ring::aead;
        let (nonce, body) = sealed.split_at_checked(aead::NONCE_LEN)?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, aead::Aad::from(context.as_bytes()), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// A fixed key for the impossible expansion failure, so `derive` stays infallible.
fn unreachable_key() -> ring::aead::UnboundKey {
    tracing::error!("deriving a sealing key failed");
    let fallback = [0u8; 32];
    match ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &fallback) {
        Ok(key) => key,
        Err(_) => std::process::abort(),
    }
}

#[cfg(test)]
impl SecretBytes {
    pub fn from_test(bytes: &[u8]) -> SecretBytes {
        SecretBytes(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = SealingKey::derive(&SecretBytes::from_test(&[7; 32]), "webhooks");
        let sealed = key.seal(b"whsec_abc", "endpoint-1").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"));
        assert_eq!(key.open(&sealed, "endpoint-1").unwrap(), b"whsec_abc");
        assert!(key.open(&sealed, "endpoint-2").is_none());
        let other = SealingKey::derive(&SecretBytes::from_test(&[8; 32]), "webhooks");
        assert!(other.open(&sealed, "endpoint-1").is_none());
        let other_purpose = SealingKey::derive(&SecretBytes::from_test(&[7; 32]), "other");
        assert!(other_purpose.open(&sealed, "endpoint-1").is_none());
        assert!(key.open(&sealed[..5], "endpoint-1").is_none());
    }
}
