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

#[cfg(test)]
impl SecretBytes {
    pub fn from_test(bytes: &[u8]) -> SecretBytes {
        SecretBytes(bytes.to_vec())
    }
}
