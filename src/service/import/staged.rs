//! The engine's staged mode, for users files too large to hold in memory (a
//! million-row HR export): rows stream from the adapter into a staging table
//! inside the import's write transaction, and the same rules as the in-memory
//! planner (`users.rs`, `user_rules.rs`) run as set-based statements over it
//! (`store::import_staging`). Row-local checks are the planner's own
//! functions; the full-export guard is shared; the run entry and its change
//! batches are written by the same `run` module. The parity test in
//! `tests/it/staged_import.rs` runs the same requests through both modes.

use crate::domain::import::SyncOperation;
use chrono::Utc;
use rusqlite::Connection;

use super::run::{self, BatchWriter, RunMeta, Verb};
use super::users::{row_checks, RowView};
use super::{Errors, Finish, FullExport, RowNumbering};
use crate::domain::import::{ImportMode, ImportReport, ImportSource};
use crate::domain::{EnterpriseId, Role};
use crate::service::Services;
use crate::store;
use crate::store::import_staging::{self as staging, Flagged, OrderedKeys, StagedRow};
use crate::AppError;

pub use crate::domain::import::{RowProblem, RowStream, SourceRow};

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
}

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
    let outcome = svc
        .db
        .write(move |txn| {
            let outcome = run_staged(txn, &request, rows, operation, finish, now);
            // The staging table's pages go back whatever happened.
            let cleared = staging::clear(txn);
            let report = outcome?;
            cleared?;
            Ok(report)
        })
        .await;
    svc.db.release_writer_cache();
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

/// Refuses the source once its errors pass [`MAX_ROW_ERRORS`].
fn too_many_errors(errors: &Errors) -> Result<(), AppError> {
    if errors.list.len() > MAX_ROW_ERRORS {
        return Err(unreadable(format!(
            "more than {MAX_ROW_ERRORS} row errors: is it the right file, and does the profile map its columns?"
        )));
    }
    Ok(())
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
}

