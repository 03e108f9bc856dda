//! Webhook endpoints, their outbox of messages and the log of delivery attempts.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{parse_ts, ts};
use crate::domain::webhook::EventType;
use crate::domain::{EnterpriseId, WebhookId};

pub struct NewEndpoint<'a> {
    pub id: WebhookId,
    pub enterprise: EnterpriseId,
    pub url: &'a str,
    pub description: &'a str,
    pub events: &'a [EventType],
    pub secret_sealed: &'a [u8],
    pub created_by: &'a str,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: WebhookId,
    pub enterprise: EnterpriseId,
    pub url: String,
    pub description: String,
    pub events: Vec<EventType>,
    pub secret_sealed: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
}

fn events_json(events: &[EventType]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| "[]".into())
}

/// Unknown names (written by a newer version) subscribe to nothing.
fn events_from_json(text: &str) -> Vec<EventType> {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| EventType::parse(name))
        .collect()
}

fn time(text: Option<String>) -> Option<DateTime<Utc>> {
    text.as_deref().and_then(parse_ts)
}

const ENDPOINT_COLUMNS: &str = "id, enterprise_account_id, url, description, events, secret_sealed,
     created_at, created_by, disabled_at, disabled_reason, last_success_at";

fn endpoint_from_row(row: &Row<'_>) -> rusqlite::Result<Endpoint> {
    let created: String = row.get(6)?;
    Ok(Endpoint {
        id: row.get(0)?,
        enterprise: row.get(1)?,
        url: row.get(2)?,
        description: row.get(3)?,
        events: events_from_json(&row.get::<_, String>(4)?),
        secret_sealed: row.get(5)?,
        created_at: parse_ts(&created).unwrap_or_default(),
        created_by: row.get(7)?,
        disabled_at: time(row.get(8)?),
        disabled_reason: row.get(9)?,
        last_success_at: time(row.get(10)?),
    })
}

pub fn insert_endpoint(conn: &Connection, new: &NewEndpoint<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_endpoints (id, enterprise_account_id, url, description, events,
                                        secret_sealed, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        new.id,
        new.enterprise,
        new.url,
        new.description,
        events_json(new.events),
        new.secret_sealed,
        ts(new.now),
        new.created_by
    ])?;
    Ok(())
}

pub fn endpoint(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: WebhookId,
) -> rusqlite::Result<Option<Endpoint>> {
    conn.prepare_cached(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?1 AND enterprise_account_id = ?2"
    ))?
    .query_row(params![id, enterprise], endpoint_from_row)
    .optional()
}

pub fn endpoints(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Vec<Endpoint>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE enterprise_account_id = ?1
          ORDER BY created_at, id"
    ))?;
    let rows = statement.query_map([enterprise], endpoint_from_row)?;
    rows.collect()
}

pub fn count_endpoints(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<usize> {
    conn.prepare_cached("SELECT COUNT(*) FROM webhook_endpoints WHERE enterprise_account_id = ?1")?
        .query_row([enterprise], |row| row.get::<_, i64>(0))
        .map(|n| usize::try_from(n).unwrap_or(0))
}

/// Removes the endpoint with its messages and attempts (ON DELETE CASCADE).
pub fn delete_endpoint(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: WebhookId,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "DELETE FROM webhook_endpoints WHERE id = ?1 AND enterprise_account_id = ?2",
    )?
    .execute(params![id, enterprise])
    .map(|n| n > 0)
}

pub fn disable_endpoint(
    conn: &Connection,
    id: WebhookId,
    reason: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "UPDATE webhook_endpoints SET disabled_at = ?2, disabled_reason = ?3
          WHERE id = ?1 AND disabled_at IS NULL",
    )?
    .execute(params![id, ts(now), reason])
    .map(|n| n > 0)
}

/// Turns a disabled endpoint back on; its messages still pending go out again.
pub fn enable_endpoint(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: WebhookId,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL
          WHERE id = ?1 AND enterprise_account_id = ?2",
    )?
    .execute(params![id, enterprise])
    .map(|n| n > 0)
}

