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

/// Lockout after repeated failures: doubling from one minute, capped.
fn lock_for(failures: u32, threshold: u32, max_secs: u64) -> Option<chrono::Duration> {
    if failures < threshold {
        return None;
    }
    let exponent = (failures - threshold).min(20);
    let secs = 60u64.saturating_mul(1 << exponent).min(max_secs);
    Some(chrono::Duration::seconds(
        i64::try_from(secs).unwrap_or(3600),
    ))
}

/// How many times an account's address-level threshold its account-wide
/// lockout waits for: a stranger guessing from a few addresses cannot lock a
/// real person out, a distributed guesser still meets a ceiling.
const ACCOUNT_CEILING_FACTOR: u32 = 10;

/// How long an address stays shut out of an account after its failures.
const ADDRESS_LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// Accounts shut to one client address after repeated failed sign-ins from it.
#[derive(Default)]
pub struct AddressLockouts {
    /// Until when (monotonic), per account and address.
    locked: Mutex<HashMap<(UserId, IpAddr), Duration>>,
}

impl AddressLockouts {
    fn is_locked(&self, user: UserId, ip: IpAddr, now: Duration) -> bool {
        self.locked
            .lock()
            .map(|locked| locked.get(&(user, ip)).is_some_and(|until| *until > now))
            .unwrap_or(true)
    }

    fn lock(&self, user: UserId, ip: IpAddr, now: Duration) {
        if let Ok(mut locked) = self.locked.lock() {
            // Strangers choose the addresses: forget the lockouts that ended.
            if locked.len() > 10_000 {
                locked.retain(|_, until| *until > now);
            }
            locked.insert((user, ip), now + ADDRESS_LOCKOUT);
        }
    }
}

/// A person whose email and password matched.
pub(crate) struct Verified {
    pub user: User,
    pub token_version: i64,
    /// A new hash when the stored one used older parameters.
    pub rehash: Option<String>,
    pub now: DateTime<Utc>,
}

/// The enterprise a sign-in names, if any: a malformed id is the person's
/// typing, answered by field; a well-formed one that names nothing finds no
/// account, like a wrong password.
fn named_enterprise(input: Option<&str>) -> Result<Option<EnterpriseId>, AppError> {
    match input.map(str::trim).filter(|id| !id.is_empty()) {
        None => Ok(None),
        Some(id) => id.parse().map(Some).map_err(|_| {
            AppError::field(
                "enterprise_id",
                "invalid",
                "enterprise_id is the id of an enterprise (a UUID)",
            )
        }),
    }
}

