//! The one error type of the service and API layers. `api::error` turns it into
//! `{"error": {"code", "message", "details"}}` with the matching HTTP status.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// A problem with one input field, reported to the client by name.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// An enterprise whose account a sign-in's email and password both matched.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct EnterpriseChoice {
    pub id: String,
    pub company_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("malformed request: {message}")]
    BadRequest { code: &'static str, message: String },
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("authentication required")]
    Unauthenticated { code: &'static str, message: String },
    #[error("forbidden: {message}")]
    Forbidden { code: &'static str, message: String },
    /// Also the answer for another enterprise's objects, so ids leak nothing.
    #[error("{resource} not found")]
    NotFound { resource: &'static str },
    #[error("conflict: {message}")]
    Conflict {
        code: &'static str,
        field: Option<&'static str>,
        message: String,
    },
    /// The email and password open accounts in several enterprises: the
    /// person names one (only those whose password matched are listed).
    #[error("choose an enterprise")]
    EnterpriseRequired(Vec<EnterpriseChoice>),
    #[error("request body too large")]
    PayloadTooLarge { limit: usize },
    #[error("too many rows")]
    TooManyRows { limit: usize },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("rate limited")]
    RateLimited {
        retry_after: Duration,
        policy: &'static str,
        limit: u32,
        window_secs: u64,
    },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// SQLite found the disk full (the database's, or its temporary files'):
    /// the transaction rolled back, nothing was written.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// A read stopped at its time budget (`database.read_budget_ms`).
    #[error("the query ran past its time budget")]
    QueryBudgetSpent,
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn unauthenticated() -> Self {
        AppError::Unauthenticated {
            code: "unauthorized",
            message: "Missing or invalid credentials".into(),
        }
    }

    pub fn invalid_credentials() -> Self {
        AppError::Unauthenticated {
            code: "invalid_credentials",
            message: "Invalid email or password".into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn field(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError::new(field, code, message)])
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }

    /// Machine-readable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. } => code,
            AppError::Validation(_) => "validation_failed",
            AppError::Unauthenticated { code, .. } => code,
            AppError::Forbidden { code, .. } => code,
            AppError::NotFound { .. } => "not_found",
            AppError::Conflict { code, .. } => code,
            AppError::EnterpriseRequired(_) => "enterprise_required",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::TooManyRows { .. } => "too_many_rows",
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable(_) => "unavailable",
            AppError::StorageFull(_) => "storage_full",
            AppError::QueryBudgetSpent => "query_budget_exceeded",
            AppError::Internal(_) => "internal_error",
        }
    }

    pub fn details(&self) -> Value {
        match self {
            AppError::Validation(fields) => serde_json::json!({ "fields": fields }),
            AppError::Conflict {
                field: Some(field), ..
            } => serde_json::json!({ "field": field }),
            AppError::EnterpriseRequired(enterprises) => {
                serde_json::json!({ "enterprises": enterprises })
            }
            AppError::PayloadTooLarge { limit } => serde_json::json!({ "limit_bytes": limit }),
            AppError::TooManyRows { limit } => serde_json::json!({ "limit_rows": limit }),
            AppError::RateLimited {
                retry_after,
                policy,
                limit,
                window_secs,
            } => serde_json::json!({
                "retry_after_seconds": retry_after_secs(*retry_after),
                "policy": policy,
                "limit": limit,
                "window_seconds": window_secs,
            }),
            _ => Value::Null,
        }
    }
}

/// `Retry-After` is whole seconds (RFC 9110); never tell a client to retry at once.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.as_secs() == 0))
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            AppError::StorageFull(format!("database: {e}"))
        } else {
            AppError::Internal(format!("database: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(600)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
