//! The one import engine. REST bulk imports, drop-directory files and SCIM all
//! hand it normalised records, a mode and their source; it plans every row
//! against the enterprise's current data, then applies all valid rows in one
//! write transaction together with their change events and sync logs, and
//! returns the report. A dry run plans the same way on a read connection and
//! writes nothing.

mod run;
pub mod staged;
pub mod stores;
pub mod users;

use crate::domain::import::SyncOperation;
use std::borrow::Cow;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::domain::import::{
    ImportMode, ImportReport, ImportSource, NotAppliedCode, RowError, RowErrorCode,
};
use crate::domain::{text, EnterpriseId};
use crate::service::Services;
use crate::AppError;

pub use run::{run_status, ChangeEvent, RunSummary, EVENTS_PER_BATCH};
use run::{Change, Verb};

/// One import request, whatever its source.
#[derive(Debug, Clone)]
pub struct ImportRequest<R> {
    pub enterprise: EnterpriseId,
    pub source: ImportSource,
    pub mode: ImportMode,
    pub rows: Vec<R>,
    pub dry_run: bool,
    /// Give each newly created, active user an invitation to set a password.
    pub invite_new_users: bool,
    /// Adapter findings that are not row errors (unknown fields ignored, …).
    pub warnings: Vec<String>,
    /// Rows the adapter could already not read (wrong types, forbidden fields);
    /// they count as failed and are not applied.
    pub row_errors: Vec<RowError>,
    /// Facts the adapter adds to the run's sync-log details (a file's name,
    /// encoding and SHA-256).
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Users only: the rows are the whole active staff; people missing from
    /// them are deactivated, within the guard.
    pub full_export: Option<FullExport>,
    /// Any row error stops the whole request (nothing applies), as a
    /// drop-directory profile may ask of delta files.
    pub all_or_nothing: bool,
    /// How reports number the rows.
    pub numbering: RowNumbering,
}

pub use crate::domain::import::RowNumbering;

/// The accidental-deactivation guard of a full export.
#[derive(Debug, Clone)]
pub struct FullExport {
    /// Hold when more than this share of the active staff would be deactivated…
    pub max_deactivate_percent: u32,
    /// …or more than this many people.
    pub max_deactivate_count: u32,
    /// Data rows of the last applied full export, if any: hold below half of it.
    pub previous_rows: Option<usize>,
    /// An IT admin approved this very file: the guard does not hold it.
    pub approved: bool,
    /// Why the export is older than the last applied one, if it is: an
    /// export overtaken by a newer one would bring back people who left.
    pub stale: Option<String>,
}

/// Work an adapter adds to the import's transaction, after the changes are
/// applied and the run recorded: a drop file marked as applied commits with them.
pub type Finish = Box<dyn FnOnce(&Connection, &ImportReport) -> Result<(), AppError> + Send>;

pub use crate::domain::import::{MAX_EXTERNAL_ID, MAX_NAME, MAX_TEXT};

/// Row errors accumulate here; a row with any error is skipped whole. Rows are
/// indices inside the engine and numbered (see [`RowNumbering`]) in the list.
#[derive(Default)]
pub(crate) struct Errors {
    pub list: Vec<RowError>,
    failed: std::collections::HashSet<usize>,
    numbering: RowNumbering,
}

impl Errors {
    pub fn seeded(initial: &[RowError], numbering: &RowNumbering) -> Errors {
        let mut errors = Errors {
            numbering: numbering.clone(),
            ..Errors::default()
        };
        for e in initial {
            errors.failed.insert(e.row);
            errors.list.push(RowError {
                row: errors.numbering.number(e.row),
                ..e.clone()
            });
        }
        errors
    }

    /// The number people see for a row.
    pub fn number(&self, row: usize) -> usize {
        self.numbering.number(row)
    }

    pub fn add(
        &mut self,
        row: usize,
        key: &Option<String>,
        field: Option<&str>,
        code: RowErrorCode,
        message: impl Into<String>,
    ) {
        self.failed.insert(row);
        self.list.push(RowError {
            row: self.numbering.number(row),
            key: key.clone(),
            field: field.map(str::to_string),
            code,
            message: message.into(),
        });
    }

    pub fn has(&self, row: usize) -> bool {
        self.failed.contains(&row)
    }

