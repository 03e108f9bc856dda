//! The whole HTTP application, assembled in one place: the REST API, SCIM and
//! the dashboard, behind the limits and headers every request gets. `serve`
//! and the tests share it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, map_request, map_response, map_response_with_state};
use axum::response::IntoResponse;
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::http::{client_limits, fallback, observe, security_headers, AppState};
use crate::AppError;

/// The application every listener but the metrics one serves.
pub fn app(state: AppState) -> Router {
    let http = state.config.http.clone();
    let imports_limit = state.config.imports.max_body_bytes;
    // Requests in flight per client address.
    let in_flight = Arc::new(crate::listener::PerAddress::default());
    let served = crate::api::router(&state)
        .merge(crate::scim::http::router(state.clone()))
        .merge(crate::web::router(state.clone()))
        .fallback(fallback::not_found)
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
    Router::new()
        .merge(crate::api::probes(&state.config).with_state(state.clone()))
        .merge(served)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(map_response(fallback::json_for_bare_errors))
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
