use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::ErrorBody;
use crate::http::extract::{AppState, JsonBody, Meta};
use crate::service::accounts::{self, Registered, Registration};
use crate::AppError;

/// Throttled per client IP (`rate_limit.register_per_ip_per_hour`) by the caller.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register))
}

/// Registers an enterprise and its first IT admin. While registration is
/// closed, an operator's one-time registration token comes as
/// `registration_token` in the body, or in an `X-Registration-Token` header
/// (which the document leaves out of its parameters: the body's field says
/// the same).
#[utoipa::path(
    post,
    operation_id = "registerEnterprise",
    path = "/api/enterprise/register",
    tag = "accounts",
    request_body = Registration,
    responses(
        (status = 201, description = "The enterprise and its IT admin", body = Registered),
        (status = 403, description = "Registration is closed on this appliance and no live registration token came with the request (`registration_closed`)", body = ErrorBody),
        (status = 422, description = "Fields are invalid, each named in details", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address", body = ErrorBody),
    )
)]
async fn register(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    JsonBody(mut body): JsonBody<Registration>,
) -> Result<impl IntoResponse, AppError> {
    if body.registration_token.is_none() {
        body.registration_token = headers
            .get("x-registration-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
    }
    let registered = accounts::register(&svc, &meta, body).await?;
    Ok((StatusCode::CREATED, Json(registered)))
}