impl Failures<'_> {
    fn add(
        &mut self,
        flagged: &Flagged,
        field: &str,
        code: &'static str,
        message: String,
    ) -> Result<(), AppError> {
        self.errors
            .add(flagged.row, &flagged.key, Some(field), code, message);
        staging::mark_failed(self.conn, flagged.row)?;
        too_many_errors(&self.errors)
    }

    fn add_all(
        &mut self,
        flagged: Vec<Flagged>,
        field: &str,
        code: &'static str,
        message: impl Fn(&Flagged) -> String,
    ) -> Result<usize, AppError> {
        let count = flagged.len();
        for f in &flagged {
            self.add(f, field, code, message(f))?;
        }
        Ok(count)
    }
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
    staging::create(txn)?;
    let mut laps = Laps::new();
    let Prepared {
        total,
        errors,
        seen,
        manager_references,
        matched,
        ordered,
    } = stage(
        txn,
        enterprise,
        rows,
        request.max_rows,
        usize::try_from(staff.total).unwrap_or(usize::MAX) <= request.match_in_memory_up_to,
    )?;
    laps.mark("stage");
    let staged_at = std::time::Instant::now();
    let mut failures = Failures { conn: txn, errors };

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
                        "duplicate_key",
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
        staging::index_matches(txn)?;
    } else {
        staging::match_people(txn, enterprise)?;
    }
    laps.mark("match");
    failures.add_all(
        staging::matching_admins(txn)?,
        "email",
        "forbidden_role",
        |_| "this row matches an IT administrator, which imports never change".into(),
    )?;
    failures.add_all(
        staging::emails_taken(txn, enterprise)?,
        "email",
        "email_taken",
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
                "already_exists",
                |_| "this user exists and the mode is create_only".into(),
            )?;
        }
        ImportMode::UpdateOnly => {
            failures.add_all(
                staging::by_match(txn, false)?,
                "external_id",
                "not_found",
                |_| "no such user and the mode is update_only".into(),
            )?;
        }
        ImportMode::CreateOrUpdate => {}
    }
    laps.mark("admins_emails_mode");
    staging::compute_next(txn)?;
    laps.mark("next");
    // A store that exists, what a new user needs, a seller's store: one scan,
    // each row's first problem in the planner's order.
    for problem in staging::store_and_field_problems(txn)? {
        let flagged = &problem.row;
        if let Some(reference) = &problem.unknown_store {
            failures.add(
                flagged,
                "store_id",
                "unknown_store",
                format!("no store {reference:?} in this enterprise"),
            )?;
        } else if !problem.missing.is_empty() {
            for field in problem.missing {
                failures.errors.add(
                    flagged.row,
                    &flagged.key,
                    Some(field),
                    "required",
                    format!("{field} is required to create a user"),
                );
            }
            staging::mark_failed(txn, flagged.row)?;
            too_many_errors(&failures.errors)?;
        } else if problem.seller_without_store {
            failures.add(
                flagged,
                "store_id",
                "store_required",
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
                    "unknown_manager" => (
                        "unknown_manager",
                        format!("no manager {reference:?} in this enterprise"),
                    ),
                    "self" => (
                        "not_a_manager",
                        "a user cannot be their own manager".to_string(),
                    ),
                    _ => ("not_a_manager", format!("{reference:?} is not a manager")),
                };
                failures.add(&flagged, "manager_id", code, message)?;
            }
        }
    }
    laps.mark("managers");
    failures.add_all(
        staging::demoted_managers_with_staff(txn, enterprise)?,
        "role",
        "manager_has_staff",
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
            "seat_limit_reached",
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
        match super::user_rules::full_export_guard(full, failed_rows, leavers, active_staff, total)
        {
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

/// The enterprise's stores by the references rows use: our id or the external id.
struct StoreIndex {
    ids: std::collections::HashSet<String>,
    by_external: std::collections::HashMap<String, String>,
}

impl StoreIndex {
    fn load(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Self> {
        let stores = store::stores::all_for_enterprise(conn, enterprise)?;
        Ok(StoreIndex {
            ids: stores.iter().map(|s| s.id.to_string()).collect(),
            by_external: stores
                .iter()
                .filter_map(|s| s.external_id.clone().map(|e| (e, s.id.to_string())))
                .collect(),
        })
    }

    fn resolve(&self, reference: &str) -> Option<String> {
        reference
            .parse::<crate::domain::StoreId>()
            .ok()
            .map(|id| id.to_string())
            .filter(|id| self.ids.contains(id))
            .or_else(|| self.by_external.get(reference).cloned())
    }
}

/// Keys seen while staging: a Bloom filter over every external id and email
/// (4 MiB, whatever the file), and the keys it had (maybe) seen before — the
/// only ones the repeated-key check then looks up.
struct SeenKeys {
    bits: Vec<u64>,
    repeated_external_ids: std::collections::HashSet<String>,
    repeated_emails: std::collections::HashSet<String>,
}

impl SeenKeys {
    const BITS: usize = 1 << 25;

    fn new() -> Self {
        SeenKeys {
            bits: vec![0; Self::BITS / 64],
            repeated_external_ids: Default::default(),
            repeated_emails: Default::default(),
        }
    }

    /// Records a key; answers whether it may have been seen before.
    fn insert(&mut self, kind: u8, key: &str) -> bool {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        hasher.write_u8(kind);
        hasher.write(key.as_bytes());
        let hash = hasher.finish();
        let (a, b) = (hash as u32 as usize, (hash >> 32) as usize);
        let mut seen = true;
        for i in 0..3usize {
            let bit = a.wrapping_add(i.wrapping_mul(b)) % Self::BITS;
            let (word, mask) = (bit / 64, 1u64 << (bit % 64));
            seen &= self.bits[word] & mask != 0;
            self.bits[word] |= mask;
        }
        seen
    }

    fn add(&mut self, external_id: Option<&str>, email: Option<&str>) {
        if let Some(key) = external_id {
            if self.insert(0, key) {
                self.repeated_external_ids.insert(key.to_string());
            }
        }
        if let Some(key) = email {
            if self.insert(1, key) {
                self.repeated_emails.insert(key.to_string());
            }
        }
    }
}

/// What the preparing thread learnt of the rows.
struct Prepared {
    total: usize,
    errors: Errors,
    seen: SeenKeys,
    /// Whether any row names a manager.
    manager_references: bool,
    /// Whether rows were matched to people while prepared.
    matched: bool,
    ordered: OrderedKeys,
}

/// Tracks whether a key column's values come in strictly increasing order.
struct Ascending {
    last: Option<String>,
    holds: bool,
}

impl Ascending {
    fn new() -> Self {
        Ascending {
            last: None,
            holds: true,
        }
    }

    fn see(&mut self, value: Option<&str>) {
        let Some(value) = value.filter(|_| self.holds) else {
            return;
        };
        if self.last.as_deref().is_some_and(|last| last >= value) {
            self.holds = false;
        } else {
            self.last = Some(value.to_string());
        }
    }
}

/// A small enterprise's people by the keys rows match them by, so rows are
/// matched as they are prepared rather than by a pass over the staging table.
struct PeopleIndex {
    by_external: std::collections::HashMap<String, String>,
    by_email: std::collections::HashMap<String, String>,
}

impl PeopleIndex {
    fn load(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Self> {
        let people = store::users::people(conn, enterprise)?;
        Ok(PeopleIndex {
            by_external: people
                .iter()
                .filter_map(|p| p.external_id.clone().map(|e| (e, p.id.to_string())))
                .collect(),
            by_email: people
                .iter()
                .map(|p| (p.email.clone(), p.id.to_string()))
                .collect(),
        })
    }

    /// By external id when the row has one, else by email.
    fn find(&self, external_id: Option<&str>, email: Option<&str>) -> Option<String> {
        match (external_id, email) {
            (Some(external), _) => self.by_external.get(external).cloned(),
            (None, Some(email)) => self.by_email.get(email).cloned(),
            (None, None) => None,
        }
    }
}

/// Turns source rows into staging rows: the checks a row passes on its own,
/// the store resolved, the keys recorded, our id for the row.
fn prepare(
    rows: RowStream,
    stores: StoreIndex,
    people: Option<PeopleIndex>,
    max_rows: usize,
    batches: &std::sync::mpsc::SyncSender<Vec<StagedRow>>,
) -> Result<Prepared, AppError> {
    let mut manager_references = false;
    let (mut emails, mut external_ids) = (Ascending::new(), Ascending::new());
    let mut errors = Errors::seeded(&[], &RowNumbering::FromOne);
    let mut seen = SeenKeys::new();
    let mut batch: Vec<StagedRow> = Vec::with_capacity(STAGE_BATCH);
    let mut total = 0;
    for read in rows {
        let source = read.map_err(unreadable)?;
        let row = total;
        total += 1;
        if total > max_rows {
            return Err(unreadable(format!(
                "the file has more than {max_rows} records (imports.max_file_rows)"
            )));
        }
        let view = RowView::of(&source.record);
        let key = view.key();
        for problem in source.problems {
            errors.add(
                row,
                &key,
                problem.field.as_deref(),
                problem.code,
                problem.message,
            );
        }
        let key_of = |_: usize| key.clone();
        let role = row_checks(&mut errors, row, &view, &key_of);
        if role.is_some() && view.external_id.is_none() && view.email.is_none() {
            errors.add(
                row,
                &key,
                Some("email"),
                "required",
                "a user needs an email or an external_id",
            );
        }
        too_many_errors(&errors)?;
        seen.add(view.external_id, view.email.as_deref());
        let store_id = view.store_ref.and_then(|r| stores.resolve(r));
        let failed = errors.has(row);
        manager_references |= !failed && view.manager_ref.is_some();
        if !failed {
            emails.see(view.email.as_deref());
            external_ids.see(view.external_id);
        }
        let user_id = people
            .as_ref()
            .filter(|_| !failed)
            .and_then(|p| p.find(view.external_id, view.email.as_deref()));
        batch.push(StagedRow {
            user_id,
            row,
            external_id: view.external_id.map(str::to_string),
            email: view.email.as_deref().map(str::to_string),
            name: view.name.map(str::to_string),
            role: role.flatten().map(|r| match r {
                Role::Manager => "manager",
                _ => "seller",
            }),
            unknown_store: view
                .store_ref
                .filter(|_| store_id.is_none())
                .map(str::to_string),
            store_id,
            manager_ref: view.manager_ref.map(str::to_string),
            active: view.active,
            new_id: crate::domain::UserId::generate().to_string(),
            failed,
            // The report key is the external id when there is one: then the
            // row need not carry it twice.
            key: key.filter(|_| view.external_id.is_none()),
        });
        if batch.len() == STAGE_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(STAGE_BATCH));
            if batches.send(full).is_err() {
                // The writer stopped (its own error ends the import).
                break;
            }
        }
    }
    let _ = batches.send(batch);
    Ok(Prepared {
        total,
        errors,
        seen,
        manager_references,
        matched: people.is_some(),
        ordered: OrderedKeys {
            emails: emails.holds,
            external_ids: external_ids.holds,
        },
    })
}

/// Streams the rows into the staging table. A thread of its own reads,
/// decodes, parses and checks them, a batch at a time, while this one (the
/// writer) inserts: the two cores share the work, and the channel's bound
/// keeps memory flat.
fn stage(
    txn: &Connection,
    enterprise: EnterpriseId,
    rows: RowStream,
    max_rows: usize,
    match_in_memory: bool,
) -> Result<Prepared, AppError> {
    let stores = StoreIndex::load(txn, enterprise)?;
    let people = if match_in_memory {
        Some(PeopleIndex::load(txn, enterprise)?)
    } else {
        None
    };
    let (sender, batches) = std::sync::mpsc::sync_channel::<Vec<StagedRow>>(2);
    let preparing = std::thread::Builder::new()
        .name("import-reader".into())
        .spawn(move || prepare(rows, stores, people, max_rows, &sender))
        .map_err(|e| AppError::Internal(format!("starting the import reader: {e}")))?;
    let mut inserted = Ok(());
    for batch in batches.iter() {
        inserted = staging::insert(txn, &batch);
        if inserted.is_err() {
            break;
        }
    }
    // Dropping the receiver stops a reader still sending.
    drop(batches);
    let prepared = preparing
        .join()
        .map_err(|_| AppError::Internal("the import reader panicked".into()))?;
    inserted?;
    prepared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_ascending_only_while_each_is_above_the_last() {
        let mut keys = Ascending::new();
        for key in [Some("00000001"), None, Some("00000002"), Some("00000010")] {
            keys.see(key);
        }
        assert!(keys.holds);
        keys.see(Some("00000010"));
        assert!(!keys.holds, "a repeat breaks the order");
        let mut unsorted = Ascending::new();
        unsorted.see(Some("b"));
        unsorted.see(Some("a"));
        assert!(!unsorted.holds);
    }

    #[test]
    fn the_key_filter_keeps_every_key_seen_twice() {
        let mut seen = SeenKeys::new();
        for i in 0..50_000 {
            seen.add(Some(&format!("E{i}")), Some(&format!("e{i}@x.example")));
        }
        seen.add(Some("E17"), Some("new@x.example"));
        seen.add(Some("E-new"), Some("e42@x.example"));
        // Repeats are always kept; the false alarms are few and only cost a lookup.
        assert!(seen.repeated_external_ids.contains("E17"));
        assert!(seen.repeated_emails.contains("e42@x.example"));
        assert!(seen.repeated_external_ids.len() + seen.repeated_emails.len() < 50);
        // An external id and an email with the same text are different keys.
        let mut kinds = SeenKeys::new();
        kinds.add(Some("same"), Some("same"));
        assert!(kinds.repeated_external_ids.is_empty() && kinds.repeated_emails.is_empty());
    }
}
