//! The users import engine, the one every source goes through: REST bodies,
//! SCIM writes, drop files read whole or streamed, the operator's import.
//! Rows go into a staging table inside the import's write transaction (a
//! file's rows stream in, never all in memory), then are matched, checked and
//! classified by set-based statements (`store::import_staging`) in the
//! planner's phases: row checks (`users/rows.rs`) → repeated keys → match →
//! people it must not touch, taken keys, mode → stores and required fields →
//! managers → seats → diff → full-export guard → write. The run entry and its
//! change batches are written by the `run` module. `tests/it/one_engine.rs`
//! runs one table of cases through every source.

use crate::domain::import::SyncOperation;
use chrono::Utc;
use rusqlite::Connection;

use super::run::{self, BatchWriter, RunMeta, Verb};
use super::users::{row_checks, RowView};
use super::{Errors, Finish, FullExport, RowNumbering};
use crate::domain::import::{
    ImportMode, ImportReport, ImportSource, RowError, RowErrorCode, SourceKind,
};
use crate::domain::{EnterpriseId, Role};
use crate::service::Services;
use crate::store;
use crate::store::import_staging::{
    self as staging, Flagged, ManagerRefusal, OrderedKeys, StagedRow,
};
use crate::AppError;

pub use crate::domain::import::{RowProblem, RowStream, SourceRow};

mod stage;

use stage::{stage, Prepared};

pub struct StagedRequest {
    pub enterprise: EnterpriseId,
    pub source: ImportSource,
    pub mode: ImportMode,
    /// Adapter findings that are not row errors (columns ignored, …).
    pub warnings: Vec<String>,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub full_export: Option<FullExport>,
    pub all_or_nothing: bool,
    /// Plan and report only: nothing is written, no run is recorded (the
    /// staging table is the connection's temporary storage).
    pub dry_run: bool,
    /// Most rows accepted; more refuse the source.
    pub max_rows: usize,
    /// Enterprises with at most this many people are matched in memory while
    /// rows are staged; larger ones by a pass over the staging table.
    pub match_in_memory_up_to: usize,
    /// How reports number the rows.
    pub numbering: RowNumbering,
    /// Rows the adapter could already not read (their index in the stream).
    pub row_errors: Vec<RowError>,
    /// Give each newly created, active user an invitation to set a password.
    pub invite_new_users: bool,
    /// How many rows come, when the adapter holds them all already (a REST
    /// body, a SCIM write); `None` for a stream of unknown length.
    pub expected_rows: Option<usize>,
}

impl StagedRequest {
    /// Whether the import is large enough for bulk ways (indexes built after
    /// the rows are in, a reader thread, the writer's cache given back).
    fn bulk(&self) -> bool {
        self.expected_rows.is_none_or(|rows| rows >= BULK_ROWS)
    }

    /// Whether rows are matched to people in memory while staged: only when
    /// the enterprise is small enough, and the request names a good part of
    /// it (a single SCIM write probes the indexes instead of reading everyone).
    fn matches_in_memory(&self, staff: i64) -> bool {
        let staff = usize::try_from(staff).unwrap_or(usize::MAX);
        staff <= self.match_in_memory_up_to
            && self
                .expected_rows
                .is_none_or(|rows| rows.saturating_mul(MATCH_IN_MEMORY_FROM_FRACTION) >= staff)
    }
}

/// Imports of this many rows on take the bulk ways.
const BULK_ROWS: usize = 10_000;
/// A request with at least 1/4 as many rows as the enterprise has people
/// reads them all at once rather than probing for each row.
const MATCH_IN_MEMORY_FROM_FRACTION: usize = 4;

/// How a staged import ended.
pub enum StagedOutcome {
    Applied(ImportReport),
    /// The source could not be read through (the reason names the record).
    Unreadable(String),
}

/// Rows staged per insert batch.
const STAGE_BATCH: usize = 4096;
/// Row errors kept beyond which the source is refused as a whole: a file this
/// wrong is the wrong file, and the list must not grow without bound.
pub const MAX_ROW_ERRORS: usize = 100_000;

const UNREADABLE: &str = "unreadable_source";

/// Imports users from `rows` in one write transaction.
pub async fn import_users(
    svc: &Services,
    request: StagedRequest,
    rows: RowStream,
    operation: SyncOperation,
    finish: Option<Finish>,
) -> Result<StagedOutcome, AppError> {
    let now = svc.clock.now();
    let source = request.source.kind.sync_type();
    let bulk = request.bulk();
    let outcome = svc
        .db
        .write(move |txn| import_in(txn, &request, rows, operation, finish, now))
        .await;
    if bulk {
        svc.db.release_writer_cache();
    }
    match outcome {
        Ok(report) => {
            if !report.dry_run {
                svc.import_committed(source, &report);
            }
            Ok(StagedOutcome::Applied(report))
        }
        Err(AppError::BadRequest {
            code: UNREADABLE,
            message,
        }) => Ok(StagedOutcome::Unreadable(message)),
        Err(other) => Err(other),
    }
}

