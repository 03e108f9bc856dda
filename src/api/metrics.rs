//! `GET /metrics`: Prometheus, on the main listener or on its own address.

use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap};
use axum::response::IntoResponse;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{client_ip, peer_ip, AppState};
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Prometheus metrics (on the main listener, to this host's clients only,
/// unless `[metrics] listen` moves them to their own address).
#[utoipa::path(
    get,
    operation_id = "metrics",
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
        (status = 404, description = "Asked from another host on the main listener"),
    )
)]
async fn metrics(
    State(svc): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<impl IntoResponse, AppError> {
    // On the main listener, only this host's own clients (Prometheus or an
    // agent beside the service) read them: the port may face the internet.
    if svc.config.metrics.listen.is_none() {
        let client = client_ip(
            &headers,
            peer_ip(&extensions),
            &svc.settings().trusted_proxies,
        );
        if !client.is_some_and(|ip| ip.is_loopback()) {
            return Err(AppError::NotFound { resource: "route" });
        }
    }
    let text = crate::service::metrics::render(&svc).await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text))
}

/// The router of the separate metrics listener (`[metrics] listen`): whoever
/// reaches that address (the operator chose it) reads them.
pub fn standalone(state: AppState) -> Router {
    let (router, _) = router().split_for_parts();
    router.with_state(state)
}
