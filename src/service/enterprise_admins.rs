//! An enterprise's IT administrators: listed, invited by another admin (the
//! same invitation email and link as anyone's), deactivated and reactivated.
//! An enterprise always keeps one active admin who can sign in, so it can
//! never lock itself out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::access::AdminCtx;
use super::accounts::{checked_email, required_text};
use super::audit::{self, AuditEvent};
use super::{emails, RequestMeta, Services};
use crate::domain::audit::Outcome;
use crate::domain::{EnterpriseId, RecordSyncMode, Role, User, UserId};
use crate::store;
use crate::AppError;

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct EnterpriseAdmin {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub active: bool,
    /// Invited and not signed up yet: no password set.
    pub invitation_pending: bool,
    pub created_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl EnterpriseAdmin {
    fn of((user, has_password): (User, bool)) -> EnterpriseAdmin {
        EnterpriseAdmin {
            id: user.id,
            name: user.name,
            email: user.email,
            active: user.active,
            invitation_pending: !has_password,
            created_at: user.created_at,
            deactivated_at: user.deactivated_at,
        }
    }
}

#[derive(utoipa::ToSchema, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: Option<String>,
    #[schema(required = true, value_type = String, format = Email, max_length = 254)]
    pub email: Option<String>,
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct InvitedAdmin {
    pub admin: EnterpriseAdmin,
    /// False when this appliance has no SMTP server configured: the
    /// invitation waits in the outbox until one is (an admin can also get
    /// the link with `POST /api/enterprise/users/{id}/invitation`).
    pub email_enabled: bool,
}

pub async fn list(svc: &Services, admin: &AdminCtx) -> Result<Vec<EnterpriseAdmin>, AppError> {
    let enterprise = admin.enterprise();
    let admins = svc
        .db
        .read(move |conn| store::users::admins(conn, enterprise).map_err(AppError::from))
        .await?;
    Ok(admins.into_iter().map(EnterpriseAdmin::of).collect())
}

fn one(
    conn: &rusqlite::Connection,
    enterprise: EnterpriseId,
    id: UserId,
) -> Result<EnterpriseAdmin, AppError> {
    store::users::admins(conn, enterprise)?
        .into_iter()
        .find(|(user, _)| user.id == id)
        .map(EnterpriseAdmin::of)
        .ok_or(AppError::NotFound {
            resource: "administrator",
        })
}

/// Adds an IT admin without a password and queues their invitation email.
pub async fn invite(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    input: NewAdmin,
) -> Result<InvitedAdmin, AppError> {
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name", input.name, 200);
    let email = checked_email(&mut errors, "email", input.email);
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let (enterprise, actor, now, meta) = (
        admin.enterprise(),
        admin.actor(),
        svc.clock.now(),
        meta.clone(),
    );
    let id = UserId::generate();
    let invited = svc
        .db
        .write(move |txn| {
            // Within the enterprise an email names one person; people of
            // other enterprises never count.
            if store::users::with_email(txn, enterprise, &email)?.is_some() {
                return Err(AppError::Conflict {
                    code: "email_taken",
                    field: Some("email"),
                    message: format!("{email} already belongs to someone of this enterprise"),
                });
            }
            store::users::insert(
                txn,
                &store::users::NewUser {
                    id,
                    enterprise_account_id: enterprise,
                    email: &email,
                    name: &name,
                    role: Role::ItAdmin,
                    store_id: None,
                    manager_id: None,
                    external_id: None,
                    sync_mode: RecordSyncMode::Manual,
                    password_hash: None,
                    now,
                },
            )?;
            emails::queue_invitation(txn, enterprise, id, &email, now)?;
            let event = AuditEvent::new("enterprise.admin.invite", Outcome::Success, actor)
                .in_enterprise(enterprise)
                .target("user", id)
                .changes(serde_json::json!({ "email": email, "name": name }));
            audit::append(txn, &event, &meta, now)?;
            one(txn, enterprise, id)
        })
        .await?;
    svc.outbound.wake_email();
    Ok(InvitedAdmin {
        admin: invited,
        email_enabled: svc.config.email.smtp_host.is_some(),
    })
}

/// Deactivates an IT admin (their sessions and refresh tokens end at once),
/// unless no other active admin could then sign in.
pub async fn deactivate(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    id: UserId,
) -> Result<EnterpriseAdmin, AppError> {
    set_active(svc, admin, meta, id, false).await
}

pub async fn reactivate(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    id: UserId,
) -> Result<EnterpriseAdmin, AppError> {
    set_active(svc, admin, meta, id, true).await
}

async fn set_active(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    id: UserId,
    active: bool,
) -> Result<EnterpriseAdmin, AppError> {
    let (enterprise, actor, now, meta) = (
        admin.enterprise(),
        admin.actor(),
        svc.clock.now(),
        meta.clone(),
    );
    svc.db
        .write(move |txn| {
            let current = one(txn, enterprise, id)?;
            if current.active == active {
                return Ok(current);
            }
            if !active && store::users::admins_who_can_sign_in(txn, enterprise, id)? == 0 {
                return Err(AppError::Conflict {
                    code: "last_admin",
                    field: None,
                    message: "An enterprise keeps at least one active IT administrator who can \
                              sign in: invite another one (and let them set their password) first"
                        .into(),
                });
            }
            store::users::set_active(txn, enterprise, id, active, now)?;
            if !active {
                store::refresh_tokens::revoke_all_of(txn, id, now)?;
            }
            let action = if active {
                "enterprise.admin.reactivate"
            } else {
                "enterprise.admin.deactivate"
            };
            let event = AuditEvent::new(action, Outcome::Success, actor)
                .in_enterprise(enterprise)
                .target("user", id)
                .changes(serde_json::json!({ "active": [current.active, active] }));
            audit::append(txn, &event, &meta, now)?;
            one(txn, enterprise, id)
        })
        .await
}
