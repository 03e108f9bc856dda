use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::extract::AppState;
use crate::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness: the process answers.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers both a read and a write round trip, and the
/// drop root (when the drop directory is on) is a folder the service can write.
async fn readyz(State(svc): State<AppState>) -> impl IntoResponse {
    let read = svc
        .db
        .read(|conn| crate::store::ping(conn).map_err(AppError::from))
        .await;
    let write = svc
        .db
        .write(|txn| crate::store::ping(txn).map_err(AppError::from))
        .await;
    let database = if read.is_ok() && write.is_ok() {
        "ok"
    } else {
        "unavailable"
    };
    // The drop directory counts when it is on: files would pile up unseen.
    let config = svc.config.clone();
    let drop_root = if !config.dropdir.enabled {
        "disabled"
    } else if tokio::task::spawn_blocking(move || crate::dropdir::layout::root_usable(&config))
        .await
        .unwrap_or(false)
    {
        "ok"
    } else {
        "unavailable"
    };
    let ready = database == "ok" && drop_root != "unavailable";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ok" } else { "unavailable" },
            "checks": { "database": database, "drop_root": drop_root },
        })),
    )
}