/// Imports users inside the caller's write transaction (SCIM reads, imports
/// and reads again in one). The caller commits and records the metrics.
pub(crate) fn import_in(
    txn: &Connection,
    request: &StagedRequest,
    rows: RowStream,
    operation: SyncOperation,
    finish: Option<Finish>,
    now: chrono::DateTime<Utc>,
) -> Result<ImportReport, AppError> {
    let outcome = run_staged(txn, request, rows, operation, finish, now);
    // The staging table's pages go back whatever happened.
    let cleared = staging::clear(txn);
    let report = outcome?;
    cleared?;
    Ok(report)
}

/// Refuses a streamed source once its errors pass `limit`.
fn too_many_errors(errors: &Errors, limit: usize) -> Result<(), AppError> {
    if errors.list.len() > limit {
        return Err(unreadable(format!(
            "more than {limit} row errors: is it the right file, and does the profile map its columns?"
        )));
    }
    Ok(())
}

impl StagedRequest {
    /// Most row errors kept: a stream's list must not grow without bound,
    /// while rows the adapter holds already bound their own errors.
    fn error_limit(&self) -> usize {
        match self.expected_rows {
            Some(_) => usize::MAX,
            None => MAX_ROW_ERRORS,
        }
    }
}

fn unreadable(message: String) -> AppError {
    AppError::BadRequest {
        code: UNREADABLE,
        message,
    }
}

/// How long each step took, for the run's log line (where a large import's
/// time goes is what an operator tuning it needs).
struct Laps {
    last: std::time::Instant,
    text: String,
}

impl Laps {
    fn new() -> Self {
        Laps {
            last: std::time::Instant::now(),
            text: String::new(),
        }
    }

    fn mark(&mut self, step: &str) {
        let now = std::time::Instant::now();
        let ms = (now - self.last).as_millis();
        self.text.push_str(&format!("{step}={ms} "));
        self.last = now;
    }
}

/// Rows marked failed in the staging table as their errors are recorded.
struct Failures<'c> {
    conn: &'c Connection,
    errors: Errors,
    limit: usize,
}

impl Failures<'_> {
    fn add(
        &mut self,
        flagged: &Flagged,
        field: &str,
        code: RowErrorCode,
        message: String,
    ) -> Result<(), AppError> {
        self.errors
            .add(flagged.row, &flagged.key, Some(field), code, message);
        staging::mark_failed(self.conn, flagged.row)?;
        too_many_errors(&self.errors, self.limit)
    }

    fn add_all(
        &mut self,
        flagged: Vec<Flagged>,
        field: &str,
        code: RowErrorCode,
        message: impl Fn(&Flagged) -> String,
    ) -> Result<usize, AppError> {
        let count = flagged.len();
        for f in &flagged {
            self.add(f, field, code, message(f))?;
        }
        Ok(count)
    }
}

/// Invites every active user the import created to set a password. The
/// token is issued when the email goes out: the outbox never holds a link.
fn invite_created(
    txn: &Connection,
    enterprise: EnterpriseId,
    now: chrono::DateTime<Utc>,
) -> Result<usize, AppError> {
    let mut invited = 0;
    staging::each_created_active(txn, |id, email| {
        let id = id
            .parse()
            .map_err(|_| AppError::Internal(format!("a staged user id is not an id: {id}")))?;
        crate::service::emails::queue_invitation(txn, enterprise, id, email, now)?;
        invited += 1;
        Ok(())
    })?;
    Ok(invited)
}

