//! What a sync run or a drop file tells the outside world, decided inside the
//! transaction that records it: webhook messages (`sync.completed`,
//! `sync.failed`, `file.held`) and alert emails are queued there, so a
//! rolled-back import sends nothing and a committed one cannot lose them.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde_json::json;

use super::alerts;
use super::webhooks::Subscribers;
use crate::domain::import::ImportReport;
use crate::domain::import::{NotAppliedCode, RowErrorCode};
use crate::domain::notifications::{AlertFacts, FailureCause};
use crate::domain::webhook::EventType;
use crate::domain::EnterpriseId;
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
    let report = run.report;
    let file = run
        .details
        .get("file")
        .and_then(|f| f.as_str())
        .map(str::to_string);
    let subscribers = Subscribers::load(conn, run.enterprise)?;
    let held = report
        .not_applied
        .as_ref()
        .filter(|n| n.code == NotAppliedCode::FullExportHeld);
    if let Some(held) = held {
        let file_id = run.details.get("file_id").and_then(|f| f.as_str());
        if !subscribers.is_empty() {
            let data = json!({
                "enterprise_id": run.enterprise,
                "file_id": file_id,
                "file": file,
                "run_id": run.run_id,
                "reason": held.message,
                "would_deactivate": report.deactivated,
            });
            subscribers.event(conn, EventType::FileHeld, &data, now)?;
        }
        let facts = AlertFacts::FileHeld {
            file: file.unwrap_or_default(),
            file_id: file_id.map(str::to_string),
            reason: held.message.clone(),
            would_deactivate: report.deactivated,
            at: now,
        };
        return alerts::raise(conn, run.enterprise, file_id, &facts, now);
    }
    if !subscribers.is_empty() {
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
    }
    // A refused SCIM request is part of the protocol (the identity provider
    // shows it and retries): only a lack of seats, which the IT admin must
    // act on, is an incident.
    if run.source == "scim"
        && !report
            .errors
            .iter()
            .any(|e| e.code == RowErrorCode::SeatLimitReached)
    {
        return Ok(());
    }
    let facts = match run.status {
        "failed" => AlertFacts::SyncFailed {
            run_id: Some(run.run_id.to_string()),
            source: run.source.to_string(),
            file,
            error: run.error_message.unwrap_or_default().to_string(),
            cause: Some(match &report.not_applied {
                Some(not_applied) => FailureCause::NotApplied {
                    code: not_applied.code.as_str().to_string(),
                    failed: report.failed,
                },
                None => FailureCause::RowsFailed {
                    failed: report.failed,
                    total: report.total_processed,
                    first_code: report.errors.first().map(|e| e.code.as_str().to_string()),
                },
            }),
            at: now,
        },
        "partial"
            if crate::store::notification_settings::get(conn, run.enterprise)?.alert_on_partial =>
        {
            AlertFacts::SyncPartial {
                run_id: run.run_id.to_string(),
                source: run.source.to_string(),
                file,
                failed: report.failed,
                total: report.total_processed,
                at: now,
            }
        }
        _ => return Ok(()),
    };
    alerts::raise(conn, run.enterprise, Some(run.run_id), &facts, now)
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
    if !subscribers.is_empty() {
        let data = json!({
            "enterprise_id": file.enterprise,
            "run_id": null,
            "source": "file",
            "status": "failed",
            "error_message": file.reason,
            "source_details": { "file_id": file.file_id, "file": file.file },
        });
        subscribers.event(conn, EventType::SyncFailed, &data, now)?;
    }
    let facts = AlertFacts::SyncFailed {
        run_id: None,
        source: "file".into(),
        file: Some(file.file.to_string()),
        error: file.reason.to_string(),
        cause: None,
        at: now,
    };
    alerts::raise(conn, file.enterprise, Some(file.file_id), &facts, now)
}