/// Checks an email and password against every account the email names (one
/// per enterprise at most): the account they open signs in; when they open
/// several, the person names the enterprise (only those are listed). Unknown
/// emails, wrong passwords and locked accounts get the same answer for the
/// same work — one argon2 run however many enterprises know the email (see
/// `passwords`) — so nothing tells whether the email exists, here or in
/// another enterprise. Repeated failures lock an account out for the address
/// they come from, and far later for everyone; failures are audited in the
/// account's enterprise. The caller records the success with
/// [`record_success`] in its own transaction.
pub(crate) async fn verify_password(
    svc: &Services,
    meta: &RequestMeta,
    input: Credentials,
) -> Result<Verified, AppError> {
    let email = email::normalize(input.email.as_deref().unwrap_or_default());
    let password = input.password.unwrap_or_default();
    if email.is_empty()
        || password.is_empty()
        || password.len() > password::MAX_BYTES
        || email.len() > email::MAX_LEN
    {
        return Err(AppError::invalid_credentials());
    }
    let enterprise = named_enterprise(input.enterprise_id.as_deref())?;
    let lookup = email.clone();
    let mut records: Vec<LoginRecord> = svc
        .db
        .read(move |conn| {
            store::users::find_logins_by_email(conn, &lookup, enterprise).map_err(AppError::from)
        })
        .await?;
    let now = svc.clock.now();
    let address = meta.ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let monotonic = svc.clock.monotonic();

    // Every stored hash is checked, locked or not, so the work does not
    // depend on an account's state.
    let stored = records.iter().map(|r| r.password_hash.clone()).collect();
    let matches = svc
        .passwords
        .verify_all(password.clone(), &email, stored)
        .await?;
    let address_locked: Vec<bool> = records
        .iter()
        .map(|r| {
            svc.address_lockouts
                .is_locked(r.user.id, address, monotonic)
        })
        .collect();
    let opens = |i: usize| {
        let record = &records[i];
        matches[i]
            && record.user.active
            && !address_locked[i]
            && record.locked_until.is_none_or(|until| until <= now)
    };
    let opened: Vec<usize> = (0..records.len()).filter(|&i| opens(i)).collect();

    if let [only] = opened[..] {
        let record = records.swap_remove(only);
        let rehash = match &record.password_hash {
            Some(hash) if svc.passwords.needs_rehash(hash, &email) => {
                Some(svc.passwords.hash(password, &email).await?)
            }
            _ => None,
        };
        return Ok(Verified {
            user: record.user,
            token_version: record.token_version,
            rehash,
            now,
        });
    }
    if opened.len() > 1 {
        // The person proved they hold each of these accounts.
        let choices = opened
            .iter()
            .map(|&i| crate::error::EnterpriseChoice {
                id: records[i].user.enterprise_account_id.to_string(),
                company_name: records[i].company_name.clone(),
            })
            .collect();
        return Err(AppError::EnterpriseRequired(choices));
    }

    if records.is_empty() {
        audit::record(
            svc,
            AuditEvent::anonymous("auth.login", Outcome::Failure).reason("unknown_email"),
            meta,
        )
        .await?;
        return Err(AppError::invalid_credentials());
    }
    let auth = &svc.config.auth;
    let threshold = auth.lockout_threshold.max(1);
    let mut failures = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let user = &record.user;
        let fail = |reason: &'static str| {
            AuditEvent::new("auth.login", Outcome::Failure, user_actor(user.id))
                .in_enterprise(user.enterprise_account_id)
                .target("user", user.id)
                .reason(reason)
        };
        if address_locked[i] || record.locked_until.is_some_and(|until| until > now) {
            let reason = if address_locked[i] {
                "address_locked"
            } else {
                "account_locked"
            };
            failures.push(AccountFailure {
                user: user.id,
                counted: None,
                events: vec![fail(reason)],
            });
            continue;
        }
        let reason = if !user.active {
            "inactive"
        } else if record.password_hash.is_none() {
            "no_password"
        } else {
            "wrong_password"
        };
        let count = record.failed_login_count.saturating_add(1);
        let mut events = vec![fail(reason)];
        // This address's failures first: after `threshold` of them in 15
        // minutes it is shut out of this account, the others are not.
        let address_policy = Policy {
            name: "login-failures-per-address",
            limit: threshold,
            window: ADDRESS_LOCKOUT,
        };
        match svc
            .limits
            .check(Bucket::LoginFailures(user.id, address), address_policy)
        {
            Ok(allowed) if allowed.remaining > 0 => {}
            // This failure used the address's last try (or it was over already).
            _ => {
                svc.address_lockouts.lock(user.id, address, monotonic);
                events.push(fail("lockout_started").changes(serde_json::json!({
                    "scope": "address",
                    "address": address.to_string(),
                    "locked_for_secs": ADDRESS_LOCKOUT.as_secs(),
                })));
            }
        }
        let locked_until = lock_for(
            count,
            threshold.saturating_mul(ACCOUNT_CEILING_FACTOR),
            auth.lockout_max_secs,
        )
        .map(|d| now + d);
        if let Some(until) = locked_until {
            events.push(fail("lockout_started").changes(serde_json::json!({
                "scope": "account",
                "failures": count,
                "locked_until": store::ts(until),
            })));
            tracing::warn!(user = %user.id, failures = count, "account temporarily locked after failed logins");
        }
        failures.push(AccountFailure {
            user: user.id,
            counted: Some((count, locked_until)),
            events,
        });
    }
    let meta_c = meta.clone();
    svc.db
        .write(move |txn| {
            for failure in &failures {
                if let Some((count, locked_until)) = failure.counted {
                    store::users::record_login_failure(txn, failure.user, count, locked_until)?;
                }
                for event in &failure.events {
                    audit::append(txn, event, &meta_c, now)?;
                }
            }
            Ok::<_, AppError>(())
        })
        .await?;
    Err(AppError::invalid_credentials())
}

/// What a failed sign-in leaves on one account: its failure count and
/// lockout (none while it is locked already) and the audit events.
struct AccountFailure {
    user: UserId,
    counted: Option<(u32, Option<DateTime<Utc>>)>,
    events: Vec<AuditEvent>,
}

/// Inside the sign-in's transaction: failures reset, a newer hash stored, the
/// success audited (`via`: `api` or `dashboard`).
pub(crate) fn record_success(
    txn: &rusqlite::Connection,
    verified: &Verified,
    via: &str,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    let user = &verified.user;
    store::users::record_login_success(txn, user.id)?;
    if let Some(hash) = &verified.rehash {
        store::users::replace_password_hash(txn, user.id, hash)?;
    }
    let event = AuditEvent::new("auth.login", Outcome::Success, user_actor(user.id))
        .in_enterprise(user.enterprise_account_id)
        .target("user", user.id)
        .changes(serde_json::json!({ "via": via }));
    audit::append(txn, &event, meta, verified.now)?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_doubles_and_caps() {
        assert_eq!(lock_for(9, 10, 3600), None);
        assert_eq!(lock_for(10, 10, 3600), Some(chrono::Duration::seconds(60)));
        assert_eq!(lock_for(11, 10, 3600), Some(chrono::Duration::seconds(120)));
        assert_eq!(
            lock_for(40, 10, 3600),
            Some(chrono::Duration::seconds(3600))
        );
    }
}
