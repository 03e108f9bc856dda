use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{AppState, Auth, JsonBody, Meta};
use crate::service::invitations::{self, Acceptance};
use crate::service::sessions::{self, Credentials, RefreshRequest, SessionUser, TokenPair};
use crate::AppError;

/// Login, refresh, logout and invitations: unauthenticated, throttled per
/// client IP by the caller.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(accept_invitation))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(logout_everywhere))
}

/// An accepted invitation: the person, who may now sign in.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Accepted {
    /// `accepted`
    status: &'static str,
    user: SessionUser,
}

#[utoipa::path(
    post,
    operation_id = "login",
    path = "/api/auth/login",
    tag = "sessions",
    request_body = Credentials,
    responses(
        (status = 200, description = "An access token (15 min) and a rotating refresh token", body = TokenPair),
        (status = 401, description = "Wrong email or password, or the account is locked for a while", body = ErrorBody),
        (status = 409, description = "The email and password open accounts in several enterprises (`enterprise_required`): `details.enterprises` lists them (id, company_name); send the request again with `enterprise_id`", body = ErrorBody),
        (status = 422, description = "Email or password missing, or `enterprise_id` is not an enterprise id", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
async fn login(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(sessions::login(&svc, &meta, body).await?))
}

#[utoipa::path(
    post,
    operation_id = "refreshTokens",
    path = "/api/auth/refresh",
    tag = "sessions",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the presented refresh token is spent (reuse revokes its family)", body = TokenPair),
        (status = 401, description = "The refresh token is unknown, spent, expired or revoked", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
async fn refresh(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(sessions::refresh(&svc, &meta, body).await?))
}

#[utoipa::path(
    post,
    operation_id = "logout",
    path = "/api/auth/logout",
    tag = "sessions",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "The refresh token's family is revoked"),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
async fn logout(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<impl IntoResponse, AppError> {
    sessions::logout(&svc, &meta, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    operation_id = "getMe",
    path = "/api/me",
    tag = "sessions",
    security(("bearer" = [])),
    responses((status = 200, description = "The signed-in person", body = SessionUser))
)]
async fn me(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(sessions::me(&svc, &principal).await?))
}

/// Ends every session of the signed-in person: all their access tokens, refresh
/// tokens and dashboard sessions, on every device.
#[utoipa::path(
    post,
    operation_id = "logoutEverywhere",
    path = "/api/me/logout-everywhere",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session of the person is ended, this one included"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key: only a signed-in person has sessions (`not_a_person`)", body = ErrorBody),
        (status = 429, description = "The person's request limit", body = ErrorBody),
    )
)]
async fn logout_everywhere(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    sessions::logout_everywhere(&svc, &meta, &principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    operation_id = "acceptInvitation",
    path = "/api/auth/accept-invitation",
    tag = "sessions",
    request_body = Acceptance,
    responses(
        (status = 200, description = "The password is set; the person may sign in", body = Accepted),
        (status = 400, description = "The token is unknown or expired (`invitation_invalid`), already used (`invitation_used`) or replaced by a newer one (`invitation_replaced`)", body = ErrorBody),
        (status = 422, description = "The password breaks the policy", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
async fn accept_invitation(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<Acceptance>,
) -> Result<impl IntoResponse, AppError> {
    let user = invitations::accept(&svc, &meta, body).await?;
    Ok(Json(Accepted {
        status: "accepted",
        user,
    }))
}
