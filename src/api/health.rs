use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::AppState;
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    operation_id = "healthz",
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\"}`"))
)]
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers both a read and a write round trip, the
/// drop root (when the drop directory is on) is a folder the service can write,
/// and the filesystems it writes to keep `database.min_free_mb` free.
#[utoipa::path(
    get,
    operation_id = "readyz",
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "`{\"status\": \"ok\", \"checks\": {\"database\": \"ok\", \"drop_root\": \"ok\" | \"disabled\", \"disk\": \"ok\"}, \"free_bytes\": {\"data\": n, \"drop_work\": n, \"temp\": n}}` (`temp` when `database.temp_dir` is on a filesystem of its own)"),
        (status = 503, description = "The same shape, naming the check that failed"),
    )
)]
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
    } else if tokio::task::spawn_blocking(move || crate::dropfile::layout::root_usable(&config))
        .await
        .unwrap_or(false)
    {
        "ok"
    } else {
        "unavailable"
    };
    // Low space fails readiness before SQLite hits the wall.
    let config = svc.config.clone();
    let filesystems =
        tokio::task::spawn_blocking(move || crate::service::disk_space::survey(&config))
            .await
            .unwrap_or_default();
    let floor = crate::service::disk_space::min_free_bytes(&svc.config);
    let disk = if filesystems.iter().any(|fs| fs.is_low(floor)) {
        "low"
    } else {
        "ok"
    };
    let free_bytes: serde_json::Map<String, serde_json::Value> = filesystems
        .iter()
        .map(|fs| (fs.name.to_string(), json!(fs.free_bytes)))
        .collect();
    let ready = database == "ok" && drop_root != "unavailable" && disk == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ok" } else { "unavailable" },
            "checks": { "database": database, "drop_root": drop_root, "disk": disk },
            "free_bytes": free_bytes,
        })),
    )
}
