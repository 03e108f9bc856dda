//! The dashboard's pages. Each handler finds the session, checks what the
//! person may do with the same capability checks as the API, calls the
//! services and renders a template.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{
    cookie, language, redirect, render, set_cookie, Frame, PRESESSION_COOKIE, SESSION_COOKIE,
};
use crate::api::extract::{parse_id, Meta};
use crate::api::AppState;
use crate::domain::notifications::Language;
use crate::domain::{ApiKeyId, Scope};
use crate::service::access::AdminCtx;
use crate::service::api_keys::{self, GenerateKey};
use crate::service::web_sessions::{self, WebUser, SESSION_HOURS};
use crate::service::{sessions, Services};
use crate::AppError;

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
        json!({ "message": super::i18n::word(language, key) }),
    )
}

/// The person's session, or the sign-in page.
enum Access {
    Admin(WebUser, AdminCtx),
    Denied(Response),
}

async fn admin(svc: &Services, headers: &HeaderMap, path: &str) -> Result<Access, AppError> {
    let language = language(headers);
    let Some(user) = signed_in(svc, headers).await? else {
        return Ok(Access::Denied(redirect("/sign-in")));
    };
    match user.principal().require_admin() {
        Ok(ctx) => Ok(Access::Admin(user, ctx)),
        Err(_) => Ok(Access::Denied(message(
            StatusCode::FORBIDDEN,
            language,
            path,
            Some(&user),
            "forbidden",
        ))),
    }
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

pub async fn home(
    State(svc): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let Some(user) = signed_in(&svc, &headers).await? else {
        return Ok(redirect("/sign-in"));
    };
    let csrf = user.session.csrf_token.clone();
    if !user.is_admin() {
        // Managers and sellers see their own profile, nothing of the enterprise.
        let frame = Frame::new(language, "profile", uri.path(), Some(&user), &csrf);
        let role = super::i18n::word(language, &format!("role_{}", user.session.role.as_str()));
        return Ok(render(
            StatusCode::OK,
            "profile.html",
            &frame,
            json!({ "role": role }),
        ));
    }
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    let overview = crate::service::overview::overview(&svc, &ctx).await?;
    let status = &overview.status;
    let seats_percent = if status.seats_purchased > 0 {
        (status.seats_used * 100 / status.seats_purchased).clamp(0, 100)
    } else {
        0
    };
    let week_ago = (svc.clock.now() - chrono::Duration::days(7)).format("%Y-%m-%d");
    let frame = Frame::new(language, "overview", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "overview.html",
        &frame,
        json!({
            "status": status,
            "seats_percent": seats_percent,
            "last_by_source": overview.last_by_source,
            "held_files": overview.held_files,
            "failed_last_7_days": overview.failed_last_7_days,
            "failed_link": format!("/runs?status=failed&since={week_ago}"),
            "chart": chart(&overview.days),
        }),
    ))
}

/// The 30-day chart as SVG geometry: one stacked bar per day (created,
/// updated, deactivated, failed rows), in a 300 × 100 view box.
fn chart(days: &[crate::service::overview::Day]) -> serde_json::Value {
    const HEIGHT: f64 = 100.0;
    let slot = 300.0 / days.len().max(1) as f64;
    let total =
        |d: &crate::service::overview::Day| d.created + d.updated + d.deactivated + d.failed;
    let max = days.iter().map(total).max().unwrap_or(0).max(1) as f64;
    let bars: Vec<serde_json::Value> = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let mut top = HEIGHT;
            let segments: Vec<serde_json::Value> = [
                ("created", day.created),
                ("updated", day.updated),
                ("deactivated", day.deactivated),
                ("failed", day.failed),
            ]
            .into_iter()
            .filter(|(_, value)| *value > 0)
            .map(|(kind, value)| {
                let height = value as f64 / max * HEIGHT;
                top -= height;
                json!({ "kind": kind, "y": format!("{top:.2}"), "height": format!("{height:.2}") })
            })
            .collect();
            json!({
                "x": format!("{:.2}", i as f64 * slot + slot * 0.15),
                "width": format!("{:.2}", slot * 0.7),
                "day": day.day,
                "created": day.created,
                "updated": day.updated,
                "deactivated": day.deactivated,
                "failed": day.failed,
                "segments": segments,
            })
        })
        .collect();
    json!({
        "bars": bars,
        "max": max as i64,
        "first": days.first().map(|d| d.day.clone()),
        "last": days.last().map(|d| d.day.clone()),
    })
}

fn sign_in_page(
    svc: &Services,
    status: StatusCode,
    language: Language,
    email: &str,
    problem: Option<&str>,
) -> Result<Response, AppError> {
    // Login CSRF: the form's token must match a cookie only this site can set.
    let token = sessions::new_refresh_token()?;
    let frame = Frame::new(language, "sign_in", "/sign-in", None, &token);
    let mut response = render(
        status,
        "sign_in.html",
        &frame,
        json!({ "email": email, "problem": problem }),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(secure(svc), PRESESSION_COOKIE, &token, 3600),
    );
    Ok(response)
}

