use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::extract::{parse_id, AppState, Auth, JsonBody, Meta};
use crate::service::api_keys::{self, GenerateKey};
use crate::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/enterprise/api-keys", get(list))
        .route("/api/enterprise/api-keys/generate", post(generate))
        .route("/api/enterprise/api-keys/{id}", get(show).delete(revoke))
}

async fn generate(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<GenerateKey>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let key = api_keys::generate(&svc, &admin, &meta, body).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

async fn list(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(json!({ "data": api_keys::list(&svc, &admin).await? })))
}

async fn show(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id = parse_id(&id, "api key")?;
    Ok(Json(api_keys::get(&svc, &admin, id).await?))
}

async fn revoke(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id = parse_id(&id, "api key")?;
    Ok(Json(api_keys::revoke(&svc, &admin, &meta, id).await?))
}
