//! The REST API: its routes and handlers, grouped by who may call them, and
//! its OpenAPI document. Handlers stay thin: the extractors of `http` check
//! the caller and parse, the handler calls one `service` function.

mod accounts;
mod api_keys;
mod audit;
mod directory;
mod drop_config;
mod enterprise;
mod files;
mod health;
mod imports;
pub mod metrics;
pub mod openapi;
mod pagination;
mod password_pages;
mod sessions;
mod sync;
mod webhooks;

use axum::middleware::from_fn_with_state;
use axum::Router;

use crate::config::Config;
use crate::http::{auth, AppState};
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

/// The REST routes, each group behind its authentication or throttle; the
/// probes are [`probes`], apart, since they stay outside every limit.
pub fn router(state: &AppState) -> Router<AppState> {
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
    router
}

/// Health, readiness and (unless it has its own listener) metrics.
pub fn probes(config: &Config) -> Router<AppState> {
    let (probes, _) = route_groups(config).probes.split_for_parts();
    probes
}
