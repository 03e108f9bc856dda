//! User imports. A row is matched by `external_id` when it has one, otherwise by
//! email. `store_id` names a store by our id or its external id; `manager_id`
//! names a manager by our id, external id or email, and may point at a row of
//! the same request, in any order. Import never creates or touches IT admins.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde_json::json;

use super::run::Change;
use super::user_rules;
use super::{
    check_len, clean, ApplyContext, Errors, ImportRequest, KeyIndex, MAX_EXTERNAL_ID, MAX_NAME,
};
use crate::domain::import::{ImportMode, ImportReport, UserRecord};
use crate::domain::{email, Role, StoreId, User, UserId};
use crate::service::Services;
use crate::store;
use crate::AppError;

pub const OPERATION: &str = "bulk_user_import";

fn payload(user: &User) -> String {
    json!({
        "id": user.id, "external_id": user.external_id, "email": user.email, "role": user.role,
        "store_id": user.store_id, "manager_id": user.manager_id, "active": user.active,
    })
    .to_string()
}

/// A valid row, matched, before its references are resolved.
pub(super) struct Candidate {
    pub row: usize,
    pub key: Option<String>,
    pub existing: Option<User>,
    pub next: User,
    pub manager_ref: Option<String>,
}

type Plan = super::Plan<User, (User, bool)>;

fn parse_role(
    errors: &mut Errors,
    row: usize,
    key: &Option<String>,
    raw: &Option<String>,
) -> Result<Option<Role>, ()> {
    match clean(raw).map(|r| r.to_lowercase()) {
        None => Ok(None),
        Some(r) if r == "manager" => Ok(Some(Role::Manager)),
        Some(r) if r == "seller" => Ok(Some(Role::Seller)),
        Some(r) if r == "it_admin" => {
            errors.add(
                row,
                key,
                Some("role"),
                "forbidden_role",
                "imports cannot create or change IT administrators",
            );
            Err(())
        }
        Some(r) => {
            errors.add(
                row,
                key,
                Some("role"),
                "invalid_role",
                format!("unknown role {r:?}; use manager or seller"),
            );
            Err(())
        }
    }
}

