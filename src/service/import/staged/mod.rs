//! The users import engine, the one every source goes through: REST bodies,
//! SCIM writes, drop files read whole or streamed, the operator's import.
//! Rows go into a staging table inside the import's write transaction (a
//! file's rows stream in, never all in memory), then are matched, checked and
//! classified by set-based statements (`store::import_staging`) in the
//! engine's phases: row checks (`users/rows.rs`) → repeated keys → match →
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
    self as staging, Flagged, IndexedKeys, ManagerRefusal, StagedRow,
};
use crate::AppError;

pub use crate::domain::import::{RowProblem, RowStream, SourceRow};

mod body;
mod parse_ahead;
mod people;
mod phases;
mod seen_keys;
mod stage;
mod unchanged;

pub use body::import_users_parsing;
use people::People;
use seen_keys::SeenKeys;
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
    pub(crate) fn bulk(&self) -> bool {
        self.expected_rows.is_none_or(|rows| rows >= BULK_ROWS)
    }

    /// Whether this is a bulk import of rows the process holds already (a
    /// request body): they bound its size, so the writer's cache may widen
    /// to what it writes (`staging::with_cache_for_writing`). A stream writes
    /// with a narrower one (`staging::with_cache_for_streaming`), which bounds
    /// its memory.
    fn holds_bulk_rows(&self) -> bool {
        self.expected_rows.is_some() && self.bulk()
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

    /// Whether rows that change nothing are recognised before staging (see
    /// `unchanged`): in large imports that may match people. A create-only
    /// import refuses matched rows; SCIM writes one row at a time.
    fn filters_unchanged(&self, staff: i64) -> bool {
        self.bulk()
            && staff > 0
            && self.mode != ImportMode::CreateOnly
            && self.source.kind != SourceKind::Scim
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
    let import = move |txn: &rusqlite::Transaction<'_>| {
        import_in(txn, &request, rows, operation, finish, now, None)
    };
    // A bulk import's WAL is synced as it is written (`Db::write_large`).
    let outcome = if bulk {
        svc.db.write_large(import).await
    } else {
        svc.db.write(import).await
    };
    settle_outcome(svc, outcome, bulk, source)
}

/// After the transaction: the writer's cache given back after a bulk import,
/// the metrics of a committed one.
fn settle_outcome(
    svc: &Services,
    outcome: Result<ImportReport, AppError>,
    bulk: bool,
    source: &'static str,
) -> Result<StagedOutcome, AppError> {
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
/// `early` are people read in this transaction before the rows were parsed.
pub(crate) fn import_in(
    txn: &Connection,
    request: &StagedRequest,
    rows: RowStream,
    operation: SyncOperation,
    finish: Option<Finish>,
    now: chrono::DateTime<Utc>,
    early: Option<People>,
) -> Result<ImportReport, AppError> {
    let outcome = run_staged(txn, request, rows, operation, finish, now, early);
    // A bulk import's staged rows are emptied after its commit, off its
    // answer's path (`Db::release_writer_cache`, which its callers call); a
    // failed one's go with its rollback.
    if request.bulk() {
        return outcome;
    }
    // The staging table's pages go back whatever happened.
    let mut cleared = staging::clear(txn);
    if request.full_export.is_some() {
        cleared = cleared.and(staging::clear_leaver_candidates(txn));
    }
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
/// time goes is what an operator tuning it needs). Written out only when the
/// line is: a one-row SCIM write runs a dozen steps on the single writer.
struct Laps {
    last: std::time::Instant,
    steps: Vec<(&'static str, u128)>,
}

impl Laps {
    fn new() -> Self {
        Laps {
            last: std::time::Instant::now(),
            steps: Vec::with_capacity(12),
        }
    }

    fn mark(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        self.steps.push((step, (now - self.last).as_millis()));
        self.last = now;
    }
}

impl std::fmt::Display for Laps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (step, ms)) in self.steps.iter().enumerate() {
            let gap = if i == 0 { "" } else { " " };
            write!(f, "{gap}{step}={ms}")?;
        }
        Ok(())
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
    early: Option<People>,
) -> Result<ImportReport, AppError> {
    let enterprise = request.enterprise;
    let (seats_purchased, _) =
        store::enterprises::seats(txn, enterprise)?.ok_or(AppError::NotFound {
            resource: "enterprise",
        })?;
    let staff = store::users::staff_counts(txn, enterprise)?;
    let started = std::time::Instant::now();
    let mut laps = Laps::new();
    // People read while the rows were still being parsed serve if they are
    // what this request stages with (they were read in this transaction).
    let people = match early.filter(|people| people.serve(request, staff.total)) {
        Some(people) => people,
        None => {
            let people = People::read(
                txn,
                enterprise,
                staff.total,
                request.filters_unchanged(staff.total),
                request.matches_in_memory(staff.total),
            )?;
            if staff.total > 0 && people.read_any() {
                laps.mark("people");
            }
            people
        }
    };
    staging::create(txn, request.bulk())?;
    let Prepared {
        total,
        errors,
        seen,
        manager_references,
        keys,
        complete_rows,
        matched,
        indexed,
        unchanged,
        leavers,
        ignored_fields,
    } = stage(txn, request, rows, people)?;
    laps.mark("stage");
    let staged_at = std::time::Instant::now();
    let mut failures = Failures {
        conn: txn,
        errors,
        limit: request.error_limit(),
    };

    phases::repeated_keys(&mut failures, txn, &seen)?;
    laps.mark("duplicates");
    if matched {
        if failures.errors.failed_rows() > 0 {
            staging::unmatch_failed(txn)?;
        }
        staging::merge_matched(txn)?;
    } else {
        staging::match_people(txn, enterprise, keys)?;
    }
    laps.mark("match");
    let staged = phases::StagedKeys {
        given_ids: keys.ids,
        complete_rows,
    };
    phases::validate(&mut failures, txn, request, staged)?;
    laps.mark("validate");
    phases::references(&mut failures, txn, enterprise, manager_references)?;
    laps.mark("references");
    phases::seats(
        &mut failures,
        txn,
        request,
        staff.active,
        seats_purchased,
        total,
        leavers,
    )?;
    laps.mark("seats");
    let named = phases::Named {
        unchanged,
        leavers,
        active_staff: staff.active,
    };
    let (mut report, with_leavers) = phases::diff(failures, txn, request, total, named)?;
    // The source's findings come before the adapter's notes, as a body read
    // whole lists them.
    if let Some(warning) = crate::domain::import_body::ignored_fields_warning(&ignored_fields) {
        report.warnings.insert(0, warning);
    }
    laps.mark("diff");
    let planned_at = std::time::Instant::now();
    if request.dry_run {
        tracing::info!(
            %enterprise,
            operation = operation.as_str(),
            rows = report.total_processed,
            steps = %laps,
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
        // The people written, not the rows read: a re-sync changing a tenth
        // of its rows needs no wider cache than the writer's.
        let written = report.created + report.updated + report.deactivated;
        let mut write_changes = || -> Result<(), AppError> {
            let mut batches = BatchWriter::new(txn, enterprise, &run.run_id, now);
            let writes =
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
                writes,
                indexed,
                now,
                &mut |step| laps.mark(step),
            )?;
            Ok(())
        };
        if request.holds_bulk_rows() {
            staging::with_cache_for_writing(txn, written, &mut write_changes)?;
        } else if request.bulk() {
            staging::with_cache_for_streaming(txn, &mut write_changes)?;
        } else {
            write_changes()?;
        }
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
        steps = %laps,
        "staged import applied; committing"
    );
    Ok(report)
}
