use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{self, PageBody};
use crate::domain::audit::Outcome;
use crate::error::FieldError;
use crate::http::error::ErrorBody;
use crate::http::extract::{AppState, Auth, Meta, QueryParams};
use crate::service::audit;
use crate::store::audit_log::AuditFilter;
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^([0-9]{1,18})?$")]
    cursor: Option<String>,
    /// e.g. `api_key.generate`, `drop_config.update`.
    action: Option<String>,
    /// `success`, `failure` or `denied`.
    #[param(pattern = "^(success|failure|denied)$")]
    outcome: Option<String>,
    actor_id: Option<String>,
    /// RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

/// The enterprise's audit trail, newest first; reading it is audited too.
#[utoipa::path(
    get,
    operation_id = "listAuditLog",
    path = "/api/enterprise/audit-log",
    tag = "audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = PageBody<crate::service::audit::AuditEntryView>),
        (status = 422, description = "A filter is invalid", body = ErrorBody),
    )
)]
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
