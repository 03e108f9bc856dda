use rusqlite::{Connection, Row};
use serde::Serialize;

use super::list_query::ListQuery;
use crate::domain::EnterpriseId;

#[derive(utoipa::ToSchema, Debug, Clone, Serialize)]
pub struct SyncLog {
    #[serde(skip)]
    pub seq: i64,
    pub id: String,
    pub sync_type: String,
    pub operation: String,
    pub status: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub details: serde_json::Value,
    pub error_message: Option<String>,
    pub initiated_by: String,
    pub run_id: Option<String>,
    pub timestamp: String,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<SyncLog> {
    let details: String = row.get("details")?;
    Ok(SyncLog {
        seq: row.get("seq")?,
        id: row.get("id")?,
        sync_type: row.get("sync_type")?,
        operation: row.get("operation")?,
        status: row.get("status")?,
        resource_type: row.get("resource_type")?,
        resource_id: row.get("resource_id")?,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
        error_message: row.get("error_message")?,
        initiated_by: row.get("initiated_by")?,
        run_id: row.get("run_id")?,
        timestamp: row.get("timestamp")?,
    })
}

#[derive(Debug, Default, Clone)]
pub struct SyncLogFilter {
    pub operation: Option<String>,
    pub status: Option<String>,
    pub sync_type: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Runs about these kinds only (`user`, `store`); `None`: any.
    pub resource_types: Option<Vec<&'static str>>,
}

/// Newest first, starting below `before_seq`.
pub fn list(
    conn: &Connection,
    enterprise: EnterpriseId,
    filter: &SyncLogFilter,
    before_seq: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<SyncLog>> {
    let kinds = filter.resource_types.as_ref().map(|kinds| {
        // Our own constants, never the caller's text.
        let quoted: Vec<String> = kinds
            .iter()
            .filter(|kind| matches!(**kind, "user" | "store"))
            .map(|kind| format!("'{kind}'"))
            .collect();
        if quoted.is_empty() {
            "0".to_string()
        } else {
            format!("resource_type IN ({})", quoted.join(", "))
        }
    });
    let mut query = ListQuery::new("SELECT * FROM sync_logs", enterprise);
    if let Some(kinds) = &kinds {
        query = query.condition(kinds);
    }
    query
        .equals("operation", filter.operation.clone())
        .equals("status", filter.status.clone())
        .equals("sync_type", filter.sync_type.clone())
        .compare_opt("timestamp >= ?", filter.since.clone())
        .compare_opt("timestamp < ?", filter.until.clone())
        .compare_opt("seq < ?", before_seq)
        .fetch(conn, "seq DESC", limit, from_row)
}

pub fn get(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: &str,
) -> rusqlite::Result<Option<SyncLog>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT * FROM sync_logs WHERE id = ?1 AND enterprise_account_id = ?2")?
        .query_row(rusqlite::params![id, enterprise], from_row)
        .optional()
}

/// When `enterprise`'s last run that ended `success` was recorded.
pub fn last_success(
    conn: &Connection,
    enterprise: EnterpriseId,
) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    // Walks the (enterprise, seq) index backwards to the first success.
    conn.prepare_cached(
        "SELECT timestamp FROM sync_logs
         WHERE enterprise_account_id = ?1 AND run_id IS NULL AND status = 'success'
         ORDER BY seq DESC LIMIT 1",
    )?
    .query_row([enterprise], |row| row.get(0))
    .optional()
}

/// The last run that applied something (`success` or `partial`): its id and time.
pub fn last_applied_run(
    conn: &Connection,
    enterprise: EnterpriseId,
) -> rusqlite::Result<Option<(String, String)>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(
        "SELECT id, timestamp FROM sync_logs
         WHERE enterprise_account_id = ?1 AND run_id IS NULL AND status IN ('success', 'partial')
         ORDER BY seq DESC LIMIT 1",
    )?
    .query_row([enterprise], |row| Ok((row.get(0)?, row.get(1)?)))
    .optional()
}

pub struct NewSyncLog<'a> {
    pub id: &'a str,
    pub enterprise_account_id: EnterpriseId,
    pub sync_type: &'a str,
    pub operation: &'a str,
    pub status: &'a str,
    pub resource_type: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub details: &'a str,
    pub error_message: Option<&'a str>,
    pub initiated_by: &'a str,
    pub run_id: Option<&'a str>,
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

pub fn insert(conn: &Connection, log: &NewSyncLog<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sync_logs (id, enterprise_account_id, sync_type, operation, status, resource_type,
                                resource_id, details, error_message, initiated_by, run_id, timestamp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params![
        log.id,
        log.enterprise_account_id,
        log.sync_type,
        log.operation,
        log.status,
        log.resource_type,
        log.resource_id,
        log.details,
        log.error_message,
        log.initiated_by,
        log.run_id,
        super::ts(log.timestamp)
    ])?;
    Ok(())
}

/// Deletes per-record entries (those linked to a run) older than `before`; run
/// entries stay. Returns how many went.
pub fn prune_record_entries(
    conn: &Connection,
    before: chrono::DateTime<chrono::Utc>,
) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM sync_logs WHERE run_id IS NOT NULL AND timestamp < ?1")?
        .execute([super::ts(before)])
}

/// Runs that ended `failed` since `since`.
pub fn failed_since(
    conn: &Connection,
    enterprise: EnterpriseId,
    since: &str,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM sync_logs
          WHERE enterprise_account_id = ?1 AND run_id IS NULL AND status = 'failed' AND timestamp >= ?2",
    )?
    .query_row(rusqlite::params![enterprise, since], |row| row.get(0))
}

/// The rows a day's runs changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DayCounts {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub created: i64,
    pub updated: i64,
    pub deactivated: i64,
    pub failed: i64,
}

/// Rows per day (UTC) since `since`, days with runs only.
pub fn daily_counts(
    conn: &Connection,
    enterprise: EnterpriseId,
    since: &str,
) -> rusqlite::Result<Vec<DayCounts>> {
    let mut statement = conn.prepare_cached(
        "SELECT substr(timestamp, 1, 10) AS day,
                SUM(COALESCE(json_extract(details, '$.created'), 0)),
                SUM(COALESCE(json_extract(details, '$.updated'), 0)),
                SUM(COALESCE(json_extract(details, '$.deactivated'), 0)),
                SUM(COALESCE(json_extract(details, '$.failed'), 0))
           FROM sync_logs
          WHERE enterprise_account_id = ?1 AND run_id IS NULL AND timestamp >= ?2
          GROUP BY day ORDER BY day",
    )?;
    let rows = statement.query_map(rusqlite::params![enterprise, since], |row| {
        Ok(DayCounts {
            day: row.get(0)?,
            created: row.get(1)?,
            updated: row.get(2)?,
            deactivated: row.get(3)?,
            failed: row.get(4)?,
        })
    })?;
    rows.collect()
}
