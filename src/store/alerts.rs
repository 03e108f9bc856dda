//! Alerts raised: one row per incident, whether or not its emails went out.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::ts;
use crate::domain::EnterpriseId;

pub struct NewAlert<'a> {
    pub id: &'a str,
    pub enterprise: EnterpriseId,
    pub kind: &'a str,
    pub subject_id: Option<&'a str>,
    pub recipients: usize,
    pub suppressed: bool,
    pub now: DateTime<Utc>,
}

pub fn insert(conn: &Connection, alert: &NewAlert<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO alerts (id, enterprise_account_id, kind, subject_id, recipients, suppressed, raised_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        alert.id,
        alert.enterprise,
        alert.kind,
        alert.subject_id,
        i64::try_from(alert.recipients).unwrap_or(i64::MAX),
        alert.suppressed,
        ts(alert.now)
    ])?;
    Ok(())
}

/// Alerts emailed (not suppressed) since `since`: what the hourly cap counts.
pub fn emailed_since(
    conn: &Connection,
    enterprise: EnterpriseId,
    since: DateTime<Utc>,
) -> rusqlite::Result<u32> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM alerts
          WHERE enterprise_account_id = ?1 AND raised_at >= ?2 AND suppressed = 0",
    )?
    .query_row(params![enterprise, ts(since)], |row| row.get(0))
}

/// Whether an alert of `kind` about `subject_id` was raised already.
pub fn exists(
    conn: &Connection,
    enterprise: EnterpriseId,
    kind: &str,
    subject_id: &str,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM alerts
          WHERE enterprise_account_id = ?1 AND kind = ?2 AND subject_id = ?3)",
    )?
    .query_row(params![enterprise, kind, subject_id], |row| row.get(0))
}
