use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, Row};
use serde::Serialize;

use crate::domain::EnterpriseId;

#[derive(Debug, Clone, Serialize)]
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
    /// Only run entries (one per import), not their per-record entries.
    pub runs_only: bool,
    pub operation: Option<String>,
    pub status: Option<String>,
    pub sync_type: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Newest first, starting below `before_seq`.
pub fn list(
    conn: &Connection,
    enterprise: EnterpriseId,
    filter: &SyncLogFilter,
    before_seq: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<SyncLog>> {
    let mut sql = String::from("SELECT * FROM sync_logs WHERE enterprise_account_id = +?");
    let mut args: Vec<Value> = vec![Value::Text(enterprise.to_string())];
    if filter.runs_only {
        sql.push_str(" AND run_id IS NULL");
    }
    let mut clause = |condition: &str, value: Value| {
        sql.push_str(" AND ");
        sql.push_str(condition);
        args.push(value);
    };
    for (condition, value) in [
        ("operation = +?", &filter.operation),
        ("status = +?", &filter.status),
        ("sync_type = +?", &filter.sync_type),
        ("timestamp >= ?", &filter.since),
        ("timestamp < ?", &filter.until),
    ] {
        if let Some(value) = value {
            clause(condition, Value::Text(value.clone()));
        }
    }
    if let Some(before) = before_seq {
        clause("seq < ?", Value::Integer(before));
    }
    // A literal LIMIT: a bound one makes SQLite re-prepare the statement on
    // every execution (it plans the sort around the limit's value).
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT {limit}"));
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(params_from_iter(args), from_row)?;
    rows.collect()
}
