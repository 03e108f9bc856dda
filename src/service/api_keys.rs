//! API keys: generation (shown once), listing, revocation, and authentication of
//! `X-API-Key` with an HMAC lookup, a short cache and in-memory usage counters.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::access::{AdminCtx, Principal};
use super::audit::{self, AuditEvent};
use super::rate_limit::Policy;
use super::secrets::SecretBytes;
use super::{RequestMeta, Services};
use crate::config::ApiKeysConfig;
use crate::domain::api_key_token::ApiKeyToken;
use crate::domain::audit::Outcome;
use crate::domain::{ApiKeyId, Scope};
use crate::error::FieldError;
use crate::store::api_keys::{ApiKeyRecord, KeyCredential, NewApiKey};
use crate::store::{self, is_unique_violation};
use crate::AppError;

pub const SHOWN_ONCE_WARNING: &str =
    "Save this key now: it will not be shown again. / Sauvegardez cette clé maintenant, elle ne sera plus affichée.";

struct CachedCredential {
    credential: Arc<KeyCredential>,
    fetched_at: Duration,
}

#[derive(Default)]
struct Usage {
    requests: u64,
    last_used_at: Option<DateTime<Utc>>,
    last_ip: Option<IpAddr>,
}

pub struct ApiKeyService {
    pepper: hmac::Key,
    cache: Mutex<HashMap<String, CachedCredential>>,
    cache_ttl: Duration,
    usage: Mutex<HashMap<ApiKeyId, Usage>>,
    random: SystemRandom,
    default_expiry_days: u32,
    max_expiry_days: u32,
}

#[derive(utoipa::ToSchema, Debug, Deserialize)]
pub struct GenerateKey {
    /// 1 to 100 characters, not only spaces.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: Option<String>,
    /// At least one; `scim` alone for an identity provider.
    #[schema(required = true, value_type = Vec<Scope>, min_items = 1)]
    pub scopes: Option<Vec<String>>,
    /// 1 to `api_keys.max_expiry_days` (730); absent: the key does not expire.
    #[serde(default, deserialize_with = "crate::domain::text::given")]
    #[schema(value_type = i64, minimum = 1, maximum = 730)]
    pub expires_in_days: Option<i64>,
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct GeneratedKey {
    pub id: ApiKeyId,
    pub key: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub warning: &'static str,
}

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
    pub is_active: bool,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub request_count: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An authenticated key and the limits that apply to it.
pub struct KeyAuthentication {
    pub principal: Principal,
    pub key_policy: Policy,
    pub enterprise_policy: Policy,
    /// The enterprise's SCIM requests, a bucket of their own.
    pub scim_policy: Policy,
}

fn view(record: ApiKeyRecord, now: DateTime<Utc>) -> ApiKeyView {
    let state = if record.revoked_at.is_some() {
        "revoked"
    } else if record.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    ApiKeyView {
        id: record.id,
        name: record.name,
        prefix: record.prefix,
        scopes: record.scopes,
        state,
        is_active: state == "active",
        last_used_at: record.last_used_at,
        last_used_ip: record.last_used_ip,
        request_count: record.request_count,
        created_at: record.created_at,
        created_by: record.created_by,
        expires_at: record.expires_at,
        revoked_at: record.revoked_at,
    }
}

impl ApiKeyService {
    pub fn new(pepper: &SecretBytes, config: &ApiKeysConfig) -> ApiKeyService {
        ApiKeyService {
            pepper: hmac::Key::new(hmac::HMAC_SHA256, pepper.expose()),
            cache: Mutex::new(HashMap::new()),
            cache_ttl: Duration::from_secs(config.cache_ttl_secs.min(5)),
            usage: Mutex::new(HashMap::new()),
            random: SystemRandom::new(),
            default_expiry_days: config.default_expiry_days,
            max_expiry_days: config.max_expiry_days,
        }
    }

    fn mac(&self, token: &ApiKeyToken) -> Vec<u8> {
        hmac::sign(&self.pepper, token.expose().as_bytes())
            .as_ref()
            .to_vec()
    }

    fn new_token(&self) -> Result<ApiKeyToken, AppError> {
        let mut random = [0u8; 128];
        loop {
            self.random
                .fill(&mut random)
                .map_err(|_| AppError::internal("random generator failed"))?;
            if let Some(token) = ApiKeyToken::from_random(&random) {
                return Ok(token);
            }
        }
    }

    fn evict(&self, prefix: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(prefix);
        }
    }

    fn note_use(&self, key: ApiKeyId, now: DateTime<Utc>, ip: Option<IpAddr>) {
        if let Ok(mut usage) = self.usage.lock() {
            let entry = usage.entry(key).or_default();
            entry.requests += 1;
            entry.last_used_at = Some(now);
            entry.last_ip = ip.or(entry.last_ip);
        }
    }