pub async fn sign_in_form(
    State(svc): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if signed_in(&svc, &headers).await?.is_some() {
        return Ok(redirect("/"));
    }
    sign_in_page(&svc, StatusCode::OK, language(&headers), "", None)
}

pub async fn sign_in(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let fields = form_fields(&body);
    let email = field(&fields, "email").to_string();
    let expected = cookie(&headers, PRESESSION_COOKIE).unwrap_or_default();
    if !same_token(expected, field(&fields, "csrf")) {
        let problem = super::i18n::word(language, "form_expired");
        return sign_in_page(&svc, StatusCode::FORBIDDEN, language, &email, Some(problem));
    }
    let password = field(&fields, "password").to_string();
    match web_sessions::sign_in(&svc, &meta, email.clone(), password).await {
        Ok(started) => {
            let mut response = redirect("/");
            let secure = secure(&svc);
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie(
                    secure,
                    SESSION_COOKIE,
                    &started.cookie,
                    SESSION_HOURS * 3600,
                ),
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(secure, PRESESSION_COOKIE, "", 0),
            );
            Ok(response)
        }
        Err(AppError::Unauthenticated { .. }) => {
            let problem = super::i18n::word(language, "invalid_credentials");
            sign_in_page(
                &svc,
                StatusCode::UNAUTHORIZED,
                language,
                &email,
                Some(problem),
            )
        }
        Err(other) => Err(other),
    }
}

pub async fn sign_out(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let Some(user) = signed_in(&svc, &headers).await? else {
        return Ok(redirect("/sign-in"));
    };
    let fields = form_fields(&body);
    if !same_token(&user.session.csrf_token, field(&fields, "csrf")) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            language,
            "/",
            Some(&user),
            "form_expired",
        ));
    }
    let id = cookie(&headers, SESSION_COOKIE).unwrap_or_default();
    web_sessions::sign_out(&svc, &meta, &user, id).await?;
    let mut response = redirect("/sign-in");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(secure(&svc), SESSION_COOKIE, "", 0),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct Back {
    to: Option<String>,
}

pub async fn switch_language(
    State(svc): State<AppState>,
    Path(code): Path<String>,
    Query(back): Query<Back>,
) -> Response {
    let language = Language::parse(&code).unwrap_or_default();
    // Back to a page of ours only: a path, never another site.
    let to = back
        .to
        .filter(|to| to.starts_with('/') && !to.starts_with("//") && !to.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let mut response = redirect(&to);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            secure(&svc),
            super::LANGUAGE_COOKIE,
            language.as_str(),
            365 * 24 * 3600,
        ),
    );
    response
}

async fn keys_page(
    svc: &Services,
    user: &WebUser,
    ctx: &AdminCtx,
    language: Language,
    status: StatusCode,
    generated: Option<api_keys::GeneratedKey>,
    problem: Option<String>,
) -> Result<Response, AppError> {
    let keys = api_keys::list(svc, ctx).await?;
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "api_keys", "/api-keys", Some(user), &csrf);
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    Ok(render(
        status,
        "api_keys.html",
        &frame,
        json!({
            "keys": keys,
            "generated": generated,
            "problem": problem,
            "scopes": scopes,
            "default_days": svc.config.api_keys.default_expiry_days,
            "max_days": svc.config.api_keys.max_expiry_days,
        }),
    ))
}

pub async fn api_keys(
    State(svc): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (user, ctx) = match admin(&svc, &headers, "/api-keys").await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    keys_page(
        &svc,
        &user,
        &ctx,
        language(&headers),
        StatusCode::OK,
        None,
        None,
    )
    .await
}

pub async fn generate_key(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let (user, ctx) = match admin(&svc, &headers, "/api-keys").await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    let fields = form_fields(&body);
    if !same_token(&user.session.csrf_token, field(&fields, "csrf")) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            language,
            "/api-keys",
            Some(&user),
            "form_expired",
        ));
    }
    let request = GenerateKey {
        name: Some(field(&fields, "name").to_string()),
        scopes: Some(
            fields
                .iter()
                .filter(|(k, _)| k == "scopes")
                .map(|(_, v)| v.clone())
                .collect(),
        ),
        expires_in_days: field(&fields, "expires_in_days").trim().parse().ok(),
    };
    match api_keys::generate(&svc, &ctx, &meta, request).await {
        Ok(generated) => {
            keys_page(
                &svc,
                &user,
                &ctx,
                language,
                StatusCode::CREATED,
                Some(generated),
                None,
            )
            .await
        }
        Err(AppError::Validation(problems)) => {
            let problem = problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            keys_page(
                &svc,
                &user,
                &ctx,
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(problem),
            )
            .await
        }
        Err(other) => Err(other),
    }
}

pub async fn confirm_revoke(
    State(svc): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let (user, ctx) = match admin(&svc, &headers, uri.path()).await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    let key = match parse_id::<ApiKeyId>(&id, "api key") {
        Ok(id) => api_keys::get(&svc, &ctx, id).await,
        Err(e) => Err(e),
    };
    let key = match key {
        Ok(key) => key,
        Err(AppError::NotFound { .. }) => {
            return Ok(message(
                StatusCode::NOT_FOUND,
                language,
                uri.path(),
                Some(&user),
                "not_found",
            ))
        }
        Err(other) => return Err(other),
    };
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "revoke", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "revoke_key.html",
        &frame,
        json!({ "key": key }),
    ))
}

