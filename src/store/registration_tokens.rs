use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::ts;
use crate::domain::EnterpriseId;

pub fn insert(
    conn: &Connection,
    token_hash: &[u8],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO registration_tokens (token_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![token_hash, ts(now), ts(expires_at)])?;
    Ok(())
}

/// Spends a live token for `enterprise`; whether there was one to spend.
pub fn spend(
    conn: &Connection,
    token_hash: &[u8],
    enterprise: EnterpriseId,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let spent = conn
        .prepare_cached(
            "UPDATE registration_tokens SET used_at = ?2, used_by_enterprise = ?3
              WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
        )?
        .execute(params![token_hash, ts(now), enterprise])?;
    Ok(spent == 1)
}
