//! REST bulk imports: the HTTP adapter of the import engine. It reads the seed's
//! bodies, turns each row into a normalised record (row-level problems become
//! row errors, unknown fields one warning) and hands them to `service::import`.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::extract::{AppState, Auth, QueryParams};
use crate::domain::import::{
    ImportMode, ImportSource, RowError, SourceKind, StoreRecord, UserRecord,
};
use crate::domain::Scope;
use crate::error::FieldError;
use crate::service::access::Principal;
use crate::service::import::{self, ImportRequest};
use crate::AppError;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/enterprise/stores/bulk-import", post(import_stores))
        .route("/api/enterprise/users/bulk-import", post(import_users))
        .layer(DefaultBodyLimit::max(state.config.imports.max_body_bytes))
}

#[derive(Debug, Deserialize)]
struct ImportQuery {
    dry_run: Option<bool>,
}

const STORE_FIELDS: [&str; 6] = [
    "name",
    "location",
    "address",
    "phone",
    "external_id",
    "active",
];
const USER_FIELDS: [&str; 7] = [
    "email",
    "name",
    "role",
    "store_id",
    "manager_id",
    "external_id",
    "active",
];
/// Fields a source may never set; a row carrying one is refused whole.
const FORBIDDEN_FIELDS: [&str; 10] = [
    "id",
    "enterprise_account_id",
    "password",
    "password_hash",
    "token_version",
    "sync_mode",
    "created_at",
    "updated_at",
    "deactivated_at",
    "gerant_id",
];

/// The body as JSON, with this route's size limit named in a 413.
async fn body(req: Request, state: &AppState) -> Result<Map<String, Value>, AppError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.ends_with("+json"));
    if !is_json {
        return Err(AppError::UnsupportedMediaType);
    }
    let limit = state.config.imports.max_body_bytes;
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|_| AppError::PayloadTooLarge { limit })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AppError::field(
            "body",
            "invalid_type",
            "the body must be a JSON object",
        )),
        Err(e) => Err(AppError::BadRequest {
            code: "invalid_json",
            message: format!("invalid JSON: {e}"),
        }),
    }
}

struct Parsed<'a> {
    rows: &'a [Value],
    mode: ImportMode,
}

fn envelope<'a>(
    body: &'a Map<String, Value>,
    list: &str,
    max_rows: usize,
) -> Result<Parsed<'a>, AppError> {
    let rows = match body.get(list) {
        Some(Value::Array(rows)) => rows,
        Some(_) => {
            return Err(AppError::field(
                list,
                "invalid_type",
                format!("{list} must be an array"),
            ))
        }
        None => {
            return Err(AppError::field(
                list,
                "required",
                format!("{list} is required"),
            ))
        }
    };
    if rows.len() > max_rows {
        return Err(AppError::TooManyRows { limit: max_rows });
    }
    let mode = match body.get("mode") {
        None | Some(Value::Null) => ImportMode::default(),
        Some(Value::String(m)) => ImportMode::parse(m).ok_or_else(|| {
            AppError::field(
                "mode",
                "invalid_value",
                "mode must be create_only, update_only or create_or_update",
            )
        })?,
        Some(_) => {
            return Err(AppError::field(
                "mode",
                "invalid_type",
                "mode must be a string",
            ))
        }
    };
    Ok(Parsed { rows, mode })
}

/// Reads one row's fields; problems become row errors, unknown fields are noted.
struct RowReader<'a> {
    row: usize,
    object: &'a Map<String, Value>,
    errors: &'a mut Vec<RowError>,
    key: Option<String>,
}

impl RowReader<'_> {
    fn text(&mut self, field: &str) -> Option<String> {
        match self.object.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            // ERPs send numeric ids and phone numbers as numbers.
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                self.fail(
                    Some(field),
                    "invalid_type",
                    format!("{field} must be a string"),
                );
                None
            }
        }
    }

    fn flag(&mut self, field: &str) -> Option<bool> {
        match self.object.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
            Some(_) => {
                self.fail(
                    Some(field),
                    "invalid_type",
                    format!("{field} must be true or false"),
                );
                None
            }
        }
    }

    fn fail(&mut self, field: Option<&str>, code: &'static str, message: String) {
        self.errors.push(RowError {
            row: self.row,
            key: self.key.clone(),
            field: field.map(str::to_string),
            code,
            message,
        });
    }
}

