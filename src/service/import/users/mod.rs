//! User imports. A row is matched by `external_id` when it has one, otherwise by
//! email. `store_id` names a store by our id or its external id; `manager_id`
//! names a manager by our id, external id or email, and may point at a row of
//! the same request, in any order. Import never creates or touches IT admins.
//!
//! Planning borrows from the request and the enterprise's people: a 100,000-row
//! request allocates for the records it creates or changes, not for every row.

use crate::domain::import::SyncOperation;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::run::{Change, Verb};
use super::user_rules;
use super::{
    check_len, cleaned, ApplyContext, Errors, ImportRequest, KeyIndex, MAX_EXTERNAL_ID, MAX_NAME,
};
use crate::domain::import::{ClearFields, ImportMode, ImportReport, SourceKind, UserRecord};
use crate::domain::{email, Role, StoreId, User, UserId};
use crate::service::Services;
use crate::store;
use crate::store::users::{Person, UserChanges};
use crate::AppError;

pub const OPERATION: SyncOperation = SyncOperation::BulkUserImport;

mod rows;

pub(crate) use rows::*;

type Plan = super::Plan<User, UserChanges>;

fn plan(
    conn: &Connection,
    request: &ImportRequest<UserRecord>,
    now: DateTime<Utc>,
) -> Result<Plan, AppError> {
    let enterprise = request.enterprise;
    let account = store::enterprises::get(conn, enterprise)?.ok_or(AppError::NotFound {
        resource: "enterprise",
    })?;
    let staff = store::users::staff_counts(conn, enterprise)?;
    let views: Vec<RowView<'_>> = request.rows.iter().map(RowView::of).collect();
    let people = if request.full_export.is_some() {
        store::users::people(conn, enterprise)?
    } else {
        people_in_reach(conn, enterprise, &views, staff.total)?
    };
    let stores = store::stores::all_for_enterprise(conn, enterprise)?;
    let directory = Directory::new(&people, &stores);
    let sync_mode = request.source.kind.record_sync_mode();

    let key_of = |row: usize| views[row].key();
    let mut errors = Errors::seeded(&request.row_errors, &request.numbering);

    // Duplicate keys inside the request: every row involved is reported.
    let mut keys = KeyIndex::with_capacity(views.len() * 2);
    for (row, view) in views.iter().enumerate() {
        if let Some(external) = view.external_id {
            keys.add("external_id", external, row);
        }
        if let Some(email) = view.email.as_deref() {
            keys.add("email", email, row);
        }
    }
    keys.report_duplicates(&mut errors, key_of);

    let mut candidates: Vec<Candidate<'_>> = Vec::with_capacity(views.len());
    for (row, view) in views.iter().enumerate() {
        let fail = |errors: &mut Errors, field: &str, code: &'static str, message: String| {
            errors.add(row, &view.key(), Some(field), code, message);
        };
        let Some(role) = row_checks(&mut errors, row, view, &key_of) else {
            continue;
        };
        let email = view.email.as_deref();
        let found = match (view.id, view.external_id, email) {
            (Some(id), _, _) => directory.by_id.get(&id).copied(),
            (None, Some(e), _) => directory.by_external.get(e).copied(),
            (None, None, Some(e)) => directory.by_email.get(e).copied(),
            (None, None, None) => {
                fail(
                    &mut errors,
                    "email",
                    "required",
                    "a user needs an email or an external_id".into(),
                );
                continue;
            }
        };
        if found.is_some_and(|u| u.role == Role::ItAdmin) {
            fail(
                &mut errors,
                "email",
                "forbidden_role",
                "this row matches an IT administrator, which imports never change".into(),
            );
            continue;
        }
        if let (Some(id), Some(e)) = (view.id, view.external_id) {
            if directory.by_external.get(e).is_some_and(|o| o.id != id) {
                fail(
                    &mut errors,
                    "external_id",
                    "external_id_taken",
                    format!("external id {e:?} already belongs to another user"),
                );
                continue;
            }
        }
        if let Some(e) = email {
            let owner = directory.by_email.get(e);
            let owned_by_another = owner.is_some_and(|o| found.is_none_or(|f| f.id != o.id));
            if owned_by_another {
                fail(
                    &mut errors,
                    "email",
                    "email_taken",
                    format!("{e} already belongs to another user"),
                );
                continue;
            }
        }
        match (found, request.mode) {
            (Some(_), ImportMode::CreateOnly) => {
                fail(
                    &mut errors,
                    "external_id",
                    "already_exists",
                    "this user exists and the mode is create_only".into(),
                );
                continue;
            }
            (None, ImportMode::UpdateOnly) => {
                fail(
                    &mut errors,
                    "external_id",
                    "not_found",
                    "no such user and the mode is update_only".into(),
                );
                continue;
            }
            _ => {}
        }
        let store_id = match view.store_ref {
            None => None,
            Some(reference) => match directory.store(reference) {
                Some(id) => Some(id),
                None => {
                    fail(
                        &mut errors,
                        "store_id",
                        "unknown_store",
                        format!("no store {reference:?} in this enterprise"),
                    );
                    continue;
                }
            },
        };
        let next = match found {
            Some(current) => {
                let mut next = Draft::of(current);
                next.email = email.unwrap_or(next.email);
                next.name = view.name.unwrap_or(next.name);
                next.role = role.unwrap_or(next.role);
                next.store_id = store_id.or(next.store_id);
                next.external_id = view.external_id.or(next.external_id);
                next.active = view.active.unwrap_or(next.active);
                if view.clear.store {
                    next.store_id = None;
                }
                if view.clear.manager {
                    next.manager_id = None;
                }
                if view.clear.external_id {
                    next.external_id = None;
                }
                next
            }
            None => {
                let (Some(email), Some(name), Some(role)) = (email, view.name, role) else {
                    for (field, given) in [
                        ("email", email.is_some()),
                        ("name", view.name.is_some()),
                        ("role", view.role.is_some()),
                    ] {
                        if !given {
                            fail(
                                &mut errors,
                                field,
                                "required",
                                format!("{field} is required to create a user"),
                            );
                        }
                    }
                    continue;
                };
                Draft {
                    id: view.id.unwrap_or_else(UserId::generate),
                    email,
                    name,
                    role,
                    store_id,
                    manager_id: None,
                    external_id: view.external_id,
                    active: view.active.unwrap_or(true),
                }
            }
        };
        // Identity providers create a person first and add them to a group
        // (their store) afterwards, so a SCIM seller may wait for one.
        if next.role == Role::Seller
            && next.store_id.is_none()
            && request.source.kind != SourceKind::Scim
        {
            fail(
                &mut errors,
                "store_id",
                "store_required",
                "a seller needs a store".into(),
            );
            continue;
        }
        candidates.push(Candidate {
            row,
            existing: found,
            next,
            manager_ref: view.manager_ref,
        });
    }

    user_rules::resolve_managers(&mut candidates, &people, &mut errors, &key_of);
    user_rules::refuse_demoting_managers_with_staff(&candidates, &mut errors, &key_of, |id| {
        store::users::has_staff(conn, enterprise, id)
    })?;
    let freed = if request.full_export.is_some() {
        user_rules::unnamed_active(&people, &candidates, &errors)
    } else {
        0
    };
    user_rules::enforce_seats(
        &candidates,
        staff.active,
        account.seats_purchased,
        freed,
        &mut errors,
        &key_of,
    );

    let mut report = ImportReport {
        total_processed: request.rows.len(),
        dry_run: request.dry_run,
        warnings: request.warnings.clone(),
        ..ImportReport::default()
    };
    let (mut inserts, mut updates, mut changes) = (Vec::new(), Vec::new(), Vec::new());
    for c in candidates.iter().filter(|c| !errors.has(c.row)) {
        let next = c.next;
        let Some(current) = c.existing else {
            report.created += 1;
            changes.push(Change::user(
                Verb::Created,
                next.id.0,
                next.external_id.map(str::to_string),
            ));
            inserts.push(User {
                id: next.id,
                enterprise_account_id: enterprise,
                email: next.email.to_string(),
                name: next.name.to_string(),
                role: next.role,
                store_id: next.store_id,
                manager_id: next.manager_id,
                external_id: next.external_id.map(str::to_string),
                sync_mode,
                active: next.active,
                created_at: now,
                updated_at: now,
                deactivated_at: (!next.active).then_some(now),
            });
            continue;
        };
        let before = Draft::of(current);
        if next == before {
            report.unchanged += 1;
            continue;
        }
        let verb = super::count_update(&mut report, before.active, next.active);
        changes.push(Change::user(
            verb,
            next.id.0,
            next.external_id.map(str::to_string),
        ));
        let changed = |after: &str, was: &str| (after != was).then(|| after.to_string());
        updates.push(UserChanges {
            id: next.id,
            email: changed(next.email, before.email),
            name: changed(next.name, before.name),
            role: (next.role != before.role).then_some(next.role),
            store_id: (next.store_id != before.store_id).then_some(next.store_id),
            manager_id: (next.manager_id != before.manager_id).then_some(next.manager_id),
            external_id: (next.external_id != before.external_id)
                .then(|| next.external_id.map(str::to_string)),
            active: (next.active != before.active).then_some(next.active),
            // Losing access or changing role ends the person's sessions.
            end_sessions: verb == Verb::Deactivated || next.role != before.role,
        });
    }
    if let Some(full) = &request.full_export {
        match user_rules::full_export_leavers(
            full,
            &people,
            &candidates,
            &errors,
            request.rows.len(),
        ) {
            (leavers, Ok(())) => {
                for leaver in leavers {
                    report.deactivated += 1;
                    changes.push(Change::user(
                        Verb::Deactivated,
                        leaver.id.0,
                        leaver.external_id.clone(),
                    ));
                    let mut deactivation = UserChanges::deactivation(leaver.id);
                    deactivation.end_sessions = true;
                    updates.push(deactivation);
                }
            }
            (leavers, Err(not_applied)) => {
                report.deactivated += leavers.len();
                report.not_applied = Some(not_applied);
            }
        }
    }
    errors.into_report(&mut report);
    if report.not_applied.is_some() {
        report.success = false;
    }
    Ok(Plan {
        report,
        inserts,
        updates,
        changes,
    })
}

