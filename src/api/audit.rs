use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::extract::{AppState, Auth, Meta, QueryParams};
use super::pagination::{self, PageBody};
use crate::domain::audit::Outcome;
use crate::error::FieldError;
use crate::service::audit;
use crate::store::audit_log::AuditFilter;
use crate::AppError;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/enterprise/audit-log", get(list))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    actor_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

async fn list(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let mut errors = Vec::new();
    let limit = pagination::limit(query.limit, &mut errors);
    let before = pagination::cursor(query.cursor.as_deref(), &mut errors);
    let since = pagination::time("since", query.since.as_deref(), &mut errors);
    let until = pagination::time("until", query.until.as_deref(), &mut errors);
    let outcome = query.outcome.as_deref().and_then(|o| {
        let parsed = serde_json::from_value::<Outcome>(json!(o)).ok();
        if parsed.is_none() {
            errors.push(FieldError::new(
                "outcome",
                "invalid_value",
                "outcome must be success, failure or denied",
            ));
        }
        parsed
    });
    pagination::finish(errors)?;
    let filter = AuditFilter {
        action: query.action,
        outcome,
        actor_id: query.actor_id,
        since,
        until,
    };
    let page = audit::list(&svc, &admin, &meta, filter, before, limit).await?;
    Ok(Json(PageBody {
        data: page.entries,
        next_cursor: page.next_cursor,
    }))
}
