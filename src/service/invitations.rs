//! Invitations: a one-time, expiring link with which a provisioned person sets
//! their password. Tokens are 256-bit random strings stored as SHA-256.

use chrono::{DateTime, Utc};
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::access::{Actor, AdminCtx};
use super::audit::{self, AuditEvent};
use super::sessions::SessionUser;
use super::{RequestMeta, Services};
use crate::domain::audit::{ActorType, Outcome};
use crate::domain::{password, EnterpriseId, UserId};
use crate::store::{self, invitations::NewInvitation};
use crate::AppError;

fn hash(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

/// Records a fresh invitation for `user` (revoking older open ones) and returns
/// its clear token, which only the caller ever sees.
pub fn issue(
    conn: &Connection,
    enterprise: EnterpriseId,
    user: UserId,
    ttl_hours: u32,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AppError::internal("random generator failed"))?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    store::invitations::replace(
        conn,
        &NewInvitation {
            enterprise_account_id: enterprise,
            user_id: user,
            token_hash: &hash(&token),
            created_at: now,
            expires_at: now + chrono::Duration::hours(i64::from(ttl_hours)),
        },
    )?;
    Ok(token)
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct IssuedInvitation {
    pub user_id: UserId,
    pub token: String,
    pub invitation_url: String,
    pub expires_at: DateTime<Utc>,
}

/// The link that accepts an invitation, under the service's public address.
pub fn link(base: &str, token: &str) -> String {
    format!(
        "{}/invitations/accept?token={token}",
        base.trim_end_matches('/')
    )
}

/// An IT admin (re)issues a person's invitation and gets the link to pass on.
pub async fn reissue(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    user: UserId,
) -> Result<IssuedInvitation, AppError> {
    let (enterprise, now, ttl, meta_c) = (
        admin.enterprise(),
        svc.clock.now(),
        svc.config.auth.invitation_ttl_hours,
        meta.clone(),
    );
    let event = AuditEvent::new("user.invitation.issue", Outcome::Success, admin.actor())
        .in_enterprise(enterprise)
        .target("user", user);
    let token = svc
        .db
        .write(move |txn| {
            super::emails::invitable(txn, enterprise, user)?;
            let token = issue(txn, enterprise, user, ttl, now)?;
            audit::append(txn, &event, &meta_c, now)?;
            Ok::<_, AppError>(token)
        })
        .await?;
    Ok(IssuedInvitation {
        user_id: user,
        invitation_url: link(&svc.public_base_url(), &token),
        token,
        expires_at: now + chrono::Duration::hours(i64::from(ttl)),
    })
}

#[derive(utoipa::ToSchema, Debug, Deserialize)]
pub struct Acceptance {
    pub token: Option<String>,
    pub password: Option<String>,
}

fn refused(code: &'static str, message: &str) -> AppError {
    AppError::BadRequest {
        code,
        message: message.into(),
    }
}

/// Why an invitation can no longer be used, if it cannot.
fn still_valid(
    invitation: &store::invitations::InvitationRow,
    user: &crate::domain::User,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if invitation.used {
        return Err(refused(
            "invitation_used",
            "This invitation has already been used; sign in with your password",
        ));
    }
    if invitation.revoked {
        return Err(refused(
            "invitation_replaced",
            "A newer invitation replaced this one; use the latest link",
        ));
    }
    if invitation.expires_at.is_none_or(|e| e <= now) {
        return Err(refused(
            "invitation_expired",
            "This invitation has expired; ask your IT administrator for a new one",
        ));
    }
    if !user.active {
        return Err(refused(
            "invitation_invalid",
            "This invitation link is not valid",
        ));
    }
    Ok(())
}

/// What the invitation page shows before the person chooses a password.
pub struct InvitationPage {
    /// The enterprise's email language, when the token names an enterprise.
    pub language: Option<crate::domain::notifications::Language>,
    /// The person's name, or why the link cannot be used.
    pub state: Result<String, AppError>,
}

pub async fn page(svc: &Services, token: &str) -> Result<InvitationPage, AppError> {
    if token.is_empty() || token.len() > 256 {
        return Ok(InvitationPage {
            language: None,
            state: Err(refused(
                "invitation_invalid",
                "This invitation link is not valid",
            )),
        });
    }
    let lookup = hash(token);
    let now = svc.clock.now();
    svc.db
        .read(move |conn| {
            let Some(invitation) = store::invitations::find_by_hash(conn, &lookup)? else {
                return Ok(InvitationPage {
                    language: None,
                    state: Err(refused(
                        "invitation_invalid",
                        "This invitation link is not valid",
                    )),
                });
            };
            let enterprise = invitation.enterprise_account_id;
            let language = Some(store::notification_settings::get(conn, enterprise)?.language);
            let state = match store::users::get(conn, enterprise, invitation.user_id)? {
                Some(user) => still_valid(&invitation, &user, now).map(|()| user.name),
                None => Err(refused(
                    "invitation_invalid",
                    "This invitation link is not valid",
                )),
            };
            Ok(InvitationPage { language, state })
        })
        .await
}

/// Sets the person's password from a valid invitation; the token is spent.
pub async fn accept(
    svc: &Services,
    meta: &RequestMeta,
    input: Acceptance,
) -> Result<SessionUser, AppError> {
    let token = input.token.unwrap_or_default();
    let password = input.password.unwrap_or_default();
    if token.is_empty() || token.len() > 256 {
        return Err(refused(
            "invitation_invalid",
            "This invitation link is not valid",
        ));
    }
    let token_hash = hash(&token);
    let lookup = token_hash.clone();
    let found = svc
        .db
        .read(move |conn| {
            let Some(invitation) = store::invitations::find_by_hash(conn, &lookup)? else {
                return Ok(None);
            };
            let user =
                store::users::get(conn, invitation.enterprise_account_id, invitation.user_id)?;
            Ok::<_, AppError>(user.map(|u| (invitation, u)))
        })
        .await?;
    let now = svc.clock.now();
    let Some((invitation, user)) = found else {
        return Err(refused(
            "invitation_invalid",
            "This invitation link is not valid",
        ));
    };
    still_valid(&invitation, &user, now)?;
    if let Some(problem) = password::problem(&password, &[&user.email, &user.name]) {
        return Err(AppError::field(
            "password",
            "weak_password",
            format!("password {problem}"),
        ));
    }
    let password_hash = svc.passwords.hash(password, &user.email).await?;
    let event = AuditEvent::new(
        "user.invitation.accept",
        Outcome::Success,
        Actor {
            kind: ActorType::User,
            id: user.id.to_string(),
        },
    )
    .in_enterprise(user.enterprise_account_id)
    .target("user", user.id);
    let (meta, id, invitation_id) = (meta.clone(), user.id, invitation.id.clone());
    svc.db
        .write(move |txn| {
            // Spent under the writer's lock, so two concurrent uses cannot both succeed.
            let current = store::invitations::find_by_hash(txn, &token_hash)?;
            if current.is_none_or(|i| i.used || i.revoked) {
                return Err(refused(
                    "invitation_used",
                    "This invitation has already been used; sign in with your password",
                ));
            }
            store::invitations::mark_used(txn, &invitation_id, now)?;
            store::users::set_password(txn, id, &password_hash, now)?;
            audit::append(txn, &event, &meta, now)?;
            Ok(())
        })
        .await?;
    Ok(SessionUser::from(&user))
}
