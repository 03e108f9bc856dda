use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{parse_ts, ts};
use crate::domain::UserId;

pub struct NewRefreshToken<'a> {
    pub id: &'a str,
    pub family_id: &'a str,
    pub user_id: UserId,
    pub token_hash: &'a [u8],
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The person's token_version when issued.
    pub token_version: i64,
}

pub fn insert(conn: &Connection, new: &NewRefreshToken<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at,
                                     token_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        new.id,
        new.family_id,
        new.user_id,
        new.token_hash,
        ts(new.created_at),
        ts(new.expires_at),
        new.token_version
    ])?;
    Ok(())
}

pub struct RefreshTokenRow {
    pub id: String,
    pub family_id: String,
    pub user_id: UserId,
    pub expires_at: Option<DateTime<Utc>>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// None for tokens issued before versions were kept: refused.
    pub token_version: Option<i64>,
}

pub fn find_by_hash(conn: &Connection, hash: &[u8]) -> rusqlite::Result<Option<RefreshTokenRow>> {
    conn.prepare_cached(
        "SELECT id, family_id, user_id, expires_at, used_at, revoked_at, token_version
           FROM refresh_tokens WHERE token_hash = ?1",
    )?
    .query_row([hash], |row| {
        let expires: String = row.get(3)?;
        let used: Option<String> = row.get(4)?;
        let revoked: Option<String> = row.get(5)?;
        Ok(RefreshTokenRow {
            id: row.get(0)?,
            family_id: row.get(1)?,
            user_id: row.get(2)?,
            expires_at: parse_ts(&expires),
            used_at: used.as_deref().and_then(parse_ts),
            revoked_at: revoked.as_deref().and_then(parse_ts),
            token_version: row.get(6)?,
        })
    })
    .optional()
}

/// Whether a family (one sign-in and its refreshes) was ended: logged out,
/// or revoked for a reused token.
pub fn family_revoked(conn: &Connection, family_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = ?1 AND revoked_at IS NOT NULL)",
    )?
    .query_row([family_id], |row| row.get(0))
}

/// Ends every refresh family of a person.
pub fn revoke_all_of(
    conn: &Connection,
    user: UserId,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![user, ts(now)])
}

pub fn mark_used(conn: &Connection, id: &str, now: DateTime<Utc>) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE refresh_tokens SET used_at = ?2 WHERE id = ?1")?
        .execute(params![id, ts(now)])?;
    Ok(())
}

/// Revokes every token of a family; returns how many were still live.
pub fn revoke_family(
    conn: &Connection,
    family_id: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![family_id, ts(now)])
}
