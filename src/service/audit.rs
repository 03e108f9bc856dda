//! Writing to and reading the audit trail.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use super::access::{Actor, AdminCtx};
use super::{RequestMeta, Services};
use crate::domain::audit::{ActorType, AuditRecord, Outcome, GENESIS_HASH};
use crate::domain::EnterpriseId;
use crate::store::{self, audit_log::AuditFilter};
use crate::AppError;

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub action: &'static str,
    pub outcome: Outcome,
    pub enterprise: Option<EnterpriseId>,
    pub actor: Actor,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub reason_code: Option<&'static str>,
    pub changes: Option<serde_json::Value>,
}

impl AuditEvent {
    pub fn new(action: &'static str, outcome: Outcome, actor: Actor) -> AuditEvent {
        AuditEvent {
            action,
            outcome,
            enterprise: None,
            actor,
            target_type: None,
            target_id: None,
            reason_code: None,
            changes: None,
        }
    }

    pub fn anonymous(action: &'static str, outcome: Outcome) -> AuditEvent {
        AuditEvent::new(
            action,
            outcome,
            Actor {
                kind: ActorType::Anonymous,
                id: String::new(),
            },
        )
    }

    pub fn in_enterprise(mut self, enterprise: EnterpriseId) -> Self {
        self.enterprise = Some(enterprise);
        self
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn reason(mut self, code: &'static str) -> Self {
        self.reason_code = Some(code);
        self
    }

    pub fn changes(mut self, changes: serde_json::Value) -> Self {
        self.changes = Some(changes);
        self
    }
}

/// Appends `event` inside the caller's write transaction, so the trail holds
/// exactly the actions that committed.
pub fn append(
    conn: &Connection,
    event: &AuditEvent,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let record = AuditRecord {
        event_id: uuid::Uuid::now_v7().to_string(),
        ts: store::ts(now),
        enterprise_account_id: event.enterprise.map(|e| e.to_string()),
        actor_type: event.actor.kind,
        actor_id: (!event.actor.id.is_empty()).then(|| event.actor.id.clone()),
        source_ip: meta.ip.map(|ip| ip.to_string()),
        user_agent: meta
            .user_agent
            .as_ref()
            .map(|ua| ua.chars().take(256).collect()),
        request_id: meta.request_id.clone(),
        action: event.action.to_string(),
        target_type: event.target_type.map(str::to_string),
        target_id: event.target_id.clone(),
        outcome: event.outcome,
        reason_code: event.reason_code.map(str::to_string),
        changes: event.changes.as_ref().map(|c| c.to_string()),
    };
    store::audit_log::append(conn, &record)
}

/// Records an event in a transaction of its own (failures, denials).
pub async fn record(svc: &Services, event: AuditEvent, meta: &RequestMeta) -> Result<(), AppError> {
    let meta = meta.clone();
    let now = svc.clock.now();
    svc.db
        .write(move |txn| append(txn, &event, &meta, now).map_err(AppError::from))
        .await
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct AuditEntryView {
    pub seq: i64,
    pub event_id: String,
    pub timestamp: String,
    pub actor_type: ActorType,
    pub actor_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Outcome,
    pub reason_code: Option<String>,
    pub changes: Option<serde_json::Value>,
    pub hash: String,
}

pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    pub next_cursor: Option<String>,
}

/// Lists the enterprise's trail, newest first. Reading the trail is itself audited.
pub async fn list(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    filter: AuditFilter,
    cursor: Option<i64>,
    limit: usize,
) -> Result<AuditPage, AppError> {
    let enterprise = admin.enterprise();
    let rows = svc
        .db
        .read_for(enterprise, move |conn| {
            store::audit_log::list(conn, enterprise, &filter, cursor, limit).map_err(AppError::from)
        })
        .await?;
    record(
        svc,
        AuditEvent::new("audit_log.read", Outcome::Success, admin.actor())
            .in_enterprise(enterprise),
        meta,
    )
    .await?;
    let next_cursor = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    let entries = rows
        .into_iter()
        .map(|row| AuditEntryView {
            seq: row.seq,
            event_id: row.record.event_id,
            timestamp: row.record.ts,
            actor_type: row.record.actor_type,
            actor_id: row.record.actor_id,
            source_ip: row.record.source_ip,
            user_agent: row.record.user_agent,
            request_id: row.record.request_id,
            action: row.record.action,
            target_type: row.record.target_type,
            target_id: row.record.target_id,
            outcome: row.record.outcome,
            reason_code: row.record.reason_code,
            changes: row
                .record
                .changes
                .and_then(|c| serde_json::from_str(&c).ok()),
            hash: row.hash,
        })
        .collect();
    Ok(AuditPage {
        entries,
        next_cursor,
    })
}

/// Result of walking the whole chain.
#[derive(Debug, PartialEq, Eq)]
pub enum ChainCheck {
    Intact { rows: u64 },
    Broken { seq: i64, reason: &'static str },
}

/// Recomputes every link; names the first row whose content or link is wrong.
pub fn verify_chain(conn: &Connection) -> rusqlite::Result<ChainCheck> {
    let mut expected_prev = GENESIS_HASH.to_string();
    let mut rows = 0u64;
    let mut outcome = None;
    store::audit_log::scan(conn, |row| {
        if row.prev_hash != expected_prev {
            outcome = Some(ChainCheck::Broken {
                seq: row.seq,
                reason: "prev_hash does not match the previous row (a row was removed or inserted)",
            });
            return false;
        }
        if row.record.chain_hash(&row.prev_hash) != row.hash {
            outcome = Some(ChainCheck::Broken {
                seq: row.seq,
                reason: "content does not match its hash (the row was edited)",
            });
            return false;
        }
        expected_prev = row.hash;
        rows += 1;
        true
    })?;
    Ok(outcome.unwrap_or(ChainCheck::Intact { rows }))
}
