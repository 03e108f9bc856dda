use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::DataList;
use crate::domain::WebhookId;
use crate::http::error::ErrorBody;
use crate::http::extract::{parse_id, AppState, Auth, JsonBody, Meta, QueryParams};
use crate::service::notification_settings::{self, SettingsChange, SettingsView};
use crate::service::webhooks::{
    self, DeliveryAttemptView, RegisterWebhook, RegisteredWebhook, WebhookView,
};
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, register))
        .routes(routes!(show, remove))
        .routes(routes!(enable))
        .routes(routes!(deliveries))
        .routes(routes!(settings, update_settings))
}

/// Registers an endpoint. Its signing secret is in this answer only.
#[utoipa::path(
    post,
    operation_id = "registerWebhook",
    path = "/api/enterprise/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = RegisterWebhook,
    responses(
        (status = 201, description = "The endpoint and its secret, shown once", body = RegisteredWebhook),
        (status = 409, description = "The enterprise has the most endpoints allowed (`too_many_webhooks`)", body = ErrorBody),
        (status = 422, description = "URL, description or events invalid; `destination_refused` when the URL reaches a loopback, private, link-local or metadata address outside the allowed networks", body = ErrorBody),
    )
)]
async fn register(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<RegisterWebhook>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let created = webhooks::register(&svc, &admin, &meta, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get,
    operation_id = "listWebhooks",
    path = "/api/enterprise/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses((status = 200, description = "The enterprise's endpoints, without their secrets", body = DataList<WebhookView>))
)]
async fn list(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(DataList {
        data: webhooks::list(&svc, &admin).await?,
    }))
}

#[utoipa::path(
    get,
    operation_id = "getWebhook",
    path = "/api/enterprise/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint, without its secret", body = WebhookView),
        (status = 404, description = "No such endpoint in this enterprise", body = ErrorBody),
    )
)]
async fn show(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id: WebhookId = parse_id(&id, "webhook")?;
    Ok(Json(webhooks::get(&svc, &admin, id).await?))
}

#[utoipa::path(
    delete,
    operation_id = "deleteWebhook",
    path = "/api/enterprise/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted, with its undelivered messages and delivery log"),
        (status = 404, description = "No such endpoint in this enterprise", body = ErrorBody),
    )
)]
async fn remove(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id: WebhookId = parse_id(&id, "webhook")?;
    webhooks::delete(&svc, &admin, &meta, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns an endpoint disabled by a 410 or by the end of its retry window back on.
#[utoipa::path(
    post,
    operation_id = "enableWebhook",
    path = "/api/enterprise/webhooks/{id}/enable",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint, active; its pending messages go out again", body = WebhookView),
        (status = 404, description = "No such endpoint in this enterprise", body = ErrorBody),
    )
)]
async fn enable(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id: WebhookId = parse_id(&id, "webhook")?;
    Ok(Json(webhooks::enable(&svc, &admin, &meta, id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    /// 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// `next_before` of the previous page.
    #[param(minimum = 1, maximum = 9_007_199_254_740_991_i64)]
    before: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DeliveriesPage {
    data: Vec<DeliveryAttemptView>,
    /// Pass as `before` for older attempts; absent on the last page.
    next_before: Option<i64>,
}

/// The endpoint's delivery log: one entry per attempt, newest first.
#[utoipa::path(
    get,
    operation_id = "listWebhookDeliveries",
    path = "/api/enterprise/webhooks/{id}/deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id"), DeliveriesQuery),
    responses(
        (status = 200, description = "Attempts, newest first", body = DeliveriesPage),
        (status = 404, description = "No such endpoint in this enterprise", body = ErrorBody),
    )
)]
async fn deliveries(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<DeliveriesQuery>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id: WebhookId = parse_id(&id, "webhook")?;
    let limit = query
        .limit
        .unwrap_or(50)
        .clamp(1, webhooks::MAX_ATTEMPTS_PAGE);
    let data = webhooks::attempts(&svc, &admin, id, query.before, Some(limit)).await?;
    let next_before = (data.len() == limit)
        .then(|| data.last().map(|a| a.seq))
        .flatten();
    Ok(Json(DeliveriesPage { data, next_before }))
}

#[utoipa::path(
    get,
    operation_id = "getNotificationSettings",
    path = "/api/enterprise/notification-settings",
    tag = "webhooks",
    security(("bearer" = [])),
    responses((status = 200, description = "Email language, alert recipients and triggers, networks webhooks may reach", body = SettingsView))
)]
async fn settings(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(notification_settings::get(&svc, &admin).await?))
}

/// Changes the fields given; changes are audited.
#[utoipa::path(
    put,
    operation_id = "updateNotificationSettings",
    path = "/api/enterprise/notification-settings",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = SettingsChange,
    responses(
        (status = 200, description = "The settings now", body = SettingsView),
        (status = 422, description = "A field is invalid (named in `details.fields`)", body = ErrorBody),
    )
)]
async fn update_settings(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<SettingsChange>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(
        notification_settings::update(&svc, &admin, &meta, body).await?,
    ))
}
