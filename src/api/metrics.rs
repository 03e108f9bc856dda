//! `GET /metrics`: Prometheus, on the main listener or on its own address.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::extract::AppState;
use crate::AppError;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(svc): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let text = crate::service::metrics::render(&svc).await?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text))
}

/// The router of the separate metrics listener (`[metrics] listen`).
pub fn standalone(state: AppState) -> Router {
    router().with_state(state)
}
