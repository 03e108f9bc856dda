use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::extract::{AppState, Auth, QueryParams};
use super::pagination::{self, PageBody};
use crate::domain::Scope;
use crate::service::{sync_logs, sync_status};
use crate::store::sync_logs::SyncLogFilter;
use crate::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/enterprise/sync-status", get(status))
        .route("/api/enterprise/sync-logs", get(logs))
        .route("/api/enterprise/sync-logs/{id}", get(run))
        .route("/api/enterprise/sync-logs/{id}/changes", get(run_changes))
}

async fn status(
    State(svc): State<AppState>,
    Auth(principal): Auth,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    Ok(Json(sync_status::status(&svc, &ctx).await?))
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    operation: Option<String>,
    status: Option<String>,
    sync_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

async fn logs(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<LogQuery>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    let mut errors = Vec::new();
    let limit = pagination::limit(query.limit, &mut errors);
    let before = pagination::cursor(query.cursor.as_deref(), &mut errors);
    let since = pagination::time("since", query.since.as_deref(), &mut errors);
    let until = pagination::time("until", query.until.as_deref(), &mut errors);
    pagination::finish(errors)?;
    let filter = SyncLogFilter {
        operation: query.operation,
        status: query.status,
        sync_type: query.sync_type,
        since,
        until,
    };
    let page = sync_logs::logs(&svc, &ctx, filter, before, limit).await?;
    Ok(Json(PageBody {
        data: page.logs,
        next_cursor: page.next_cursor,
    }))
}

async fn run(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    Ok(Json(sync_logs::run(&svc, &ctx, id).await?))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn run_changes(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::SyncRead)?;
    let mut errors = Vec::new();
    let limit = pagination::limit(query.limit, &mut errors);
    let from = pagination::cursor(query.cursor.as_deref(), &mut errors);
    pagination::finish(errors)?;
    let page = sync_logs::run_changes(&svc, &ctx, id, from, limit).await?;
    Ok(Json(PageBody {
        data: page.changes,
        next_cursor: page.next_cursor,
    }))
}
