//! SCIM errors (RFC 7644 §3.12): every failure under `/scim/v2`, including the
//! ones the rest of the stack produces (401, 413, 429, 404 of unknown paths),
//! leaves as a SCIM Error with `application/scim+json`.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::scim::{schema, FaultKind, ScimFault};
pub use crate::service::scim::ScimError;

pub const CONTENT_TYPE: &str = "application/scim+json";

/// The HTTP status of each kind of SCIM error (RFC 7644 §3.12).
pub fn status_of(kind: FaultKind) -> StatusCode {
    match kind {
        FaultKind::InvalidValue
        | FaultKind::InvalidPath
        | FaultKind::InvalidSyntax
        | FaultKind::InvalidFilter
        | FaultKind::TooMany
        | FaultKind::NoTarget
        | FaultKind::Mutability => StatusCode::BAD_REQUEST,
        FaultKind::Uniqueness => StatusCode::CONFLICT,
        FaultKind::NotFound => StatusCode::NOT_FOUND,
        FaultKind::SeatLimit => StatusCode::FORBIDDEN,
        FaultKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        FaultKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
    }
}

/// A copy of a SCIM-shaped error (a shared-service error reads as 500, a
/// full disk as itself: the client is to retry later, not report a bug).
pub fn clone_fault(error: &ScimError) -> ScimError {
    match error {
        ScimError::Fault(fault) => ScimError::Fault(fault.clone()),
        ScimError::App(crate::AppError::StorageFull(cause)) => {
            ScimError::App(crate::AppError::StorageFull(cause.clone()))
        }
        ScimError::App(_) => ScimError::App(crate::AppError::Internal("internal error".into())),
    }
}

pub fn body(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut value = json!({
        "schemas": [schema::ERROR],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        value["scimType"] = t.into();
    }
    let mut response = (status, value.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        match self {
            ScimError::Fault(fault) => fault.into_response(),
            // Rewritten into SCIM form by [`scim_errors`].
            ScimError::App(e) => e.into_response(),
        }
    }
}

impl IntoResponse for ScimFault {
    fn into_response(self) -> Response {
        body(status_of(self.kind), self.kind.scim_type(), &self.detail)
    }
}

/// The scimType for one of our error codes, where one fits.
fn scim_type_of(code: &str) -> Option<&'static str> {
    Some(match code {
        "invalid_filter" => "invalidFilter",
        "invalid_path" => "invalidPath",
        "invalid_json" | "invalid_syntax" => "invalidSyntax",
        "too_many" | "too_many_results" => "tooMany",
        "validation_failed" | "invalid_type" | "invalid_value" => "invalidValue",
        _ => return None,
    })
}

/// Outermost layer for `/scim/…`: rewrites any error (ours in JSON, or a bare
/// one from the HTTP stack) into a SCIM Error, keeping its status and headers
/// such as `Retry-After`; marks SCIM JSON answers `application/scim+json`.
pub async fn scim_errors(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/scim/") {
        return next.run(req).await;
    }
    let response = next.run(req).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if content_type.starts_with(CONTENT_TYPE) {
        return response;
    }
    if !(status.is_client_error() || status.is_server_error()) {
        let (mut parts, body) = response.into_parts();
        if content_type.starts_with("application/json") {
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        }
        return Response::from_parts(parts, body);
    }
    let (parts, body_in) = response.into_parts();
    // Our error bodies are small; anything larger is not one of them.
    let bytes = axum::body::to_bytes(body_in, 64 * 1024)
        .await
        .unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(|c| c.as_str())
        .unwrap_or_default();
    let mut detail = error
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    if let Some(fields) = error
        .and_then(|e| e.get("details"))
        .and_then(|d| d.as_array())
    {
        for field in fields {
            if let (Some(name), Some(message)) = (
                field.get("field").and_then(|f| f.as_str()),
                field.get("message").and_then(|m| m.as_str()),
            ) {
                detail.push_str(&format!("; {name}: {message}"));
            }
        }
    }
    let scim_type = match status {
        StatusCode::BAD_REQUEST => scim_type_of(code).or(Some("invalidValue")),
        StatusCode::CONFLICT => Some("uniqueness"),
        _ => scim_type_of(code),
    };
    let mut out = body(status, scim_type, &detail);
    *out.extensions_mut() = parts.extensions;
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
