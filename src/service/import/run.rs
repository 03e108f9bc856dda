//! Recording a run: its sync-log entry and the batches of what it changed.

use crate::domain::import::SyncOperation;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::import::{ImportReport, RowError};
use crate::domain::text;
use crate::domain::webhook::EventType;
use crate::service::notifications;
use crate::service::webhooks::Subscribers;
use crate::store::change_batches::{NewBatch, VerbCounts};
use crate::store::{self, sync_logs::NewSyncLog};

/// Row errors kept in the run's sync log details; the HTTP answer has them all.
pub const ERRORS_IN_LOG: usize = 50;

/// Events per change batch: one webhook delivery at most, one page of a run's
/// changes at least.
pub const EVENTS_PER_BATCH: usize = 500;

/// A record the run changed, as stored in its change batch and sent to webhooks.
#[derive(utoipa::ToSchema, Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangeEvent {
    /// `user.created`, `user.updated`, `user.deactivated`, `store.created`, …
    #[serde(rename = "type")]
    pub event_type: String,
    pub id: String,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Created,
    Updated,
    Deactivated,
}

/// A record the run changed, before it is written.
pub struct Change {
    pub verb: Verb,
    pub event_type: &'static str,
    pub id: uuid::Uuid,
    pub external_id: Option<String>,
}

impl Change {
    pub fn store(verb: Verb, id: uuid::Uuid, external_id: Option<String>) -> Change {
        let event_type = match verb {
            Verb::Created => "store.created",
            Verb::Updated => "store.updated",
            Verb::Deactivated => "store.deactivated",
        };
        Change {
            verb,
            event_type,
            id,
            external_id,
        }
    }
}

#[derive(Serialize)]
struct ChangeRef<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    id: &'a str,
    external_id: Option<&'a str>,
}

pub struct RunSummary {
    pub run_id: String,
}

/// Who ran an import and what the adapter adds to its log entry.
pub struct RunMeta<'a> {
    pub enterprise: crate::domain::EnterpriseId,
    /// `user` or `store`.
    pub resource_type: &'static str,
    pub source: &'a crate::domain::import::ImportSource,
    pub details: &'a serde_json::Map<String, serde_json::Value>,
}

/// Writes the run entry and the run's change batches in the caller's transaction.
pub fn record<R: crate::domain::import::ImportedResource>(
    conn: &Connection,
    request: &super::ImportRequest<R>,
    operation: SyncOperation,
    report: &ImportReport,
    changes: &[Change],
    now: DateTime<Utc>,
) -> Result<RunSummary, crate::AppError> {
    let meta = RunMeta {
        enterprise: request.enterprise,
        resource_type: R::RESOURCE_TYPE,
        source: &request.source,
        details: &request.details,
    };
    let run = record_entry(conn, &meta, operation, report, now)?;
    let mut batches = BatchWriter::new(conn, meta.enterprise, &run.run_id, now);
    for change in changes {
        batches.push(
            change.verb,
            change.event_type,
            &change.id.hyphenated().to_string(),
            change.external_id.as_deref(),
        )?;
    }
    batches.finish()?;
    Ok(run)
}

/// The run's status in its sync log: `success`, `partial` (some rows applied,
/// some failed) or `failed`.
pub fn run_status(report: &ImportReport) -> &'static str {
    if report.not_applied.is_some() {
        "failed"
    } else if report.failed == 0 {
        "success"
    } else if report.created + report.updated + report.deactivated + report.unchanged > 0 {
        "partial"
    } else {
        "failed"
    }
}