pub async fn revoke_key(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let (user, ctx) = match admin(&svc, &headers, uri.path()).await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    let fields = form_fields(&body);
    if !same_token(&user.session.csrf_token, field(&fields, "csrf")) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            language,
            uri.path(),
            Some(&user),
            "form_expired",
        ));
    }
    let revoked = match parse_id::<ApiKeyId>(&id, "api key") {
        Ok(id) => api_keys::revoke(&svc, &ctx, &meta, id).await,
        Err(e) => Err(e),
    };
    match revoked {
        Ok(_) => Ok(redirect("/api-keys")),
        Err(AppError::NotFound { .. }) => Ok(message(
            StatusCode::NOT_FOUND,
            language,
            uri.path(),
            Some(&user),
            "not_found",
        )),
        Err(other) => Err(other),
    }
    .map(IntoResponse::into_response)
}

/// Runs shown per page.
const RUNS_PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub struct RunsQuery {
    status: Option<String>,
    sync_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
}

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

pub async fn runs(
    State(svc): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<RunsQuery>,
    uri: Uri,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let (user, _) = match admin(&svc, &headers, uri.path()).await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    let pick = |value: &Option<String>, allowed: &[&str]| {
        value
            .as_deref()
            .filter(|v| allowed.contains(v))
            .map(str::to_string)
    };
    let status = pick(&query.status, &["success", "partial", "failed"]);
    let sync_type = pick(&query.sync_type, &["api", "file", "scim"]);
    let since = day_start(query.since.as_deref(), 0);
    let until = day_start(query.until.as_deref(), 1);
    let problem =
        (since.is_err() || until.is_err()).then(|| super::i18n::word(language, "invalid_date"));
    let filter = crate::store::sync_logs::SyncLogFilter {
        operation: None,
        status: status.clone(),
        sync_type: sync_type.clone(),
        since: since.unwrap_or_default(),
        until: until.unwrap_or_default(),
    };
    let mut found =
        crate::service::sync_logs::runs(&svc, &ctx, filter, query.before, RUNS_PAGE + 1).await?;
    let older = (found.len() > RUNS_PAGE).then(|| {
        found.truncate(RUNS_PAGE);
        let last = found.last().map(|r| r.seq).unwrap_or_default();
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("status", status.as_deref()),
            ("sync_type", sync_type.as_deref()),
            ("since", query.since.as_deref()),
            ("until", query.until.as_deref()),
        ] {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                link.append_pair(name, value);
            }
        }
        link.append_pair("before", &last.to_string());
        format!("/runs?{}", link.finish())
    });
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "runs", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "runs.html",
        &frame,
        json!({
            "runs": found,
            "older": older,
            "problem": problem,
            "filter": {
                "status": status,
                "sync_type": sync_type,
                "since_date": query.since,
                "until_date": query.until,
            },
        }),
    ))
}

/// The run `id` of the admin's enterprise, or the page to answer instead.
async fn run_of(
    svc: &Services,
    headers: &HeaderMap,
    id: String,
    path: &str,
) -> Result<Result<(WebUser, crate::store::sync_logs::SyncLog), Response>, AppError> {
    let language = language(headers);
    let user = match admin(svc, headers, path).await? {
        Access::Admin(user, _) => user,
        Access::Denied(response) => return Ok(Err(response)),
    };
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    match crate::service::sync_logs::run(svc, &ctx, id).await {
        Ok(run) => Ok(Ok((user, run))),
        Err(AppError::NotFound { .. }) => Ok(Err(message(
            StatusCode::NOT_FOUND,
            language,
            path,
            Some(&user),
            "not_found",
        ))),
        Err(other) => Err(other),
    }
}

pub async fn run(
    State(svc): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    let (user, run) = match run_of(&svc, &headers, id, uri.path()).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let errors = run.details["errors"].clone();
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language(&headers), "run", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "run.html",
        &frame,
        json!({ "run": run, "errors": errors }),
    ))
}

/// The run's row errors as CSV, cells that a spreadsheet would run neutralised.
pub async fn run_errors_csv(
    State(svc): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    use crate::domain::spreadsheet::safe_cell;
    let (_, run) = match run_of(&svc, &headers, id, uri.path()).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) => safe_cell(s),
        serde_json::Value::Null => String::new(),
        other => safe_cell(&other.to_string()),
    };
    writer
        .write_record(["row", "key", "field", "code", "message"])
        .map_err(AppError::internal)?;
    for error in run.details["errors"].as_array().into_iter().flatten() {
        writer
            .write_record(["row", "key", "field", "code", "message"].map(|name| text(&error[name])))
            .map_err(AppError::internal)?;
    }
    let body = writer.into_inner().map_err(AppError::internal)?;
    let disposition = format!("attachment; filename=\"run-{}-errors.csv\"", run.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Files the dashboard asked to run again and that are still running: their
/// pages show progress and refresh until the run ends.
fn running() -> &'static std::sync::Mutex<std::collections::HashSet<String>> {
    static RUNNING: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    RUNNING.get_or_init(Default::default)
}

