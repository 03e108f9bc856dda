//! REST bulk imports: the HTTP adapter of the import engine. It reads the body
//! (size limit, content type), lets `domain::import_body` turn it into records and
//! hands them to `service::import`.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::import::{ImportMode, ImportReport, StoreRecord, UserRecord};
use crate::http::error::ErrorBody;

use crate::domain::import::{ImportSource, SourceKind};
use crate::domain::{import_body, Scope};
use crate::http::extract::{AppState, Auth, QueryParams};
use crate::service::access::Principal;
use crate::service::import::{self, ImportRequest};
use crate::AppError;

pub fn router(config: &crate::config::Config) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_stores))
        .routes(routes!(import_users))
        .layer(DefaultBodyLimit::max(config.imports.max_body_bytes))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    /// Plan and report without writing anything.
    dry_run: Option<bool>,
}

/// `POST /api/enterprise/stores/bulk-import`'s body, as `domain::import_body` reads it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct StoresImport {
    /// At most `imports.max_rows` (100,000).
    stores: Vec<StoreRecord>,
    mode: Option<ImportMode>,
}

/// `POST /api/enterprise/users/bulk-import`'s body, as `domain::import_body` reads it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UsersImport {
    /// At most `imports.max_rows` (100,000).
    users: Vec<UserRecord>,
    mode: Option<ImportMode>,
    /// New people get a one-time link to set their password.
    send_invitations: Option<bool>,
}

/// The raw body, with this route's size limit named in a 413.
async fn body(req: Request, state: &AppState) -> Result<Bytes, AppError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.ends_with("+json"));
    if !is_json {
        return Err(AppError::UnsupportedMediaType);
    }
    let limit = state.config.imports.max_body_bytes;
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge { limit }
        } else {
            AppError::BadRequest {
                code: "unreadable_body",
                message: rejection.body_text(),
            }
        }
    })?;
    Ok(bytes)
}

fn source(principal: &Principal) -> ImportSource {
    ImportSource {
        kind: SourceKind::Api,
        initiated_by: format!(
            "{}:{}",
            principal.actor().kind.as_str(),
            principal.actor().id
        ),
    }
}

/// The import request a REST body makes: its rows, as the body asks.
fn rest_request<R>(
    enterprise: crate::domain::EnterpriseId,
    source: ImportSource,
    parsed: import_body::ParsedBody<R>,
    dry_run: bool,
) -> ImportRequest<R> {
    ImportRequest {
        enterprise,
        source,
        mode: parsed.mode,
        rows: parsed.rows,
        dry_run,
        invite_new_users: parsed.send_invitations,
        warnings: parsed.warnings,
        row_errors: parsed.row_errors,
        details: Default::default(),
        full_export: None,
        all_or_nothing: false,
        numbering: Default::default(),
    }
}

/// Creates, updates or deactivates stores by `external_id`, in one
/// transaction; row errors are reported by row index and field.
#[utoipa::path(
    post,
    operation_id = "importStores",
    path = "/api/enterprise/stores/bulk-import",
    tag = "imports",
    security(("api_key" = ["stores:write"])),
    params(ImportQuery),
    request_body = StoresImport,
    responses(
        (status = 200, description = "The run's report (HTTP 200 even when rows failed: see success and errors)", body = ImportReport),
        (status = 400, description = "The body is not the expected JSON (`invalid_json`, `invalid_body`)", body = ErrorBody),
        (status = 413, description = "Over imports.max_body_bytes or imports.max_rows", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
    )
)]
async fn import_stores(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<ImportQuery>,
    req: Request,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::StoresWrite)?;
    let body = body(req, &svc).await?;
    let parsed = import_body::parse_stores(&body, svc.config.imports.max_rows)?;
    drop(body);
    let request = rest_request(
        ctx.enterprise(),
        source(&principal),
        parsed,
        query.dry_run.unwrap_or(false),
    );
    Ok(Json(import::stores::import(&svc, request).await?))
}

/// Creates, updates or deactivates people by `external_id` (else email), in
/// one transaction, checking seats, stores, managers and roles.
#[utoipa::path(
    post,
    operation_id = "importUsers",
    path = "/api/enterprise/users/bulk-import",
    tag = "imports",
    security(("api_key" = ["users:write"])),
    params(ImportQuery),
    request_body = UsersImport,
    responses(
        (status = 200, description = "The run's report (HTTP 200 even when rows failed: see success and errors)", body = ImportReport),
        (status = 400, description = "The body is not the expected JSON (`invalid_json`, `invalid_body`)", body = ErrorBody),
        (status = 413, description = "Over imports.max_body_bytes or imports.max_rows", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
    )
)]
async fn import_users(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<ImportQuery>,
    req: Request,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::UsersWrite)?;
    let body = body(req, &svc).await?;
    let enterprise = ctx.enterprise();
    let source = source(&principal);
    let max_rows = svc.config.imports.max_rows;
    let without_smtp = svc.config.email.smtp_host.is_none();
    let dry_run = query.dry_run.unwrap_or(false);
    let body_bytes = body.len();
    // Checked off the async runtime, while the writer starts on the
    // enterprise; the rows are read as the import stages them.
    let parse = move || {
        let streamed = import_body::stream_users(body, max_rows)?;
        let mut warnings = Vec::new();
        if streamed.send_invitations && without_smtp {
            warnings.push(
                "this appliance has no SMTP server configured: invitation emails wait in the outbox until one is; meanwhile an IT admin gets each link from POST /api/enterprise/users/{id}/invitation"
                    .into(),
            );
        }
        let parsed = import_body::ParsedBody {
            rows: Vec::new(),
            mode: streamed.mode,
            row_errors: Vec::new(),
            warnings,
            send_invitations: streamed.send_invitations,
        };
        let rows = import::users::BodyRows {
            rows: streamed.rows,
            count: streamed.count,
        };
        Ok((rest_request(enterprise, source, parsed, dry_run), rows))
    };
    Ok(Json(
        import::users::import_parsing(&svc, enterprise, body_bytes, parse).await?,
    ))
}
