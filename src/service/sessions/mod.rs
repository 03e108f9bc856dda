//! Sign-in for people: login, rotating refresh tokens with reuse detection,
//! logout, and resolving an access token into a [`Principal`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::access::{Actor, Principal};
use super::audit::{self, AuditEvent};
use super::rate_limit::{Bucket, Policy};
use super::{RequestMeta, Services};
use crate::domain::audit::{ActorType, Outcome};
use crate::domain::{email, password, EnterpriseId, Role, User, UserId};
use crate::store::refresh_tokens::NewRefreshToken;
use crate::store::{self, users::LoginRecord};
use crate::AppError;

mod credentials;

pub use credentials::*;

#[derive(utoipa::ToSchema, Debug, Deserialize)]
pub struct Credentials {
    #[schema(required = true, value_type = String, max_length = 254)]
    pub email: Option<String>,
    #[schema(required = true, value_type = String, max_length = 1024)]
    pub password: Option<String>,
    /// The enterprise to sign in to. Needed only when the email and password
    /// open accounts in several enterprises (409 `enterprise_required` lists
    /// them); an account of another enterprise is then not considered.
    #[serde(default, deserialize_with = "crate::domain::text::given")]
    #[schema(value_type = uuid::Uuid)]
    pub enterprise_id: Option<String>,
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct SessionUser {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub enterprise_account_id: EnterpriseId,
    pub store_id: Option<crate::domain::StoreId>,
}

impl From<&User> for SessionUser {
    fn from(user: &User) -> Self {
        SessionUser {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role,
            enterprise_account_id: user.enterprise_account_id,
            store_id: user.store_id,
        }
    }
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub user: SessionUser,
}

fn user_actor(user: UserId) -> Actor {
    Actor {
        kind: ActorType::User,
        id: user.to_string(),
    }
}

fn hash_refresh(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

/// 256 random bits, URL-safe: refresh tokens, dashboard session ids, CSRF tokens.
pub(crate) fn new_refresh_token() -> Result<String, AppError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AppError::internal("random generator failed"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Inserts a refresh token of `family` and returns its clear value.
pub(crate) fn store_refresh(
    conn: &rusqlite::Connection,
    svc_ttl: i64,
    family: &str,
    (user, token_version): (UserId, i64),
    token: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    store::refresh_tokens::insert(
        conn,
        &NewRefreshToken {
            id: &uuid::Uuid::now_v7().to_string(),
            family_id: family,
            user_id: user,
            token_hash: &hash_refresh(token),
            created_at: now,
            expires_at: now + chrono::Duration::seconds(svc_ttl),
            token_version,
        },
    )
}

pub async fn login(
    svc: &Services,
    meta: &RequestMeta,
    input: Credentials,
) -> Result<TokenPair, AppError> {
    let verified = verify_password(svc, meta, input).await?;
    let refresh = new_refresh_token()?;
    let (refresh_c, meta_c, ttl) = (refresh.clone(), meta.clone(), svc.tokens.refresh_ttl_secs);
    let (id, now) = (verified.user.id, verified.now);
    let family = uuid::Uuid::now_v7().to_string();
    let family_c = family.clone();
    let verified = svc
        .db
        .write(move |txn| {
            record_success(txn, &verified, "api", &meta_c)?;
            let version = verified.token_version;
            store_refresh(txn, ttl, &family_c, (id, version), &refresh_c, now)?;
            Ok::<_, AppError>(verified)
        })
        .await?;
    token_pair(
        svc,
        &verified.user,
        (verified.token_version, &family),
        refresh,
        now,
    )
}

pub(crate) fn token_pair(
    svc: &Services,
    user: &User,
    (token_version, family): (i64, &str),
    refresh_token: String,
    now: DateTime<Utc>,
) -> Result<TokenPair, AppError> {
    let access = svc
        .tokens
        .issue(
            user.id,
            user.enterprise_account_id,
            user.role,
            token_version,
            family,
            now,
        )
        .map_err(AppError::internal)?;
    Ok(TokenPair {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token,
        user: SessionUser::from(user),
    })
}

#[derive(utoipa::ToSchema, Debug, Deserialize)]
pub struct RefreshRequest {
    #[schema(required = true, value_type = String)]
    pub refresh_token: Option<String>,
}

enum RefreshOutcome {
    Rotated {
        user: Box<User>,
        token_version: i64,
        family: String,
    },
    Refused,
}

/// Exchanges a refresh token for a new pair. A token that was already used
/// means it leaked: the whole family is revoked and the event audited.
pub async fn refresh(
    svc: &Services,
    meta: &RequestMeta,
    input: RefreshRequest,
) -> Result<TokenPair, AppError> {
    let presented = input.refresh_token.unwrap_or_default();
    if presented.is_empty() || presented.len() > 256 {
        return Err(AppError::unauthenticated());
    }
    let now = svc.clock.now();
    let new_token = new_refresh_token()?;
    let (new_c, meta_c, ttl) = (new_token.clone(), meta.clone(), svc.tokens.refresh_ttl_secs);
    let outcome = svc
        .db
        .write(move |txn| {
            let Some(row) = store::refresh_tokens::find_by_hash(txn, &hash_refresh(&presented))? else {
                return Ok(RefreshOutcome::Refused);
            };
            let state = store::users::session_state(txn, row.user_id)?;
            let Some(state) = state else {
                return Ok(RefreshOutcome::Refused);
            };
            let event = |action: &'static str, outcome: Outcome| {
                AuditEvent::new(action, outcome, user_actor(row.user_id))
                    .in_enterprise(state.enterprise_account_id)
                    .target("user", row.user_id)
            };
            if row.used_at.is_some() {
                let revoked = store::refresh_tokens::revoke_family(txn, &row.family_id, now)?;
                let reuse = event("auth.refresh_reuse", Outcome::Denied)
                    .reason("refresh_token_reused")
                    .changes(serde_json::json!({ "family_revoked": true, "live_tokens_revoked": revoked }));
                audit::append(txn, &reuse, &meta_c, now)?;
                return Ok(RefreshOutcome::Refused);
            }
            if row.revoked_at.is_some() || row.expires_at.is_none_or(|e| e <= now) || !state.active {
                return Ok(RefreshOutcome::Refused);
            }
            // Issued before a deactivation, role change or password change:
            // the person's sessions were ended, this family with them.
            if row.token_version != Some(state.token_version) {
                store::refresh_tokens::revoke_family(txn, &row.family_id, now)?;
                let ended = event("auth.refresh", Outcome::Denied).reason("sessions_ended");
                audit::append(txn, &ended, &meta_c, now)?;
                return Ok(RefreshOutcome::Refused);
            }
            store::refresh_tokens::mark_used(txn, &row.id, now)?;
            let version = state.token_version;
            store_refresh(txn, ttl, &row.family_id, (row.user_id, version), &new_c, now)?;
            audit::append(txn, &event("auth.refresh", Outcome::Success), &meta_c, now)?;
            let user = store::users::get(txn, state.enterprise_account_id, row.user_id)?;
            Ok::<_, AppError>(match user {
                Some(user) => RefreshOutcome::Rotated {
                    user: Box::new(user),
                    token_version: state.token_version,
                    family: row.family_id.clone(),
                },
                None => RefreshOutcome::Refused,
            })
        })
        .await?;
    match outcome {
        RefreshOutcome::Refused => Err(AppError::unauthenticated()),
        RefreshOutcome::Rotated {
            user,
            token_version,
            family,
        } => token_pair(svc, &user, (token_version, &family), new_token, now),
    }
}

/// Ends the session the refresh token belongs to. Idempotent: an unknown token
/// is not an error, so logout never tells a stranger anything.
pub async fn logout(
    svc: &Services,
    meta: &RequestMeta,
    input: RefreshRequest,
) -> Result<(), AppError> {
    let presented = input.refresh_token.unwrap_or_default();
    if presented.is_empty() || presented.len() > 256 {
        return Ok(());
    }
    let now = svc.clock.now();
    let meta = meta.clone();
    svc.db
        .write(move |txn| {
            let Some(row) = store::refresh_tokens::find_by_hash(txn, &hash_refresh(&presented))?
            else {
                return Ok(());
            };
            store::refresh_tokens::revoke_family(txn, &row.family_id, now)?;
            if let Some(state) = store::users::session_state(txn, row.user_id)? {
                let event =
                    AuditEvent::new("auth.logout", Outcome::Success, user_actor(row.user_id))
                        .in_enterprise(state.enterprise_account_id)
                        .target("user", row.user_id);
                audit::append(txn, &event, &meta, now)?;
            }
            Ok::<_, AppError>(())
        })
        .await
}

/// Ends every session of the person: the token version moves on (access
/// tokens and dashboard sessions stop at once) and every refresh family is
/// revoked. Audited.
pub async fn logout_everywhere(
    svc: &Services,
    meta: &RequestMeta,
    principal: &Principal,
) -> Result<(), AppError> {
    let Principal::User {
        user, enterprise, ..
    } = *principal
    else {
        return Err(AppError::forbidden(
            "not_a_person",
            "Only a signed-in person has sessions to end; an API key is revoked instead",
        ));
    };
    let (now, meta) = (svc.clock.now(), meta.clone());
    svc.db
        .write(move |txn| {
            store::users::end_sessions(txn, user, now)?;
            let revoked = store::refresh_tokens::revoke_all_of(txn, user, now)?;
            let event =
                AuditEvent::new("auth.logout_everywhere", Outcome::Success, user_actor(user))
                    .in_enterprise(enterprise)
                    .target("user", user)
                    .changes(serde_json::json!({ "refresh_tokens_revoked": revoked }));
            audit::append(txn, &event, &meta, now)?;
            Ok::<_, AppError>(())
        })
        .await
}

/// Resolves a bearer access token. Beyond the signature and expiry, the user must
/// still exist, be active and hold the same token version and role.
pub async fn authenticate(svc: &Services, token: &str) -> Result<Principal, AppError> {
    let claims = svc
        .tokens
        .verify(token, svc.clock.now())
        .ok_or_else(AppError::unauthenticated)?;
    let user = claims.sub;
    let family = claims.sid.clone();
    let (state, logged_out) = svc
        .db
        .read(move |conn| {
            let state = store::users::session_state(conn, user)?;
            let logged_out = match &family {
                Some(family) => store::refresh_tokens::family_revoked(conn, family)?,
                None => false,
            };
            Ok::<_, AppError>((state, logged_out))
        })
        .await?;
    let state = state.ok_or_else(AppError::unauthenticated)?;
    if logged_out
        || !state.active
        || state.token_version != claims.tv
        || state.enterprise_account_id != claims.tid
        || state.role != claims.role
    {
        return Err(AppError::unauthenticated());
    }
    Ok(Principal::User {
        user,
        enterprise: state.enterprise_account_id,
        role: state.role,
    })
}

pub async fn me(svc: &Services, principal: &Principal) -> Result<User, AppError> {
    let (user, enterprise) = principal.require_user()?;
    svc.db
        .read(move |conn| store::users::get(conn, enterprise, user).map_err(AppError::from))
        .await?
        .ok_or(AppError::NotFound { resource: "user" })
}
