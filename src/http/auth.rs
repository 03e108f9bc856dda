//! Authentication and throttling middleware.
//!
//! `authenticate` resolves `X-API-Key` or `Authorization: Bearer` into a
//! [`Principal`] for the handlers, and applies the per-key and per-enterprise
//! limits to keys. The throttles guard the unauthenticated routes per client IP,
//! before any body is read or password hashed.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::extract::{client_ip, peer_ip, AppState};
use super::observe::Caller;
use super::rate_limit_headers::{denied_error, insert_allowed};
use crate::service::access::Principal;
use crate::service::rate_limit::{Bucket, Policy};
use crate::service::{api_keys, sessions};
use crate::AppError;

pub const API_KEY_HEADER: &str = "x-api-key";

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

pub async fn authenticate(State(svc): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = client_ip(
        req.headers(),
        peer_ip(req.extensions()),
        &svc.settings().trusted_proxies,
    );
    let api_key = req
        .headers()
        .get(API_KEY_HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    if let Some(raw) = api_key {
        let (principal, allowed) = match authenticate_key(&svc, &raw, ip, KeyUse::Rest).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        req.extensions_mut().insert(principal);
        let mut response = next.run(req).await;
        insert_allowed(response.headers_mut(), &allowed);
        response.extensions_mut().insert(Caller::from(&principal));
        return response;
    }
    let Some(token) = bearer_token(req.headers()) else {
        return AppError::unauthenticated().into_response();
    };
    match sessions::authenticate(&svc, &token).await {
        Ok(principal) => {
            let allowed = match principal {
                Principal::User { user, .. } => {
                    let policy = Policy::per_minute(
                        "per-person",
                        svc.settings().rate_limit.per_person_per_minute,
                    );
                    match svc.limits.check(Bucket::Person(user), policy) {
                        Ok(allowed) => Some(allowed),
                        Err(denied) => {
                            tracing::info!(%user, "request refused by the per-person rate limit");
                            return denied_error(denied).into_response();
                        }
                    }
                }
                Principal::ApiKey { .. } => None,
            };
            req.extensions_mut().insert(principal);
            let mut response = next.run(req).await;
            if let Some(allowed) = &allowed {
                insert_allowed(response.headers_mut(), allowed);
            }
            response.extensions_mut().insert(Caller::from(&principal));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// Which buckets a key's request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyUse {
    /// The REST API: the per-key and per-enterprise buckets.
    Rest,
    /// SCIM: the enterprise's SCIM bucket, sized for identity providers.
    Scim,
}

/// An API key checked and counted against its limits: the key's principal and
/// the headers to add, or the refusal (with `Retry-After`). SCIM calls it
/// too, with the key sent as a bearer token.
pub(crate) async fn authenticate_key(
    svc: &AppState,
    raw: &str,
    ip: Option<std::net::IpAddr>,
    used_for: KeyUse,
) -> Result<(Principal, crate::service::rate_limit::Allowed), Response> {
    let auth = match api_keys::authenticate(svc, raw, ip).await {
        Ok(auth) => auth,
        Err(e) => return Err(e.into_response()),
    };
    let enterprise = auth.principal.enterprise();
    let key = match &auth.principal {
        Principal::ApiKey { key, .. } => *key,
        Principal::User { .. } => return Err(AppError::unauthenticated().into_response()),
    };
    if used_for == KeyUse::Scim {
        return match svc.limits.check(Bucket::Scim(enterprise), auth.scim_policy) {
            Ok(allowed) => Ok((auth.principal, allowed)),
            Err(denied) => {
                tracing::info!(%enterprise, "SCIM request refused by the enterprise's SCIM rate limit");
                Err(denied_error(denied).into_response())
            }
        };
    }
    let allowed = match svc.limits.check(Bucket::ApiKey(key), auth.key_policy) {
        Ok(allowed) => allowed,
        Err(denied) => {
            tracing::info!(key_id = %key, "request refused by the per-key rate limit");
            return Err(denied_error(denied).into_response());
        }
    };
    if let Err(denied) = svc
        .limits
        .check(Bucket::Enterprise(enterprise), auth.enterprise_policy)
    {
        tracing::info!(%enterprise, "request refused by the per-enterprise rate limit");
        return Err(denied_error(denied).into_response());
    }
    Ok((auth.principal, allowed))
}

async fn throttle(
    svc: &AppState,
    req: Request,
    next: Next,
    bucket: fn(std::net::IpAddr) -> Bucket,
    policy: Policy,
) -> Response {
    let Some(ip) = client_ip(
        req.headers(),
        peer_ip(req.extensions()),
        &svc.settings().trusted_proxies,
    ) else {
        return next.run(req).await;
    };
    match svc.limits.check(bucket(ip), policy) {
        Ok(allowed) => {
            let mut response = next.run(req).await;
            insert_allowed(response.headers_mut(), &allowed);
            response
        }
        Err(denied) => {
            tracing::warn!(%ip, policy = policy.name, "request refused by the per-IP rate limit");
            denied_error(denied).into_response()
        }
    }
}

pub async fn throttle_login(State(svc): State<AppState>, req: Request, next: Next) -> Response {
    let policy = Policy::per_minute(
        "login-per-ip",
        svc.settings().rate_limit.login_per_ip_per_minute,
    );
    throttle(&svc, req, next, Bucket::LoginIp, policy).await
}

pub async fn throttle_register(State(svc): State<AppState>, req: Request, next: Next) -> Response {
    let policy = Policy {
        name: "register-per-ip",
        limit: svc.settings().rate_limit.register_per_ip_per_hour,
        window: std::time::Duration::from_secs(3600),
    };
    throttle(&svc, req, next, Bucket::RegisterIp, policy).await
}
