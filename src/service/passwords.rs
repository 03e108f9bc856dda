//! argon2id password hashing behind a small semaphore: a login storm queues
//! instead of allocating 19 MiB per concurrent attempt.
//!
//! An email may open accounts in several enterprises, and sign-in tells them
//! apart by their passwords. So that checking one email costs one argon2 run
//! however many enterprises know it (the count must not show in the timing),
//! a password's salt is derived from the email it was set for, with a key of
//! the appliance: every account of one email shares the salt and one hash of
//! the typed password is compared with all of them. Salts stay unique per
//! person and appliance, which is what a salt is for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use ring::hmac;
use tokio::sync::Semaphore;

use super::secrets::SecretBytes;
use crate::AppError;

pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Derives a password's salt from the email it belongs to.
    salt_key: Arc<hmac::Key>,
    hashes_run: Arc<AtomicU64>,
}

fn argon2() -> Argon2<'static> {
    // OWASP minimum for argon2id: m = 19 MiB, t = 2, p = 1 (argon2's defaults).
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

const SALT_LEN: usize = 16;

/// The salt of every password set for `email` on this appliance.
fn email_salt(key: &hmac::Key, email: &str) -> [u8; SALT_LEN] {
    let tag = hmac::sign(key, email.as_bytes());
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&tag.as_ref()[..SALT_LEN]);
    salt
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

fn hash_blocking(password: &[u8], salt_raw: &[u8]) -> Result<String, AppError> {
    let salt = SaltString::encode_b64(salt_raw).map_err(AppError::internal)?;
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

/// What argon2 needs to recompute a stored hash: two stored hashes with the
/// same recipe are checked with one run.
#[derive(PartialEq, Eq, Clone)]
struct Recipe {
    algorithm: Algorithm,
    version: Version,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: Vec<u8>,
    output_len: usize,
}

impl Recipe {
    fn parse(stored: &str) -> Option<(Recipe, Output)> {
        let parsed = PasswordHash::new(stored).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::V0x13,
        };
        let mut salt_bytes = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt_bytes).ok()?.to_vec();
        Some((
            Recipe {
                algorithm,
                version,
                m_cost: params.m_cost(),
                t_cost: params.t_cost(),
                p_cost: params.p_cost(),
                salt,
                output_len: expected.len(),
            },
            expected,
        ))
    }

    /// Today's parameters with `salt`.
    fn current(salt: &[u8]) -> Recipe {
        let params = Params::default();
        Recipe {
            algorithm: Algorithm::Argon2id,
            version: Version::V0x13,
            m_cost: params.m_cost(),
            t_cost: params.t_cost(),
            p_cost: params.p_cost(),
            salt: salt.to_vec(),
            output_len: Params::DEFAULT_OUTPUT_LEN,
        }
    }

    fn run(&self, password: &[u8]) -> Option<Vec<u8>> {
        let params =
            Params::new(self.m_cost, self.t_cost, self.p_cost, Some(self.output_len)).ok()?;
        let hasher = Argon2::new(self.algorithm, self.version, params.clone());
        let mut out = vec![0u8; self.output_len];
        argon2_into(&hasher, &params, password, &self.salt, &mut out).ok()?;
        Some(out)
    }
}

/// Checks `password` against each of `stored` (`None`: matches nothing),
/// running argon2 once per distinct recipe, and once with `fallback` when
/// there is none, so an email with no account costs what one with an
/// account costs. Comparisons are constant-time. Also answers how many runs
/// it took.
fn verify_all_blocking(
    password: &[u8],
    stored: &[Option<String>],
    fallback: &Recipe,
) -> (Vec<bool>, usize) {
    let parsed: Vec<Option<(Recipe, Output)>> = stored
        .iter()
        .map(|s| s.as_deref().and_then(Recipe::parse))
        .collect();
    let mut computed: Vec<(&Recipe, Option<Vec<u8>>)> = Vec::new();
    for (recipe, _) in parsed.iter().flatten() {
        if !computed.iter().any(|(done, _)| *done == recipe) {
            computed.push((recipe, recipe.run(password)));
        }
    }
    let runs = computed.len().max(1);
    if computed.is_empty() {
        let _ = fallback.run(password);
    }
    let matches = parsed
        .iter()
        .map(|entry| {
            let Some((recipe, expected)) = entry else {
                return false;
            };
            computed
                .iter()
                .find(|(done, _)| *done == recipe)
                .and_then(|(_, out)| out.as_deref())
                // Output's equality is constant-time.
                .is_some_and(|out| Output::new(out).is_ok_and(|out| out == *expected))
        })
        .collect();
    (matches, runs)
}

impl PasswordHasher {
    /// `pepper`: the appliance's secret the salts are derived with.
    pub fn new(max_concurrent: usize, pepper: &SecretBytes) -> PasswordHasher {
        use ring::hkdf;
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"enterprise-sync password salts")
            .extract(pepper.expose());
        let salt_key = match prk.expand(&[b"password salts"], hmac::HMAC_SHA256) {
            Ok(okm) => hmac::Key::from(okm),
            // expand fails only for outputs over 255 hash lengths; 32 bytes is not.
            Err(_) => hmac::Key::new(hmac::HMAC_SHA256, pepper.expose()),
        };
        PasswordHasher {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            salt_key: Arc::new(salt_key),
            hashes_run: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many argon2 runs hashes and verifications took; tests use it to
    /// prove that throttled requests never reached argon2, and that checking
    /// an email costs one run however many enterprises know it.
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
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(AppError::internal)
    }

