use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::ErrorBody;
use crate::http::extract::{AppState, Auth, JsonBody, Meta};
use crate::service::invitations::{self, Acceptance};
use crate::service::password_changes::{self, ForgotPassword, Keep, PasswordChange};
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
        .routes(routes!(forgot_password))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(logout_everywhere))
        .routes(routes!(change_password))
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
    let user = invitations::accept(&svc, invitations::LinkPurpose::Invitation, &meta, body).await?;
    Ok(Json(Accepted {
        status: "accepted",
        user,
    }))
}

/// Changes the signed-in person's password: the current one first. Every
/// other session and refresh token of the person ends; the answer carries the
/// caller's new tokens.
#[utoipa::path(
    post,
    operation_id = "changePassword",
    path = "/api/me/password",
    tag = "sessions",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed: the caller's new access and refresh tokens", body = TokenPair),
        (status = 400, description = "The body is not JSON of this shape", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key: only a signed-in person has a password (`not_a_person`)", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 422, description = "`current_password` is wrong (`wrong_password`) or `new_password` breaks the policy (`weak_password`)", body = ErrorBody),
        (status = 429, description = "The person's request limit", body = ErrorBody),
    )
)]
async fn change_password(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<impl IntoResponse, AppError> {
    let crate::service::access::Principal::User {
        user, enterprise, ..
    } = principal
    else {
        return Err(AppError::forbidden(
            "not_a_person",
            "Only a signed-in person has a password; an API key is revoked and generated again",
        ));
    };
    let pair = password_changes::change_own(&svc, &meta, (user, enterprise), body, Keep::Api)
        .await?
        .ok_or_else(|| AppError::internal("a password change made no tokens"))?;
    Ok(Json(pair))
}

/// Asks for a password reset link by email. The answer is the same 202 for
/// every address, known or not, and comes before any work is done; each
/// account of the email (one per enterprise) gets at most three emails an
/// hour.
#[utoipa::path(
    post,
    operation_id = "forgotPassword",
    path = "/api/auth/forgot-password",
    tag = "sessions",
    request_body = ForgotPassword,
    responses(
        (status = 202, description = "If an account has this email, a link is on its way"),
        (status = 422, description = "No email in the body, or a longer one than an address can be", body = ErrorBody),
        (status = 400, description = "The body is not JSON of this shape", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
async fn forgot_password(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<ForgotPassword>,
) -> Result<impl IntoResponse, AppError> {
    // The shape only: whether the address exists is never said.
    match body.email.as_deref() {
        None | Some("") => return Err(AppError::field("email", "required", "email is required")),
        Some(email) if email.chars().count() > crate::domain::email::MAX_LEN => {
            return Err(AppError::field(
                "email",
                "too_long",
                format!(
                    "email must be at most {} characters",
                    crate::domain::email::MAX_LEN
                ),
            ))
        }
        Some(_) => {}
    }
    password_changes::forgot(svc.clone(), meta, body);
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "status": "accepted",
            "message": "If an account has this email, a link to choose a new password is on its way",
        })),
    ))
}
