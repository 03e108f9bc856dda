//! An enterprise's drop-directory profile: read it, replace it (IT admins),
//! reset it to the config file's, and preview a sample file with it.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;

use super::extract::{AppState, Auth, JsonBody, Meta, QueryParams};
use crate::domain::drop_profile::DropProfile;
use crate::domain::Scope;
use crate::dropdir::formats::Kind;
use crate::service::drop_config::{self, Sample};
use crate::AppError;

/// Largest sample a preview reads: enough for thousands of rows.
pub const MAX_SAMPLE_BYTES: usize = 4 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/enterprise/drop-config",
            get(show).put(replace).delete(reset),
        )
        .route(
            "/api/enterprise/drop-config/preview",
            // A base64 sample in a JSON envelope is a third larger than the file.
            post(preview).layer(DefaultBodyLimit::max(MAX_SAMPLE_BYTES * 4 / 3 + 64 * 1024)),
        )
}

async fn show(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    Ok(Json(drop_config::get(&svc, &ctx).await?))
}

async fn replace(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    JsonBody(profile): JsonBody<DropProfile>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(drop_config::put(&svc, &admin, profile, &meta).await?))
}

async fn reset(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    Ok(Json(drop_config::reset(&svc, &admin, &meta).await?))
}

#[derive(Debug, Deserialize)]
struct PreviewQuery {
    file_name: Option<String>,
    kind: Option<String>,
}

/// A JSON preview request: the sample (text, or base64 for other encodings)
/// and, optionally, a profile to try instead of the one in force.
#[derive(Debug, Deserialize)]
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
