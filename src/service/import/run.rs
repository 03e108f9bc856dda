//! Recording a run: its sync log, per-record entries and change events.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde_json::json;

use crate::domain::import::{ImportReport, ImportSource};
use crate::domain::EnterpriseId;
use crate::store::{self, change_events::NewChangeEvent, sync_logs::NewSyncLog};

/// Row errors kept in the run's sync log details; the HTTP answer has them all.
pub const ERRORS_IN_LOG: usize = 50;

/// A record the run changed.
pub struct Change {
    /// `user` or `store`.
    pub resource_type: &'static str,
    pub resource_id: String,
    /// `created`, `updated` or `deactivated`.
    pub verb: &'static str,
    /// The event payload, serialised once (a JSON tree per record would
    /// dominate a large import's memory).
    pub payload: String,
}

pub struct RunSummary {
    pub run_id: String,
}

/// Writes the run entry, one entry per changed record and one change event per
/// changed record, in the caller's transaction.
pub fn record(
    conn: &Connection,
    enterprise: EnterpriseId,
    source: &ImportSource,
    operation: &str,
    report: &ImportReport,
    changes: &[Change],
    now: DateTime<Utc>,
) -> rusqlite::Result<RunSummary> {
    let run_id = uuid::Uuid::now_v7().to_string();
    let status = if report.failed == 0 {
        "success"
    } else if report.created + report.updated + report.deactivated + report.unchanged > 0 {
        "partial"
    } else {
        "failed"
    };
    let details = json!({
        "total_processed": report.total_processed,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "deactivated": report.deactivated,
        "failed": report.failed,
        "errors": report.errors.iter().take(ERRORS_IN_LOG).collect::<Vec<_>>(),
        "errors_truncated": report.errors.len() > ERRORS_IN_LOG,
        "warnings": report.warnings,
    })
    .to_string();
    let error_message = (report.failed > 0).then(|| {
        format!(
            "{} of {} rows failed",
            report.failed, report.total_processed
        )
    });
    store::sync_logs::insert(
        conn,
        &NewSyncLog {
            id: &run_id,
            enterprise_account_id: enterprise,
            sync_type: source.kind.sync_type(),
            operation,
            status,
            resource_type: None,
            resource_id: None,
            details: &details,
            error_message: error_message.as_deref(),
            initiated_by: &source.initiated_by,
            run_id: None,
            timestamp: now,
        },
    )?;
    for change in changes {
        let operation = format!("{}_{}", change.resource_type, change.verb);
        store::sync_logs::insert(
            conn,
            &NewSyncLog {
                id: &uuid::Uuid::now_v7().to_string(),
                enterprise_account_id: enterprise,
                sync_type: source.kind.sync_type(),
                operation: &operation,
                status: "success",
                resource_type: Some(change.resource_type),
                resource_id: Some(&change.resource_id),
                details: "{}",
                error_message: None,
                initiated_by: &source.initiated_by,
                run_id: Some(&run_id),
                timestamp: now,
            },
        )?;
        store::change_events::insert(
            conn,
            &NewChangeEvent {
                enterprise_account_id: enterprise,
                event_type: &format!("{}.{}", change.resource_type, change.verb),
                resource_type: change.resource_type,
                resource_id: &change.resource_id,
                run_id: &run_id,
                payload: &change.payload,
                created_at: now,
            },
        )?;
    }
    Ok(RunSummary { run_id })
}
