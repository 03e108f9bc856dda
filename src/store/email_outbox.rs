//! The email outbox: what is to be sent, its attempts and its end.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::{parse_ts, ts};
use crate::domain::{EnterpriseId, UserId};

pub struct NewEmail<'a> {
    pub enterprise: Option<EnterpriseId>,
    /// `invitation`, `alert` or `test`.
    pub kind: &'a str,
    pub recipient: &'a str,
    pub user_id: Option<UserId>,
    pub payload: &'a str,
    pub now: DateTime<Utc>,
}

pub fn insert(conn: &Connection, new: &NewEmail<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO email_outbox (id, enterprise_account_id, kind, recipient, user_id, payload,
                                   created_at, state, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?7)",
    )?
    .execute(params![
        uuid::Uuid::now_v7().to_string(),
        new.enterprise,
        new.kind,
        new.recipient,
        new.user_id,
        new.payload,
        ts(new.now)
    ])?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct DueEmail {
    pub seq: i64,
    pub id: String,
    pub enterprise: Option<EnterpriseId>,
    pub kind: String,
    pub recipient: String,
    pub user_id: Option<UserId>,
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
}

pub fn due(conn: &Connection, now: DateTime<Utc>, limit: usize) -> rusqlite::Result<Vec<DueEmail>> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, id, enterprise_account_id, kind, recipient, user_id, payload, created_at, attempts
           FROM email_outbox WHERE state = 'pending' AND next_attempt_at <= ?1
          ORDER BY next_attempt_at, seq LIMIT ?2",
    )?;
    let rows = statement.query_map(
        params![ts(now), i64::try_from(limit).unwrap_or(i64::MAX)],
        |row| {
            let created: String = row.get(7)?;
            Ok(DueEmail {
                seq: row.get(0)?,
                id: row.get(1)?,
                enterprise: row.get(2)?,
                kind: row.get(3)?,
                recipient: row.get(4)?,
                user_id: row.get(5)?,
                payload: row.get(6)?,
                created_at: parse_ts(&created).unwrap_or_default(),
                attempts: row.get(8)?,
            })
        },
    )?;
    rows.collect()
}

/// Records an attempt: finished in `state` (`sent`, `failed`, `cancelled`),
/// or pending again until `next_attempt_at`.
pub fn record_attempt(
    conn: &Connection,
    seq: i64,
    attempts: u32,
    state: Option<&str>,
    next_attempt_at: Option<DateTime<Utc>>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE email_outbox
            SET attempts = ?2, state = COALESCE(?3, 'pending'), next_attempt_at = ?4,
                last_error = ?5, finished_at = CASE WHEN ?3 IS NULL THEN NULL ELSE ?6 END
          WHERE seq = ?1",
    )?
    .execute(params![
        seq,
        attempts,
        state,
        next_attempt_at.map(ts),
        error,
        ts(now)
    ])?;
    Ok(())
}

/// Emails of an enterprise by state, for its status.
pub fn counts(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<[i64; 3]> {
    conn.prepare_cached(
        "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'sent'), 0),
                COALESCE(SUM(state = 'failed'), 0)
           FROM email_outbox WHERE enterprise_account_id = ?1",
    )?
    .query_row([enterprise], |row| {
        Ok([row.get(0)?, row.get(1)?, row.get(2)?])
    })
}

/// Deletes emails that ended before `cutoff`.
pub fn prune_finished_before(conn: &Connection, cutoff: DateTime<Utc>) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM email_outbox WHERE state <> 'pending' AND finished_at < ?1")?
        .execute([ts(cutoff)])
}