    /// Adds usage not yet flushed to what the database says.
    fn overlay_usage(&self, view: &mut ApiKeyView) {
        if let Ok(usage) = self.usage.lock() {
            if let Some(pending) = usage.get(&view.id) {
                view.request_count += i64::try_from(pending.requests).unwrap_or(0);
                if pending.last_used_at > view.last_used_at {
                    view.last_used_at = pending.last_used_at;
                }
                if let Some(ip) = pending.last_ip {
                    view.last_used_ip = Some(ip.to_string());
                }
            }
        }
    }
}

fn validate(
    input: GenerateKey,
    default_days: u32,
    max_days: u32,
) -> Result<(String, Vec<Scope>, u32), AppError> {
    let mut errors = Vec::new();
    let name = input.name.unwrap_or_default().trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new(
            "name",
            "invalid_length",
            "name must be 1 to 100 characters",
        ));
    }
    let mut scopes = BTreeSet::new();
    match input.scopes {
        None => errors.push(FieldError::new("scopes", "required", "scopes is required")),
        Some(list) if list.is_empty() => errors.push(FieldError::new(
            "scopes",
            "required",
            "give at least one scope",
        )),
        Some(list) => {
            for (index, raw) in list.iter().enumerate() {
                match raw.parse::<Scope>() {
                    Ok(scope) => {
                        scopes.insert(scope);
                    }
                    Err(()) => errors.push(FieldError::new(
                        format!("scopes[{index}]"),
                        "unknown_scope",
                        format!(
                            "unknown scope {raw:?}; known scopes: {}",
                            Scope::ALL.map(Scope::as_str).join(", ")
                        ),
                    )),
                }
            }
        }
    }
    let days = match input.expires_in_days {
        None => default_days,
        Some(days) if days >= 1 && days <= i64::from(max_days) => {
            u32::try_from(days).unwrap_or(default_days)
        }
        Some(_) => {
            errors.push(FieldError::new(
                "expires_in_days",
                "out_of_range",
                format!("expires_in_days must be between 1 and {max_days}"),
            ));
            default_days
        }
    };
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    Ok((name, scopes.into_iter().collect(), days))
}

pub async fn generate(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    input: GenerateKey,
) -> Result<GeneratedKey, AppError> {
    let keys = &svc.api_keys;
    let (name, scopes, days) = validate(input, keys.default_expiry_days, keys.max_expiry_days)?;
    let now = svc.clock.now();
    let expires_at = Some(now + chrono::Duration::days(i64::from(days)));
    // A clash of 8-character public ids is rare (62^8); draw again if it happens.
    for _ in 0..3 {
        let token = keys.new_token()?;
        let id = ApiKeyId::generate();
        let hash = keys.mac(&token);
        let prefix = token.key_id().to_string();
        let (enterprise, admin_user, meta_c, name_c, scopes_c) = (
            admin.enterprise(),
            admin.user(),
            meta.clone(),
            name.clone(),
            scopes.clone(),
        );
        let event = AuditEvent::new("api_key.generate", Outcome::Success, admin.actor())
            .in_enterprise(enterprise)
            .target("api_key", id)
            .changes(serde_json::json!({
                "name": name, "prefix": prefix, "scopes": scopes, "expires_at": expires_at.map(store::ts)
            }));
        let inserted = svc
            .db
            .write(move |txn| {
                let new = NewApiKey {
                    id,
                    enterprise_account_id: enterprise,
                    name: &name_c,
                    prefix: token.key_id(),
                    secret_hash: &hash,
                    scopes: &scopes_c,
                    created_by: admin_user,
                    created_at: now,
                    expires_at,
                };
                match store::api_keys::insert(txn, &new) {
                    Ok(()) => {}
                    Err(e) if is_unique_violation(&e, "prefix") => return Ok(None),
                    Err(e) => return Err(AppError::from(e)),
                }
                audit::append(txn, &event, &meta_c, now)?;
                Ok(Some(token))
            })
            .await?;
        if let Some(token) = inserted {
            tracing::info!(key_id = %id, prefix = %prefix, "API key generated");
            return Ok(GeneratedKey {
                id,
                key: token.expose().to_string(),
                name,
                prefix,
                scopes,
                created_at: now,
                expires_at,
                warning: SHOWN_ONCE_WARNING,
            });
        }
    }
    Err(AppError::internal("could not draw a unique key id"))
}

pub async fn list(svc: &Services, admin: &AdminCtx) -> Result<Vec<ApiKeyView>, AppError> {
    let enterprise = admin.enterprise();
    let records = svc
        .db
        .read(move |conn| store::api_keys::list(conn, enterprise).map_err(AppError::from))
        .await?;
    let now = svc.clock.now();
    Ok(records
        .into_iter()
        .map(|record| {
            let mut view = view(record, now);
            svc.api_keys.overlay_usage(&mut view);
            view
        })
        .collect())
}

