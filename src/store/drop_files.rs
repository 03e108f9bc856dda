use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{parse_ts, ts};
use crate::domain::{EnterpriseId, FileState};

#[derive(utoipa::ToSchema, Debug, Clone, Serialize)]
pub struct DropFile {
    pub id: String,
    #[serde(skip)]
    pub enterprise_account_id: EnterpriseId,
    #[serde(rename = "name")]
    pub display_name: String,
    #[serde(skip)]
    pub stored_name: String,
    pub kind: Option<String>,
    pub size_bytes: i64,
    pub sha256: Option<String>,
    pub encoding: Option<String>,
    pub state: FileState,
    pub reason: Option<String>,
    pub sync_log_id: Option<String>,
    pub row_count: Option<i64>,
    pub full_export: bool,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub received_at: String,
    pub finished_at: Option<String>,
    /// The file's modification time when it was claimed.
    pub file_modified_at: Option<String>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<DropFile> {
    Ok(DropFile {
        id: row.get("id")?,
        enterprise_account_id: row.get("enterprise_account_id")?,
        display_name: row.get("display_name")?,
        stored_name: row.get("stored_name")?,
        kind: row.get("kind")?,
        size_bytes: row.get("size_bytes")?,
        sha256: row.get("sha256")?,
        encoding: row.get("encoding")?,
        state: row.get("state")?,
        reason: row.get("reason")?,
        sync_log_id: row.get("sync_log_id")?,
        row_count: row.get("row_count")?,
        full_export: row.get("full_export")?,
        approved_by: row.get("approved_by")?,
        approved_at: row.get("approved_at")?,
        received_at: row.get("received_at")?,
        finished_at: row.get("finished_at")?,
        file_modified_at: row.get("file_modified_at")?,
    })
}

pub struct NewDropFile<'a> {
    pub id: &'a str,
    pub enterprise: EnterpriseId,
    pub original_name: &'a [u8],
    pub display_name: &'a str,
    pub stored_name: &'a str,
    pub size_bytes: u64,
    pub modified_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
}

pub fn insert_processing(conn: &Connection, file: &NewDropFile<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO drop_files (id, enterprise_account_id, original_name, display_name, stored_name,
                                 size_bytes, state, received_at, file_modified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'processing', ?7, ?8)",
    )?
    .execute(params![
        file.id,
        file.enterprise,
        file.original_name,
        file.display_name,
        file.stored_name,
        i64::try_from(file.size_bytes).unwrap_or(i64::MAX),
        ts(file.received_at),
        file.modified_at.map(ts)
    ])?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<DropFile>> {
    conn.prepare_cached("SELECT * FROM drop_files WHERE id = ?1")?
        .query_row([id], from_row)
        .optional()
}

pub fn get_for(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: &str,
) -> rusqlite::Result<Option<DropFile>> {
    conn.prepare_cached("SELECT * FROM drop_files WHERE id = ?1 AND enterprise_account_id = ?2")?
        .query_row(params![id, enterprise], from_row)
        .optional()
}

/// Whether content with this hash was already applied for the enterprise.
pub fn applied_with_hash(
    conn: &Connection,
    enterprise: EnterpriseId,
    sha256: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT id FROM drop_files WHERE enterprise_account_id = ?1 AND sha256 = ?2 AND state = 'applied'",
    )?
    .query_row(params![enterprise, sha256], |row| row.get(0))
    .optional()
}

pub struct Outcome<'a> {
    pub state: FileState,
    pub kind: Option<&'a str>,
    pub sha256: Option<&'a str>,
    pub encoding: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub sync_log_id: Option<&'a str>,
    pub stored_name: &'a str,
    pub row_count: Option<usize>,
    pub full_export: bool,
    pub finished_at: DateTime<Utc>,
}

pub fn finish(conn: &Connection, id: &str, outcome: &Outcome<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE drop_files SET state = ?2, kind = ?3, sha256 = ?4, encoding = ?5, reason = ?6,
                               sync_log_id = ?7, stored_name = ?8, finished_at = ?9,
                               row_count = ?10, full_export = ?11
          WHERE id = ?1",
    )?
    .execute(params![
        id,
        outcome.state,
        outcome.kind,
        outcome.sha256,
        outcome.encoding,
        outcome.reason,
        outcome.sync_log_id,
        outcome.stored_name,
        ts(outcome.finished_at),
        outcome
            .row_count
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        outcome.full_export
    ])?;
    Ok(())
}

/// Says why a file in `processing` waits (a full disk, a failing database):
/// it is tried again without anyone's help.
pub fn note_waiting(conn: &Connection, id: &str, reason: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE drop_files SET reason = ?2 WHERE id = ?1 AND state = 'processing'",
    )?
    .execute(params![id, reason])?;
    Ok(())
}

/// Moves a file's row back to `processing` (a retry).
pub fn requeue(conn: &Connection, id: &str, stored_name: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE drop_files SET state = 'processing', reason = NULL, finished_at = NULL, stored_name = ?2
          WHERE id = ?1",
    )?
    .execute(params![id, stored_name])?;
    Ok(())
}

/// Data rows of the enterprise's last applied full export.
pub fn last_full_export_rows(
    conn: &Connection,
    enterprise: EnterpriseId,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT row_count FROM drop_files
          WHERE enterprise_account_id = ?1 AND state = 'applied' AND full_export = 1
          ORDER BY finished_at DESC LIMIT 1",
    )?
    .query_row([enterprise], |row| row.get(0))
    .optional()
    .map(Option::flatten)
}

/// When the enterprise's newest applied full export was written by its producer.
pub fn last_full_export_modified_at(
    conn: &Connection,
    enterprise: EnterpriseId,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = conn
        .prepare_cached(
            "SELECT max(file_modified_at) FROM drop_files
              WHERE enterprise_account_id = ?1 AND state = 'applied' AND full_export = 1",
        )?
        .query_row([enterprise], |row| row.get(0))?;
    Ok(text.as_deref().and_then(parse_ts))
}

/// Records an IT admin's approval of a held file and queues it again.
pub fn approve(
    conn: &Connection,
    id: &str,
    approved_by: &str,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE drop_files SET approved_by = ?2, approved_at = ?3, state = 'processing',
                               reason = NULL, finished_at = NULL
          WHERE id = ?1",
    )?
    .execute(params![id, approved_by, ts(at)])?;
    Ok(())
}

/// Newest first.
pub fn list(
    conn: &Connection,
    enterprise: EnterpriseId,
    limit: usize,
) -> rusqlite::Result<Vec<DropFile>> {
    let mut statement = conn.prepare_cached(
        "SELECT * FROM drop_files WHERE enterprise_account_id = ?1
          ORDER BY received_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = statement.query_map(
        params![enterprise, i64::try_from(limit).unwrap_or(i64::MAX)],
        from_row,
    )?;
    rows.collect()
}

/// How many of an enterprise's files are in `state` (`held`: waiting for approval).
pub fn count_in_state(
    conn: &Connection,
    enterprise: EnterpriseId,
    state: FileState,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM drop_files WHERE enterprise_account_id = ?1 AND state = ?2",
    )?
    .query_row(rusqlite::params![enterprise, state], |row| row.get(0))
}
