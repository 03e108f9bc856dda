//! argon2id password hashing behind a small semaphore: a login storm queues
//! instead of allocating 19 MiB per concurrent attempt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Semaphore;

use crate::AppError;

pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so both cases take as long.
    dummy_hash: String,
    hashes_run: Arc<AtomicU64>,
}

fn argon2() -> Argon2<'static> {
    // OWASP minimum for argon2id: m = 19 MiB, t = 2, p = 1 (argon2's defaults).
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

fn random_salt() -> Result<SaltString, AppError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AppError::internal("random generator failed"))?;
    SaltString::encode_b64(&bytes).map_err(AppError::internal)
}

fn hash_blocking(password: &[u8]) -> Result<String, AppError> {
    let salt = random_salt()?;
    argon2()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> PasswordHasher {
        let dummy_hash = hash_blocking(b"dummy password that matches no account")
            .unwrap_or_else(|_| String::new());
        PasswordHasher {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash,
            hashes_run: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many hashes or verifications have run; tests use it to prove that
    /// throttled requests never reached argon2.
    pub fn hashes_run(&self) -> u64 {
        self.hashes_run.load(Ordering::SeqCst)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(AppError::internal)?;
        self.hashes_run.fetch_add(1, Ordering::SeqCst);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(AppError::internal)
    }

    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || hash_blocking(password.as_bytes())).await?
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there is
    /// no stored hash (unknown user, invitation not accepted) so timing matches.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, AppError> {
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .run(move || match PasswordHash::new(&hash) {
                Ok(parsed) => argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => false,
            })
            .await?;
        Ok(real && matches)
    }

    /// True when `stored` was made with other parameters than today's.
    pub fn needs_rehash(stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        let current = Params::default();
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || params.m_cost() != current.m_cost()
            || params.t_cost() != current.t_cost()
            || params.p_cost() != current.p_cost()
    }
}
