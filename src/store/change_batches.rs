use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};

use crate::domain::EnterpriseId;

/// How many events of each verb a batch holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerbCounts {
    pub created: usize,
    pub updated: usize,
    pub deactivated: usize,
}

pub struct NewBatch<'a> {
    pub enterprise: EnterpriseId,
    pub run_id: &'a str,
    pub first_index: usize,
    pub event_count: usize,
    pub counts: VerbCounts,
    pub events_json: &'a str,
    pub now: DateTime<Utc>,
}

fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes the batch and returns its sequence number.
pub fn insert(conn: &Connection, batch: &NewBatch<'_>) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO change_batches (enterprise_account_id, run_id, first_index, event_count,
                                     created_count, updated_count, deactivated_count, events, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        batch.enterprise,
        batch.run_id,
        int(batch.first_index),
        int(batch.event_count),
        int(batch.counts.created),
        int(batch.counts.updated),
        int(batch.counts.deactivated),
        batch.events_json,
        super::ts(batch.now)
    ])?;
    Ok(conn.last_insert_rowid())
}

/// One batch by its sequence number: its run, first index and events.
pub fn by_seq(conn: &Connection, seq: i64) -> rusqlite::Result<Option<(String, Batch)>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT run_id, first_index, events FROM change_batches WHERE seq = ?1")?
        .query_row([seq], |row| {
            let first: i64 = row.get(1)?;
            Ok((
                row.get(0)?,
                Batch {
                    first_index: usize::try_from(first).unwrap_or(0),
                    events_json: row.get(2)?,
                },
            ))
        })
        .optional()
}

pub struct Batch {
    pub first_index: usize,
    pub events_json: String,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Batch> {
    let first: i64 = row.get(0)?;
    Ok(Batch {
        first_index: usize::try_from(first).unwrap_or(0),
        events_json: row.get(1)?,
    })
}

/// A run's batches in order, from the one holding event `from_index` on.
pub fn for_run(
    conn: &Connection,
    enterprise: EnterpriseId,
    run_id: &str,
    from_index: usize,
    limit: usize,
) -> rusqlite::Result<Vec<Batch>> {
    let mut statement = conn.prepare_cached(
        "SELECT first_index, events FROM change_batches
          WHERE run_id = ?1 AND enterprise_account_id = ?2 AND first_index + event_count > ?3
          ORDER BY first_index LIMIT ?4",
    )?;
    let rows = statement.query_map(
        params![run_id, enterprise, int(from_index), int(limit)],
        from_row,
    )?;
    rows.collect()
}

/// Which verb a reader wants; `None` takes every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerbFilter {
    Created,
    Updated,
    Deactivated,
}

/// A run's batches backwards, those starting before event `below_index`, skipping
/// batches without the wanted verb.
pub fn for_run_backwards(
    conn: &Connection,
    enterprise: EnterpriseId,
    run_id: &str,
    below_index: usize,
    verb: Option<VerbFilter>,
    limit: usize,
) -> rusqlite::Result<Vec<Batch>> {
    let has_verb = match verb {
        None => "1",
        Some(VerbFilter::Created) => "created_count > 0",
        Some(VerbFilter::Updated) => "updated_count > 0",
        Some(VerbFilter::Deactivated) => "deactivated_count > 0",
    };
    let mut statement = conn.prepare_cached(&format!(
        "SELECT first_index, events FROM change_batches
          WHERE run_id = ?1 AND enterprise_account_id = ?2 AND first_index < ?3 AND {has_verb}
          ORDER BY first_index DESC LIMIT ?4"
    ))?;
    let rows = statement.query_map(
        params![run_id, enterprise, int(below_index), int(limit)],
        from_row,
    )?;
    rows.collect()
}

pub fn prune_older_than(conn: &Connection, cutoff: DateTime<Utc>) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM change_batches WHERE created_at < ?1")?
        .execute([super::ts(cutoff)])
}