fn run_staged(
    txn: &Connection,
    request: &StagedRequest,
    rows: RowStream,
    operation: SyncOperation,
    finish: Option<Finish>,
    now: chrono::DateTime<Utc>,
) -> Result<ImportReport, AppError> {
    let enterprise = request.enterprise;
    let account = store::enterprises::get(txn, enterprise)?.ok_or(AppError::NotFound {
        resource: "enterprise",
    })?;
    let staff = store::users::staff_counts(txn, enterprise)?;
    let started = std::time::Instant::now();
    staging::create(txn, request.bulk())?;
    let mut laps = Laps::new();
    let Prepared {
        total,
        errors,
        seen,
        manager_references,
        matched,
        ordered,
    } = stage(txn, request, rows, request.matches_in_memory(staff.total))?;
    laps.mark("stage");
    let staged_at = std::time::Instant::now();
    let mut failures = Failures {
        conn: txn,
        errors,
        limit: request.error_limit(),
    };

    // Keys given twice: every row involved is reported, naming the others.
    // Staging kept the keys a filter had seen before; only those are looked up.
    if !seen.repeated_external_ids.is_empty() || !seen.repeated_emails.is_empty() {
        let external_ids: Vec<&str> = seen
            .repeated_external_ids
            .iter()
            .map(String::as_str)
            .collect();
        let emails: Vec<&str> = seen.repeated_emails.iter().map(String::as_str).collect();
        let found = staging::rows_with_keys(txn, &external_ids, &emails)?;
        for (column, field) in [("external_id", 1), ("email", 2)] {
            let mut groups: std::collections::BTreeMap<&str, Vec<&Flagged>> = Default::default();
            for (flagged, external_id, email) in &found {
                let value = if field == 1 { external_id } else { email };
                let wanted = if field == 1 {
                    &seen.repeated_external_ids
                } else {
                    &seen.repeated_emails
                };
                if let Some(value) = value.as_deref().filter(|v| wanted.contains(*v)) {
                    groups.entry(value).or_default().push(flagged);
                }
            }
            for group in groups.values().filter(|g| g.len() > 1) {
                for member in group {
                    let others: Vec<String> = group
                        .iter()
                        .filter(|other| other.row != member.row)
                        .map(|other| failures.errors.number(other.row).to_string())
                        .collect();
                    failures.add(
                        member,
                        column,
                        RowErrorCode::DuplicateKey,
                        format!(
                            "the same {column} appears again in rows {}",
                            others.join(", ")
                        ),
                    )?;
                }
            }
        }
    }
    laps.mark("duplicates");
    if matched {
        staging::merge_matched(txn)?;
    } else {
        staging::match_people(txn, enterprise)?;
    }
    laps.mark("match");
    failures.add_all(
        staging::matching_admins(txn)?,
        "email",
        RowErrorCode::ForbiddenRole,
        |_| "this row matches an IT administrator, which imports never change".into(),
    )?;
    failures.add_all(
        staging::external_ids_taken(txn, enterprise)?,
        "external_id",
        RowErrorCode::ExternalIdTaken,
        |f| {
            format!(
                "external id {:?} already belongs to another user",
                f.value.as_deref().unwrap_or_default()
            )
        },
    )?;
    failures.add_all(
        staging::emails_taken(txn, enterprise)?,
        "email",
        RowErrorCode::EmailTaken,
        |f| {
            format!(
                "{} already belongs to another user",
                f.value.as_deref().unwrap_or_default()
            )
        },
    )?;
    match request.mode {
        ImportMode::CreateOnly => {
            failures.add_all(
                staging::by_match(txn, true)?,
                "external_id",
                RowErrorCode::AlreadyExists,
                |_| "this user exists and the mode is create_only".into(),
            )?;
        }
        ImportMode::UpdateOnly => {
            failures.add_all(
                staging::by_match(txn, false)?,
                "external_id",
                RowErrorCode::NotFound,
                |_| "no such user and the mode is update_only".into(),
            )?;
        }
        ImportMode::CreateOrUpdate => {}
    }
    laps.mark("admins_emails_mode");
    // A store that exists, what a new user needs, a seller's store: one scan,
    // each row's first problem in the planner's order.
    let sellers_need_store = request.source.kind != SourceKind::Scim;
    for problem in staging::store_and_field_problems(txn, sellers_need_store)? {
        let flagged = &problem.row;
        if let Some(reference) = &problem.unknown_store {
            failures.add(
                flagged,
                "store_id",
                RowErrorCode::UnknownStore,
                format!("no store {reference:?} in this enterprise"),
            )?;
        } else if !problem.missing.is_empty() {
            for field in problem.missing {
                failures.errors.add(
                    flagged.row,
                    &flagged.key,
                    Some(field),
                    RowErrorCode::Required,
                    format!("{field} is required to create a user"),
                );
            }
            staging::mark_failed(txn, flagged.row)?;
            too_many_errors(&failures.errors, failures.limit)?;
        } else if problem.seller_without_store {
            failures.add(
                flagged,
                "store_id",
                RowErrorCode::StoreRequired,
                "a seller needs a store".into(),
            )?;
        }
    }
    laps.mark("stores_fields");
    if manager_references {
        staging::index_next_keys(txn)?;
        // A refused manager row fails the rows naming it: until nothing changes.
        loop {
            let refused = staging::resolve_managers(txn, enterprise)?;
            if refused.is_empty() {
                break;
            }
            for (flagged, why) in refused {
                let reference = flagged.value.clone().unwrap_or_default();
                let (code, message) = match why {
                    ManagerRefusal::Unknown => (
                        RowErrorCode::UnknownManager,
                        format!("no manager {reference:?} in this enterprise"),
                    ),
                    ManagerRefusal::Themselves => (
                        RowErrorCode::NotAManager,
                        "a user cannot be their own manager".to_string(),
                    ),
                    ManagerRefusal::NotAManager => (
                        RowErrorCode::NotAManager,
                        format!("{reference:?} is not a manager"),
                    ),
                };
                failures.add(&flagged, "manager_id", code, message)?;
            }
        }
    }
    laps.mark("managers");
    failures.add_all(
        staging::demoted_managers_with_staff(txn, enterprise)?,
        "role",
        RowErrorCode::ManagerHasStaff,
        |_| "this manager still manages staff; reassign them first".into(),
    )?;
    laps.mark("demoted");
    // Seats: activations in row order, after the file's own deactivations
    // and a full export's leavers.
    let freed = if request.full_export.is_some() {
        staging::unnamed_active(txn, enterprise)?
    } else {
        0
    };
    let active_after = usize::try_from(staff.active)
        .unwrap_or(0)
        .saturating_sub(staging::deactivating(txn)? + freed);
    let seats = usize::try_from(account.seats_purchased).unwrap_or(0);
    let allowed = seats.saturating_sub(active_after);
    // At most every valid row activates someone: within that, nothing to check.
    if allowed < total - failures.errors.failed_rows() {
        failures.add_all(
            staging::activations_beyond(txn, allowed)?,
            "active",
            RowErrorCode::SeatLimitReached,
            |_| format!("all {seats} purchased seats are in use"),
        )?;
    }
    laps.mark("seats");
    staging::classify(txn)?;
    laps.mark("classify");
    let planned_at = std::time::Instant::now();

    let Failures { errors, .. } = failures;
    let totals = staging::totals(txn, total - errors.failed_rows())?;
    let mut report = ImportReport {
        total_processed: total,
        dry_run: request.dry_run,
        created: totals.created,
        updated: totals.updated,
        unchanged: totals.unchanged,
        deactivated: totals.deactivated,
        warnings: request.warnings.clone(),
        ..ImportReport::default()
    };
    let failed_rows = errors.failed_rows();
    errors.into_report(&mut report);
    let mut with_leavers = false;
    if let Some(full) = &request.full_export {
        let (leavers, active_staff) = staging::leaver_counts(txn, enterprise)?;
        match super::users::full_export_guard(full, failed_rows, leavers, active_staff, total) {
            Ok(()) => {
                report.deactivated += leavers;
                with_leavers = true;
            }
            Err(not_applied) => {
                // What the held file would do, for the admin who approves it.
                report.deactivated += leavers;
                report.not_applied = Some(not_applied);
            }
        }
    }
    super::reject_whole(request.all_or_nothing, &mut report);
    if report.not_applied.is_some() {
        report.success = false;
    }
    laps.mark("totals_guard");
    if request.dry_run {
        tracing::info!(
            %enterprise,
            operation = operation.as_str(),
            rows = report.total_processed,
            steps = laps.text.trim_end(),
            "staged dry run planned; nothing written"
        );
        return Ok(report);
    }
    let meta = RunMeta {
        enterprise,
        resource_type: "user",
        source: &request.source,
        details: &request.details,
    };
    let run = run::record_entry(txn, &meta, operation, &report, now)?;
    if report.not_applied.is_none() {
        let mut batches = BatchWriter::new(txn, enterprise, &run.run_id, now);
        staging::each_change(txn, enterprise, with_leavers, |verb, id, external| {
            let (verb, event_type) = match verb {
                "created" => (Verb::Created, "user.created"),
                "deactivated" => (Verb::Deactivated, "user.deactivated"),
                _ => (Verb::Updated, "user.updated"),
            };
            batches.push(verb, event_type, id, external)
        })?;
        batches.finish()?;
        laps.mark("events");
        let sync_mode = request.source.kind.record_sync_mode();
        staging::apply(
            txn,
            enterprise,
            sync_mode,
            with_leavers,
            report.created,
            ordered,
            now,
        )?;
        laps.mark("apply");
        if request.invite_new_users {
            report.invited = invite_created(txn, enterprise, now)?;
        }
        // Seat use as the run leaves it.
        crate::service::alerts::check_seats(txn, enterprise, now)?;
    }
    report.sync_log_id = Some(run.run_id);
    if let Some(finish) = finish.filter(|_| report.not_applied.is_none()) {
        finish(txn, &report)?;
    }
    tracing::info!(
        %enterprise,
        operation = operation.as_str(),
        rows = report.total_processed,
        created = report.created,
        updated = report.updated,
        deactivated = report.deactivated,
        unchanged = report.unchanged,
        failed = report.failed,
        stage_ms = (staged_at - started).as_millis() as u64,
        plan_ms = (planned_at - staged_at).as_millis() as u64,
        apply_ms = planned_at.elapsed().as_millis() as u64,
        steps = laps.text.trim_end(),
        "staged import applied; committing"
    );
    Ok(report)
}
