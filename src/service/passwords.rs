//! argon2id password hashing behind a small semaphore: a login storm queues
//! instead of allocating 19 MiB per concurrent attempt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// Allocations above glibc's largest mmap threshold (32 MiB on 64-bit) are always
/// served by mmap and unmapped on free. Reserving at least this much for the work
/// area means the 19 MiB argon2 needs goes back to the system after each hash;
/// through argon2's own allocation, glibc kept it in its arenas (its threshold
/// grows past 19 MiB after the first free), tripling the idle footprint. Only the
/// pages argon2 touches become resident.
const WORK_AREA_RESERVE_BYTES: usize = 40 << 20;

/// Runs argon2 with `params` into `out`, in a work area of our own.
fn argon2_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks_needed = params.block_count();
    let reserve = (WORK_AREA_RESERVE_BYTES / std::mem::size_of::<Block>()).max(blocks_needed);
    let mut blocks: Vec<Block> = Vec::with_capacity(reserve);
    blocks.resize(blocks_needed, Block::default());
    argon2.hash_password_into_with_memory(password, salt, out, &mut blocks)
}

fn hash_blocking(password: &[u8]) -> Result<String, AppError> {
    let salt = random_salt()?;
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_bytes)
        .map_err(AppError::internal)?;
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&argon2(), &params, password, salt_raw, &mut out).map_err(AppError::internal)?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(&params)
            .map_err(AppError::internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(AppError::internal)?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a PHC string; the final comparison is constant-time.
fn verify_blocking(password: &[u8], stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let hasher = Argon2::new(algorithm, version, params.clone());
    if argon2_into(&hasher, &params, password, salt_raw, &mut out).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
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
            .run(move || verify_blocking(password.as_bytes(), &hash))
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

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    #[test]
    fn our_hashes_are_standard_phc_strings() {
        let ours = hash_blocking(b"correct horse battery staple").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2()
            .verify_password(b"correct horse battery staple", &parsed)
            .is_ok());
        assert!(argon2()
            .verify_password(b"correct horse battery stapler", &parsed)
            .is_err());
    }

    #[test]
    fn standard_hashes_verify_here() {
        let salt = random_salt().unwrap();
        let theirs = argon2()
            .hash_password(b"a password from elsewhere", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking(b"a password from elsewhere", &theirs));
        assert!(!verify_blocking(b"a password from elsewherE", &theirs));
        assert!(!verify_blocking(b"anything", "not a phc string"));
    }

    #[test]
    fn other_parameters_are_honoured_and_flagged_for_rehash() {
        let params = Params::new(8192, 3, 1, None).unwrap();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = random_salt().unwrap();
        let stored = old
            .hash_password(b"an older account password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking(b"an older account password", &stored));
        assert!(PasswordHasher::needs_rehash(&stored));
        assert!(!PasswordHasher::needs_rehash(&hash_blocking(b"x").unwrap()));
    }
}