/// Splits raw rows into records plus row errors and the set of unknown fields.
fn read_rows<R: Default>(
    rows: &[Value],
    known: &[&str],
    mut read: impl FnMut(&mut RowReader<'_>) -> R,
) -> (Vec<R>, Vec<RowError>, Vec<String>) {
    let mut records = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut unknown = BTreeSet::new();
    for (row, value) in rows.iter().enumerate() {
        let Value::Object(object) = value else {
            errors.push(RowError {
                row,
                key: None,
                field: None,
                code: "invalid_row",
                message: "each row must be a JSON object".into(),
            });
            records.push(R::default());
            continue;
        };
        let key = ["external_id", "email", "name"].iter().find_map(|f| {
            object.get(*f).and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_number().map(|n| n.to_string()))
            })
        });
        let mut reader = RowReader {
            row,
            object,
            errors: &mut errors,
            key,
        };
        for field in object.keys() {
            if FORBIDDEN_FIELDS.contains(&field.as_str()) {
                reader.fail(
                    Some(field),
                    "forbidden_field",
                    format!("{field} cannot be set by an import"),
                );
            } else if !known.contains(&field.as_str()) {
                unknown.insert(field.clone());
            }
        }
        records.push(read(&mut reader));
    }
    let warnings = if unknown.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "ignored unknown fields: {}",
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        )]
    };
    (records, errors, warnings)
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

async fn import_stores(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<ImportQuery>,
    req: Request,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::StoresWrite)?;
    let body = body(req, &svc).await?;
    let parsed = envelope(&body, "stores", svc.config.imports.max_rows)?;
    let (rows, row_errors, warnings) = read_rows(parsed.rows, &STORE_FIELDS, |r| StoreRecord {
        name: r.text("name"),
        location: r.text("location"),
        address: r.text("address"),
        phone: r.text("phone"),
        external_id: r.text("external_id"),
        active: r.flag("active"),
    });
    let request = ImportRequest {
        enterprise: ctx.enterprise(),
        source: source(&principal),
        mode: parsed.mode,
        rows,
        dry_run: query.dry_run.unwrap_or(false),
        invite_new_users: false,
        warnings,
        row_errors,
    };
    Ok(Json(import::stores::import(&svc, request).await?))
}

async fn import_users(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<ImportQuery>,
    req: Request,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::UsersWrite)?;
    let body = body(req, &svc).await?;
    let parsed = envelope(&body, "users", svc.config.imports.max_rows)?;
    if let Some(value) = body.get("send_invitations") {
        if !value.is_boolean() && !value.is_null() {
            return Err(AppError::Validation(vec![FieldError::new(
                "send_invitations",
                "invalid_type",
                "send_invitations must be true or false",
            )]));
        }
    }
    let (rows, row_errors, mut warnings) = read_rows(parsed.rows, &USER_FIELDS, |r| UserRecord {
        email: r.text("email"),
        name: r.text("name"),
        role: r.text("role"),
        store_ref: r.text("store_id"),
        manager_ref: r.text("manager_id"),
        external_id: r.text("external_id"),
        active: r.flag("active"),
    });
    let send_invitations = body.get("send_invitations").and_then(Value::as_bool) == Some(true);
    if send_invitations {
        warnings.push(
            "invitation emails are not sent yet; an IT admin gets each link from POST /api/enterprise/users/{id}/invitation"
                .into(),
        );
    }
    let request = ImportRequest {
        enterprise: ctx.enterprise(),
        source: source(&principal),
        mode: parsed.mode,
        rows,
        dry_run: query.dry_run.unwrap_or(false),
        invite_new_users: send_invitations,
        warnings,
        row_errors,
    };
    Ok(Json(import::users::import(&svc, request).await?))
}
