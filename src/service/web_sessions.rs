//! Dashboard sessions: a random id in an HttpOnly cookie, stored as SHA-256,
//! with its CSRF token. Signing in goes through the same password check,
//! lockout and audit as the API's login.

use ring::digest::{digest, SHA256};

use super::access::Principal;
use super::audit::{self, AuditEvent};
use super::sessions::{self, Credentials};
use super::{RequestMeta, Services};
use crate::domain::audit::{ActorType, Outcome};
use crate::domain::Role;
use crate::store::{self, web_sessions::LiveSession};
use crate::AppError;

/// How long a dashboard session lasts: a working day.
pub const SESSION_HOURS: i64 = 10;

pub(crate) fn hash(id: &str) -> Vec<u8> {
    digest(&SHA256, id.as_bytes()).as_ref().to_vec()
}

/// A signed-in dashboard user.
#[derive(Debug, Clone)]
pub struct WebUser {
    pub session: LiveSession,
}

impl WebUser {
    pub fn principal(&self) -> Principal {
        Principal::User {
            user: self.session.user,
            enterprise: self.session.enterprise,
            role: self.session.role,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.session.role == Role::ItAdmin
    }
}

/// A new session: its cookie value (shown to the browser only) and the person.
pub struct Started {
    pub cookie: String,
}

pub async fn sign_in(
    svc: &Services,
    meta: &RequestMeta,
    credentials: Credentials,
) -> Result<Started, AppError> {
    let verified = sessions::verify_password(svc, meta, credentials).await?;
    let id = sessions::new_refresh_token()?;
    let csrf = sessions::new_refresh_token()?;
    let (id_hash, meta) = (hash(&id), meta.clone());
    svc.db
        .write(move |txn| {
            sessions::record_success(txn, &verified, "dashboard", &meta)?;
            let user = &verified.user;
            store::web_sessions::insert(
                txn,
                &store::web_sessions::NewWebSession {
                    id_hash: &id_hash,
                    user: user.id,
                    enterprise: user.enterprise_account_id,
                    csrf_token: &csrf,
                    token_version: verified.token_version,
                    now: verified.now,
                    expires_at: verified.now + chrono::Duration::hours(SESSION_HOURS),
                },
            )?;
            store::web_sessions::prune_expired(txn, verified.now)?;
            Ok::<_, AppError>(())
        })
        .await?;
    Ok(Started { cookie: id })
}

/// The session a cookie names, if it is still valid.
pub async fn find(svc: &Services, cookie: &str) -> Result<Option<WebUser>, AppError> {
    if cookie.is_empty() || cookie.len() > 128 {
        return Ok(None);
    }
    let (id_hash, now) = (hash(cookie), svc.clock.now());
    let session = svc
        .db
        .read(move |conn| {
            store::web_sessions::find_live(conn, &id_hash, now).map_err(AppError::from)
        })
        .await?;
    Ok(session.map(|session| WebUser { session }))
}

pub async fn sign_out(
    svc: &Services,
    meta: &RequestMeta,
    user: &WebUser,
    cookie: &str,
) -> Result<(), AppError> {
    let (id_hash, now, meta) = (hash(cookie), svc.clock.now(), meta.clone());
    let event = AuditEvent::new(
        "auth.logout",
        Outcome::Success,
        super::access::Actor {
            kind: ActorType::User,
            id: user.session.user.to_string(),
        },
    )
    .in_enterprise(user.session.enterprise)
    .changes(serde_json::json!({ "via": "dashboard" }));
    svc.db
        .write(move |txn| {
            store::web_sessions::delete(txn, &id_hash)?;
            audit::append(txn, &event, &meta, now)?;
            Ok::<_, AppError>(())
        })
        .await
}