pub async fn import(
    svc: &Services,
    request: ImportRequest<UserRecord>,
) -> Result<ImportReport, AppError> {
    super::execute(svc, request, OPERATION, plan, apply, None).await
}

/// An import recorded under another operation (`file_import`), with `finish`
/// run in its transaction after the changes are applied and recorded.
pub async fn import_as(
    svc: &Services,
    request: ImportRequest<UserRecord>,
    operation: SyncOperation,
    finish: Option<super::Finish>,
) -> Result<ImportReport, AppError> {
    super::execute(svc, request, operation, plan, apply, finish).await
}

/// An import inside the caller's write transaction (SCIM), recorded under
/// `operation`; the caller commits and records the metrics.
pub(crate) fn import_in(
    txn: &Connection,
    request: ImportRequest<UserRecord>,
    operation: SyncOperation,
    context: &ApplyContext,
) -> Result<ImportReport, AppError> {
    super::execute_in(txn, request, operation, plan, apply, None, context)
}

fn apply(
    txn: &Connection,
    request: &ImportRequest<UserRecord>,
    plan: &mut Plan,
    context: &ApplyContext,
) -> Result<(), AppError> {
    let sync_mode = request.source.kind.record_sync_mode();
    let new_users: Vec<store::users::NewUser<'_>> = plan
        .inserts
        .iter()
        .map(|user| store::users::NewUser {
            id: user.id,
            enterprise_account_id: user.enterprise_account_id,
            email: &user.email,
            name: &user.name,
            role: user.role,
            store_id: user.store_id,
            manager_id: user.manager_id,
            external_id: user.external_id.as_deref(),
            sync_mode: user.sync_mode,
            password_hash: None,
            now: context.now,
        })
        .collect();
    store::users::insert_many(txn, &new_users)?;
    for user in &plan.inserts {
        if !user.active {
            store::users::update_fields(
                txn,
                request.enterprise,
                &UserChanges::deactivation(user.id),
                sync_mode,
                context.now,
            )?;
        } else if request.invite_new_users {
            // The token is issued when the email goes out: the outbox never
            // holds a usable link.
            crate::service::emails::queue_invitation(
                txn,
                request.enterprise,
                user.id,
                &user.email,
                context.now,
            )?;
            plan.report.invited += 1;
        }
    }
    for changes in &plan.updates {
        store::users::update_fields(txn, request.enterprise, changes, sync_mode, context.now)?;
    }
    Ok(())
}
