//! `GET /metrics`: Prometheus, on the main listener or on its own address.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::AppState;
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Prometheus metrics (on the main listener unless `[metrics] listen` moves them).
#[utoipa::path(
    get,
    operation_id = "metrics",
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"))
)]
async fn metrics(State(svc): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let text = crate::service::metrics::render(&svc).await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text))
}

/// The router of the separate metrics listener (`[metrics] listen`).
pub fn standalone(state: AppState) -> Router {
    let (router, _) = router().split_for_parts();
    router.with_state(state)
}
