//! The drop directory's files: recent files with their state, one file, retry.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::DataList;
use crate::http::error::ErrorBody;
use crate::store::drop_files::DropFile;

use super::pagination;
use crate::domain::Scope;
use crate::http::extract::{AppState, Auth, Meta, QueryParams};
use crate::service::files::{self, Rerun};
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(retry))
        .routes(routes!(approve))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The drop directory's recent files, newest first, with their state.
#[utoipa::path(
    get,
    operation_id = "listFiles",
    path = "/api/enterprise/files",
    tag = "files",
    security(("api_key" = ["sync:read"]), ("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Recent files", body = DataList<DropFile>),
        (status = 422, description = "limit is out of range", body = ErrorBody),
    )
)]
async fn list(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    let mut errors = Vec::new();
    let limit = pagination::limit(query.limit, &mut errors).min(files::MAX_LIST);
    pagination::finish(errors)?;
    Ok(Json(DataList {
        data: files::list(&svc, &ctx, limit).await?,
    }))
}

#[utoipa::path(
    get,
    operation_id = "getFile",
    path = "/api/enterprise/files/{id}",
    tag = "files",
    security(("api_key" = ["sync:read"]), ("bearer" = [])),
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The file, its state and its run", body = DropFile),
        (status = 404, description = "No such file in this enterprise", body = ErrorBody),
    )
)]
async fn show(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    Ok(Json(files::get(&svc, &ctx, id).await?))
}

/// Runs a failed file again (audited); answers once it has run.
#[utoipa::path(
    post,
    operation_id = "retryFile",
    path = "/api/enterprise/files/{id}/retry",
    tag = "files",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The file after its new run", body = DropFile),
        (status = 404, description = "No such file in this enterprise", body = ErrorBody),
        (status = 409, description = "The file is not in a state that can be retried (`not_retryable`)", body = ErrorBody),
    )
)]
async fn retry(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    rerun(&svc, &principal, id, Rerun::Retry, &meta).await
}

/// Applies a full export the guard held (audited); answers once it has run.
#[utoipa::path(
    post,
    operation_id = "approveFile",
    path = "/api/enterprise/files/{id}/approve",
    tag = "files",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The file after its run", body = DropFile),
        (status = 404, description = "No such file in this enterprise", body = ErrorBody),
        (status = 409, description = "The file is not held (`not_held`)", body = ErrorBody),
    )
)]
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