    pub fn failed_rows(&self) -> usize {
        self.failed.len()
    }

    /// Finishes the report: errors in row order, failed = rows with an error.
    pub fn into_report(self, report: &mut crate::domain::import::ImportReport) {
        report.failed = self.failed.len();
        report.success = report.failed == 0;
        report.errors = self.list;
        report.errors.sort_by_key(|e| e.row);
    }
}

/// The matching keys (field, value) a request uses, to find the ones it repeats.
/// Only the first row of each key is remembered, so a 100,000-row request costs
/// one map entry per key, not one list per key.
#[derive(Default)]
pub(crate) struct KeyIndex<'a> {
    first: std::collections::HashMap<(&'static str, Cow<'a, str>), usize>,
    repeats: Vec<((&'static str, Cow<'a, str>), usize)>,
}

impl<'a> KeyIndex<'a> {
    pub fn add(&mut self, field: &'static str, value: impl Into<Cow<'a, str>>, row: usize) {
        match self.first.entry((field, value.into())) {
            Entry::Occupied(first) => self.repeats.push((first.key().clone(), row)),
            Entry::Vacant(slot) => {
                slot.insert(row);
            }
        }
    }

    /// Every row sharing a key with another gets `duplicate_key`, naming the others.
    pub fn report_duplicates(&self, errors: &mut Errors, key_of: impl Fn(usize) -> Option<String>) {
        let mut groups: std::collections::HashMap<&(&'static str, Cow<'a, str>), Vec<usize>> =
            std::collections::HashMap::new();
        for (key, row) in &self.repeats {
            groups
                .entry(key)
                .or_insert_with(|| vec![self.first[key]])
                .push(*row);
        }
        for ((field, _), rows) in groups {
            for &row in &rows {
                let others: Vec<String> = rows
                    .iter()
                    .filter(|&&r| r != row)
                    .map(|&r| errors.number(r).to_string())
                    .collect();
                errors.add(
                    row,
                    &key_of(row),
                    Some(field),
                    RowErrorCode::DuplicateKey,
                    format!(
                        "the same {field} appears again in rows {}",
                        others.join(", ")
                    ),
                );
            }
        }
    }
}

/// A text field trimmed, blank meaning "not given", without copying it.
pub(crate) fn cleaned(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(text::trim).filter(|v| !v.is_empty())
}

/// Trims a text field; blank means "not given".
pub(crate) fn clean(value: &Option<String>) -> Option<String> {
    cleaned(value).map(str::to_string)
}

