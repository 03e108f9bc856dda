//! `AppError` → HTTP: one JSON shape, `{"error": {"code", "message", "details"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::rate_limit_headers;
use crate::error::retry_after_secs;
use crate::AppError;

pub fn status_of(error: &AppError) -> StatusCode {
    match error {
        AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
        AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
        AppError::NotFound { .. } => StatusCode::NOT_FOUND,
        AppError::Conflict { .. } | AppError::EnterpriseRequired(_) => StatusCode::CONFLICT,
        AppError::PayloadTooLarge { .. } | AppError::TooManyRows { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Unavailable(_) | AppError::StorageFull(_) | AppError::QueryBudgetSpent => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable: `validation_failed`, `not_found`, `rate_limited`, …
    pub code: String,
    /// For people; names the field or row at fault.
    pub message: String,
    /// `validation_failed`: `{"fields": [{"field", "code", "message"}]}`; other codes name what helps (`limit_bytes`, `field`, …) or are null.
    pub details: Value,
}

pub fn error_body(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message: message.to_string(),
            details,
        },
    };
    (status, Json(body)).into_response()
}

fn public_message(error: &AppError) -> String {
    match error {
        AppError::BadRequest { message, .. }
        | AppError::Unauthenticated { message, .. }
        | AppError::Forbidden { message, .. }
        | AppError::Conflict { message, .. } => message.clone(),
        AppError::Validation(fields) => match fields.as_slice() {
            [one] => one.message.clone(),
            many => format!("{} fields are invalid", many.len()),
        },
        AppError::NotFound { resource } => format!("No such {resource}"),
        AppError::EnterpriseRequired(_) => "This email and password open accounts in several \
            enterprises: send the same request again with enterprise_id set to one of details.enterprises"
            .into(),
        AppError::PayloadTooLarge { limit } => {
            format!("The request body exceeds the limit of {limit} bytes")
        }
        AppError::TooManyRows { limit } => {
            format!("The request has more than {limit} rows (imports.max_rows)")
        }
        AppError::UnsupportedMediaType => "Send the body as application/json".into(),
        AppError::RateLimited { retry_after, .. } => {
            format!(
                "Too many requests; retry in {} s",
                retry_after_secs(*retry_after)
            )
        }
        // The cause stays in the log; the client gets the request id header to quote.
        AppError::Unavailable(_) => "The service is temporarily unavailable; retry shortly".into(),
        AppError::StorageFull(_) => "The server's disk is full: nothing was written. Retry once \
            its operator has freed space"
            .into(),
        AppError::QueryBudgetSpent => "The query ran past its time budget (database.read_budget_ms) \
            and was stopped; narrow it (a filter on an indexed attribute, a smaller page) or retry later"
            .into(),
        AppError::Internal(_) => {
            "Internal error; quote the x-request-id header when reporting it".into()
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = error_body(status, self.code(), &public_message(&self), self.details());
        let headers = response.headers_mut();
        match &self {
            AppError::Unauthenticated { .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"enterprise-sync\""),
                );
            }
            AppError::RateLimited {
                retry_after,
                policy,
                limit,
                window_secs,
            } => {
                let secs = retry_after_secs(*retry_after);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                rate_limit_headers::insert(headers, policy, *limit, *window_secs, 0, secs);
            }
            AppError::QueryBudgetSpent => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            // Space comes back when a person frees it: minutes, not seconds.
            AppError::StorageFull(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("300"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_answers_503_storage_full_with_a_retry_in_minutes() {
        let response =
            AppError::StorageFull("database: database or disk is full".into()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "300");
        let message = public_message(&AppError::StorageFull(String::new()));
        assert!(message.contains("disk is full") && message.contains("nothing was written"));
    }
}