    /// Hashes `password` for the account of `email` (normalised).
    pub async fn hash(&self, password: String, email: &str) -> Result<String, AppError> {
        let salt = email_salt(&self.salt_key, email);
        self.hashes_run.fetch_add(1, Ordering::SeqCst);
        self.run(move || hash_blocking(password.as_bytes(), &salt))
            .await?
    }

    /// Checks `password` against the stored hashes of the accounts `email`
    /// names (`None`: an account that cannot sign in). The work is one
    /// argon2 run whatever the number of accounts, as long as their hashes
    /// were made for this email (see [`Self::needs_rehash`]).
    pub async fn verify_all(
        &self,
        password: String,
        email: &str,
        stored: Vec<Option<String>>,
    ) -> Result<Vec<bool>, AppError> {
        let fallback = Recipe::current(&email_salt(&self.salt_key, email));
        let (matches, runs) = self
            .run(move || verify_all_blocking(password.as_bytes(), &stored, &fallback))
            .await?;
        self.hashes_run.fetch_add(runs as u64, Ordering::SeqCst);
        Ok(matches)
    }

    /// True when `stored` was made with other parameters than today's, or
    /// with another salt than `email`'s (set before salts came from emails,
    /// or before the email changed): a hash to replace at the next sign-in.
    pub fn needs_rehash(&self, stored: &str, email: &str) -> bool {
        let Some((recipe, _)) = Recipe::parse(stored) else {
            return true;
        };
        recipe != Recipe::current(&email_salt(&self.salt_key, email))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    fn key() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, b"a test appliance's pepper")
    }

    fn ours(password: &[u8], email: &str) -> String {
        hash_blocking(password, &email_salt(&key(), email)).unwrap()
    }

    fn fallback(email: &str) -> Recipe {
        Recipe::current(&email_salt(&key(), email))
    }

    #[test]
    fn our_hashes_are_standard_phc_strings() {
        let ours = ours(b"correct horse battery staple", "ana@example.com");
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
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs = argon2()
            .hash_password(b"a password from elsewhere", &salt)
            .unwrap()
            .to_string();
        let stored = [Some(theirs), Some("not a phc string".into()), None];
        let check = |password: &[u8]| verify_all_blocking(password, &stored, &fallback("x")).0;
        assert_eq!(check(b"a password from elsewhere"), [true, false, false]);
        assert_eq!(check(b"a password from elsewherE"), [false, false, false]);
    }

    #[test]
    fn one_run_checks_every_account_of_an_email() {
        let email = "sam@example.com";
        let in_a = ours(b"password of A", email);
        let in_b = ours(b"password of B", email);
        let stored = [Some(in_a), None, Some(in_b)];
        let (matches, runs) = verify_all_blocking(b"password of B", &stored, &fallback(email));
        assert_eq!((matches, runs), (vec![false, false, true], 1));
        // No account, or none that can sign in: one run all the same.
        assert_eq!(
            verify_all_blocking(b"password of B", &[], &fallback(email)),
            (vec![], 1)
        );
        assert_eq!(
            verify_all_blocking(b"password of B", &[None, None], &fallback(email)),
            (vec![false, false], 1)
        );
        // Salts differ between emails and between appliances.
        assert_ne!(
            email_salt(&key(), email),
            email_salt(&key(), "other@example.com")
        );
        let other_appliance = hmac::Key::new(hmac::HMAC_SHA256, b"another pepper");
        assert_ne!(
            email_salt(&key(), email),
            email_salt(&other_appliance, email)
        );
    }

    #[test]
    fn other_parameters_and_salts_are_honoured_and_flagged_for_rehash() {
        let hasher = PasswordHasher {
            permits: Arc::new(Semaphore::new(1)),
            salt_key: Arc::new(key()),
            hashes_run: Arc::new(AtomicU64::new(0)),
        };
        let params = Params::new(8192, 3, 1, None).unwrap();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::encode_b64(b"a random old slt").unwrap();
        let stored = old
            .hash_password(b"an older account password", &salt)
            .unwrap()
            .to_string();
        let email = "old@example.com";
        let check = |password: &[u8]| {
            verify_all_blocking(password, &[Some(stored.clone())], &fallback(email)).0
        };
        assert_eq!(check(b"an older account password"), [true]);
        assert!(hasher.needs_rehash(&stored, email));
        // Today's parameters with a salt of before: replaced too.
        let random_salted = argon2().hash_password(b"x", &salt).unwrap().to_string();
        assert!(hasher.needs_rehash(&random_salted, email));
        assert!(!hasher.needs_rehash(&ours(b"x", email), email));
        // The email changed since the password was set.
        assert!(hasher.needs_rehash(&ours(b"x", email), "new@example.com"));
    }
}