fn is_running(id: &str) -> bool {
    running()
        .lock()
        .map(|set| set.contains(id))
        .unwrap_or(false)
}

#[derive(Deserialize, Default)]
pub struct FilesQuery {
    uploaded: Option<String>,
}

pub async fn files(
    State(svc): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<FilesQuery>,
    uri: Uri,
) -> Result<Response, AppError> {
    let user = match admin(&svc, &headers, uri.path()).await? {
        Access::Admin(user, _) => user,
        Access::Denied(response) => return Ok(response),
    };
    files_page(
        &svc,
        &user,
        language(&headers),
        StatusCode::OK,
        query.uploaded,
        None,
    )
    .await
}

async fn files_page(
    svc: &Services,
    user: &WebUser,
    language: Language,
    status: StatusCode,
    uploaded: Option<String>,
    problem: Option<String>,
) -> Result<Response, AppError> {
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    let files = crate::service::files::list(svc, &ctx, 100).await?;
    // An upload shows progress until its file has been claimed and has ended.
    let upload_pending = uploaded.as_ref().is_some_and(|name| {
        !files
            .iter()
            .any(|f| &f.display_name == name && f.state != "processing")
    });
    let refresh = upload_pending
        || files
            .iter()
            .any(|f| f.state == "processing" || is_running(&f.id));
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "files", "/files", Some(user), &csrf);
    Ok(render(
        status,
        "files.html",
        &frame,
        json!({
            "files": files,
            "enabled": svc.drop_dir.get().is_some(),
            "refresh": refresh,
            "uploaded": uploaded,
            "problem": problem,
        }),
    ))
}

/// A file uploaded through the page, handed to the drop directory.
pub async fn upload_file(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Result<Response, AppError> {
    use crate::dropdir::formats::Kind;
    let language = language(&headers);
    let (user, ctx) = match admin(&svc, &headers, "/files").await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    let (mut csrf, mut kind, mut file) = (String::new(), Kind::Users, None);
    let unreadable = |e: axum::extract::multipart::MultipartError| AppError::BadRequest {
        code: "invalid_upload",
        message: format!("the upload could not be read: {e}"),
    };
    while let Some(part) = form.next_field().await.map_err(unreadable)? {
        match part.name().unwrap_or_default() {
            "csrf" => csrf = part.text().await.map_err(unreadable)?,
            "kind" => {
                kind = match part.text().await.map_err(unreadable)?.as_str() {
                    "stores" => Kind::Stores,
                    _ => Kind::Users,
                };
            }
            "file" => {
                let name = part.file_name().unwrap_or("upload.csv").to_string();
                file = Some((name, part.bytes().await.map_err(unreadable)?.to_vec()));
            }
            _ => {}
        }
    }
    if !same_token(&user.session.csrf_token, &csrf) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            language,
            "/files",
            Some(&user),
            "form_expired",
        ));
    }
    let Some((name, bytes)) = file else {
        let problem = Some(super::i18n::word(language, "invalid_form").to_string());
        return files_page(
            &svc,
            &user,
            language,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            problem,
        )
        .await;
    };
    match crate::service::files::upload(&svc, &ctx, &meta, &name, kind, bytes).await {
        Ok(uploaded) => {
            let mut link = url::form_urlencoded::Serializer::new(String::new());
            link.append_pair("uploaded", &uploaded.name);
            Ok(redirect(&format!("/files?{}", link.finish())))
        }
        Err(
            error @ (AppError::Validation(_)
            | AppError::Conflict { .. }
            | AppError::PayloadTooLarge { .. }),
        ) => {
            let problem = problems(&error).unwrap_or_else(|| error.to_string());
            files_page(
                &svc,
                &user,
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(problem),
            )
            .await
        }
        Err(other) => Err(other),
    }
}

pub async fn file(
    State(svc): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let user = match admin(&svc, &headers, uri.path()).await? {
        Access::Admin(user, _) => user,
        Access::Denied(response) => return Ok(response),
    };
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    let file = match crate::service::files::get(&svc, &ctx, id).await {
        Ok(file) => file,
        Err(AppError::NotFound { .. }) => {
            return Ok(message(
                StatusCode::NOT_FOUND,
                language,
                uri.path(),
                Some(&user),
                "not_found",
            ))
        }
        Err(other) => return Err(other),
    };
    // A held export's run says how many people it would deactivate.
    let would_deactivate = match (&file.sync_log_id, file.state.as_str()) {
        (Some(run), "held") => crate::service::sync_logs::run(&svc, &ctx, run.clone())
            .await
            .ok()
            .and_then(|run| run.details["deactivated"].as_i64()),
        _ => None,
    };
    let running = file.state == "processing" || is_running(&file.id);
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "file", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "file.html",
        &frame,
        json!({ "file": file, "would_deactivate": would_deactivate, "running": running }),
    ))
}

