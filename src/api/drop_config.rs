//! An enterprise's drop-directory profile: read it, replace it (IT admins),
//! reset it to the config file's, and preview a sample file with it.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::ErrorBody;
use crate::service::drop_config::{DropConfigView, Preview};

use crate::domain::drop_profile::DropProfile;
use crate::domain::Scope;
use crate::dropfile::formats::Kind;
use crate::http::extract::{AppState, Auth, JsonBody, Meta, QueryParams};
use crate::service::drop_config::{self, Sample};
use crate::AppError;

/// Largest sample a preview reads: enough for thousands of rows.
pub const MAX_SAMPLE_BYTES: usize = 4 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    let (schemas, paths, preview) = routes!(preview);
    // A base64 sample in a JSON envelope is a third larger than the file.
    let preview = preview.layer(DefaultBodyLimit::max(MAX_SAMPLE_BYTES * 4 / 3 + 64 * 1024));
    OpenApiRouter::new()
        .routes(routes!(show, replace, reset))
        .routes((schemas, paths, preview))
}

/// The profile in force and where it comes from, with the effective settings.
#[utoipa::path(
    get,
    operation_id = "getDropConfig",
    path = "/api/enterprise/drop-config",
    tag = "drop-config",
    security(("api_key" = ["sync:read"]), ("bearer" = [])),
    responses((status = 200, description = "The profile in force", body = DropConfigView))
)]
async fn show(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    Ok(Json(drop_config::get(&svc, &ctx).await?))
}

/// Replaces the enterprise's profile (audited); the whole profile is checked,
/// every mistake named.
#[utoipa::path(
    put,
    operation_id = "putDropConfig",
    path = "/api/enterprise/drop-config",
    tag = "drop-config",
    security(("bearer" = [])),
    request_body = DropProfile,
    responses(
        (status = 200, description = "The profile now in force", body = DropConfigView),
        (status = 422, description = "The profile is invalid; details name each field", body = ErrorBody),
    )
)]
async fn replace(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    JsonBody(profile): JsonBody<DropProfile>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(drop_config::put(&svc, &admin, profile, &meta).await?))
}

/// Drops the API-set profile (audited): the config file's, or the defaults, apply.
#[utoipa::path(
    delete,
    operation_id = "resetDropConfig",
    path = "/api/enterprise/drop-config",
    tag = "drop-config",
    security(("bearer" = [])),
    responses((status = 200, description = "The profile now in force", body = DropConfigView))
)]
async fn reset(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(drop_config::reset(&svc, &admin, &meta).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PreviewQuery {
    /// The sample's file name, as it would be dropped (it decides the kind).
    file_name: Option<String>,
    /// `users` or `stores`, when the name does not tell.
    #[param(pattern = "^(users|stores)$")]
    kind: Option<String>,
}

/// A JSON preview request: the sample (text, or base64 for other encodings)
/// and, optionally, a profile to try instead of the one in force.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PreviewEnvelope {
    file_name: Option<String>,
    kind: Option<String>,
    content: Option<String>,
    content_base64: Option<String>,
    profile: Option<DropProfile>,
}

fn kind_of(text: Option<&str>) -> Result<Option<Kind>, AppError> {
    match text {
        None => Ok(None),
        Some("users") => Ok(Some(Kind::Users)),
        Some("stores") => Ok(Some(Kind::Stores)),
        Some(other) => Err(AppError::field(
            "kind",
            "invalid_value",
            format!("kind is users or stores, not {other:?}"),
        )),
    }
}

/// `POST /api/enterprise/drop-config/preview`: the raw file as the body
/// (`?file_name=users.csv` or `?kind=users`), or a JSON envelope
/// `{"file_name", "kind", "content" | "content_base64", "profile"}`.
/// Nothing is written.
#[utoipa::path(
    post,
    operation_id = "previewDropFile",
    path = "/api/enterprise/drop-config/preview",
    tag = "drop-config",
    security(("api_key" = ["sync:read"]), ("bearer" = [])),
    params(PreviewQuery),
    request_body(
        description = "A sample file (at most 4 MiB) as the raw body, or a JSON envelope",
        content(
            (PreviewEnvelope = "application/json"),
            (String = "text/csv"),
            (Vec<u8> = "application/octet-stream"),
        )
    ),
    responses(
        (status = 200, description = "How the file reads and what importing it would do", body = Preview),
        (status = 413, description = "The sample is over 4 MiB", body = ErrorBody),
        (status = 422, description = "The envelope or the profile is invalid", body = ErrorBody),
    )
)]
async fn preview(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<PreviewQuery>,
    req: Request,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let sample = if is_json {
        let JsonBody(envelope) = JsonBody::<PreviewEnvelope>::from_request(req, &svc).await?;
        let bytes = match (envelope.content, envelope.content_base64) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| {
                    AppError::field(
                        "content_base64",
                        "invalid_value",
                        format!("not base64: {e}"),
                    )
                })?,
            _ => {
                return Err(AppError::field(
                    "content",
                    "required",
                    "give the sample as content (text) or content_base64",
                ))
            }
        };
        Sample {
            file_name: envelope.file_name.unwrap_or_default(),
            kind: kind_of(envelope.kind.as_deref())?,
            bytes,
            profile: envelope.profile,
        }
    } else {
        let bytes = Bytes::from_request(req, &svc).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge {
                    limit: MAX_SAMPLE_BYTES,
                }
            } else {
                AppError::BadRequest {
                    code: "unreadable_body",
                    message: rejection.body_text(),
                }
            }
        })?;
        Sample {
            file_name: query.file_name.clone().unwrap_or_default(),
            kind: kind_of(query.kind.as_deref())?,
            bytes: bytes.to_vec(),
            profile: None,
        }
    };
    if sample.bytes.len() > MAX_SAMPLE_BYTES {
        return Err(AppError::PayloadTooLarge {
            limit: MAX_SAMPLE_BYTES,
        });
    }
    if sample.file_name.len() > 255 {
        return Err(AppError::field(
            "file_name",
            "too_long",
            "a file name of at most 255 bytes",
        ));
    }
    Ok(Json(drop_config::preview(&svc, &ctx, sample).await?))
}
