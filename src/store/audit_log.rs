use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

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
    let mut sql = String::from("SELECT * FROM audit_log WHERE enterprise_account_id = +?");
    let mut args: Vec<Value> = vec![Value::Text(enterprise.to_string())];
    let mut clause = |condition: &str, value: Value| {
        sql.push_str(" AND ");
        sql.push_str(condition);
        args.push(value);
    };
    if let Some(action) = &filter.action {
        clause("action = +?", Value::Text(action.clone()));
    }
    if let Some(outcome) = filter.outcome {
        clause("outcome = +?", Value::Text(outcome.as_str().into()));
    }
    if let Some(actor) = &filter.actor_id {
        clause("actor_id = +?", Value::Text(actor.clone()));
    }
    if let Some(since) = &filter.since {
        clause("ts >= ?", Value::Text(since.clone()));
    }
    if let Some(until) = &filter.until {
        clause("ts < ?", Value::Text(until.clone()));
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