/// Approve (a held full export) or retry (a failed file): the run goes on in
/// the background and the file's page shows its progress.
async fn rerun_file(
    svc: AppState,
    meta: crate::service::RequestMeta,
    headers: HeaderMap,
    id: String,
    path: &str,
    body: Bytes,
    how: crate::service::files::Rerun,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let (user, ctx) = match admin(&svc, &headers, path).await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    let fields = form_fields(&body);
    if !same_token(&user.session.csrf_token, field(&fields, "csrf")) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            language,
            path,
            Some(&user),
            "form_expired",
        ));
    }
    let read = user.principal().require_scope(Scope::SyncRead)?;
    if let Err(AppError::NotFound { .. }) =
        crate::service::files::get(&svc, &read, id.clone()).await
    {
        return Ok(message(
            StatusCode::NOT_FOUND,
            language,
            path,
            Some(&user),
            "not_found",
        ));
    }
    if svc.drop_dir.get().is_none() {
        return Ok(message(
            StatusCode::CONFLICT,
            language,
            path,
            Some(&user),
            "dropdir_off",
        ));
    }
    let newly = running()
        .lock()
        .map(|mut set| set.insert(id.clone()))
        .unwrap_or(false);
    if newly {
        let principal = user.principal();
        let file = id.clone();
        tokio::spawn(async move {
            let outcome =
                crate::service::files::rerun(&svc, &principal, &ctx, file.clone(), how, &meta)
                    .await;
            if let Err(e) = outcome {
                tracing::warn!(file = %file, error = %e, "a file run again from the dashboard ended in error");
            }
            if let Ok(mut set) = running().lock() {
                set.remove(&file);
            }
        });
    }
    Ok(redirect(&format!("/files/{id}")))
}

pub async fn approve_file(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Result<Response, AppError> {
    rerun_file(
        svc,
        meta,
        headers,
        id,
        uri.path(),
        body,
        crate::service::files::Rerun::Approve,
    )
    .await
}

pub async fn retry_file(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Result<Response, AppError> {
    rerun_file(
        svc,
        meta,
        headers,
        id,
        uri.path(),
        body,
        crate::service::files::Rerun::Retry,
    )
    .await
}

/// Rows per page of the directory and the audit trail.
const LIST_PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub struct DirectoryQuery {
    q: Option<String>,
    active: Option<String>,
    after: Option<String>,
}

impl DirectoryQuery {
    fn search(&self) -> Option<String> {
        self.q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(|q| q.chars().take(100).collect())
    }

    fn active(&self) -> Option<bool> {
        match self.active.as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        }
    }

    /// The next page's link, from the last row's id.
    fn next(&self, base: &str, last: Option<String>) -> Option<String> {
        let last = last?;
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        if let Some(q) = self.search() {
            link.append_pair("q", &q);
        }
        if let Some(active) = self.active() {
            link.append_pair("active", &active.to_string());
        }
        link.append_pair("after", &last);
        Some(format!("{base}?{}", link.finish()))
    }
}

pub async fn users(
    State(svc): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<DirectoryQuery>,
    uri: Uri,
) -> Result<Response, AppError> {
    let user = match admin(&svc, &headers, uri.path()).await? {
        Access::Admin(user, _) => user,
        Access::Denied(response) => return Ok(response),
    };
    let ctx = user.principal().require_scope(Scope::UsersRead)?;
    let filter = crate::store::users::UserFilter {
        active: query.active(),
        search: query.search(),
        ..Default::default()
    };
    let after = query.after.as_deref().and_then(|a| a.parse().ok());
    let page = crate::service::directory::list_users(&svc, &ctx, filter, after, LIST_PAGE).await?;
    let next = query.next("/users", page.next_cursor);
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language(&headers), "users", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "users.html",
        &frame,
        json!({ "users": page.data, "next": next, "q": query.search(), "active": query.active.clone() }),
    ))
}

pub async fn stores(
    State(svc): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<DirectoryQuery>,
    uri: Uri,
) -> Result<Response, AppError> {
    let user = match admin(&svc, &headers, uri.path()).await? {
        Access::Admin(user, _) => user,
        Access::Denied(response) => return Ok(response),
    };
    let ctx = user.principal().require_scope(Scope::StoresRead)?;
    let filter = crate::store::stores::StoreFilter {
        active: query.active(),
        search: query.search(),
        ..Default::default()
    };
    let after = query.after.as_deref().and_then(|a| a.parse().ok());
    let page = crate::service::directory::list_stores(&svc, &ctx, filter, after, LIST_PAGE).await?;
    let next = query.next("/stores", page.next_cursor);
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language(&headers), "stores", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "stores.html",
        &frame,
        json!({ "stores": page.data, "next": next, "q": query.search(), "active": query.active.clone() }),
    ))
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    action: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
}

