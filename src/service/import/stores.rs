//! Store imports. A row is matched by `external_id` when it has one; a row
//! without one is matched by name (case-insensitive) among the enterprise's
//! stores that have no external id either.

use crate::domain::import::SyncOperation;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::run::{Change, Verb};
use super::{
    check_len, clean, ApplyContext, Errors, ImportRequest, KeyIndex, MAX_EXTERNAL_ID, MAX_NAME,
    MAX_TEXT,
};
use crate::domain::import::{ImportMode, ImportReport, RowErrorCode, StoreRecord};
use crate::domain::{Store, StoreId};
use crate::service::Services;
use crate::store;
use crate::AppError;

pub const OPERATION: SyncOperation = SyncOperation::BulkStoreImport;

enum Key {
    External(String),
    Name(String),
}

fn key_of(record: &StoreRecord) -> Option<Key> {
    match (clean(&record.external_id), clean(&record.name)) {
        (Some(external), _) => Some(Key::External(external)),
        (None, Some(name)) => Some(Key::Name(name.to_lowercase())),
        (None, None) => None,
    }
}

type Plan = super::Plan<Store, Store>;

fn plan(
    conn: &Connection,
    request: &ImportRequest<StoreRecord>,
    now: DateTime<Utc>,
) -> Result<Plan, AppError> {
    let enterprise = request.enterprise;
    let existing = store::stores::all_for_enterprise(conn, enterprise)?;
    let by_external: HashMap<&str, &Store> = existing
        .iter()
        .filter_map(|s| s.external_id.as_deref().map(|e| (e, s)))
        .collect();
    let by_id: HashMap<StoreId, &Store> = existing.iter().map(|s| (s.id, s)).collect();
    let by_name: HashMap<String, &Store> = existing
        .iter()
        .filter(|s| s.external_id.is_none())
        .map(|s| (s.name.to_lowercase(), s))
        .collect();

    let mut errors = Errors::seeded(&request.row_errors, &request.numbering);
    // Duplicate keys inside the request: every row involved is reported.
    let mut keys = KeyIndex::default();
    for (row, record) in request.rows.iter().enumerate() {
        match key_of(record) {
            Some(Key::External(e)) => keys.add("external_id", e, row),
            Some(Key::Name(n)) => keys.add("name", n, row),
            None => {}
        }
    }
    let key_of_row = |row: usize| {
        let record = &request.rows[row];
        clean(&record.external_id).or_else(|| clean(&record.name))
    };
    keys.report_duplicates(&mut errors, key_of_row);

    let mut report = ImportReport {
        total_processed: request.rows.len(),
        dry_run: request.dry_run,
        warnings: request.warnings.clone(),
        ..ImportReport::default()
    };
    let (mut inserts, mut updates, mut changes) = (Vec::new(), Vec::new(), Vec::new());
    let sync_mode = request.source.kind.record_sync_mode();
    for (row, record) in request.rows.iter().enumerate() {
        let name = clean(&record.name);
        let external_id = clean(&record.external_id);
        let key = external_id.clone().or_else(|| name.clone());
        let (location, address, phone) = (
            clean(&record.location),
            clean(&record.address),
            clean(&record.phone),
        );
        let mut valid = check_len(
            &mut errors,
            row,
            &key_of_row,
            "name",
            name.as_deref(),
            MAX_NAME,
        );
        valid &= check_len(
            &mut errors,
            row,
            &key_of_row,
            "external_id",
            external_id.as_deref(),
            MAX_EXTERNAL_ID,
        );
        for (field, value) in [
            ("location", &location),
            ("address", &address),
            ("phone", &phone),
        ] {
            valid &= check_len(
                &mut errors,
                row,
                &key_of_row,
                field,
                value.as_deref(),
                MAX_TEXT,
            );
        }
        if !valid || errors.has(row) {
            continue;
        }
        if let (Some(id), Some(e)) = (record.id, external_id.as_deref()) {
            if by_external.get(e).is_some_and(|s| s.id != id) {
                errors.add(
                    row,
                    &key,
                    Some("external_id"),
                    RowErrorCode::ExternalIdTaken,
                    format!("external id {e:?} already belongs to another store"),
                );
                continue;
            }
        }
        let found = match (record.id, key_of(record)) {
            (Some(id), _) => by_id.get(&id).copied(),
            (None, matching) => match matching {
                Some(Key::External(e)) => by_external.get(e.as_str()).copied(),
                Some(Key::Name(n)) => by_name.get(&n).copied(),
                None => {
                    errors.add(
                        row,
                        &key,
                        Some("name"),
                        RowErrorCode::Required,
                        "a store needs a name or an external_id",
                    );
                    continue;
                }
            },
        };
        match (found, request.mode) {
            (Some(_), ImportMode::CreateOnly) => {
                errors.add(
                    row,
                    &key,
                    Some("external_id"),
                    RowErrorCode::AlreadyExists,
                    "this store exists and the mode is create_only",
                );
            }
            (None, ImportMode::UpdateOnly) => {
                errors.add(
                    row,
                    &key,
                    Some("external_id"),
                    RowErrorCode::NotFound,
                    "no such store and the mode is update_only",
                );
            }
            (None, _) => {
                let Some(name) = name else {
                    errors.add(
                        row,
                        &key,
                        Some("name"),
                        RowErrorCode::Required,
                        "name is required to create a store",
                    );
                    continue;
                };
                let active = record.active.unwrap_or(true);
                let store = Store {
                    id: record.id.unwrap_or_else(StoreId::generate),
                    enterprise_account_id: enterprise,
                    name,
                    location,
                    address,
                    phone,
                    external_id,
                    sync_mode,
                    gerant_id: None,
                    active,
                    created_at: now,
                    updated_at: now,
                    deactivated_at: (!active).then_some(now),
                };
                report.created += 1;
                changes.push(Change::store(
                    Verb::Created,
                    store.id.0,
                    store.external_id.clone(),
                ));
                inserts.push(store);
            }
            (Some(current), _) => {
                let mut next = current.clone();
                if let Some(name) = name {
                    next.name = name;
                }
                next.location = location.or(next.location);
                next.address = address.or(next.address);
                next.phone = phone.or(next.phone);
                next.external_id = external_id.or(next.external_id);
                if record.clear_external_id {
                    next.external_id = None;
                }
                if let Some(active) = record.active {
                    next.active = active;
                }
                let same = next.name == current.name
                    && next.location == current.location
                    && next.address == current.address
                    && next.phone == current.phone
                    && next.external_id == current.external_id
                    && next.active == current.active;
                if same {
                    report.unchanged += 1;
                    continue;
                }
                next.updated_at = now;
                next.sync_mode = sync_mode;
                let verb = super::count_update(&mut report, current.active, next.active);
                if verb == Verb::Deactivated {
                    next.deactivated_at = Some(now);
                } else if next.active {
                    next.deactivated_at = None;
                }
                changes.push(Change::store(verb, next.id.0, next.external_id.clone()));
                updates.push(next);
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
    request: ImportRequest<StoreRecord>,
) -> Result<ImportReport, AppError> {
    super::execute(svc, request, OPERATION, plan, apply, None).await
}

/// An import recorded under another operation (`file_import`), with `finish`
/// run in its transaction after the changes are applied and recorded.
pub async fn import_as(
    svc: &Services,
    request: ImportRequest<StoreRecord>,
    operation: SyncOperation,
    finish: Option<super::Finish>,
) -> Result<ImportReport, AppError> {
    super::execute(svc, request, operation, plan, apply, finish).await
}

/// An import inside the caller's write transaction (SCIM), recorded under
/// `operation`; the caller commits and records the metrics.
pub(crate) fn import_in(
    txn: &Connection,
    request: ImportRequest<StoreRecord>,
    operation: SyncOperation,
    context: &ApplyContext,
) -> Result<ImportReport, AppError> {
    super::execute_in(txn, request, operation, plan, apply, None, context)
}

fn apply(
    txn: &Connection,
    _request: &ImportRequest<StoreRecord>,
    plan: &mut Plan,
    context: &ApplyContext,
) -> Result<(), AppError> {
    for store in &plan.inserts {
        store::stores::insert(
            txn,
            &store::stores::NewStore {
                id: store.id,
                enterprise_account_id: store.enterprise_account_id,
                name: &store.name,
                location: store.location.as_deref(),
                address: store.address.as_deref(),
                phone: store.phone.as_deref(),
                external_id: store.external_id.as_deref(),
                sync_mode: store.sync_mode,
                now: context.now,
            },
        )?;
        if !store.active {
            store::stores::update(txn, store)?;
        }
    }
    for store in &plan.updates {
        store::stores::update(txn, store)?;
    }
    Ok(())
}
