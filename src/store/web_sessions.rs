//! Dashboard sessions, looked up by the SHA-256 of the cookie's id.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{parse_ts, ts};
use crate::domain::{EnterpriseId, Role, UserId};

pub struct NewWebSession<'a> {
    pub id_hash: &'a [u8],
    pub user: UserId,
    pub enterprise: EnterpriseId,
    pub csrf_token: &'a str,
    pub token_version: i64,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub fn insert(conn: &Connection, new: &NewWebSession<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO web_sessions (id_hash, user_id, enterprise_account_id, csrf_token,
                                   token_version, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        new.id_hash,
        new.user,
        new.enterprise,
        new.csrf_token,
        new.token_version,
        ts(new.now),
        ts(new.expires_at)
    ])?;
    Ok(())
}

/// A session that is still valid: unexpired, its person active and with the
/// token version it started with.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub user: UserId,
    pub enterprise: EnterpriseId,
    pub role: Role,
    pub name: String,
    pub email: String,
    pub company_name: String,
    /// The enterprise's time zone, for the times a page shows.
    pub time_zone: String,
    pub csrf_token: String,
}

pub fn find_live(
    conn: &Connection,
    id_hash: &[u8],
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<LiveSession>> {
    conn.prepare_cached(
        "SELECT s.user_id, s.enterprise_account_id, u.role, u.name, u.email, s.csrf_token, s.expires_at,
                e.company_name, e.time_zone
           FROM web_sessions s JOIN users u ON u.id = s.user_id
           JOIN enterprise_accounts e ON e.id = s.enterprise_account_id
          WHERE s.id_hash = ?1 AND u.active = 1 AND u.token_version = s.token_version",
    )?
    .query_row([id_hash], |row| {
        let expires: String = row.get(6)?;
        Ok((
            LiveSession {
                user: row.get(0)?,
                enterprise: row.get(1)?,
                role: row.get(2)?,
                name: row.get(3)?,
                email: row.get(4)?,
                company_name: row.get(7)?,
                time_zone: row.get(8)?,
                csrf_token: row.get(5)?,
            },
            parse_ts(&expires),
        ))
    })
    .optional()
    .map(|found| {
        found.and_then(|(session, expires)| expires.is_some_and(|e| e > now).then_some(session))
    })
}

/// Carries a session over a token version change its own person made (a
/// password change keeps the session it was made from).
pub fn keep_across(conn: &Connection, id_hash: &[u8], token_version: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE web_sessions SET token_version = ?2 WHERE id_hash = ?1")?
        .execute(rusqlite::params![id_hash, token_version])?;
    Ok(())
}

pub fn delete(conn: &Connection, id_hash: &[u8]) -> rusqlite::Result<bool> {
    conn.prepare_cached("DELETE FROM web_sessions WHERE id_hash = ?1")?
        .execute([id_hash])
        .map(|n| n > 0)
}

pub fn prune_expired(conn: &Connection, now: DateTime<Utc>) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM web_sessions WHERE expires_at < ?1")?
        .execute([ts(now)])
}
