//! The IT admin's dashboard: server-rendered pages (minijinja templates and
//! assets embedded in the binary), in French and English, over the same
//! services and authorization rules as the API.
//!
//! Sessions live in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the
//! public URL is https); every form that changes something carries the
//! session's CSRF token; the Content-Security-Policy allows no inline script
//! or style.

mod pages;

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use serde::Serialize;

use crate::domain::notifications::Language;
use crate::http::AppState;
use crate::service::web_sessions::WebUser;
use crate::AppError;

pub mod i18n;

/// Every template, embedded: (name, source).
pub(crate) const TEMPLATES: [(&str, &str); 21] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("message.html", include_str!("templates/message.html")),
    ("profile.html", include_str!("templates/profile.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("api_keys.html", include_str!("templates/api_keys.html")),
    ("revoke_key.html", include_str!("templates/revoke_key.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("run.html", include_str!("templates/run.html")),
    ("files.html", include_str!("templates/files.html")),
    ("file.html", include_str!("templates/file.html")),
    ("users.html", include_str!("templates/users.html")),
    ("stores.html", include_str!("templates/stores.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("scim.html", include_str!("templates/scim.html")),
    ("webhooks.html", include_str!("templates/webhooks.html")),
    ("webhook.html", include_str!("templates/webhook.html")),
    ("settings.html", include_str!("templates/settings.html")),
    ("password.html", include_str!("templates/password.html")),
    (
        "forgot_password.html",
        include_str!("templates/forgot_password.html"),
    ),
    (
        "profile_editor.html",
        include_str!("templates/profile_editor.html"),
    ),
];

pub const STYLESHEET: &str = include_str!("assets/app.css");
pub const SCRIPT: &str = include_str!("assets/app.js");

const SESSION_COOKIE: &str = "es_session";
const PRESESSION_COOKIE: &str = "es_signin";
const LANGUAGE_COOKIE: &str = "es_lang";

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn templates() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        // `{{ run.timestamp | when }}`: a stored UTC time in the enterprise's
        // time zone and the page's language.
        environment.add_filter("when", |state: &minijinja::State, value: Option<String>| {
            let lookup = |name: &str| {
                state
                    .lookup(name)
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            };
            let language = Language::parse(&lookup("lang")).unwrap_or_default();
            value
                .map(|text| i18n::when(language, &lookup("tz"), &text))
                .unwrap_or_default()
        });
        for (name, source) in TEMPLATES {
            if let Err(e) = environment.add_template(name, source) {
                tracing::error!(template = name, error = %e, "a dashboard template does not parse");
            }
        }
        environment
    })
}

pub fn router(state: AppState) -> Router<AppState> {
    // Uploads may be as large as a dropped file, within the service's
    // outermost body limit.
    let upload_limit = usize::try_from(state.config.dropdir.max_file_bytes)
        .unwrap_or(usize::MAX)
        .min(
            state
                .config
                .http
                .max_body_bytes
                .max(state.config.imports.max_body_bytes),
        );
    // Password guesses through the form count against the same per-IP limit
    // as the API's login.
    let throttled = axum::middleware::from_fn_with_state(state.clone(), pages::throttle_sign_in);
    let signed_in = axum::middleware::from_fn_with_state(state, pages::session_before_body);
    Router::new()
        .route("/", get(pages::home))
        .route("/sign-out", post(pages::sign_out))
        .route("/api-keys", get(pages::api_keys).post(pages::generate_key))
        .route(
            "/api-keys/{id}/revoke",
            get(pages::confirm_revoke).post(pages::revoke_key),
        )
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/runs/{id}/errors.csv", get(pages::run_errors_csv))
        .route("/files", get(pages::files))
        .route(
            "/files/upload",
            post(pages::upload_file).layer(axum::extract::DefaultBodyLimit::max(
                upload_limit + 64 * 1024,
            )),
        )
        .route(
            "/files/profile",
            get(pages::profile_editor).merge(post(pages::profile_submit).layer(
                axum::extract::DefaultBodyLimit::max(upload_limit + 64 * 1024),
            )),
        )
        .route("/files/{id}", get(pages::file))
        .route("/files/{id}/approve", post(pages::approve_file))
        .route("/files/{id}/retry", post(pages::retry_file))
        .route("/users", get(pages::users))
        .route("/stores", get(pages::stores))
        .route("/audit", get(pages::audit))
        .route("/settings", get(pages::settings).post(pages::save_settings))
        .route("/settings/admins", post(pages::invite_admin))
        .route(
            "/settings/admins/{id}/deactivate",
            post(pages::deactivate_admin),
        )
        .route(
            "/settings/admins/{id}/reactivate",
            post(pages::reactivate_admin),
        )
        .route("/scim", get(pages::scim).post(pages::generate_scim_token))
        .route(
            "/webhooks",
            get(pages::webhooks).post(pages::register_webhook),
        )
        .route(
            "/webhooks/settings",
            post(pages::save_notification_settings),
        )
        .route("/webhooks/{id}", get(pages::webhook))
        .route("/webhooks/{id}/enable", post(pages::enable_webhook))
        .route("/webhooks/{id}/delete", post(pages::delete_webhook))
        .route(
            "/password",
            get(pages::password_form).post(pages::change_password),
        )
        // Every route above posts only with a session.
        .route_layer(signed_in)
        .route(
            "/forgot-password",
            get(pages::forgot_password_form)
                .merge(post(pages::forgot_password).route_layer(throttled.clone())),
        )
        .route(
            "/sign-in",
            get(pages::sign_in_form).merge(post(pages::sign_in).route_layer(throttled)),
        )
        .route("/lang/{code}", get(pages::switch_language))
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Assets change with the binary; an hour of caching spares the reloads.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The reader's language: the cookie set by the switch, else the browser's
/// first of French or English, else French.
pub(crate) fn language(headers: &HeaderMap) -> Language {
    if let Some(chosen) = cookie(headers, LANGUAGE_COOKIE).and_then(Language::parse) {
        return chosen;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(',')
        .filter_map(|tag| Language::parse(tag.split(';').next()?.trim().get(..2)?))
        .next()
        .unwrap_or_default()
}

/// `Set-Cookie` for a dashboard cookie.
pub(crate) fn set_cookie(secure: bool, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("es_invalid=1"))
}

/// What every page's layout needs.
#[derive(Serialize)]
pub(crate) struct Frame<'a> {
    pub lang: &'static str,
    pub t: &'static std::collections::BTreeMap<&'static str, &'static str>,
    pub title: &'a str,
    pub page: &'a str,
    /// The path the language switch comes back to.
    pub back: String,
    pub user: Option<FrameUser>,
    pub csrf: &'a str,
    /// The enterprise's time zone (IANA), for the `when` filter.
    pub tz: String,
}

#[derive(Serialize)]
pub(crate) struct FrameUser {
    pub name: String,
    pub email: String,
    pub is_admin: bool,
}

impl<'a> Frame<'a> {
    pub fn new(
        language: Language,
        page: &'a str,
        path: &str,
        user: Option<&WebUser>,
        csrf: &'a str,
    ) -> Self {
        Frame {
            lang: language.as_str(),
            t: i18n::words(language),
            title: i18n::word(language, page),
            page,
            back: percent_encode(path),
            user: user.map(|u| FrameUser {
                name: u.session.name.clone(),
                email: u.session.email.clone(),
                is_admin: u.is_admin(),
            }),
            csrf,
            tz: user
                .map(|u| u.session.time_zone.clone())
                .unwrap_or_else(|| "Europe/Paris".into()),
        }
    }
}

fn percent_encode(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Renders a template with the frame and the page's own values, with the
/// dashboard's security headers.
pub(crate) fn render(
    status: StatusCode,
    template: &str,
    frame: &Frame<'_>,
    page: impl Serialize,
) -> Response {
    use minijinja::value::{Serde, Value};
    let context = minijinja::context! { ..Value::from(Serde(frame)), ..Value::from(Serde(&page)) };
    let rendered = templates()
        .get_template(template)
        .and_then(|t| t.render(context));
    match rendered {
        Ok(html) => html_response(status, html),
        Err(e) => {
            tracing::error!(template, error = %e, "rendering a dashboard page failed");
            AppError::internal("rendering a page failed").into_response()
        }
    }
}

pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}

/// See-other to a page of ours.
pub(crate) fn redirect(to: &str) -> Response {
    Redirect::to(to).into_response()
}
