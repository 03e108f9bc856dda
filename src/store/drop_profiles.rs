//! Drop-directory profiles set through the API, one per enterprise, as JSON.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{parse_ts, ts};
use crate::domain::EnterpriseId;

pub struct StoredProfile {
    pub profile: String,
    pub updated_by: String,
    pub updated_at: Option<DateTime<Utc>>,
}

pub fn get(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Option<StoredProfile>> {
    conn.prepare_cached(
        "SELECT profile, updated_by, updated_at FROM drop_profiles WHERE enterprise_account_id = ?1",
    )?
    .query_row([enterprise], |row| {
        let at: String = row.get(2)?;
        Ok(StoredProfile {
            profile: row.get(0)?,
            updated_by: row.get(1)?,
            updated_at: parse_ts(&at),
        })
    })
    .optional()
}

pub fn put(
    conn: &Connection,
    enterprise: EnterpriseId,
    profile: &str,
    updated_by: &str,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO drop_profiles (enterprise_account_id, profile, updated_by, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (enterprise_account_id) DO UPDATE
            SET profile = excluded.profile, updated_by = excluded.updated_by,
                updated_at = excluded.updated_at",
    )?
    .execute(params![enterprise, profile, updated_by, ts(at)])?;
    Ok(())
}

/// Back to the config file's profile (or none).
pub fn delete(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM drop_profiles WHERE enterprise_account_id = ?1")?
        .execute([enterprise])?
        > 0)
}
