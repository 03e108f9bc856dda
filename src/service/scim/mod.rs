//! SCIM operations. Each write reads the resource, works out the rows and runs
//! them through the import engine (source `scim`, `initiated_by`
//! `scim:<key id>`) in one write transaction, so seats, references, change
//! events and sync logs behave as for REST and files, and a concurrent change
//! cannot slip between the read and the write. A request the engine refuses
//! still commits its failed run, as a refused REST row does.

use crate::domain::import::{RowErrorCode, SyncOperation};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde_json::Value;

use super::import::{self, ApplyContext, ImportRequest, RowNumbering};
use super::Services;
use crate::domain::audit::{ActorType, Outcome};
use crate::domain::import::{
    ClearFields, ImportMode, ImportReport, ImportSource, SourceKind, StoreRecord, UserRecord,
};
use crate::domain::scim::document::{self, Doc, Op};
use crate::domain::scim::filter::Filter;
use crate::domain::scim::schema::{GROUP_TYPE, MAX_PATCH_OPERATIONS, USER_TYPE};
use crate::domain::scim::{groups as group_docs, users as user_docs, FaultKind, ScimFault};
use crate::domain::{ApiKeyId, EnterpriseId, Role, StoreId, UserId};
use crate::service::access::Actor;
use crate::service::audit::{self, AuditEvent};
use crate::service::RequestMeta;
use crate::store;
use crate::store::scim::{ListError, Member, ScimUser};
use crate::AppError;

/// Why a SCIM operation failed: the request, in SCIM's terms (the adapter
/// gives it its status), or the service underneath (a 500 or 503 there).
#[derive(Debug)]
pub enum ScimError {
    Fault(ScimFault),
    App(AppError),
}

impl ScimError {
    pub fn new(kind: FaultKind, detail: impl Into<String>) -> Self {
        ScimError::Fault(ScimFault::new(kind, detail))
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        ScimError::Fault(ScimFault::invalid_value(detail))
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        ScimError::Fault(ScimFault::invalid_path(detail))
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        ScimError::Fault(ScimFault::uniqueness(detail))
    }
    pub fn not_found(resource: &str, id: &str) -> Self {
        ScimError::Fault(ScimFault::not_found(resource, id))
    }
}

impl From<ScimFault> for ScimError {
    fn from(fault: ScimFault) -> Self {
        ScimError::Fault(fault)
    }
}

impl From<AppError> for ScimError {
    fn from(e: AppError) -> Self {
        ScimError::App(e)
    }
}

impl From<store::StoreError> for ScimError {
    fn from(e: store::StoreError) -> Self {
        ScimError::App(e.into())
    }
}

impl From<rusqlite::Error> for ScimError {
    fn from(e: rusqlite::Error) -> Self {
        ScimError::App(e.into())
    }
}

/// When each enterprise's provider last called SCIM, since the start; the
/// sync status falls back on its SCIM keys' recorded last use.
#[derive(Default)]
pub struct ScimActivity(std::sync::Mutex<std::collections::HashMap<EnterpriseId, DateTime<Utc>>>);

impl ScimActivity {
    pub fn note(&self, enterprise: EnterpriseId, at: DateTime<Utc>) {
        if let Ok(mut calls) = self.0.lock() {
            calls.insert(enterprise, at);
        }
    }

    pub fn last(&self, enterprise: EnterpriseId) -> Option<DateTime<Utc>> {
        self.0
            .lock()
            .ok()
            .and_then(|calls| calls.get(&enterprise).copied())
    }
}

/// The caller: a key with the scim scope, in its enterprise.
#[derive(Debug, Clone, Copy)]
pub struct ScimCaller {
    pub enterprise: EnterpriseId,
    pub key: ApiKeyId,
}

impl ScimCaller {
    pub(super) fn source(&self) -> ImportSource {
        ImportSource {
            kind: SourceKind::Scim,
            initiated_by: format!("scim:{}", self.key),
        }
    }

    pub(super) fn actor(&self) -> Actor {
        Actor {
            kind: ActorType::Scim,
            id: self.key.to_string(),
        }
    }

    pub(super) fn request<R>(&self, rows: Vec<R>) -> ImportRequest<R> {
        ImportRequest {
            enterprise: self.enterprise,
            source: self.source(),
            mode: ImportMode::CreateOrUpdate,
            rows,
            dry_run: false,
            invite_new_users: false,
            warnings: Vec::new(),
            row_errors: Vec::new(),
            details: serde_json::Map::new(),
            full_export: None,
            all_or_nothing: true,
            numbering: RowNumbering::Index,
        }
    }
}

