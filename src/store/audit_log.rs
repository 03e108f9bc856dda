use rusqlite::{params, Connection, OptionalExtension, Row};

use super::list_query::ListQuery;
use crate::domain::audit::{ActorType, AuditRecord, Outcome, GENESIS_HASH};
use crate::domain::EnterpriseId;

/// Appends `record` to the chain. Must run inside the writer's transaction so the
/// previous hash cannot change under it.
pub fn append(conn: &Connection, record: &AuditRecord) -> rusqlite::Result<()> {
    let prev: String = conn
        .prepare_cached("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| row.get(0))
        .optional()?
        .unwrap_or_else(|| GENESIS_HASH.to_string());
    let hash = record.chain_hash(&prev);
    conn.prepare_cached(
        "INSERT INTO audit_log (event_id, ts, enterprise_account_id, actor_type, actor_id, source_ip,
                                user_agent, request_id, action, target_type, target_id, outcome,
                                reason_code, changes, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        record.event_id,
        record.ts,
        record.enterprise_account_id,
        record.actor_type.as_str(),
        record.actor_id,
        record.source_ip,
        record.user_agent,
        record.request_id,
        record.action,
        record.target_type,
        record.target_id,
        record.outcome.as_str(),
        record.reason_code,
        record.changes,
        prev,
        hash
    ])?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

fn parse_enum<T: serde::de::DeserializeOwned>(text: String) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(text)).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<AuditRow> {
    let actor_type: ActorType = parse_enum(row.get("actor_type")?)?;
    let outcome: Outcome = parse_enum(row.get("outcome")?)?;
    Ok(AuditRow {
        seq: row.get("seq")?,
        prev_hash: row.get("prev_hash")?,
        hash: row.get("hash")?,
        record: AuditRecord {
            event_id: row.get("event_id")?,
            ts: row.get("ts")?,
            enterprise_account_id: row.get("enterprise_account_id")?,
            actor_type,
            actor_id: row.get("actor_id")?,
            source_ip: row.get("source_ip")?,
            user_agent: row.get("user_agent")?,
            request_id: row.get("request_id")?,
            action: row.get("action")?,
            target_type: row.get("target_type")?,
            target_id: row.get("target_id")?,
            outcome,
            reason_code: row.get("reason_code")?,
            changes: row.get("changes")?,
        },
    })
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    pub actor_id: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Newest first, starting below `before_seq`.
pub fn list(
    conn: &Connection,
    enterprise: EnterpriseId,
    filter: &AuditFilter,
    before_seq: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<AuditRow>> {
    ListQuery::new("SELECT * FROM audit_log", enterprise)
        .equals("action", filter.action.clone())
        .equals("outcome", filter.outcome.map(|o| o.as_str().to_string()))
        .equals("actor_id", filter.actor_id.clone())
        .compare_opt("ts >= ?", filter.since.clone())
        .compare_opt("ts < ?", filter.until.clone())
        .compare_opt("seq < ?", before_seq)
        .fetch(conn, "seq DESC", limit, from_row)
}

/// Visits the whole chain in order; stops early when `visit` returns false.
pub fn scan(conn: &Connection, mut visit: impl FnMut(AuditRow) -> bool) -> rusqlite::Result<()> {
    let mut statement = conn.prepare("SELECT * FROM audit_log ORDER BY seq")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        if !visit(from_row(row)?) {
            break;
        }
    }
    Ok(())
}