/// Writes the run's sync-log entry; its change batches follow through a
/// [`BatchWriter`].
pub fn record_entry(
    conn: &Connection,
    meta: &RunMeta<'_>,
    operation: SyncOperation,
    report: &ImportReport,
    now: DateTime<Utc>,
) -> Result<RunSummary, crate::AppError> {
    let (enterprise, source, extra_details) = (meta.enterprise, meta.source, meta.details);
    let run_id = uuid::Uuid::now_v7().to_string();
    let status = run_status(report);
    let mut details = json!({
        "total_processed": report.total_processed,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "deactivated": report.deactivated,
        "failed": report.failed,
        "errors": report.errors.iter().take(ERRORS_IN_LOG).map(RowError::bounded).collect::<Vec<_>>(),
        "errors_truncated": report.errors.len() > ERRORS_IN_LOG,
        "warnings": text::bounded_warnings(&report.warnings),
    });
    if let Some(fields) = details.as_object_mut() {
        if let Some(not_applied) = &report.not_applied {
            fields.insert(
                "not_applied".into(),
                json!({
                    "code": not_applied.code,
                    "message": text::clip(&not_applied.message, text::MAX_TEXT_CHARS),
                }),
            );
        }
        fields.extend(extra_details.clone());
    }
    let details = details.to_string();
    let error_message = match &report.not_applied {
        Some(not_applied) => Some(text::clip(&not_applied.message, text::MAX_TEXT_CHARS)),
        None => (report.failed > 0).then(|| {
            format!(
                "{} of {} rows failed",
                report.failed, report.total_processed
            )
        }),
    };
    store::sync_logs::insert(
        conn,
        &NewSyncLog {
            id: &run_id,
            enterprise_account_id: enterprise,
            sync_type: source.kind.sync_type(),
            operation: operation.as_str(),
            status,
            resource_type: Some(meta.resource_type),
            resource_id: None,
            details: &details,
            error_message: error_message.as_deref(),
            initiated_by: &source.initiated_by,
            run_id: None,
            timestamp: now,
        },
    )?;
    notifications::run_recorded(
        conn,
        &notifications::RunFacts {
            enterprise,
            run_id: &run_id,
            source: source.kind.sync_type(),
            operation: operation.as_str(),
            initiated_by: &source.initiated_by,
            status,
            report,
            error_message: error_message.as_deref(),
            details: extra_details,
        },
        now,
    )?;
    Ok(RunSummary { run_id })
}

/// Writes a run's changes as batches of [`EVENTS_PER_BATCH`] events, as they
/// come: each event is written into the batch's JSON text at once, so a
/// million changes cost no more memory than one batch.
pub struct BatchWriter<'c> {
    conn: &'c Connection,
    enterprise: crate::domain::EnterpriseId,
    run_id: &'c str,
    now: DateTime<Utc>,
    json: Vec<u8>,
    pending: usize,
    counts: VerbCounts,
    written: usize,
    /// Endpoints to queue each batch for, read at the first batch.
    subscribers: Option<Subscribers>,
    /// The event types in the pending batch, in [`EventType::ALL`] order.
    present: [bool; EventType::ALL.len()],
}

impl<'c> BatchWriter<'c> {
    pub fn new(
        conn: &'c Connection,
        enterprise: crate::domain::EnterpriseId,
        run_id: &'c str,
        now: DateTime<Utc>,
    ) -> Self {
        BatchWriter {
            conn,
            enterprise,
            run_id,
            now,
            // Grows to a batch's size only when a run has that many changes.
            json: Vec::with_capacity(1024),
            pending: 0,
            counts: VerbCounts::default(),
            written: 0,
            subscribers: None,
            present: [false; EventType::ALL.len()],
        }
    }

    pub fn push(
        &mut self,
        verb: Verb,
        event_type: &'static str,
        id: &str,
        external_id: Option<&str>,
    ) -> Result<(), crate::AppError> {
        self.json.push(if self.pending == 0 { b'[' } else { b',' });
        serde_json::to_writer(
            &mut self.json,
            &ChangeRef {
                event_type,
                id,
                external_id,
            },
        )
        .map_err(|e| crate::AppError::Internal(format!("change batch: {e}")))?;
        if let Some(index) = EventType::ALL.iter().position(|t| t.as_str() == event_type) {
            self.present[index] = true;
        }
        match verb {
            Verb::Created => self.counts.created += 1,
            Verb::Updated => self.counts.updated += 1,
            Verb::Deactivated => self.counts.deactivated += 1,
        }
        self.pending += 1;
        if self.pending == EVENTS_PER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), crate::AppError> {
        self.flush()
    }

    fn flush(&mut self) -> Result<(), crate::AppError> {
        if self.pending == 0 {
            return Ok(());
        }
        self.json.push(b']');
        let events_json = std::str::from_utf8(&self.json)
            .map_err(|e| crate::AppError::Internal(format!("change batch: {e}")))?;
        let seq = store::change_batches::insert(
            self.conn,
            &NewBatch {
                enterprise: self.enterprise,
                run_id: self.run_id,
                first_index: self.written,
                event_count: self.pending,
                counts: self.counts,
                events_json,
                now: self.now,
            },
        )?;
        let subscribers = match &self.subscribers {
            Some(loaded) => loaded,
            None => self
                .subscribers
                .insert(Subscribers::load(self.conn, self.enterprise)?),
        };
        if !subscribers.is_empty() {
            let present: Vec<EventType> = EventType::ALL
                .into_iter()
                .zip(self.present)
                .filter_map(|(event_type, seen)| seen.then_some(event_type))
                .collect();
            subscribers.batch(self.conn, seq, &present, self.now)?;
        }
        self.present = [false; EventType::ALL.len()];
        self.written += self.pending;
        self.pending = 0;
        self.counts = VerbCounts::default();
        self.json.clear();
        Ok(())
    }
}
