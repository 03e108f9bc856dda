//! `RateLimit-Policy` / `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers):
//! `RateLimit-Policy: "per-key";q=100;w=60` and `RateLimit: "per-key";r=37;t=12`,
//! where `t` is delta seconds until the bucket is full again.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::retry_after_secs;
use crate::service::rate_limit::{Allowed, Denied};
use crate::AppError;

pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

pub fn insert(
    headers: &mut HeaderMap,
    policy: &str,
    limit: u32,
    window_secs: u64,
    remaining: u32,
    reset_secs: u64,
) {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{policy}\";q={limit};w={window_secs}")) {
        headers.insert(RATELIMIT_POLICY.clone(), value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{policy}\";r={remaining};t={reset_secs}"))
    {
        headers.insert(RATELIMIT.clone(), value);
    }
}

pub fn insert_allowed(headers: &mut HeaderMap, allowed: &Allowed) {
    let reset = allowed.reset.as_secs() + u64::from(allowed.reset.subsec_nanos() > 0);
    insert(
        headers,
        allowed.policy.name,
        allowed.policy.limit,
        allowed.policy.window.as_secs(),
        allowed.remaining,
        reset,
    );
}

pub fn denied_error(denied: Denied) -> AppError {
    AppError::RateLimited {
        retry_after: denied.retry_after,
        policy: denied.policy.name,
        limit: denied.policy.limit,
        window_secs: denied.policy.window.as_secs(),
    }
}

/// Seconds a client is told to wait.
pub fn wait_secs(denied: &Denied) -> u64 {
    retry_after_secs(denied.retry_after)
}
