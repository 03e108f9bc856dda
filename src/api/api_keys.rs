use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::DataList;
use crate::http::error::ErrorBody;
use crate::http::extract::{parse_id, AppState, Auth, JsonBody, Meta};
use crate::service::api_keys::{self, ApiKeyView, GenerateKey, GeneratedKey};
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(generate))
        .routes(routes!(show, revoke))
}

/// Generates a key; the key itself is shown in this answer only.
#[utoipa::path(
    post,
    operation_id = "generateApiKey",
    path = "/api/enterprise/api-keys/generate",
    tag = "api-keys",
    security(("bearer" = [])),
    request_body = GenerateKey,
    responses(
        (status = 201, description = "The key, shown once", body = GeneratedKey),
        (status = 422, description = "Name, scopes or expiry invalid", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    operation_id = "listApiKeys",
    path = "/api/enterprise/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    responses((status = 200, description = "The enterprise's keys, without their secrets", body = DataList<ApiKeyView>))
)]
async fn list(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(DataList {
        data: api_keys::list(&svc, &admin).await?,
    }))
}

#[utoipa::path(
    get,
    operation_id = "getApiKey",
    path = "/api/enterprise/api-keys/{id}",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key, without its secret", body = ApiKeyView),
        (status = 404, description = "No such key in this enterprise", body = ErrorBody),
    )
)]
async fn show(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id = parse_id(&id, "api key")?;
    Ok(Json(api_keys::get(&svc, &admin, id).await?))
}

#[utoipa::path(
    delete,
    operation_id = "revokeApiKey",
    path = "/api/enterprise/api-keys/{id}",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key, revoked (at once: cached checks are dropped)", body = ApiKeyView),
        (status = 404, description = "No such key in this enterprise", body = ErrorBody),
    )
)]
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
