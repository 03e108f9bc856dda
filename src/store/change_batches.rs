use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use crate::domain::EnterpriseId;

pub fn insert(
    conn: &Connection,
    enterprise: EnterpriseId,
    run_id: &str,
    event_count: usize,
    events_json: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO change_batches (enterprise_account_id, run_id, event_count, events, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        enterprise,
        run_id,
        i64::try_from(event_count).unwrap_or(i64::MAX),
        events_json,
        super::ts(now)
    ])?;
    Ok(())
}

pub struct Batch {
    pub seq: i64,
    pub events_json: String,
}

/// A run's batches in order, from `from_seq` on.
pub fn for_run(
    conn: &Connection,
    enterprise: EnterpriseId,
    run_id: &str,
    from_seq: i64,
    limit: usize,
) -> rusqlite::Result<Vec<Batch>> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, events FROM change_batches
          WHERE run_id = ?1 AND enterprise_account_id = ?2 AND seq >= ?3
          ORDER BY seq LIMIT ?4",
    )?;
    let rows = statement.query_map(
        params![
            run_id,
            enterprise,
            from_seq,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |row| {
            Ok(Batch {
                seq: row.get(0)?,
                events_json: row.get(1)?,
            })
        },
    )?;
    rows.collect()
}

pub fn prune_older_than(conn: &Connection, cutoff: DateTime<Utc>) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM change_batches WHERE created_at < ?1")?
        .execute([super::ts(cutoff)])
}