pub async fn get(svc: &Services, admin: &AdminCtx, id: ApiKeyId) -> Result<ApiKeyView, AppError> {
    let enterprise = admin.enterprise();
    let record = svc
        .db
        .read(move |conn| store::api_keys::get(conn, enterprise, id).map_err(AppError::from))
        .await?
        .ok_or(AppError::NotFound {
            resource: "api key",
        })?;
    let mut view = view(record, svc.clock.now());
    svc.api_keys.overlay_usage(&mut view);
    Ok(view)
}

pub async fn revoke(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    id: ApiKeyId,
) -> Result<ApiKeyView, AppError> {
    let now = svc.clock.now();
    let (enterprise, user, meta_c) = (admin.enterprise(), admin.user(), meta.clone());
    let event = AuditEvent::new("api_key.revoke", Outcome::Success, admin.actor())
        .in_enterprise(enterprise)
        .target("api_key", id);
    let prefix = svc
        .db
        .write(move |txn| {
            let Some(prefix) = store::api_keys::revoke(txn, enterprise, id, user, now)? else {
                return Ok(None);
            };
            audit::append(txn, &event, &meta_c, now)?;
            Ok::<_, AppError>(Some(prefix))
        })
        .await?
        .ok_or(AppError::NotFound {
            resource: "api key",
        })?;
    // Evicted in the same code path as the revocation: the key stops working now.
    svc.api_keys.evict(&prefix);
    tracing::info!(key_id = %id, "API key revoked");
    get(svc, admin, id).await
}

/// Authenticates an `X-API-Key` value. A malformed key is refused before any
/// database work; every refusal is the same 401.
pub async fn authenticate(
    svc: &Services,
    raw: &str,
    ip: Option<IpAddr>,
) -> Result<KeyAuthentication, AppError> {
    let token = ApiKeyToken::parse(raw.trim()).map_err(|_| AppError::unauthenticated())?;
    let keys = &svc.api_keys;
    let prefix = token.key_id().to_string();
    let mono = svc.clock.monotonic();
    let cached = keys.cache.lock().ok().and_then(|cache| {
        cache
            .get(&prefix)
            .filter(|c| mono.saturating_sub(c.fetched_at) < keys.cache_ttl)
            .map(|c| c.credential.clone())
    });
    let credential = match cached {
        Some(credential) => credential,
        None => {
            let lookup = prefix.clone();
            let credential = svc
                .db
                .read(move |conn| {
                    store::api_keys::find_credential(conn, &lookup).map_err(AppError::from)
                })
                .await?
                .map(Arc::new)
                .ok_or_else(AppError::unauthenticated)?;
            if let Ok(mut cache) = keys.cache.lock() {
                cache.insert(
                    prefix,
                    CachedCredential {
                        credential: credential.clone(),
                        fetched_at: mono,
                    },
                );
            }
            credential
        }
    };
    hmac::verify(
        &keys.pepper,
        token.expose().as_bytes(),
        &credential.secret_hash,
    )
    .map_err(|_| AppError::unauthenticated())?;
    let now = svc.clock.now();
    if credential.revoked_at.is_some() || credential.expires_at.is_some_and(|e| e <= now) {
        return Err(AppError::unauthenticated());
    }
    keys.note_use(credential.id, now, ip);
    let settings = svc.settings();
    let limits = &settings.rate_limit;
    Ok(KeyAuthentication {
        key_policy: Policy::per_minute(
            "per-key",
            credential
                .rate_limit_per_key_per_minute
                .unwrap_or(limits.per_key_per_minute),
        ),
        enterprise_policy: Policy::per_minute(
            "per-enterprise",
            credential
                .rate_limit_per_enterprise_per_minute
                .unwrap_or(limits.per_enterprise_per_minute),
        ),
        scim_policy: Policy::per_minute(
            "scim-per-enterprise",
            credential
                .rate_limit_scim_per_minute
                .unwrap_or(limits.scim_per_minute),
        ),
        principal: Principal::ApiKey {
            key: credential.id,
            enterprise: credential.enterprise_account_id,
            scopes: credential.scopes,
        },
    })
}

/// Writes usage counted since the last flush, in one transaction.
pub async fn flush_usage(svc: &Services) -> Result<usize, AppError> {
    let pending: Vec<(ApiKeyId, Usage)> = match svc.api_keys.usage.lock() {
        Ok(mut usage) => usage.drain().collect(),
        Err(_) => return Ok(0),
    };
    if pending.is_empty() {
        return Ok(0);
    }
    let count = pending.len();
    svc.db
        .write(move |txn| {
            for (id, usage) in &pending {
                if let Some(at) = usage.last_used_at {
                    let ip = usage.last_ip.map(|ip| ip.to_string());
                    store::api_keys::add_usage(txn, *id, usage.requests, at, ip.as_deref())?;
                }
            }
            Ok::<_, AppError>(())
        })
        .await?;
    Ok(count)
}
