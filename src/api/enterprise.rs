//! An IT admin's own enterprise: its settings and its administrators.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::UserId;
use crate::http::error::ErrorBody;
use crate::http::extract::{parse_id, AppState, Auth, JsonBody, Meta};
use crate::service::enterprise_admins::{self, EnterpriseAdmin, InvitedAdmin, NewAdmin};
use crate::service::enterprise_settings::{self, EnterpriseSettings, EnterpriseSettingsChange};
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show_settings, update_settings))
        .routes(routes!(list_admins, invite_admin))
        .routes(routes!(deactivate_admin))
        .routes(routes!(reactivate_admin))
}

/// The enterprise's name, contact email, sync mode and seats.
#[utoipa::path(
    get,
    operation_id = "getEnterpriseSettings",
    path = "/api/enterprise/settings",
    tag = "enterprise",
    security(("bearer" = [])),
    responses((status = 200, description = "The settings", body = EnterpriseSettings))
)]
async fn show_settings(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(enterprise_settings::get(&svc, &admin).await?))
}

/// Changes the fields sent (audited with before and after); seats stay the
/// appliance operator's.
#[utoipa::path(
    patch,
    operation_id = "updateEnterpriseSettings",
    path = "/api/enterprise/settings",
    tag = "enterprise",
    security(("bearer" = [])),
    request_body = EnterpriseSettingsChange,
    responses(
        (status = 200, description = "The settings now", body = EnterpriseSettings),
        (status = 400, description = "The body is not JSON of this shape", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 422, description = "A field is invalid, or seats_purchased was sent (`read_only`)", body = ErrorBody),
    )
)]
async fn update_settings(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    JsonBody(change): JsonBody<EnterpriseSettingsChange>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(
        enterprise_settings::update(&svc, &admin, &meta, change).await?,
    ))
}

/// The enterprise's IT administrators, first registered first.
#[utoipa::path(
    get,
    operation_id = "listEnterpriseAdmins",
    path = "/api/enterprise/admins",
    tag = "enterprise",
    security(("bearer" = [])),
    responses((status = 200, description = "The administrators", body = [EnterpriseAdmin]))
)]
async fn list_admins(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(enterprise_admins::list(&svc, &admin).await?))
}

/// Invites another IT administrator: they get the invitation email and set
/// their password through its link.
#[utoipa::path(
    post,
    operation_id = "inviteEnterpriseAdmin",
    path = "/api/enterprise/admins",
    tag = "enterprise",
    security(("bearer" = [])),
    request_body = NewAdmin,
    responses(
        (status = 201, description = "Invited", body = InvitedAdmin),
        (status = 400, description = "The body is not JSON of this shape", body = ErrorBody),
        (status = 409, description = "Someone of the enterprise has this email (`email_taken`)", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 422, description = "name or email is invalid", body = ErrorBody),
    )
)]
async fn invite_admin(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    JsonBody(input): JsonBody<NewAdmin>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let invited = enterprise_admins::invite(&svc, &admin, &meta, input).await?;
    Ok((StatusCode::CREATED, Json(invited)))
}

/// Deactivates an IT administrator: their sessions end at once. The last
/// active administrator who can sign in cannot be deactivated.
#[utoipa::path(
    post,
    operation_id = "deactivateEnterpriseAdmin",
    path = "/api/enterprise/admins/{id}/deactivate",
    tag = "enterprise",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The administrator's user id")),
    responses(
        (status = 200, description = "Deactivated (or already)", body = EnterpriseAdmin),
        (status = 404, description = "No such administrator in this enterprise", body = ErrorBody),
        (status = 409, description = "The last active administrator who can sign in (`last_admin`)", body = ErrorBody),
    )
)]
async fn deactivate_admin(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id: UserId = parse_id(&id, "administrator")?;
    Ok(Json(
        enterprise_admins::deactivate(&svc, &admin, &meta, id).await?,
    ))
}

#[utoipa::path(
    post,
    operation_id = "reactivateEnterpriseAdmin",
    path = "/api/enterprise/admins/{id}/reactivate",
    tag = "enterprise",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The administrator's user id")),
    responses(
        (status = 200, description = "Active again (or already)", body = EnterpriseAdmin),
        (status = 404, description = "No such administrator in this enterprise", body = ErrorBody),
    )
)]
async fn reactivate_admin(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id: UserId = parse_id(&id, "administrator")?;
    Ok(Json(
        enterprise_admins::reactivate(&svc, &admin, &meta, id).await?,
    ))
}
