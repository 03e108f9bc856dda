//! SCIM Users: people as SCIM resources, read and written through the engine.

use super::*;
use crate::domain::import::ScimIdentity;
use crate::domain::scim::users::UserWrite;

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

/// A User document as a write: its fields, and its round-trip attributes as
/// the JSON text stored beside them.
struct UserDoc {
    write: UserWrite,
    attributes: String,
}

fn read_user(doc: &Doc) -> Result<UserDoc, ScimError> {
    let mut write = user_docs::read(doc)?;
    let attributes = Value::Object(std::mem::take(&mut write.attributes)).to_string();
    Ok(UserDoc { write, attributes })
}

/// Writes a User document, as read, as person `id` (created when new) and
/// answers the resource as stored.
fn save_user(
    tx: &mut Tx<'_>,
    id: UserId,
    current: Option<&ScimUser>,
    user: UserDoc,
    operation: SyncOperation,
) -> Result<ScimUser, ScimError> {
    let UserDoc { write, attributes } = user;
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
        scim_identity: Some(ScimIdentity {
            user_name: write.user_name.clone(),
            attributes: attributes.clone(),
        }),
    };
    run_users(tx, vec![row], operation)?;
    // A person the run created was written with them.
    let created = tx.runs.last().is_some_and(|run| run.created == 1);
    if !created {
        store::scim::set_user_attributes(
            tx.conn,
            tx.caller.enterprise,
            id,
            &write.user_name,
            &attributes,
        )?;
    }
    store::scim::get_user(tx.conn, tx.caller.enterprise, id)?
        .ok_or_else(|| ScimError::not_found("User", &id.to_string()))
}

pub async fn create_user(
    svc: &Services,
    caller: ScimCaller,
    body: Value,
) -> Result<ScimUser, ScimError> {
    // Read before the write transaction: the single writer's time is what
    // bounds how many writes a second the service takes.
    let user = read_user(&document::read(&USER_TYPE, &body)?)?;
    write(svc, caller, move |tx| {
        // A person deleted through SCIM and created again comes back as
        // themselves; anyone else answering to the userName is a conflict,
        // found by save_user.
        let revived = match &user.write.email {
            Some(email) => store::scim::tombstone_with_email(
                tx.conn,
                caller.enterprise,
                &crate::domain::email::normalize(email),
            )?,
            None => None,
        };
        let id = revived.unwrap_or_else(UserId::generate);
        save_user(tx, id, None, user, SyncOperation::ScimUserCreate)
    })
    .await
}

pub async fn replace_user(
    svc: &Services,
    caller: ScimCaller,
    id: &str,
    body: Value,
) -> Result<ScimUser, ScimError> {
    let user = read_user(&document::read(&USER_TYPE, &body)?)?;
    let id = parse_user_id(id)?;
    write(svc, caller, move |tx| {
        let current = live_user(tx.conn, caller.enterprise, id)?;
        save_user(tx, id, Some(&current), user, SyncOperation::ScimUserReplace)
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
        let mut doc = user_docs::render(&current, &base);
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
        save_user(
            tx,
            id,
            Some(&current),
            read_user(&doc)?,
            SyncOperation::ScimUserPatch,
        )
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
