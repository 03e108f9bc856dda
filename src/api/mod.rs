//! HTTP: axum routes, extractors, authentication, and errors → responses.
//! Handlers stay thin: check the caller's capability, parse, call `service`.

mod accounts;
mod api_keys;
mod audit;
pub mod auth;
pub mod client_limits;
mod directory;
mod drop_config;
mod enterprise;
pub mod error;
pub mod extract;
mod files;
mod health;
mod imports;
pub mod metrics;
pub mod observe;
pub mod openapi;
mod pagination;
mod password_pages;
pub mod rate_limit_headers;
pub mod security_headers;
mod sessions;
mod sync;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, map_request, map_response, map_response_with_state};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use extract::AppState;

use crate::config::Config;
use crate::AppError;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes by who may call them; each group gets its middleware in [`app`].
struct Routes {
    /// Health, readiness and metrics: outside every concurrency limit, so a
    /// busy or attacked service still answers its supervisor.
    probes: OpenApiRouter<AppState>,
    public: OpenApiRouter<AppState>,
    register: OpenApiRouter<AppState>,
    login: OpenApiRouter<AppState>,
    authenticated: OpenApiRouter<AppState>,
}

fn route_groups(config: &Config) -> Routes {
    let public = OpenApiRouter::new().routes(routes!(openapi::serve_document));
    let mut probes = health::router();
    if config.metrics.enabled && config.metrics.listen.is_none() {
        probes = probes.merge(metrics::router());
    }
    Routes {
        probes,
        public,
        register: accounts::router(),
        login: sessions::public_router().merge(password_pages::router()),
        authenticated: OpenApiRouter::new()
            .merge(sessions::router())
            .merge(api_keys::router())
            .merge(directory::router())
            .merge(sync::router())
            .merge(audit::router())
            .merge(files::router())
            .merge(drop_config::router())
            .merge(enterprise::router())
            .merge(webhooks::router())
            .merge(imports::router(config)),
    }
}

/// Every route with its documentation, without middleware: what
/// [`openapi::document`] describes.
pub fn routes(config: &Config) -> OpenApiRouter<AppState> {
    let groups = route_groups(config);
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(groups.probes)
        .merge(groups.public)
        .merge(groups.register)
        .merge(groups.login)
        .merge(groups.authenticated)
}

/// The whole HTTP application; `serve` and the tests share it.
pub fn app(state: AppState) -> Router {
    let http = state.config.http.clone();
    let imports_limit = state.config.imports.max_body_bytes;
    let groups = route_groups(&state.config);
    let (router, _) = OpenApiRouter::new()
        .merge(groups.public)
        .merge(
            groups
                .register
                .route_layer(from_fn_with_state(state.clone(), auth::throttle_register)),
        )
        .merge(
            groups
                .login
                .route_layer(from_fn_with_state(state.clone(), auth::throttle_login)),
        )
        .merge(
            groups
                .authenticated
                .route_layer(from_fn_with_state(state.clone(), auth::authenticate)),
        )
        .split_for_parts();
    // Requests in flight per client address.
    let in_flight = Arc::new(crate::listener::PerAddress::default());
    let served = router
        .merge(crate::scim::http::router(state.clone()))
        .merge(crate::web::router(state.clone()))
        .fallback(not_found)
        .with_state(state.clone())
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        // Each `.layer` wraps the ones before it: the last is outermost.
        // The outer ceiling is the largest route limit; each route's own
        // DefaultBodyLimit then applies.
        .layer(RequestBodyLimitLayer::new(
            http.max_body_bytes.max(imports_limit),
        ))
        .layer(from_fn_with_state(
            state.clone(),
            client_limits::pace_bodies,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(
            http.max_concurrent_requests,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(http.request_timeout_secs),
        ))
        // Outside the global limit: a client over its share is refused at
        // once instead of queueing for a slot others need.
        .layer(from_fn_with_state(
            (state.clone(), in_flight),
            client_limits::limit_per_client,
        ));
    let (probes, _) = groups.probes.split_for_parts();
    Router::new()
        .merge(probes.with_state(state.clone()))
        .merge(served)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(map_response(json_for_bare_errors))
        .layer(axum::middleware::from_fn(crate::scim::error::scim_errors))
        .layer(CatchPanicLayer::custom(|_| {
            AppError::internal("handler panicked").into_response()
        }))
        .layer(map_response_with_state(
            state.clone(),
            security_headers::strict_transport,
        ))
        .layer(from_fn_with_state(state, observe::observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(map_request(security_headers::sanitize_request_id))
}

async fn not_found() -> AppError {
    AppError::NotFound { resource: "route" }
}

/// Layers below the router (body limit, timeout, method routing) answer with
/// empty bodies; give them the same JSON error shape as everything else.
async fn json_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    // application/json, a +json type such as SCIM's application/scim+json, or
    // a page that tells its reader the problem in HTML.
    let is_answer = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v == "application/json" || v.ends_with("+json") || v == "text/html"
        });
    if is_answer || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "The request took too long"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This method is not allowed on this path",
        ),
        _ => ("http_error", status.canonical_reason().unwrap_or("error")),
    };
    let mut replaced = error::error_body(status, code, message, serde_json::Value::Null);
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            replaced.headers_mut().insert(name, value.clone());
        }
    }
    replaced
}
