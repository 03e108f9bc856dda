//! SCIM Groups: stores as SCIM resources, their members a user import.

use super::*;

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
    let write = group_docs::read(doc)?;
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
        let write = group_docs::read(&doc)?;
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
        let mut doc = group_docs::render(&current.store, current.members.as_deref(), &base);
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
