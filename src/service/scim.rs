//! SCIM operations. Each write reads the resource, works out the rows and runs
//! them through the import engine (source `scim`, `initiated_by`
//! `scim:<key id>`) in one write transaction, so seats, references, change
//! events and sync logs behave as for REST and files, and a concurrent change
//! cannot slip between the read and the write. A request the engine refuses
//! still commits its failed run, as a refused REST row does.

use crate::domain::import::SyncOperation;
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
use crate::domain::scim::{groups, users, FaultKind, ScimFault};
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
    fn source(&self) -> ImportSource {
        ImportSource {
            kind: SourceKind::Scim,
            initiated_by: format!("scim:{}", self.key),
        }
    }

    fn actor(&self) -> Actor {
        Actor {
            kind: ActorType::Scim,
            id: self.key.to_string(),
        }
    }

    fn request<R>(&self, rows: Vec<R>) -> ImportRequest<R> {
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
type Runs = Vec<ImportReport>;

/// A write's result: the resource, or the refusal of a committed failed run.
enum Written<T> {
    Done(T, Runs),
    Refused(ScimError, Runs),
}

fn record_metrics(svc: &Services, runs: &Runs) {
    for report in runs {
        svc.import_committed("scim", report);
    }
}

/// A SCIM write in progress: its transaction, caller, and the runs it made.
struct Tx<'a> {
    conn: &'a Connection,
    caller: ScimCaller,
    context: ApplyContext,
    runs: Runs,
}

async fn write<T: Send + 'static>(
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
fn refusal(report: &ImportReport) -> Option<ScimError> {
    let first = report.errors.first()?;
    let field = first.field.as_deref().unwrap_or("request");
    let detail = format!("{field}: {} ({})", first.message, first.code);
    Some(match first.code {
        "email_taken" | "already_exists" | "external_id_taken" | "duplicate_key" => {
            ScimError::uniqueness(detail)
        }
        "seat_limit_reached" => ScimError::new(FaultKind::SeatLimit, detail),
        "not_found" => ScimError::new(FaultKind::NotFound, detail),
        _ => ScimError::invalid_value(detail),
    })
}

