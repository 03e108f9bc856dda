//! What answers when no route does, and the JSON shape for the bare errors
//! the layers below the router produce.

use axum::http::{header, StatusCode};
use axum::response::Response;

use super::error;
use crate::AppError;

pub async fn not_found() -> AppError {
    AppError::NotFound { resource: "route" }
}

/// Layers below the router (body limit, timeout, method routing) answer with
/// empty bodies; give them the same JSON error shape as everything else.
pub async fn json_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    // application/json, a +json type such as SCIM's application/scim+json, or
    // a page that tells its reader the problem in HTML.
    let is_answer = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v == "application/json" || v.ends_with("+json") || v == "text/html"
        });
    if is_answer || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "The request took too long"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This method is not allowed on this path",
        ),
        _ => ("http_error", status.canonical_reason().unwrap_or("error")),
    };
    let mut replaced = error::error_body(status, code, message, serde_json::Value::Null);
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            replaced.headers_mut().insert(name, value.clone());
        }
    }
    replaced
}