/// The audit trail; reading it is audited, as through the API.
pub async fn audit(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
    uri: Uri,
) -> Result<Response, AppError> {
    use crate::domain::audit::Outcome;
    let language = language(&headers);
    let (user, ctx) = match admin(&svc, &headers, uri.path()).await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    let action = query
        .action
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| a.chars().take(100).collect::<String>());
    let outcome = match query.outcome.as_deref() {
        Some("success") => Some(Outcome::Success),
        Some("failure") => Some(Outcome::Failure),
        Some("denied") => Some(Outcome::Denied),
        _ => None,
    };
    let since = day_start(query.since.as_deref(), 0);
    let until = day_start(query.until.as_deref(), 1);
    let problem =
        (since.is_err() || until.is_err()).then(|| super::i18n::word(language, "invalid_date"));
    let filter = crate::store::audit_log::AuditFilter {
        action: action.clone(),
        outcome,
        actor_id: None,
        since: since.unwrap_or_default(),
        until: until.unwrap_or_default(),
    };
    let page =
        crate::service::audit::list(&svc, &ctx, &meta, filter, query.before, LIST_PAGE).await?;
    let next = page.next_cursor.map(|cursor| {
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("action", action.as_deref()),
            ("outcome", outcome.map(Outcome::as_str)),
            ("since", query.since.as_deref()),
            ("until", query.until.as_deref()),
        ] {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                link.append_pair(name, value);
            }
        }
        link.append_pair("before", &cursor);
        format!("/audit?{}", link.finish())
    });
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "audit", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "audit.html",
        &frame,
        json!({
            "entries": page.entries,
            "next": next,
            "problem": problem,
            "filter": {
                "action": action,
                "outcome": outcome.map(Outcome::as_str),
                "since": query.since,
                "until": query.until,
            },
        }),
    ))
}

async fn scim_page(
    svc: &Services,
    user: &WebUser,
    ctx: &AdminCtx,
    language: Language,
    status: StatusCode,
    generated: Option<api_keys::GeneratedKey>,
    problem: Option<String>,
) -> Result<Response, AppError> {
    let read = user.principal().require_scope(Scope::SyncRead)?;
    let sync = crate::service::sync_status::status(svc, &read).await?;
    let keys: Vec<_> = api_keys::list(svc, ctx)
        .await?
        .into_iter()
        .filter(|k| k.scopes.contains(&Scope::Scim))
        .collect();
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "scim", "/scim", Some(user), &csrf);
    Ok(render(
        status,
        "scim.html",
        &frame,
        json!({
            "status": sync,
            "keys": keys,
            "generated": generated,
            "problem": problem,
            "base_url": format!("{}/scim/v2", svc.public_base_url()),
            "max_days": svc.config.api_keys.max_expiry_days,
        }),
    ))
}

pub async fn scim(State(svc): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let (user, ctx) = match admin(&svc, &headers, "/scim").await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    scim_page(
        &svc,
        &user,
        &ctx,
        language(&headers),
        StatusCode::OK,
        None,
        None,
    )
    .await
}

/// A token for the identity provider: an API key with the `scim` scope alone.
pub async fn generate_scim_token(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let (user, ctx) = match admin(&svc, &headers, "/scim").await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    let fields = form_fields(&body);
    if !same_token(&user.session.csrf_token, field(&fields, "csrf")) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            language,
            "/scim",
            Some(&user),
            "form_expired",
        ));
    }
    let request = GenerateKey {
        name: Some(field(&fields, "name").to_string()),
        scopes: Some(vec![Scope::Scim.as_str().to_string()]),
        expires_in_days: field(&fields, "expires_in_days").trim().parse().ok(),
    };
    match api_keys::generate(&svc, &ctx, &meta, request).await {
        Ok(generated) => {
            scim_page(
                &svc,
                &user,
                &ctx,
                language,
                StatusCode::CREATED,
                Some(generated),
                None,
            )
            .await
        }
        Err(AppError::Validation(problems)) => {
            let problem = problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            scim_page(
                &svc,
                &user,
                &ctx,
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(problem),
            )
            .await
        }
        Err(other) => Err(other),
    }
}

#[allow(clippy::too_many_arguments)]
async fn webhooks_page(
    svc: &Services,
    user: &WebUser,
    ctx: &AdminCtx,
    language: Language,
    status: StatusCode,
    registered: Option<crate::service::webhooks::RegisteredWebhook>,
    problem: Option<String>,
    saved: bool,
) -> Result<Response, AppError> {
    let endpoints = crate::service::webhooks::list(svc, ctx).await?;
    let settings = crate::service::notification_settings::get(svc, ctx).await?;
    let events: Vec<&str> = crate::domain::webhook::EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .collect();
    let recipients = settings
        .alert_recipients
        .as_ref()
        .map(|r| r.join("\n"))
        .unwrap_or_default();
    let networks = settings.webhook_allowed_networks.join("\n");
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "webhooks", "/webhooks", Some(user), &csrf);
    Ok(render(
        status,
        "webhooks.html",
        &frame,
        json!({
            "endpoints": endpoints,
            "registered": registered,
            "problem": problem,
            "saved": saved,
            "events": events,
            "settings": settings,
            "recipients": recipients,
            "networks": networks,
        }),
    ))
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

pub async fn webhooks(
    State(svc): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (user, ctx) = match admin(&svc, &headers, "/webhooks").await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    webhooks_page(
        &svc,
        &user,
        &ctx,
        language(&headers),
        StatusCode::OK,
        None,
        None,
        false,
    )
    .await
}