fn plan(
    conn: &Connection,
    request: &ImportRequest<UserRecord>,
    now: DateTime<Utc>,
) -> Result<Plan, AppError> {
    let enterprise = request.enterprise;
    let account = store::enterprises::get(conn, enterprise)?.ok_or(AppError::NotFound {
        resource: "enterprise",
    })?;
    let people = store::users::all_for_enterprise(conn, enterprise)?;
    let stores = store::stores::all_for_enterprise(conn, enterprise)?;
    let by_external: HashMap<&str, &User> = people
        .iter()
        .filter_map(|u| u.external_id.as_deref().map(|e| (e, u)))
        .collect();
    let by_email: HashMap<&str, &User> = people.iter().map(|u| (u.email.as_str(), u)).collect();
    let store_by_id: HashMap<StoreId, StoreId> = stores.iter().map(|s| (s.id, s.id)).collect();
    let store_by_external: HashMap<&str, StoreId> = stores
        .iter()
        .filter_map(|s| s.external_id.as_deref().map(|e| (e, s.id)))
        .collect();
    let sync_mode = request.source.kind.record_sync_mode();
    let taken_elsewhere = store::users::emails_of_other_enterprises(conn, enterprise)?;

    let mut errors = Errors::seeded(&request.row_errors);
    let emails: Vec<Option<String>> = request
        .rows
        .iter()
        .map(|r| clean(&r.email).map(|e| email::normalize(&e)))
        .collect();
    // Duplicate keys inside the request: every row involved is reported.
    let mut keys = KeyIndex::default();
    for (row, record) in request.rows.iter().enumerate() {
        if let Some(external) = clean(&record.external_id) {
            keys.add("external_id", external, row);
        }
        if let Some(email) = &emails[row] {
            keys.add("email", email.clone(), row);
        }
    }
    keys.report_duplicates(&mut errors, |row| {
        clean(&request.rows[row].external_id).or_else(|| emails[row].clone())
    });

    let mut candidates: Vec<Candidate> = Vec::new();
    for (row, record) in request.rows.iter().enumerate() {
        let external_id = clean(&record.external_id);
        let email = emails[row].clone();
        let key = external_id.clone().or_else(|| email.clone());
        let name = clean(&record.name);
        let mut valid = check_len(&mut errors, row, &key, "name", &name, MAX_NAME);
        valid &= check_len(
            &mut errors,
            row,
            &key,
            "external_id",
            &external_id,
            MAX_EXTERNAL_ID,
        );
        if let Some(e) = &email {
            if let Some(problem) = email::problem(e) {
                errors.add(
                    row,
                    &key,
                    Some("email"),
                    "invalid_email",
                    format!("email {problem}"),
                );
                valid = false;
            }
        }
        let Ok(role) = parse_role(&mut errors, row, &key, &record.role) else {
            continue;
        };
        if !valid || errors.has(row) {
            continue;
        }
        let found = match (&external_id, &email) {
            (Some(e), _) => by_external.get(e.as_str()).copied(),
            (None, Some(e)) => by_email.get(e.as_str()).copied(),
            (None, None) => {
                errors.add(
                    row,
                    &key,
                    Some("email"),
                    "required",
                    "a user needs an email or an external_id",
                );
                continue;
            }
        };
        if found.is_some_and(|u| u.role == Role::ItAdmin) {
            errors.add(
                row,
                &key,
                Some("email"),
                "forbidden_role",
                "this row matches an IT administrator, which imports never change",
            );
            continue;
        }
        if let (Some(e), Some(owner)) = (&email, email.as_deref().and_then(|e| by_email.get(e))) {
            if found.is_none_or(|f| f.id != owner.id) {
                errors.add(
                    row,
                    &key,
                    Some("email"),
                    "email_taken",
                    format!("{e} already belongs to another user"),
                );
                continue;
            }
        }
        // Emails name one person across the appliance (they are the login).
        if let Some(e) = &email {
            let changes_email = found.is_none_or(|f| &f.email != e);
            if changes_email && taken_elsewhere.contains(e.as_str()) {
                errors.add(
                    row,
                    &key,
                    Some("email"),
                    "email_taken",
                    format!("{e} already belongs to another user"),
                );
                continue;
            }
        }
        match (found, request.mode) {
            (Some(_), ImportMode::CreateOnly) => {
                errors.add(
                    row,
                    &key,
                    Some("external_id"),
                    "already_exists",
                    "this user exists and the mode is create_only",
                );
                continue;
            }
            (None, ImportMode::UpdateOnly) => {
                errors.add(
                    row,
                    &key,
                    Some("external_id"),
                    "not_found",
                    "no such user and the mode is update_only",
                );
                continue;
            }
            _ => {}
        }
        let store_id = match clean(&record.store_ref) {
            None => None,
            Some(reference) => {
                let resolved = reference
                    .parse::<StoreId>()
                    .ok()
                    .and_then(|id| store_by_id.get(&id).copied())
                    .or_else(|| store_by_external.get(reference.as_str()).copied());
                match resolved {
                    Some(id) => Some(id),
                    None => {
                        errors.add(
                            row,
                            &key,
                            Some("store_id"),
                            "unknown_store",
                            format!("no store {reference:?} in this enterprise"),
                        );
                        continue;
                    }
                }
            }
        };
        let next = match found {
            Some(current) => {
                let mut next = current.clone();
                if let Some(e) = email.clone() {
                    next.email = e;
                }
                if let Some(n) = name {
                    next.name = n;
                }
                if let Some(r) = role {
                    next.role = r;
                }
                if store_id.is_some() {
                    next.store_id = store_id;
                }
                next.external_id = external_id.or(next.external_id);
                if let Some(active) = record.active {
                    next.active = active;
                }
                next
            }
            None => {
                let (Some(email), Some(name), Some(role)) = (email, name, role) else {
                    for (field, given) in [
                        ("email", emails[row].is_some()),
                        ("name", clean(&record.name).is_some()),
                        ("role", clean(&record.role).is_some()),
                    ] {
                        if !given {
                            errors.add(
                                row,
                                &key,
                                Some(field),
                                "required",
                                format!("{field} is required to create a user"),
                            );
                        }
                    }
                    continue;
                };
                let active = record.active.unwrap_or(true);
                User {
                    id: UserId::generate(),
                    enterprise_account_id: enterprise,
                    email,
                    name,
                    role,
                    store_id,
                    manager_id: None,
                    external_id,
                    sync_mode,
                    active,
                    created_at: now,
                    updated_at: now,
                    deactivated_at: (!active).then_some(now),
                }
            }
        };
        if next.role == Role::Seller && next.store_id.is_none() {
            errors.add(
                row,
                &key,
                Some("store_id"),
                "store_required",
                "a seller needs a store",
            );
            continue;
        }
        candidates.push(Candidate {
            row,
            key,
            existing: found.cloned(),
            next,
            manager_ref: clean(&record.manager_ref),
        });
    }

    user_rules::resolve_managers(&mut candidates, &people, &mut errors);
    user_rules::refuse_demoting_managers_with_staff(&candidates, &people, &mut errors);
    user_rules::enforce_seats(&candidates, &people, account.seats_purchased, &mut errors);

    let mut report = ImportReport {
        total_processed: request.rows.len(),
        dry_run: request.dry_run,
        warnings: request.warnings.clone(),
        ..ImportReport::default()
    };
    let (mut inserts, mut updates, mut changes) = (Vec::new(), Vec::new(), Vec::new());
    for c in candidates.into_iter().filter(|c| !errors.has(c.row)) {
        match c.existing {
            None => {
                report.created += 1;
                changes.push(Change {
                    resource_type: "user",
                    resource_id: c.next.id.to_string(),
                    verb: "created",
                    payload: payload(&c.next),
                });
                inserts.push(c.next);
            }
            Some(current) => {
                let mut next = c.next;
                let same = next.email == current.email
                    && next.name == current.name
                    && next.role == current.role
                    && next.store_id == current.store_id
                    && next.manager_id == current.manager_id
                    && next.external_id == current.external_id
                    && next.active == current.active;
                if same {
                    report.unchanged += 1;
                    continue;
                }
                next.updated_at = now;
                next.sync_mode = sync_mode;
                let deactivating = current.active && !next.active;
                let verb = super::count_update(
                    &mut report,
                    current.active,
                    next.active,
                    &mut next.deactivated_at,
                    now,
                );
                // Losing access or changing role ends the person's sessions.
                let end_sessions = deactivating || next.role != current.role;
                changes.push(Change {
                    resource_type: "user",
                    resource_id: next.id.to_string(),
                    verb,
                    payload: payload(&next),
                });
                updates.push((next, end_sessions));
            }
        }
    }
    errors.into_report(&mut report);
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
    super::execute(svc, request, OPERATION, plan, apply).await
}

fn apply(
    txn: &Connection,
    request: &ImportRequest<UserRecord>,
    plan: &mut Plan,
    context: &ApplyContext,
) -> Result<(), AppError> {
    for user in &plan.inserts {
        store::users::insert(
            txn,
            &store::users::NewUser {
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
            },
        )?;
        if !user.active {
            store::users::update(txn, user, false)?;
        } else if request.invite_new_users {
            // The clear token travels only in the invitation email (outbox
            // to come); until then an IT admin re-issues the link.
            crate::service::invitations::issue(
                txn,
                request.enterprise,
                user.id,
                context.invitation_ttl_hours,
                context.now,
            )?;
            plan.report.invited += 1;
        }
    }
    for (user, end_sessions) in &plan.updates {
        store::users::update(txn, user, *end_sessions)?;
    }
    Ok(())
}