fn run_users(
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

fn run_stores(
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

fn filter_error(e: ListError) -> ScimError {
    match e {
        ListError::Filter(f) => ScimError::new(FaultKind::InvalidFilter, f.0),
        ListError::Sql(e) => e.into(),
    }
}

// ---- Users ------------------------------------------------------------------

pub async fn get_user(svc: &Services, caller: ScimCaller, id: &str) -> Result<ScimUser, ScimError> {
    let Ok(user_id) = id.parse::<UserId>() else {
        return Err(ScimError::not_found("User", id));
    };
    let found = svc
        .db
        .read_for(caller.enterprise, move |conn| {
            store::scim::get_user(conn, caller.enterprise, user_id).map_err(ScimError::from)
        })
        .await?;
    found.ok_or_else(|| ScimError::not_found("User", &user_id.to_string()))
}

pub async fn list_users(
    svc: &Services,
    caller: ScimCaller,
    filter: Option<Filter>,
    start_index: usize,
    count: usize,
) -> Result<Page<ScimUser>, ScimError> {
    svc.db
        .read_for(caller.enterprise, move |conn| {
            let (total, items) = store::scim::list_users(
                conn,
                caller.enterprise,
                filter.as_ref(),
                start_index - 1,
                count,
            )
            .map_err(filter_error)?;
            Ok(Page {
                total,
                start_index,
                items,
            })
        })
        .await
}

/// The manager reference resolved: our id of a Retail Performer manager of
/// the enterprise, or nothing (the product's manager is then cleared).
fn resolve_manager(
    conn: &Connection,
    enterprise: EnterpriseId,
    reference: Option<&str>,
) -> Result<Option<UserId>, ScimError> {
    let Some(reference) = reference else {
        return Ok(None);
    };
    let found = match reference.parse::<UserId>() {
        Ok(id) => store::scim::get_user(conn, enterprise, id)?,
        Err(_) => None,
    };
    Ok(found
        .filter(|m| m.user.role == Role::Manager)
        .map(|m| m.user.id))
}

/// Whether the provider named this person's store in our extension.
fn named_a_store(user: &ScimUser) -> bool {
    user.attributes
        .as_deref()
        .and_then(|a| serde_json::from_str::<Value>(a).ok())
        .is_some_and(|a| {
            a.get(crate::domain::scim::schema::RETAIL_USER)
                .and_then(|r| r.get("store"))
                .is_some()
        })
}

/// Writes a User document as person `id` (created when new) and answers the
/// resource as stored.
fn save_user(
    tx: &mut Tx<'_>,
    id: UserId,
    current: Option<&ScimUser>,
    doc: &Doc,
    operation: SyncOperation,
) -> Result<ScimUser, ScimError> {
    let write = users::read(doc)?;
    if let Some(owner) =
        store::scim::user_name_owner(tx.conn, tx.caller.enterprise, &write.user_name)?
    {
        if owner != id {
            return Err(ScimError::uniqueness(format!(
                "userName {:?} is already taken",
                write.user_name
            )));
        }
    }
    let email = write
        .email
        .clone()
        .or_else(|| current.map(|c| c.user.email.clone()))
        .ok_or_else(|| {
            ScimError::invalid_value(
                "a person needs an email: send emails, or a userName that is an email address",
            )
        })?;
    let manager = resolve_manager(tx.conn, tx.caller.enterprise, write.manager_ref.as_deref())?;
    let role = write
        .role
        .or(current.map(|c| c.user.role))
        .unwrap_or(Role::Seller);
    let row = UserRecord {
        id: Some(id),
        email: Some(email),
        name: Some(write.name.clone()),
        role: Some(role.as_str().to_string()),
        store_ref: write.store_ref.clone(),
        manager_ref: manager.map(|m| m.to_string()),
        external_id: write.external_id.clone(),
        active: Some(write.active),
        clear: ClearFields {
            // The provider stopped naming the store it had named.
            store: !write.names_store && current.is_some_and(named_a_store),
            manager: manager.is_none(),
            external_id: write.external_id.is_none(),
        },
    };
    run_users(tx, vec![row], operation)?;
    let attributes = Value::Object(write.attributes).to_string();
    store::scim::set_user_attributes(
        tx.conn,
        tx.caller.enterprise,
        id,
        &write.user_name,
        &attributes,
    )?;
    store::scim::get_user(tx.conn, tx.caller.enterprise, id)?
        .ok_or_else(|| ScimError::not_found("User", &id.to_string()))
}

pub async fn create_user(
    svc: &Services,
    caller: ScimCaller,
    body: Value,
) -> Result<ScimUser, ScimError> {
    let doc = document::read(&USER_TYPE, &body)?;
    write(svc, caller, move |tx| {
        // A person deleted through SCIM and created again comes back as
        // themselves; anyone else answering to the userName is a conflict,
        // found by save_user.
        let revived = match users::read(&doc)?.email {
            Some(email) => store::scim::tombstone_with_email(
                tx.conn,
                caller.enterprise,
                &crate::domain::email::normalize(&email),
            )?,
            None => None,
        };
        let id = revived.unwrap_or_else(UserId::generate);
        save_user(tx, id, None, &doc, SyncOperation::ScimUserCreate)
    })
    .await
}

pub async fn replace_user(
    svc: &Services,
    caller: ScimCaller,
    id: &str,
    body: Value,
) -> Result<ScimUser, ScimError> {
    let doc = document::read(&USER_TYPE, &body)?;
    let id = parse_user_id(id)?;
    write(svc, caller, move |tx| {
        let current = live_user(tx.conn, caller.enterprise, id)?;
        save_user(tx, id, Some(&current), &doc, SyncOperation::ScimUserReplace)
    })
    .await
}

fn parse_user_id(id: &str) -> Result<UserId, ScimError> {
    id.parse::<UserId>()
        .map_err(|_| ScimError::not_found("User", id))
}

fn live_user(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: UserId,
) -> Result<ScimUser, ScimError> {
    store::scim::get_user(conn, enterprise, id)?
        .ok_or_else(|| ScimError::not_found("User", &id.to_string()))
}

fn check_operations(operations: &[PatchOperation]) -> Result<(), ScimError> {
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

pub async fn patch_user(
    svc: &Services,
    caller: ScimCaller,
    id: &str,
    operations: Vec<PatchOperation>,
    base: String,
) -> Result<ScimUser, ScimError> {
    check_operations(&operations)?;
    let id = parse_user_id(id)?;
    write(svc, caller, move |tx| {
        let current = live_user(tx.conn, caller.enterprise, id)?;
        let mut doc = users::render(&current, &base);
        for operation in &operations {
            crate::domain::scim::patch::apply(
                &USER_TYPE,
                &mut doc,
                operation.op,
                operation.path.as_deref(),
                operation.value.as_ref(),
            )?;
        }
        document::tidy_extensions(&USER_TYPE, &mut doc);
        // What rendering added rather than the provider: read back as given.
        for server_side in ["id", "meta", "schemas", "groups"] {
            doc.remove(server_side);
        }
        save_user(tx, id, Some(&current), &doc, SyncOperation::ScimUserPatch)
    })
    .await
}

/// DELETE: the person is deactivated (their seat freed, their sessions
/// ended) and gone from SCIM; the row stays as an audited tombstone.
pub async fn delete_user(
    svc: &Services,
    caller: ScimCaller,
    id: &str,
    meta: RequestMeta,
) -> Result<(), ScimError> {
    let id = parse_user_id(id)?;
    write(svc, caller, move |tx| {
        let current = live_user(tx.conn, caller.enterprise, id)?;
        let row = UserRecord {
            id: Some(id),
            active: Some(false),
            ..UserRecord::default()
        };
        run_users(tx, vec![row], SyncOperation::ScimUserDelete)?;
        store::scim::tombstone_user(tx.conn, caller.enterprise, id, tx.context.now)?;
        let event = AuditEvent::new("scim.user.deleted", Outcome::Success, caller.actor())
            .in_enterprise(caller.enterprise)
            .target("user", id)
            .changes(serde_json::json!({
                "user_name": current.user_name.unwrap_or(current.user.email),
                "external_id": current.user.external_id,
            }));
        audit::append(tx.conn, &event, &meta, tx.context.now)?;
        Ok(())
    })
    .await
}

// ---- Groups -----------------------------------------------------------------

pub struct ScimGroup {
    pub store: crate::domain::Store,
    /// None when the caller left members out.
    pub members: Option<Vec<Member>>,
}

fn parse_store_id(id: &str) -> Result<StoreId, ScimError> {
    id.parse::<StoreId>()
        .map_err(|_| ScimError::not_found("Group", id))
}

fn load_group(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: StoreId,
    with_members: bool,
) -> Result<ScimGroup, ScimError> {
    let store = store::scim::get_store(conn, enterprise, id)?
        .ok_or_else(|| ScimError::not_found("Group", &id.to_string()))?;
    let members = if with_members {
        Some(store::scim::members(conn, enterprise, &[id])?)
    } else {
        None
    };
    Ok(ScimGroup { store, members })
}

pub async fn get_group(
    svc: &Services,
    caller: ScimCaller,
    id: &str,
    with_members: bool,
) -> Result<ScimGroup, ScimError> {
    let id = parse_store_id(id)?;
    svc.db
        .read_for(caller.enterprise, move |conn| {
            load_group(conn, caller.enterprise, id, with_members)
        })
        .await
}

pub async fn list_groups(
    svc: &Services,
    caller: ScimCaller,
    filter: Option<Filter>,
    start_index: usize,
    count: usize,
    with_members: bool,
) -> Result<Page<ScimGroup>, ScimError> {
    svc.db
        .read_for(caller.enterprise, move |conn| {
            let (total, stores) = store::scim::list_stores(
                conn,
                caller.enterprise,
                filter.as_ref(),
                start_index - 1,
                count,
            )
            .map_err(filter_error)?;
            // One query for the page's members, dealt out by store.
            let mut by_store: std::collections::HashMap<StoreId, Vec<Member>> =
                std::collections::HashMap::new();
            if with_members {
                let ids: Vec<StoreId> = stores.iter().map(|s| s.id).collect();
                for member in store::scim::members(conn, caller.enterprise, &ids)? {
                    by_store.entry(member.store).or_default().push(member);
                }
            }
            let items = stores
                .into_iter()
                .map(|store| ScimGroup {
                    members: with_members.then(|| by_store.remove(&store.id).unwrap_or_default()),
                    store,
                })
                .collect();
            Ok(Page {
                total,
                start_index,
                items,
            })
        })
        .await
}

/// Writes a Group document as store `id` (created when new): its name and
/// external id through the store import, then its membership through the
/// user import (people added move here; people left out lose their store).
fn save_group(
    tx: &mut Tx<'_>,
    id: StoreId,
    doc: &Doc,
    members_given: bool,
    operation: SyncOperation,
) -> Result<ScimGroup, ScimError> {
    let write = groups::read(doc)?;
    if let Some(owner) =
        store::scim::store_named(tx.conn, tx.caller.enterprise, &write.display_name)?
    {
        if owner != id {
            return Err(ScimError::uniqueness(format!(
                "a group named {:?} already exists",
                write.display_name
            )));
        }
    }
    let row = StoreRecord {
        id: Some(id),
        name: Some(write.display_name.clone()),
        external_id: write.external_id.clone(),
        clear_external_id: write.external_id.is_none(),
        active: Some(true),
        ..StoreRecord::default()
    };
    run_stores(tx, row, operation)?;
    store::scim::revive_store(tx.conn, tx.caller.enterprise, id)?;
    if members_given {
        let wanted = store::scim::live_staff(tx.conn, tx.caller.enterprise, &write.members)?;
        let current: Vec<UserId> = store::scim::members(tx.conn, tx.caller.enterprise, &[id])?
            .into_iter()
            .map(|m| m.user)
            .collect();
        let mut rows: Vec<UserRecord> = current
            .iter()
            .filter(|u| !wanted.contains(u))
            .map(|u| UserRecord {
                id: Some(*u),
                clear: ClearFields {
                    store: true,
                    ..ClearFields::default()
                },
                ..UserRecord::default()
            })
            .collect();
        let mut added = std::collections::HashSet::new();
        for user in wanted.iter().filter(|u| !current.contains(u)) {
            if added.insert(*user) {
                rows.push(UserRecord {
                    id: Some(*user),
                    store_ref: Some(id.to_string()),
                    ..UserRecord::default()
                });
            }
        }
        run_users(tx, rows, operation)?;
    }
    load_group(tx.conn, tx.caller.enterprise, id, true)
}

pub async fn create_group(
    svc: &Services,
    caller: ScimCaller,
    body: Value,
) -> Result<ScimGroup, ScimError> {
    let doc = document::read(&GROUP_TYPE, &body)?;
    write(svc, caller, move |tx| {
        let write = groups::read(&doc)?;
        if store::scim::store_named(tx.conn, caller.enterprise, &write.display_name)?.is_some() {
            return Err(ScimError::uniqueness(format!(
                "a group named {:?} already exists",
                write.display_name
            )));
        }
        save_group(
            tx,
            StoreId::generate(),
            &doc,
            true,
            SyncOperation::ScimGroupCreate,
        )
    })
    .await
}

pub async fn replace_group(
    svc: &Services,
    caller: ScimCaller,
    id: &str,
    body: Value,
) -> Result<ScimGroup, ScimError> {
    let doc = document::read(&GROUP_TYPE, &body)?;
    let id = parse_store_id(id)?;
    write(svc, caller, move |tx| {
        store::scim::get_store(tx.conn, caller.enterprise, id)?
            .ok_or_else(|| ScimError::not_found("Group", &id.to_string()))?;
        save_group(tx, id, &doc, true, SyncOperation::ScimGroupReplace)
    })
    .await
}

pub async fn patch_group(
    svc: &Services,
    caller: ScimCaller,
    id: &str,
    operations: Vec<PatchOperation>,
    base: String,
) -> Result<ScimGroup, ScimError> {
    check_operations(&operations)?;
    let id = parse_store_id(id)?;
    write(svc, caller, move |tx| {
        let touches_members = operations.iter().any(|o| match &o.path {
            Some(path) => path
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("members"),
            None => o
                .value
                .as_ref()
                .and_then(Value::as_object)
                .is_some_and(|v| v.keys().any(|k| k.eq_ignore_ascii_case("members"))),
        });
        let current = load_group(tx.conn, caller.enterprise, id, touches_members)?;
        let mut doc = groups::render(&current.store, current.members.as_deref(), &base);
        for operation in &operations {
            crate::domain::scim::patch::apply(
                &GROUP_TYPE,
                &mut doc,
                operation.op,
                operation.path.as_deref(),
                operation.value.as_ref(),
            )?;
        }
        save_group(tx, id, &doc, touches_members, SyncOperation::ScimGroupPatch)
    })
    .await
}

/// DELETE: the store is deactivated and gone from SCIM; its members lose
/// their store. Audited.
pub async fn delete_group(
    svc: &Services,
    caller: ScimCaller,
    id: &str,
    meta: RequestMeta,
) -> Result<(), ScimError> {
    let id = parse_store_id(id)?;
    write(svc, caller, move |tx| {
        let current = load_group(tx.conn, caller.enterprise, id, true)?;
        let rows: Vec<UserRecord> = current
            .members
            .iter()
            .flatten()
            .map(|m| UserRecord {
                id: Some(m.user),
                clear: ClearFields {
                    store: true,
                    ..ClearFields::default()
                },
                ..UserRecord::default()
            })
            .collect();
        run_users(tx, rows, SyncOperation::ScimGroupDelete)?;
        let row = StoreRecord {
            id: Some(id),
            active: Some(false),
            ..StoreRecord::default()
        };
        run_stores(tx, row, SyncOperation::ScimGroupDelete)?;
        store::scim::tombstone_store(tx.conn, caller.enterprise, id, tx.context.now)?;
        let event = AuditEvent::new("scim.group.deleted", Outcome::Success, caller.actor())
            .in_enterprise(caller.enterprise)
            .target("store", id)
            .changes(serde_json::json!({
                "display_name": current.store.name,
                "external_id": current.store.external_id,
            }));
        audit::append(tx.conn, &event, &meta, tx.context.now)?;
        Ok(())
    })
    .await
}