/// Makes an endpoint's pending messages due now (it was turned back on).
pub fn restart_pending(
    conn: &Connection,
    id: WebhookId,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE webhook_messages SET next_attempt_at = ?2 WHERE endpoint_id = ?1 AND state = 'pending'",
    )?
    .execute(params![id, ts(now)])
}

/// The enabled endpoints of an enterprise and what they subscribe to: what an
/// event is fanned out to, inside the transaction that caused it.
pub fn subscribers(
    conn: &Connection,
    enterprise: EnterpriseId,
) -> rusqlite::Result<Vec<(WebhookId, Vec<EventType>)>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, events FROM webhook_endpoints
          WHERE enterprise_account_id = ?1 AND disabled_at IS NULL",
    )?;
    let rows = statement.query_map([enterprise], |row| {
        Ok((row.get(0)?, events_from_json(&row.get::<_, String>(1)?)))
    })?;
    rows.collect()
}

pub struct NewMessage<'a> {
    pub id: &'a str,
    pub endpoint: WebhookId,
    pub enterprise: EnterpriseId,
    pub event_type: EventType,
    /// The change batch the message sends, or…
    pub batch_seq: Option<i64>,
    /// …the event's data.
    pub data: Option<&'a str>,
    pub now: DateTime<Utc>,
}

pub fn insert_message(conn: &Connection, new: &NewMessage<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_messages (id, endpoint_id, enterprise_account_id, event_type, batch_seq,
                                       data, created_at, state, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?7)",
    )?
    .execute(params![
        new.id,
        new.endpoint,
        new.enterprise,
        new.event_type.as_str(),
        new.batch_seq,
        new.data,
        ts(new.now)
    ])?;
    Ok(())
}

/// A message due for an attempt, with what sending it needs.
#[derive(Debug, Clone)]
pub struct DueMessage {
    pub seq: i64,
    pub id: String,
    pub endpoint: WebhookId,
    pub enterprise: EnterpriseId,
    pub event_type: String,
    pub batch_seq: Option<i64>,
    pub data: Option<String>,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    pub url: String,
    pub secret_sealed: Vec<u8>,
    /// When the endpoint last answered 2xx.
    pub last_success_at: Option<DateTime<Utc>>,
}

/// Pending messages of enabled endpoints whose attempt is due, oldest due first.
pub fn due(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: usize,
) -> rusqlite::Result<Vec<DueMessage>> {
    let mut statement = conn.prepare_cached(
        "SELECT m.seq, m.id, m.endpoint_id, m.enterprise_account_id, m.event_type, m.batch_seq,
                m.data, m.created_at, m.attempts, e.url, e.secret_sealed, e.last_success_at
           FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id
          WHERE m.state = 'pending' AND m.next_attempt_at <= ?1 AND e.disabled_at IS NULL
          ORDER BY m.next_attempt_at, m.seq LIMIT ?2",
    )?;
    let rows = statement.query_map(
        params![ts(now), i64::try_from(limit).unwrap_or(i64::MAX)],
        |row| {
            let created: String = row.get(7)?;
            Ok(DueMessage {
                seq: row.get(0)?,
                id: row.get(1)?,
                endpoint: row.get(2)?,
                enterprise: row.get(3)?,
                event_type: row.get(4)?,
                batch_seq: row.get(5)?,
                data: row.get(6)?,
                created_at: parse_ts(&created).unwrap_or_default(),
                attempts: row.get(8)?,
                url: row.get(9)?,
                secret_sealed: row.get(10)?,
                last_success_at: time(row.get(11)?),
            })
        },
    )?;
    rows.collect()
}

/// The earliest pending attempt of an enabled endpoint, to sleep until then.
pub fn next_due_at(conn: &Connection) -> rusqlite::Result<Option<DateTime<Utc>>> {
    conn.prepare_cached(
        "SELECT MIN(m.next_attempt_at) FROM webhook_messages m
           JOIN webhook_endpoints e ON e.id = m.endpoint_id
          WHERE m.state = 'pending' AND e.disabled_at IS NULL",
    )?
    .query_row([], |row| row.get::<_, Option<String>>(0))
    .map(time)
}