/// The admin's session and the form's fields, once its CSRF token checked.
async fn admin_form(
    svc: &Services,
    headers: &HeaderMap,
    path: &str,
    body: &Bytes,
) -> Result<Result<(WebUser, AdminCtx, Vec<(String, String)>), Response>, AppError> {
    let (user, ctx) = match admin(svc, headers, path).await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(Err(response)),
    };
    let fields = form_fields(body);
    if !same_token(&user.session.csrf_token, field(&fields, "csrf")) {
        return Ok(Err(message(
            StatusCode::FORBIDDEN,
            language(headers),
            path,
            Some(&user),
            "form_expired",
        )));
    }
    Ok(Ok((user, ctx, fields)))
}

pub async fn register_webhook(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let (user, ctx, fields) = match admin_form(&svc, &headers, "/webhooks", &body).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let request = crate::service::webhooks::RegisterWebhook {
        url: Some(field(&fields, "url").to_string()),
        description: Some(field(&fields, "description").to_string()),
        events: Some(
            fields
                .iter()
                .filter(|(k, _)| k == "events")
                .map(|(_, v)| v.clone())
                .collect(),
        ),
    };
    match crate::service::webhooks::register(&svc, &ctx, &meta, request).await {
        Ok(registered) => {
            webhooks_page(
                &svc,
                &user,
                &ctx,
                language,
                StatusCode::CREATED,
                Some(registered),
                None,
                false,
            )
            .await
        }
        Err(error) => match problems(&error) {
            Some(problem) => {
                webhooks_page(
                    &svc,
                    &user,
                    &ctx,
                    language,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some(problem),
                    false,
                )
                .await
            }
            None => Err(error),
        },
    }
}

