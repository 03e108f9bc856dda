//! One-time links stored as token hashes: invitations (a first password) and
//! password resets (a new one). Both tables have the same shape.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{parse_ts, ts};
use crate::domain::{EnterpriseId, UserId};

/// Which links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkTable {
    Invitations,
    PasswordResets,
}

impl LinkTable {
    fn name(self) -> &'static str {
        match self {
            LinkTable::Invitations => "invitations",
            LinkTable::PasswordResets => "password_resets",
        }
    }
}

pub struct NewLink<'a> {
    pub enterprise_account_id: EnterpriseId,
    pub user_id: UserId,
    pub token_hash: &'a [u8],
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Revokes the person's open links of `table`, then records a new one.
pub fn replace(conn: &Connection, table: LinkTable, new: &NewLink<'_>) -> rusqlite::Result<()> {
    let table = table.name();
    conn.prepare_cached(&format!(
        "UPDATE {table} SET revoked_at = ?2 WHERE user_id = ?1 AND used_at IS NULL AND revoked_at IS NULL"
    ))?
    .execute(params![new.user_id, ts(new.created_at)])?;
    conn.prepare_cached(&format!(
        "INSERT INTO {table} (id, enterprise_account_id, user_id, token_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    ))?
    .execute(params![
        uuid::Uuid::now_v7().to_string(),
        new.enterprise_account_id,
        new.user_id,
        new.token_hash,
        ts(new.created_at),
        ts(new.expires_at)
    ])?;
    Ok(())
}

pub struct LinkRow {
    pub id: String,
    pub enterprise_account_id: EnterpriseId,
    pub user_id: UserId,
    pub expires_at: Option<DateTime<Utc>>,
    pub used: bool,
    pub revoked: bool,
}

pub fn find_by_hash(
    conn: &Connection,
    table: LinkTable,
    hash: &[u8],
) -> rusqlite::Result<Option<LinkRow>> {
    conn.prepare_cached(&format!(
        "SELECT id, enterprise_account_id, user_id, expires_at, used_at IS NOT NULL, revoked_at IS NOT NULL
           FROM {} WHERE token_hash = ?1",
        table.name()
    ))?
    .query_row([hash], |row| {
        let expires: String = row.get(3)?;
        Ok(LinkRow {
            id: row.get(0)?,
            enterprise_account_id: row.get(1)?,
            user_id: row.get(2)?,
            expires_at: parse_ts(&expires),
            used: row.get(4)?,
            revoked: row.get(5)?,
        })
    })
    .optional()
}

pub fn mark_used(
    conn: &Connection,
    table: LinkTable,
    id: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "UPDATE {} SET used_at = ?2 WHERE id = ?1",
        table.name()
    ))?
    .execute(params![id, ts(now)])?;
    Ok(())
}