pub struct NewAttempt<'a> {
    pub message_seq: i64,
    pub endpoint: WebhookId,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
    pub response_snippet: Option<&'a str>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Logs an attempt and moves its message on: pending again until
/// `next_attempt_at`, or finished in `final_state`.
pub fn record_attempt(
    conn: &Connection,
    attempt: &NewAttempt<'_>,
    final_state: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (message_seq, endpoint_id, attempt, started_at, duration_ms,
                                       status_code, error, response_snippet, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        attempt.message_seq,
        attempt.endpoint,
        attempt.attempt,
        ts(attempt.started_at),
        i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX),
        attempt.status_code,
        attempt.error,
        attempt.response_snippet,
        attempt.next_attempt_at.map(ts)
    ])?;
    conn.prepare_cached(
        "UPDATE webhook_messages
            SET attempts = ?2, state = COALESCE(?3, 'pending'), next_attempt_at = ?4,
                finished_at = CASE WHEN ?3 IS NULL THEN NULL ELSE ?5 END
          WHERE seq = ?1",
    )?
    .execute(params![
        attempt.message_seq,
        attempt.attempt,
        final_state,
        attempt.next_attempt_at.map(ts),
        ts(now)
    ])?;
    if attempt.status_code.is_some_and(|s| (200..300).contains(&s)) {
        conn.prepare_cached("UPDATE webhook_endpoints SET last_success_at = ?2 WHERE id = ?1")?
            .execute(params![attempt.endpoint, ts(now)])?;
    }
    Ok(())
}

/// Ends a message that cannot be sent any more (its change batch was pruned).
pub fn fail_message(conn: &Connection, seq: i64, now: DateTime<Utc>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhook_messages SET state = 'failed', next_attempt_at = NULL, finished_at = ?2
          WHERE seq = ?1",
    )?
    .execute(params![seq, ts(now)])?;
    Ok(())
}

/// One line of an endpoint's delivery log.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub seq: i64,
    pub message_id: String,
    pub event_type: String,
    pub message_state: String,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response_snippet: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// An endpoint's attempts, newest first, those before `before_seq` when given.
pub fn attempts(
    conn: &Connection,
    endpoint: WebhookId,
    before_seq: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<AttemptRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT a.seq, m.id, m.event_type, m.state, a.attempt, a.started_at, a.duration_ms,
                a.status_code, a.error, a.response_snippet, a.next_attempt_at
           FROM webhook_attempts a JOIN webhook_messages m ON m.seq = a.message_seq
          WHERE a.endpoint_id = ?1 AND a.seq < ?2
          ORDER BY a.seq DESC LIMIT ?3",
    )?;
    let rows = statement.query_map(
        params![
            endpoint,
            before_seq.unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |row| {
            let started: String = row.get(5)?;
            Ok(AttemptRow {
                seq: row.get(0)?,
                message_id: row.get(1)?,
                event_type: row.get(2)?,
                message_state: row.get(3)?,
                attempt: row.get(4)?,
                started_at: parse_ts(&started).unwrap_or_default(),
                duration_ms: row.get(6)?,
                status_code: row.get(7)?,
                error: row.get(8)?,
                response_snippet: row.get(9)?,
                next_attempt_at: time(row.get(10)?),
            })
        },
    )?;
    rows.collect()
}

/// Messages of an endpoint by state, for its summary.
pub fn message_counts(conn: &Connection, endpoint: WebhookId) -> rusqlite::Result<[i64; 3]> {
    conn.prepare_cached(
        "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'delivered'), 0),
                COALESCE(SUM(state = 'failed'), 0)
           FROM webhook_messages WHERE endpoint_id = ?1",
    )?
    .query_row([endpoint], |row| {
        Ok([row.get(0)?, row.get(1)?, row.get(2)?])
    })
}

/// Deletes messages that ended before `cutoff`, with their attempts.
pub fn prune_finished_before(conn: &Connection, cutoff: DateTime<Utc>) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM webhook_messages WHERE state <> 'pending' AND finished_at < ?1",
    )?
    .execute([ts(cutoff)])
}
