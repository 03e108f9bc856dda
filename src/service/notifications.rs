//! What a sync run or a drop file tells the outside world, decided inside the
//! transaction that records it: webhook messages (`sync.completed`,
//! `sync.failed`, `file.held`) are queued there, so a rolled-back import
//! sends nothing and a committed one cannot lose its events.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde_json::json;

use super::webhooks::Subscribers;
use crate::domain::import::ImportReport;
use crate::domain::webhook::EventType;
use crate::domain::EnterpriseId;
use crate::service::import::FULL_EXPORT_HELD;
use crate::AppError;

/// A recorded run, as notifications describe it.
pub struct RunFacts<'a> {
    pub enterprise: EnterpriseId,
    pub run_id: &'a str,
    /// `api`, `scim` or `file`.
    pub source: &'a str,
    pub operation: &'a str,
    pub initiated_by: &'a str,
    /// `success`, `partial` or `failed`.
    pub status: &'a str,
    pub report: &'a ImportReport,
    pub error_message: Option<&'a str>,
    /// The adapter's facts (a file's name and id).
    pub details: &'a serde_json::Map<String, serde_json::Value>,
}

pub fn run_recorded(
    conn: &Connection,
    run: &RunFacts<'_>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let subscribers = Subscribers::load(conn, run.enterprise)?;
    if subscribers.is_empty() {
        return Ok(());
    }
    let held = run
        .report
        .not_applied
        .as_ref()
        .filter(|n| n.code == FULL_EXPORT_HELD);
    if let Some(held) = held {
        let data = json!({
            "enterprise_id": run.enterprise,
            "file_id": run.details.get("file_id"),
            "file": run.details.get("file"),
            "run_id": run.run_id,
            "reason": held.message,
            "would_deactivate": run.report.deactivated,
        });
        subscribers.event(conn, EventType::FileHeld, &data, now)?;
        return Ok(());
    }
    let report = run.report;
    let data = json!({
        "enterprise_id": run.enterprise,
        "run_id": run.run_id,
        "source": run.source,
        "operation": run.operation,
        "initiated_by": run.initiated_by,
        "status": run.status,
        "total_processed": report.total_processed,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "deactivated": report.deactivated,
        "failed": report.failed,
        "error_message": run.error_message,
        "source_details": run.details,
    });
    let event_type = if run.status == "failed" {
        EventType::SyncFailed
    } else {
        EventType::SyncCompleted
    };
    subscribers.event(conn, event_type, &data, now)?;
    Ok(())
}

/// A drop file that failed before any run (unreadable, wrong encoding, …).
pub struct FileFailure<'a> {
    pub enterprise: EnterpriseId,
    pub file_id: &'a str,
    pub file: &'a str,
    pub reason: &'a str,
}

pub fn file_failed(
    conn: &Connection,
    file: &FileFailure<'_>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let subscribers = Subscribers::load(conn, file.enterprise)?;
    if subscribers.is_empty() {
        return Ok(());
    }
    let data = json!({
        "enterprise_id": file.enterprise,
        "run_id": null,
        "source": "file",
        "status": "failed",
        "error_message": file.reason,
        "source_details": { "file_id": file.file_id, "file": file.file },
    });
    subscribers.event(conn, EventType::SyncFailed, &data, now)?;
    Ok(())
}
