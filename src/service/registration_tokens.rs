//! One-time registration tokens: the operator's way to let one more
//! enterprise register while registration is closed.

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use crate::store::{self, Db};
use crate::AppError;

/// The prefix that says what the token is, where it is pasted.
const PREFIX: &str = "reg_";

pub fn hash(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

/// A new token valid `valid_hours`, stored as its hash; the clear value is
/// returned once, to be handed to whoever registers.
pub async fn issue(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
    valid_hours: u32,
) -> Result<String, AppError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AppError::internal("random generator failed"))?;
    let token = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hashed = hash(&token);
    let expires = now + chrono::Duration::hours(i64::from(valid_hours.max(1)));
    db.write(move |txn| {
        store::registration_tokens::insert(txn, &hashed, now, expires).map_err(AppError::from)
    })
    .await?;
    Ok(token)
}
