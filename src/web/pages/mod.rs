//! The dashboard's pages, one module per part of the dashboard. Each handler
//! takes its caller from an extractor of `access` (a signed-in person or IT
//! admin, a form with its CSRF token checked), checks what the person may do
//! with the same capability checks as the API, calls the services and renders
//! a template; the helpers they share are here.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{
    cookie, language, redirect, render, set_cookie, Frame, PRESESSION_COOKIE, SESSION_COOKIE,
};
use crate::domain::notifications::Language;
use crate::domain::{ApiKeyId, Scope};
use crate::http::extract::{parse_id, Meta};
use crate::http::AppState;
use crate::service::access::AdminCtx;
use crate::service::api_keys::{self, GenerateKey};
use crate::service::web_sessions::{self, WebUser, SESSION_HOURS};
use crate::service::{sessions, Services};
use crate::AppError;

mod access;
mod directory;
mod files;
mod keys;
mod overview;
mod password;
mod runs;
mod session;
mod settings;
mod webhooks;

pub use access::{AdminForm, DashboardAdmin, PersonForm, SignedIn};
pub use directory::*;
pub use files::*;
pub use keys::*;
pub use overview::*;
pub use password::*;
pub use runs::*;
pub use session::*;
pub use settings::*;
pub use webhooks::*;

/// Cookies are `Secure` when people reach the service over https.
fn secure(svc: &Services) -> bool {
    svc.public_base_url().starts_with("https://")
}

async fn signed_in(svc: &Services, headers: &HeaderMap) -> Result<Option<WebUser>, AppError> {
    match cookie(headers, SESSION_COOKIE) {
        Some(id) => web_sessions::find(svc, id).await,
        None => Ok(None),
    }
}

/// The sign-in form's throttle (the API's per-address login limit), answered
/// as a page in the person's language rather than the API's JSON.
pub async fn throttle_sign_in(
    axum::extract::State(svc): axum::extract::State<crate::http::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let language = language(request.headers());
    let path = request.uri().path().to_string();
    let response =
        crate::http::auth::throttle_login(axum::extract::State(svc), request, next).await;
    if response.status() != StatusCode::TOO_MANY_REQUESTS {
        return response;
    }
    let mut page = message(
        StatusCode::TOO_MANY_REQUESTS,
        language,
        &path,
        None,
        "too_many_attempts",
    );
    if let Some(retry) = response.headers().get(header::RETRY_AFTER) {
        page.headers_mut()
            .insert(header::RETRY_AFTER, retry.clone());
    }
    page
}

/// A form posted without a live session goes back to the sign-in page before
/// its body is read: only signed-in people can make the service wait for one.
pub async fn session_before_body(
    axum::extract::State(svc): axum::extract::State<crate::http::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, AppError> {
    let reads_only = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if !reads_only && signed_in(&svc, request.headers()).await?.is_none() {
        return Ok(redirect("/sign-in"));
    }
    Ok(next.run(request).await)
}

/// Constant-time comparison of a form's CSRF token with the expected one.
fn same_token(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && !expected.is_empty()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn message(
    status: StatusCode,
    language: Language,
    path: &str,
    user: Option<&WebUser>,
    key: &str,
) -> Response {
    let csrf = user
        .map(|u| u.session.csrf_token.clone())
        .unwrap_or_default();
    let frame = Frame::new(language, key, path, user, &csrf);
    render(
        status,
        "message.html",
        &frame,
        json!({ "message": crate::web::i18n::word(language, key) }),
    )
}

/// Reads an `application/x-www-form-urlencoded` body, repeated fields kept.
fn form_fields(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// Rows per page of the directory and the audit trail.
const LIST_PAGE: usize = 50;

/// A `YYYY-MM-DD` from a date field, as the start of that day (UTC).
fn day_start(raw: Option<&str>, plus_days: i64) -> Result<Option<String>, ()> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(|day| {
                let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
                Some(crate::store::ts(start + chrono::Duration::days(plus_days)))
            })
            .map_err(|_| ()),
    }
}

fn problems(error: &AppError) -> Option<String> {
    match error {
        AppError::Validation(problems) => Some(
            problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        AppError::Conflict { message, .. } => Some(message.clone()),
        _ => None,
    }
}
