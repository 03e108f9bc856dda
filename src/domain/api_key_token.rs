//! The API key format: `ent_` + 8-character public key id + 32-character secret +
//! 6-character checksum, all base62 (50 characters). The checksum is the CRC32 of
//! everything before it, so a mistyped or truncated key is refused before any
//! database work, and secret scanners can recognise real keys offline.

use std::fmt;

pub const PREFIX: &str = "ent_";
pub const KEY_ID_LEN: usize = 8;
pub const SECRET_LEN: usize = 32;
pub const CHECKSUM_LEN: usize = 6;
pub const TOKEN_LEN: usize = PREFIX.len() + KEY_ID_LEN + SECRET_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A full API key. Its `Debug` shows only the public key id.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyToken(String);

impl fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyToken({}…)", self.key_id())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Prefix,
    Length,
    Alphabet,
    Checksum,
}

fn checksum(body: &str) -> String {
    let mut value = u64::from(crc32fast::hash(body.as_bytes()));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

impl ApiKeyToken {
    /// Builds a key from random bytes (the caller supplies them from the OS CSPRNG).
    /// Each character takes one byte below 248 (= 4 × 62), so base62 digits stay
    /// uniform; bytes at or above 248 are skipped. Returns `None` if `random` runs out.
    pub fn from_random(random: &[u8]) -> Option<ApiKeyToken> {
        let mut chars = random
            .iter()
            .filter(|&&b| b < 248)
            .map(|&b| char::from(BASE62[usize::from(b % 62)]));
        let mut body = String::with_capacity(TOKEN_LEN);
        body.push_str(PREFIX);
        for _ in 0..KEY_ID_LEN + SECRET_LEN {
            body.push(chars.next()?);
        }
        let sum = checksum(&body);
        body.push_str(&sum);
        Some(ApiKeyToken(body))
    }

    /// Checks shape and checksum; no I/O.
    pub fn parse(raw: &str) -> Result<ApiKeyToken, TokenError> {
        let rest = raw.strip_prefix(PREFIX).ok_or(TokenError::Prefix)?;
        if raw.len() != TOKEN_LEN {
            return Err(TokenError::Length);
        }
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TokenError::Alphabet);
        }
        let (body, sum) = raw.split_at(TOKEN_LEN - CHECKSUM_LEN);
        if checksum(body) != sum {
            return Err(TokenError::Checksum);
        }
        Ok(ApiKeyToken(raw.to_string()))
    }

    /// The public part, stored in clear and safe to log.
    pub fn key_id(&self) -> &str {
        &self.0[PREFIX.len()..PREFIX.len() + KEY_ID_LEN]
    }

    /// The full secret key; to be shown once, hashed, and never logged.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ApiKeyToken {
        let random: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        ApiKeyToken::from_random(&random).unwrap()
    }

    #[test]
    fn generated_keys_parse() {
        let key = sample();
        assert_eq!(key.expose().len(), TOKEN_LEN);
        assert!(key.expose().starts_with("ent_"));
        assert_eq!(ApiKeyToken::parse(key.expose()), Ok(key.clone()));
        assert_eq!(key.key_id().len(), KEY_ID_LEN);
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = sample();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.expose()[12..40]), "{shown}");
    }

    #[test]
    fn malformed_keys_are_refused() {
        let key = sample();
        assert_eq!(ApiKeyToken::parse("esk_live_x"), Err(TokenError::Prefix));
        assert_eq!(ApiKeyToken::parse("ent_abc"), Err(TokenError::Length));
        let mut bad = key.expose().to_string();
        bad.replace_range(10..11, "-");
        assert_eq!(ApiKeyToken::parse(&bad), Err(TokenError::Alphabet));
    }

    proptest! {
        #[test]
        fn any_random_bytes_give_a_valid_key(random in proptest::collection::vec(any::<u8>(), 80..160)) {
            if let Some(key) = ApiKeyToken::from_random(&random) {
                prop_assert_eq!(ApiKeyToken::parse(key.expose()), Ok(key));
            }
        }

        #[test]
        fn any_single_character_change_is_caught(position in 4usize..TOKEN_LEN, replacement in 0usize..62) {
            let key = sample();
            let mut bytes = key.expose().as_bytes().to_vec();
            let new = BASE62[replacement];
            prop_assume!(bytes[position] != new);
            bytes[position] = new;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(ApiKeyToken::parse(&changed).is_err());
        }

        #[test]
        fn parse_never_panics(raw in ".{0,80}") {
            let _ = ApiKeyToken::parse(&raw);
        }
    }
}
