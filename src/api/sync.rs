use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::ErrorBody;
use crate::service::import::ChangeEvent;
use crate::service::sync_status::SyncStatus;
use crate::store::sync_logs::SyncLog;

use super::pagination::{self, PageBody};
use crate::domain::import::{RecordOperation, SyncOperation, SYNC_STATUSES, SYNC_TYPES};
use crate::error::FieldError;
use crate::http::extract::{AppState, Auth, QueryParams};
use crate::service::sync_logs::SyncView;
use crate::service::{sync_logs, sync_status};
use crate::store::sync_logs::SyncLogFilter;
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(logs))
        .routes(routes!(run))
        .routes(routes!(run_changes))
}

#[utoipa::path(
    get,
    operation_id = "getSyncStatus",
    path = "/api/enterprise/sync-status",
    tag = "sync",
    security(("api_key" = ["sync:read"]), ("api_key" = ["users:read"]), ("api_key" = ["users:write"]), ("api_key" = ["stores:read"]), ("api_key" = ["stores:write"]), ("bearer" = [])),
    responses((status = 200, description = "Counts, seats, the last runs and the drop folder", body = SyncStatus))
)]
async fn status(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    let (ctx, view) = SyncView::of(&principal)?;
    Ok(Json(sync_status::status(&svc, &ctx, view).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^([0-9]{1,18}(\\.[0-9]{1,9})?)?$")]
    cursor: Option<String>,
    /// `bulk_user_import`, `bulk_store_import`, `file_import`, `scim_user_create`,
    /// `scim_user_replace`, `scim_user_patch`, `scim_user_delete`, `scim_group_create`,
    /// `scim_group_replace`, `scim_group_patch`, `scim_group_delete`, or a per-record entry
    /// (`user_created`, `user_updated`, `user_deactivated`, `store_created`,
    /// `store_updated`, `store_deactivated`); another value is 422.
    #[param(
        pattern = "^(bulk_user_import|bulk_store_import|file_import|scim_user_create|scim_user_replace|scim_user_patch|scim_user_delete|scim_group_create|scim_group_replace|scim_group_patch|scim_group_delete|user_created|user_updated|user_deactivated|store_created|store_updated|store_deactivated)$"
    )]
    operation: Option<String>,
    /// `success`, `partial` or `failed`.
    #[param(pattern = "^(success|partial|failed)$")]
    status: Option<String>,
    /// `api`, `file` or `scim`.
    #[param(pattern = "^(api|file|scim)$")]
    sync_type: Option<String>,
    /// RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

/// Import runs, newest first.
#[utoipa::path(
    get,
    operation_id = "listSyncLogs",
    path = "/api/enterprise/sync-logs",
    tag = "sync",
    security(("api_key" = ["sync:read"]), ("api_key" = ["users:read"]), ("api_key" = ["users:write"]), ("api_key" = ["stores:read"]), ("api_key" = ["stores:write"]), ("bearer" = [])),
    params(LogQuery),
    responses(
        (status = 200, description = "A page of runs", body = PageBody<SyncLog>),
        (status = 422, description = "A filter is invalid", body = ErrorBody),
    )
)]
async fn logs(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<LogQuery>,
) -> Result<impl IntoResponse, AppError> {
    let (ctx, view) = SyncView::of(&principal)?;
    let mut errors = Vec::new();
    let limit = pagination::limit(query.limit, &mut errors);
    let before = pagination::cursor(query.cursor.as_deref(), &mut errors);
    let since = pagination::time("since", query.since.as_deref(), &mut errors);
    let until = pagination::time("until", query.until.as_deref(), &mut errors);
    // An unknown value would match nothing: say which ones exist instead.
    let operations: Vec<&str> = SyncOperation::ALL
        .iter()
        .map(|operation| operation.as_str())
        .chain(
            RecordOperation::ALL
                .iter()
                .map(|operation| operation.as_str()),
        )
        .collect();
    for (field, value, known) in [
        ("operation", &query.operation, &operations[..]),
        ("status", &query.status, &SYNC_STATUSES[..]),
        ("sync_type", &query.sync_type, &SYNC_TYPES[..]),
    ] {
        if let Some(value) = value {
            if !known.contains(&value.as_str()) {
                errors.push(FieldError::new(
                    field,
                    "invalid_value",
                    format!(
                        "{field} {:?} is not one of: {}",
                        crate::domain::text::clip(value, 64),
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    pagination::finish(errors)?;
    let filter = SyncLogFilter {
        operation: query.operation,
        status: query.status,
        sync_type: query.sync_type,
        since,
        until,
        resource_types: view.resource_types(),
    };
    let page = sync_logs::logs(&svc, &ctx, filter, before, limit).await?;
    Ok(Json(PageBody {
        data: page.logs,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get,
    operation_id = "getSyncRun",
    path = "/api/enterprise/sync-logs/{id}",
    tag = "sync",
    security(("api_key" = ["sync:read"]), ("api_key" = ["users:read"]), ("api_key" = ["users:write"]), ("api_key" = ["stores:read"]), ("api_key" = ["stores:write"]), ("bearer" = [])),
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run with its counts and row errors", body = SyncLog),
        (status = 404, description = "No such run in this enterprise", body = ErrorBody),
    )
)]
async fn run(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let (ctx, view) = SyncView::of(&principal)?;
    Ok(Json(sync_logs::run(&svc, (&ctx, view), id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^([0-9]{1,9})?$")]
    cursor: Option<String>,
}

/// What a run created, updated and deactivated, in the order it applied them.
#[utoipa::path(
    get,
    operation_id = "listSyncRunChanges",
    path = "/api/enterprise/sync-logs/{id}/changes",
    tag = "sync",
    security(("api_key" = ["sync:read"]), ("api_key" = ["users:read"]), ("api_key" = ["users:write"]), ("api_key" = ["stores:read"]), ("api_key" = ["stores:write"]), ("bearer" = [])),
    params(("id" = String, Path, description = "The run's id"), PageQuery),
    responses(
        (status = 200, description = "A page of change events", body = PageBody<ChangeEvent>),
        (status = 404, description = "No such run in this enterprise", body = ErrorBody),
    )
)]
async fn run_changes(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<impl IntoResponse, AppError> {
    let (ctx, view) = SyncView::of(&principal)?;
    let mut errors = Vec::new();
    let limit = pagination::limit(query.limit, &mut errors);
    let from = pagination::cursor(query.cursor.as_deref(), &mut errors);
    pagination::finish(errors)?;
    let page = sync_logs::run_changes(&svc, (&ctx, view), id, from, limit).await?;
    Ok(Json(PageBody {
        data: page.changes,
        next_cursor: page.next_cursor,
    }))
}
