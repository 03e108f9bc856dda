use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};

use super::auth::throttle_register;
use super::extract::{AppState, JsonBody, Meta};
use crate::service::accounts::{self, Registration};
use crate::AppError;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/enterprise/register", post(register))
        .route_layer(from_fn_with_state(state, throttle_register))
}

async fn register(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    JsonBody(body): JsonBody<Registration>,
) -> Result<impl IntoResponse, AppError> {
    let registered = accounts::register(&svc, &meta, body).await?;
    Ok((StatusCode::CREATED, Json(registered)))
}
