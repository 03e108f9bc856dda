use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use crate::domain::EnterpriseId;

pub struct NewChangeEvent<'a> {
    pub enterprise_account_id: EnterpriseId,
    pub event_type: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub run_id: &'a str,
    pub payload: &'a str,
    pub created_at: DateTime<Utc>,
}

pub fn insert(conn: &Connection, event: &NewChangeEvent<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO change_events (id, enterprise_account_id, event_type, resource_type, resource_id,
                                    run_id, payload, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        uuid::Uuid::now_v7().to_string(),
        event.enterprise_account_id,
        event.event_type,
        event.resource_type,
        event.resource_id,
        event.run_id,
        event.payload,
        super::ts(event.created_at)
    ])?;
    Ok(())
}
