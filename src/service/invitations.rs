//! One-time, expiring links with which a person sets a password: an
//! invitation (a provisioned person's first password) or a password reset (a
//! forgotten one, see `password_changes`). Tokens are 256-bit random strings
//! stored as SHA-256; a new link of a kind replaces the person's open ones.

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
use crate::store::one_time_links::{LinkRow, LinkTable, NewLink};
use crate::store::{self};
use crate::AppError;

fn hash(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Invitation,
    PasswordReset,
}

impl LinkPurpose {
    fn table(self) -> LinkTable {
        match self {
            LinkPurpose::Invitation => LinkTable::Invitations,
            LinkPurpose::PasswordReset => LinkTable::PasswordResets,
        }
    }

    /// The page the link opens.
    pub fn path(self) -> &'static str {
        match self {
            LinkPurpose::Invitation => "/invitations/accept",
            LinkPurpose::PasswordReset => "/password-reset",
        }
    }

    fn invalid(self) -> AppError {
        match self {
            LinkPurpose::Invitation => {
                refused("invitation_invalid", "This invitation link is not valid")
            }
            LinkPurpose::PasswordReset => refused(
                "reset_link_invalid",
                "This password reset link is not valid",
            ),
        }
    }

    fn used(self) -> AppError {
        match self {
            LinkPurpose::Invitation => refused(
                "invitation_used",
                "This invitation has already been used; sign in with your password",
            ),
            LinkPurpose::PasswordReset => refused(
                "reset_link_used",
                "This password reset link has already been used; ask for a new one if needed",
            ),
        }
    }

    fn replaced(self) -> AppError {
        match self {
            LinkPurpose::Invitation => refused(
                "invitation_replaced",
                "A newer invitation replaced this one; use the latest link",
            ),
            LinkPurpose::PasswordReset => refused(
                "reset_link_replaced",
                "A newer password reset link replaced this one; use the latest link",
            ),
        }
    }

    fn expired(self) -> AppError {
        match self {
            LinkPurpose::Invitation => refused(
                "invitation_expired",
                "This invitation has expired; ask your IT administrator for a new one",
            ),
            LinkPurpose::PasswordReset => refused(
                "reset_link_expired",
                "This password reset link has expired; ask for a new one",
            ),
        }
    }

    fn audit_action(self) -> &'static str {
        match self {
            LinkPurpose::Invitation => "user.invitation.accept",
            LinkPurpose::PasswordReset => "user.password.reset",
        }
    }
}