/// Checks a text field's length; reports and returns false when too long.
pub(crate) fn check_len(
    errors: &mut Errors,
    row: usize,
    key_of: &dyn Fn(usize) -> Option<String>,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> bool {
    // Bytes bound characters from above: only long values need counting.
    match value {
        Some(v) if v.len() > max && v.chars().count() > max => {
            errors.add(
                row,
                &key_of(row),
                Some(field),
                RowErrorCode::TooLong,
                format!("{field} is longer than {max} characters"),
            );
            false
        }
        _ => true,
    }
}

/// Counts a changed record in the report and names its event: a record going
/// inactive is a deactivation; any other change an update.
pub(crate) fn count_update(report: &mut ImportReport, was_active: bool, is_active: bool) -> Verb {
    if was_active && !is_active {
        report.deactivated += 1;
        Verb::Deactivated
    } else {
        report.updated += 1;
        Verb::Updated
    }
}

/// What planning a request yields: the report so far, the records to insert and
/// update, and the changes to record.
pub(crate) struct Plan<I, U> {
    pub report: ImportReport,
    pub inserts: Vec<I>,
    pub updates: Vec<U>,
    pub changes: Vec<Change>,
}

/// Imports from this many rows on give the writer's page cache back afterwards.
const LARGE_IMPORT_ROWS: usize = 10_000;

/// What the engine needs of the services inside a transaction.
pub struct ApplyContext {
    pub now: DateTime<Utc>,
    /// `imports.match_in_memory_up_to`.
    pub match_in_memory_up_to: usize,
}

impl ApplyContext {
    pub fn of(svc: &Services) -> Self {
        ApplyContext {
            now: svc.clock.now(),
            match_in_memory_up_to: svc.config.imports.match_in_memory_up_to,
        }
    }
}

type Planner<R, I, U> =
    fn(&Connection, &ImportRequest<R>, DateTime<Utc>) -> Result<Plan<I, U>, AppError>;
type Applier<R, I, U> =
    fn(&Connection, &ImportRequest<R>, &mut Plan<I, U>, &ApplyContext) -> Result<(), AppError>;

/// An all-or-nothing request with row errors applies nothing.
pub(crate) fn reject_whole(all_or_nothing: bool, report: &mut ImportReport) {
    if all_or_nothing && report.failed > 0 && report.not_applied.is_none() {
        report.success = false;
        report.not_applied = Some(crate::domain::import::NotApplied {
            code: NotAppliedCode::RowsRejected,
            message: format!(
                "nothing was applied: this source is all or nothing, and {} row(s) have errors",
                report.failed
            ),
        });
    }
}

/// The engine's one driver. A dry run plans on a read connection and returns the
/// report; otherwise the plan is made and applied in one write transaction with
/// the run's sync logs and change events, so the import happens whole or not at all.
pub(crate) async fn execute<R, I, U>(
    svc: &Services,
    request: ImportRequest<R>,
    operation: SyncOperation,
    plan: Planner<R, I, U>,
    apply: Applier<R, I, U>,
    finish: Option<Finish>,
) -> Result<ImportReport, AppError>
where
    R: crate::domain::import::ImportedResource + Send + Sync + 'static,
    I: Send + 'static,
    U: Send + 'static,
{
    let context = ApplyContext::of(svc);
    if request.dry_run {
        return svc
            .db
            .read(move |conn| {
                let mut report = plan(conn, &request, context.now)?.report;
                reject_whole(request.all_or_nothing, &mut report);
                Ok(report)
            })
            .await;
    }
    let large = request.rows.len() >= LARGE_IMPORT_ROWS;
    let source = request.source.kind.sync_type();
    let outcome = svc
        .db
        .write(move |txn| execute_in(txn, request, operation, plan, apply, finish, &context))
        .await;
    if large {
        svc.db.release_writer_cache();
    }
    if let Ok(report) = &outcome {
        svc.import_committed(source, report);
    }
    outcome
}

/// The engine inside a write transaction the caller owns: SCIM reads the
/// resource, works out the row and imports it in one transaction, so a
/// concurrent change cannot slip between the read and the write. The caller
/// commits, then records the run's metrics.
pub(crate) fn execute_in<R: crate::domain::import::ImportedResource, I, U>(
    txn: &Connection,
    request: ImportRequest<R>,
    operation: SyncOperation,
    plan: Planner<R, I, U>,
    apply: Applier<R, I, U>,
    finish: Option<Finish>,
    context: &ApplyContext,
) -> Result<ImportReport, AppError> {
    crate::store::enterprises::get(txn, request.enterprise)?.ok_or(AppError::NotFound {
        resource: "enterprise",
    })?;
    let started = std::time::Instant::now();
    let mut planned = plan(txn, &request, context.now)?;
    // The plan owns what it writes; the rows' memory goes back before
    // SQLite's page cache grows through the apply.
    let mut request = request;
    request.rows = Vec::new();
    let planned_at = std::time::Instant::now();
    reject_whole(request.all_or_nothing, &mut planned.report);
    if planned.report.not_applied.is_none() {
        apply(txn, &request, &mut planned, context)?;
    } else {
        planned.changes.clear();
    }
    let applied_at = std::time::Instant::now();
    let run = run::record(
        txn,
        &request,
        operation,
        &planned.report,
        &planned.changes,
        context.now,
    )?;
    planned.report.sync_log_id = Some(run.run_id);
    if let Some(finish) = finish.filter(|_| planned.report.not_applied.is_none()) {
        finish(txn, &planned.report)?;
    }
    let report = &planned.report;
    tracing::info!(
        enterprise = %request.enterprise,
        operation = operation.as_str(),
        rows = report.total_processed,
        created = report.created,
        updated = report.updated,
        deactivated = report.deactivated,
        unchanged = report.unchanged,
        failed = report.failed,
        plan_ms = (planned_at - started).as_millis() as u64,
        apply_ms = (applied_at - planned_at).as_millis() as u64,
        record_ms = applied_at.elapsed().as_millis() as u64,
        "import applied; committing"
    );
    Ok(planned.report)
}