fn lines(text: &str) -> Vec<String> {
    text.split(|c: char| c == '\n' || c == ',' || c == ';' || c.is_whitespace())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn save_notification_settings(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let (user, ctx, fields) = match admin_form(&svc, &headers, "/webhooks", &body).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let recipients = lines(field(&fields, "alert_recipients"));
    let stale = field(&fields, "stale_after_hours").trim();
    let change = crate::service::notification_settings::SettingsChange {
        language: Some(field(&fields, "language").to_string()),
        alert_recipients: Some((!recipients.is_empty()).then_some(recipients)),
        alert_on_partial: Some(field(&fields, "alert_on_partial") == "true"),
        // Not a number: 0, which the settings refuse with their own message.
        stale_after_hours: Some((!stale.is_empty()).then(|| stale.parse().unwrap_or(0))),
        webhook_allowed_networks: Some(lines(field(&fields, "webhook_allowed_networks"))),
    };
    match crate::service::notification_settings::update(&svc, &ctx, &meta, change).await {
        Ok(_) => {
            webhooks_page(
                &svc,
                &user,
                &ctx,
                language,
                StatusCode::OK,
                None,
                None,
                true,
            )
            .await
        }
        Err(error) => match problems(&error) {
            Some(problem) => {
                webhooks_page(
                    &svc,
                    &user,
                    &ctx,
                    language,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some(problem),
                    false,
                )
                .await
            }
            None => Err(error),
        },
    }
}

pub async fn webhook(
    State(svc): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let (user, ctx) = match admin(&svc, &headers, uri.path()).await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    let found = match parse_id::<crate::domain::WebhookId>(&id, "webhook") {
        Ok(id) => match crate::service::webhooks::get(&svc, &ctx, id).await {
            Ok(endpoint) => {
                let attempts =
                    crate::service::webhooks::attempts(&svc, &ctx, id, None, Some(LIST_PAGE))
                        .await?;
                Ok((endpoint, attempts))
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (endpoint, attempts) = match found {
        Ok(found) => found,
        Err(AppError::NotFound { .. }) => {
            return Ok(message(
                StatusCode::NOT_FOUND,
                language,
                uri.path(),
                Some(&user),
                "not_found",
            ))
        }
        Err(other) => return Err(other),
    };
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "webhook", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "webhook.html",
        &frame,
        json!({ "endpoint": endpoint, "attempts": attempts }),
    ))
}

async fn webhook_action(
    svc: AppState,
    meta: crate::service::RequestMeta,
    headers: HeaderMap,
    id: String,
    path: &str,
    body: Bytes,
    delete: bool,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let (user, ctx, _) = match admin_form(&svc, &headers, path, &body).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let outcome = match parse_id::<crate::domain::WebhookId>(&id, "webhook") {
        Ok(webhook) if delete => crate::service::webhooks::delete(&svc, &ctx, &meta, webhook)
            .await
            .map(|()| "/webhooks".to_string()),
        Ok(webhook) => crate::service::webhooks::enable(&svc, &ctx, &meta, webhook)
            .await
            .map(|_| format!("/webhooks/{id}")),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(to) => Ok(redirect(&to)),
        Err(AppError::NotFound { .. }) => Ok(message(
            StatusCode::NOT_FOUND,
            language,
            path,
            Some(&user),
            "not_found",
        )),
        Err(other) => Err(other),
    }
}

pub async fn delete_webhook(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Result<Response, AppError> {
    webhook_action(svc, meta, headers, id, uri.path(), body, true).await
}

pub async fn enable_webhook(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Result<Response, AppError> {
    webhook_action(svc, meta, headers, id, uri.path(), body, false).await
}

#[allow(clippy::too_many_arguments)]
async fn profile_page(
    svc: &Services,
    user: &WebUser,
    language: Language,
    status: StatusCode,
    profile_text: Option<String>,
    preview: Option<crate::service::drop_config::Preview>,
    problem: Option<String>,
    saved: bool,
) -> Result<Response, AppError> {
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    let config = crate::service::drop_config::get(svc, &ctx).await?;
    let profile_text = profile_text
        .unwrap_or_else(|| serde_json::to_string_pretty(&config.profile).unwrap_or_default());
    let effective_text = serde_json::to_string_pretty(&config.effective).unwrap_or_default();
    // The preview's columns, in the order of its first row.
    let preview_keys: Vec<String> = preview
        .as_ref()
        .and_then(|p| p.rows.first())
        .and_then(|row| row.as_object())
        .map(|row| row.keys().cloned().collect())
        .unwrap_or_default();
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(
        language,
        "mapping_profile",
        "/files/profile",
        Some(user),
        &csrf,
    );
    Ok(render(
        status,
        "profile_editor.html",
        &frame,
        json!({
            "config": config,
            "profile_text": profile_text,
            "effective_text": effective_text,
            "preview": preview,
            "preview_keys": preview_keys,
            "problem": problem,
            "saved": saved,
        }),
    ))
}

pub async fn profile_editor(
    State(svc): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let user = match admin(&svc, &headers, "/files/profile").await? {
        Access::Admin(user, _) => user,
        Access::Denied(response) => return Ok(response),
    };
    profile_page(
        &svc,
        &user,
        language(&headers),
        StatusCode::OK,
        None,
        None,
        None,
        false,
    )
    .await
}

/// The editor's form: try the profile on a sample file, or save it.
pub async fn profile_submit(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Result<Response, AppError> {
    use crate::dropdir::formats::Kind;
    let language = language(&headers);
    let (user, ctx) = match admin(&svc, &headers, "/files/profile").await? {
        Access::Admin(user, ctx) => (user, ctx),
        Access::Denied(response) => return Ok(response),
    };
    let unreadable = |e: axum::extract::multipart::MultipartError| AppError::BadRequest {
        code: "invalid_upload",
        message: format!("the form could not be read: {e}"),
    };
    let (mut csrf, mut text, mut action, mut kind, mut sample) = (
        String::new(),
        String::new(),
        String::new(),
        Kind::Users,
        None,
    );
    while let Some(part) = form.next_field().await.map_err(unreadable)? {
        match part.name().unwrap_or_default() {
            "csrf" => csrf = part.text().await.map_err(unreadable)?,
            "profile" => text = part.text().await.map_err(unreadable)?,
            "action" => action = part.text().await.map_err(unreadable)?,
            "kind" => {
                kind = match part.text().await.map_err(unreadable)?.as_str() {
                    "stores" => Kind::Stores,
                    _ => Kind::Users,
                };
            }
            "file" => {
                let name = part.file_name().unwrap_or("sample.csv").to_string();
                let bytes = part.bytes().await.map_err(unreadable)?.to_vec();
                sample = (!bytes.is_empty()).then_some((name, bytes));
            }
            _ => {}
        }
    }
    if !same_token(&user.session.csrf_token, &csrf) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            language,
            "/files/profile",
            Some(&user),
            "form_expired",
        ));
    }
    let profile = match serde_json::from_str::<crate::domain::drop_profile::DropProfile>(&text) {
        Ok(profile) => profile,
        Err(e) => {
            let problem = format!("{}: {e}", super::i18n::word(language, "profile_json"));
            return profile_page(
                &svc,
                &user,
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(text),
                None,
                Some(problem),
                false,
            )
            .await;
        }
    };
    let outcome = if action == "save" {
        crate::service::drop_config::put(&svc, &ctx, profile, &meta)
            .await
            .map(|_| (None, true))
    } else {
        match sample {
            None => Err(AppError::field(
                "file",
                "required",
                super::i18n::word(language, "sample"),
            )),
            Some((file_name, bytes)) => {
                let read = user.principal().require_scope(Scope::SyncRead)?;
                crate::service::drop_config::preview(
                    &svc,
                    &read,
                    crate::service::drop_config::Sample {
                        file_name,
                        kind: Some(kind),
                        bytes,
                        profile: Some(profile),
                    },
                )
                .await
                .map(|preview| (Some(preview), false))
            }
        }
    };
    match outcome {
        Ok((preview, saved)) => {
            let kept = (!saved).then_some(text);
            profile_page(
                &svc,
                &user,
                language,
                StatusCode::OK,
                kept,
                preview,
                None,
                saved,
            )
            .await
        }
        Err(error) => match problems(&error) {
            Some(problem) => {
                profile_page(
                    &svc,
                    &user,
                    language,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(text),
                    None,
                    Some(problem),
                    false,
                )
                .await
            }
            None => Err(error),
        },
    }
}