/// Records a fresh link for `user` (revoking their older open ones of the
/// kind), valid for `ttl`, and returns its clear token, which only the caller
/// ever sees.
pub fn issue(
    conn: &Connection,
    purpose: LinkPurpose,
    enterprise: EnterpriseId,
    user: UserId,
    ttl: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AppError::internal("random generator failed"))?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    store::one_time_links::replace(
        conn,
        purpose.table(),
        &NewLink {
            enterprise_account_id: enterprise,
            user_id: user,
            token_hash: &hash(&token),
            created_at: now,
            expires_at: now + ttl,
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

/// The link's address under the service's public address.
pub fn link(purpose: LinkPurpose, base: &str, token: &str) -> String {
    format!(
        "{}{}?token={token}",
        base.trim_end_matches('/'),
        purpose.path()
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
        chrono::Duration::hours(i64::from(svc.config.auth.invitation_ttl_hours)),
        meta.clone(),
    );
    let event = AuditEvent::new("user.invitation.issue", Outcome::Success, admin.actor())
        .in_enterprise(enterprise)
        .target("user", user);
    let token = svc
        .db
        .write(move |txn| {
            super::emails::invitable(txn, enterprise, user)?;
            let token = issue(txn, LinkPurpose::Invitation, enterprise, user, ttl, now)?;
            audit::append(txn, &event, &meta_c, now)?;
            Ok::<_, AppError>(token)
        })
        .await?;
    Ok(IssuedInvitation {
        user_id: user,
        invitation_url: link(LinkPurpose::Invitation, &svc.public_base_url(), &token),
        token,
        expires_at: now + ttl,
    })
}

#[derive(utoipa::ToSchema, Debug, Deserialize)]
pub struct Acceptance {
    #[schema(required = true, value_type = String)]
    pub token: Option<String>,
    #[schema(required = true, value_type = String, min_length = 15, max_length = 128)]
    pub password: Option<String>,
}

fn refused(code: &'static str, message: &str) -> AppError {
    AppError::BadRequest {
        code,
        message: message.into(),
    }
}

/// Why a link can no longer be used, if it cannot.
fn still_valid(
    purpose: LinkPurpose,
    link: &LinkRow,
    user: &crate::domain::User,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if link.used {
        return Err(purpose.used());
    }
    if link.revoked {
        return Err(purpose.replaced());
    }
    if link.expires_at.is_none_or(|e| e <= now) {
        return Err(purpose.expired());
    }
    if !user.active {
        return Err(purpose.invalid());
    }
    Ok(())
}

/// Who a usable link is for.
pub struct LinkHolder {
    pub name: String,
    pub email: String,
    pub company: String,
}

/// What the link's page shows before the person chooses a password.
pub struct LinkPage {
    /// The enterprise's email language, when the token names an enterprise.
    pub language: Option<crate::domain::notifications::Language>,
    /// The person, or why the link cannot be used.
    pub state: Result<LinkHolder, AppError>,
}

pub async fn page(svc: &Services, purpose: LinkPurpose, token: &str) -> Result<LinkPage, AppError> {
    if token.is_empty() || token.len() > 256 {
        return Ok(LinkPage {
            language: None,
            state: Err(purpose.invalid()),
        });
    }
    let lookup = hash(token);
    let now = svc.clock.now();
    svc.db
        .read(move |conn| {
            let Some(link) = store::one_time_links::find_by_hash(conn, purpose.table(), &lookup)?
            else {
                return Ok(LinkPage {
                    language: None,
                    state: Err(purpose.invalid()),
                });
            };
            let enterprise = link.enterprise_account_id;
            let language = Some(store::notification_settings::get(conn, enterprise)?.language);
            let company = store::enterprises::get(conn, enterprise)?
                .map(|e| e.company_name)
                .unwrap_or_default();
            let state = match store::users::get(conn, enterprise, link.user_id)? {
                Some(user) => still_valid(purpose, &link, &user, now).map(|()| LinkHolder {
                    name: user.name,
                    email: user.email,
                    company,
                }),
                None => Err(purpose.invalid()),
            };
            Ok(LinkPage { language, state })
        })
        .await
}

/// Sets the person's password from a valid link; the token is spent. A reset
/// also ends every session of the person (a new password is set because the
/// old one may be known).
pub async fn accept(
    svc: &Services,
    purpose: LinkPurpose,
    meta: &RequestMeta,
    input: Acceptance,
) -> Result<SessionUser, AppError> {
    let token = input.token.unwrap_or_default();
    let password = input.password.unwrap_or_default();
    if token.is_empty() || token.len() > 256 {
        return Err(purpose.invalid());
    }
    let token_hash = hash(&token);
    let lookup = token_hash.clone();
    let found = svc
        .db
        .read(move |conn| {
            let Some(link) = store::one_time_links::find_by_hash(conn, purpose.table(), &lookup)?
            else {
                return Ok(None);
            };
            let user = store::users::get(conn, link.enterprise_account_id, link.user_id)?;
            let company = store::enterprises::get(conn, link.enterprise_account_id)?
                .map(|e| e.company_name)
                .unwrap_or_default();
            Ok::<_, AppError>(user.map(|u| (link, u, company)))
        })
        .await?;
    let now = svc.clock.now();
    let Some((link, user, company)) = found else {
        return Err(purpose.invalid());
    };
    still_valid(purpose, &link, &user, now)?;
    if let Some(problem) = password::problem(&password, &[&user.email, &user.name, &company]) {
        return Err(AppError::field(
            "password",
            "weak_password",
            format!("password {problem}"),
        ));
    }
    let password_hash = svc.passwords.hash(password, &user.email).await?;
    let event = AuditEvent::new(
        purpose.audit_action(),
        Outcome::Success,
        Actor {
            kind: ActorType::User,
            id: user.id.to_string(),
        },
    )
    .in_enterprise(user.enterprise_account_id)
    .target("user", user.id);
    let (meta, id, link_id) = (meta.clone(), user.id, link.id.clone());
    svc.db
        .write(move |txn| {
            // Spent under the writer's lock, so two concurrent uses cannot both succeed.
            let current = store::one_time_links::find_by_hash(txn, purpose.table(), &token_hash)?;
            if current.is_none_or(|l| l.used || l.revoked) {
                return Err(purpose.used());
            }
            store::one_time_links::mark_used(txn, purpose.table(), &link_id, now)?;
            // The token version moves on: access tokens and dashboard
            // sessions of before stop, and so do refresh tokens.
            store::users::set_password(txn, id, &password_hash, now)?;
            store::refresh_tokens::revoke_all_of(txn, id, now)?;
            audit::append(txn, &event, &meta, now)?;
            Ok(())
        })
        .await?;
    Ok(SessionUser::from(&user))
}