/// One operation of a PATCH request.
#[derive(Debug, Clone)]
pub struct PatchOperation {
    pub op: Op,
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// A page of a list.
pub struct Page<T> {
    pub total: usize,
    pub start_index: usize,
    pub items: Vec<T>,
}

/// The runs a write committed, for the metrics once it is durable.
pub(super) type Runs = Vec<ImportReport>;

/// A write's result: the resource, or the refusal of a committed failed run.
enum Written<T> {
    Done(T, Runs),
    Refused(ScimError, Runs),
}

pub(super) fn record_metrics(svc: &Services, runs: &Runs) {
    for report in runs {
        svc.import_committed("scim", report);
    }
}

/// A SCIM write in progress: its transaction, caller, and the runs it made.
pub(super) struct Tx<'a> {
    pub(super) conn: &'a Connection,
    pub(super) caller: ScimCaller,
    context: ApplyContext,
    runs: Runs,
}

pub(super) async fn write<T: Send + 'static>(
    svc: &Services,
    caller: ScimCaller,
    work: impl FnOnce(&mut Tx<'_>) -> Result<T, ScimError> + Send + 'static,
) -> Result<T, ScimError> {
    let context = ApplyContext::of(svc);
    let outcome = svc
        .db
        .write_grouped(move |conn| {
            let mut tx = Tx {
                conn,
                caller,
                context,
                runs: Vec::new(),
            };
            match work(&mut tx) {
                Ok(value) => Ok(Written::Done(value, tx.runs)),
                // The engine refused the rows: its failed run is kept.
                Err(refusal @ ScimError::Fault(_)) if !tx.runs.is_empty() => {
                    Ok(Written::Refused(refusal, tx.runs))
                }
                Err(e) => Err(e),
            }
        })
        .await?;
    match outcome {
        Written::Done(value, runs) => {
            record_metrics(svc, &runs);
            Ok(value)
        }
        Written::Refused(refusal, runs) => {
            record_metrics(svc, &runs);
            Err(refusal)
        }
    }
}

/// The SCIM answer to a run whose rows failed.
pub(super) fn refusal(report: &ImportReport) -> Option<ScimError> {
    let first = report.errors.first()?;
    let field = first.field.as_deref().unwrap_or("request");
    let detail = format!("{field}: {} ({})", first.message, first.code.as_str());
    Some(match first.code {
        RowErrorCode::EmailTaken
        | RowErrorCode::AlreadyExists
        | RowErrorCode::ExternalIdTaken
        | RowErrorCode::DuplicateKey => ScimError::uniqueness(detail),
        RowErrorCode::SeatLimitReached => ScimError::new(FaultKind::SeatLimit, detail),
        RowErrorCode::NotFound => ScimError::new(FaultKind::NotFound, detail),
        _ => ScimError::invalid_value(detail),
    })
}

pub(super) fn run_users(
    tx: &mut Tx<'_>,
    rows: Vec<UserRecord>,
    operation: SyncOperation,
) -> Result<(), ScimError> {
    if rows.is_empty() {
        return Ok(());
    }
    let request = tx.caller.request(rows);
    let report = import::users::import_in(tx.conn, request, operation, &tx.context)?;
    let refused = refusal(&report);
    tx.runs.push(report);
    refused.map_or(Ok(()), Err)
}

pub(super) fn run_stores(
    tx: &mut Tx<'_>,
    row: StoreRecord,
    operation: SyncOperation,
) -> Result<(), ScimError> {
    let request = tx.caller.request(vec![row]);
    let report = import::stores::import_in(tx.conn, request, operation, &tx.context)?;
    let refused = refusal(&report);
    tx.runs.push(report);
    refused.map_or(Ok(()), Err)
}

pub(super) fn filter_error(e: ListError) -> ScimError {
    match e {
        ListError::Filter(f) => ScimError::new(FaultKind::InvalidFilter, f.0),
        ListError::Sql(e) => e.into(),
    }
}

pub(super) fn check_operations(operations: &[PatchOperation]) -> Result<(), ScimError> {
    if operations.is_empty() {
        return Err(ScimError::invalid_value(
            "Operations must list at least one operation",
        ));
    }
    if operations.len() > MAX_PATCH_OPERATIONS {
        return Err(ScimError::new(
            FaultKind::TooMany,
            format!("at most {MAX_PATCH_OPERATIONS} operations per request"),
        ));
    }
    Ok(())
}

mod groups;
mod users;

pub use groups::*;
pub use users::*;
