//! The planning phases of the users engine, in the order they run over the
//! staged rows: repeated keys → (match, in the staging store) → validate →
//! references → seats → diff. Each records its refusals in [`Failures`]; a
//! refused row takes no part in the phases after it.

use super::*;
use crate::store::import_staging::LeaverScope;

/// Keys given twice: every row involved is reported, naming the others.
/// Staging kept the keys a filter had seen before; only those are looked up.
pub(super) fn repeated_keys(
    failures: &mut Failures<'_>,
    txn: &Connection,
    seen: &SeenKeys,
) -> Result<(), AppError> {
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
    Ok(())
}

/// What staging saw of the valid rows that spares a check its pass over a
/// million staged rows when no row can fail it.
#[derive(Debug, Clone, Copy)]
pub(super) struct StagedKeys {
    /// Some row names a person by our id.
    pub(super) given_ids: bool,
    /// Every valid row gives an email, a name, a role and a known store,
    /// and empties no store (`Prepared::complete_rows`).
    pub(super) complete_rows: bool,
}

/// The rows against the enterprise: people imports never touch, keys that
/// are someone else's, the mode, stores, the fields a new user needs, and a
/// seller's store.
pub(super) fn validate(
    failures: &mut Failures<'_>,
    txn: &Connection,
    request: &StagedRequest,
    staged: StagedKeys,
) -> Result<(), AppError> {
    let enterprise = request.enterprise;
    failures.add_all(
        staging::matching_admins(txn)?,
        "email",
        RowErrorCode::ForbiddenRole,
        |_| "this row matches an IT administrator, which imports never change".into(),
    )?;
    // Only a row giving our id can name someone whose external id is taken.
    if staged.given_ids {
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
    }
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
    // A store that exists, what a new user needs, a seller's store: one scan,
    // each row's first problem, in the order the checks run.
    let sellers_need_store = request.source.kind != SourceKind::Scim;
    let problems = if staged.complete_rows {
        Vec::new()
    } else {
        staging::store_and_field_problems(txn, sellers_need_store)?
    };
    for problem in problems {
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
    Ok(())
}

/// Manager references (rows of the same request included), then managers
/// the rows would demote while people still report to them.
pub(super) fn references(
    failures: &mut Failures<'_>,
    txn: &Connection,
    enterprise: EnterpriseId,
    manager_references: bool,
) -> Result<(), AppError> {
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
    failures.add_all(
        staging::demoted_managers_with_staff(txn, enterprise)?,
        "role",
        RowErrorCode::ManagerHasStaff,
        |_| "this manager still manages staff; reassign them first".into(),
    )?;
    Ok(())
}

/// Seats: activations in row order fail past the purchased seats, after the
/// request's own deactivations and a full export's leavers.
pub(super) fn seats(
    failures: &mut Failures<'_>,
    txn: &Connection,
    request: &StagedRequest,
    active_staff: i64,
    seats_purchased: i64,
    total: usize,
    leavers: LeaverScope,
) -> Result<(), AppError> {
    let enterprise = request.enterprise;
    let freed = if request.full_export.is_some() {
        staging::unnamed_active(txn, enterprise, leavers)?
    } else {
        0
    };
    let active_after = usize::try_from(active_staff)
        .unwrap_or(0)
        .saturating_sub(staging::deactivating(txn)? + freed);
    let seats = usize::try_from(seats_purchased).unwrap_or(0);
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
    Ok(())
}

/// What the staging left to the phases beside the staged rows.
pub(super) struct Named {
    /// Rows the unchanged-row filter counted and kept out of staging.
    pub(super) unchanged: usize,
    pub(super) leavers: LeaverScope,
    /// The enterprise's active staff before the import (the kept count).
    pub(super) active_staff: i64,
}

/// What the valid rows do (classified once their managers are known), the
/// report's counts and errors, and the full-export guard's verdict. Answers
/// the report and whom a full export deactivates, if anyone.
pub(super) fn diff(
    failures: Failures<'_>,
    txn: &Connection,
    request: &StagedRequest,
    total: usize,
    named: Named,
) -> Result<(ImportReport, Option<LeaverScope>), AppError> {
    let enterprise = request.enterprise;
    staging::classify(txn)?;
    let Failures { errors, .. } = failures;
    let mut totals = staging::totals(
        txn,
        total
            .saturating_sub(errors.failed_rows())
            .saturating_sub(named.unchanged),
    )?;
    totals.unchanged += named.unchanged;
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
    let mut with_leavers = None;
    if let Some(full) = &request.full_export {
        let leavers = staging::leaver_count(txn, enterprise, named.leavers)?;
        let active_staff = usize::try_from(named.active_staff).unwrap_or(0);
        match crate::service::import::users::full_export_guard(
            full,
            failed_rows,
            leavers,
            active_staff,
            total,
        ) {
            Ok(()) => {
                report.deactivated += leavers;
                with_leavers = Some(named.leavers);
            }
            Err(not_applied) => {
                // What the held file would do, for the admin who approves it.
                report.deactivated += leavers;
                report.not_applied = Some(not_applied);
            }
        }
    }
    crate::service::import::reject_whole(request.all_or_nothing, &mut report);
    if report.not_applied.is_some() {
        report.success = false;
    }
    Ok((report, with_leavers))
}
