use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::auth::throttle_login;
use super::extract::{AppState, Auth, JsonBody, Meta};
use crate::service::invitations::{self, Acceptance};
use crate::service::sessions::{self, Credentials, RefreshRequest};
use crate::AppError;

/// Login, refresh and logout: unauthenticated, throttled per client IP.
pub fn public_router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/accept-invitation", post(accept_invitation))
        .route_layer(from_fn_with_state(state, throttle_login))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/me", get(me))
}

async fn login(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(sessions::login(&svc, &meta, body).await?))
}

async fn refresh(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(sessions::refresh(&svc, &meta, body).await?))
}

async fn logout(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<impl IntoResponse, AppError> {
    sessions::logout(&svc, &meta, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(sessions::me(&svc, &principal).await?))
}

async fn accept_invitation(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<Acceptance>,
) -> Result<impl IntoResponse, AppError> {
    let user = invitations::accept(&svc, &meta, body).await?;
    Ok(Json(
        serde_json::json!({ "status": "accepted", "user": user }),
    ))
}
