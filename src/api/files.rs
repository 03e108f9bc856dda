//! The drop directory's files: recent files with their state, one file, retry.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::extract::{AppState, Auth, Meta, QueryParams};
use super::pagination;
use crate::domain::Scope;
use crate::service::files::{self, Rerun};
use crate::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/enterprise/files", get(list))
        .route("/api/enterprise/files/{id}", get(show))
        .route("/api/enterprise/files/{id}/retry", post(retry))
        .route("/api/enterprise/files/{id}/approve", post(approve))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    let mut errors = Vec::new();
    let limit = pagination::limit(query.limit, &mut errors).min(files::MAX_LIST);
    pagination::finish(errors)?;
    Ok(Json(
        serde_json::json!({ "data": files::list(&svc, &ctx, limit).await? }),
    ))
}

async fn show(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    Ok(Json(files::get(&svc, &ctx, id).await?))
}

async fn retry(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    rerun(&svc, &principal, id, Rerun::Retry, &meta).await
}

async fn approve(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    rerun(&svc, &principal, id, Rerun::Approve, &meta).await
}

async fn rerun(
    svc: &AppState,
    principal: &crate::service::access::Principal,
    id: String,
    how: Rerun,
    meta: &crate::service::RequestMeta,
) -> Result<Json<crate::store::drop_files::DropFile>, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(
        files::rerun(svc, principal, &admin, id, how, meta).await?,
    ))
}
