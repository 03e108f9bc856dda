//! Sync runs: the filtered list, a run's page, its errors as CSV.

use super::*;

/// Runs shown per page.
const RUNS_PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub struct RunsQuery {
    status: Option<String>,
    operation: Option<String>,
    sync_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
}

pub async fn runs(
    State(svc): State<AppState>,
    DashboardAdmin { user, .. }: DashboardAdmin,
    headers: HeaderMap,
    Query(query): Query<RunsQuery>,
    uri: Uri,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    let pick = |value: &Option<String>, allowed: &[&str]| {
        value
            .as_deref()
            .filter(|v| allowed.contains(v))
            .map(str::to_string)
    };
    let status = pick(&query.status, &["success", "partial", "failed"]);
    // The API's operation filter: an exact name, such as those offered.
    let operation = query
        .operation
        .as_deref()
        .map(str::trim)
        .filter(|o| {
            !o.is_empty() && o.len() <= 64 && o.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .map(str::to_string);
    let sync_type = pick(&query.sync_type, &["api", "file", "scim"]);
    let since = day_start(query.since.as_deref(), 0);
    let until = day_start(query.until.as_deref(), 1);
    let problem = (since.is_err() || until.is_err())
        .then(|| crate::web::i18n::word(language, "invalid_date"));
    let filter = crate::store::sync_logs::SyncLogFilter {
        operation: operation.clone(),
        status: status.clone(),
        sync_type: sync_type.clone(),
        since: since.unwrap_or_default(),
        until: until.unwrap_or_default(),
        resource_types: None,
    };
    let mut found =
        crate::service::sync_logs::runs(&svc, &ctx, filter, query.before, RUNS_PAGE + 1).await?;
    let older = (found.len() > RUNS_PAGE).then(|| {
        found.truncate(RUNS_PAGE);
        let last = found.last().map(|r| r.seq).unwrap_or_default();
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("status", status.as_deref()),
            ("operation", operation.as_deref()),
            ("sync_type", sync_type.as_deref()),
            ("since", query.since.as_deref()),
            ("until", query.until.as_deref()),
        ] {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                link.append_pair(name, value);
            }
        }
        link.append_pair("before", &last.to_string());
        format!("/runs?{}", link.finish())
    });
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "runs", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "runs.html",
        &frame,
        json!({
            "runs": found,
            "older": older,
            "problem": problem,
            "operations": crate::domain::import::SyncOperation::ALL,
            "filter": {
                "operation": operation,
                "status": status,
                "sync_type": sync_type,
                "since_date": query.since,
                "until_date": query.until,
            },
        }),
    ))
}

/// The run `id` of the admin's enterprise, or the page to answer instead.
async fn run_of(
    svc: &Services,
    admin: DashboardAdmin,
    id: String,
    path: &str,
) -> Result<Result<(WebUser, crate::store::sync_logs::SyncLog), Response>, AppError> {
    let DashboardAdmin { user, language, .. } = admin;
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    match crate::service::sync_logs::run(svc, (&ctx, crate::service::sync_logs::SyncView::ALL), id)
        .await
    {
        Ok(run) => Ok(Ok((user, run))),
        Err(AppError::NotFound { .. }) => Ok(Err(message(
            StatusCode::NOT_FOUND,
            language,
            path,
            Some(&user),
            "not_found",
        ))),
        Err(other) => Err(other),
    }
}

pub async fn run(
    State(svc): State<AppState>,
    admin: DashboardAdmin,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    let (user, run) = match run_of(&svc, admin, id, uri.path()).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let errors = run.details["errors"].clone();
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language(&headers), "run", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "run.html",
        &frame,
        json!({ "run": run, "errors": errors }),
    ))
}

/// The run's row errors as CSV, cells that a spreadsheet would run neutralised.
pub async fn run_errors_csv(
    State(svc): State<AppState>,
    admin: DashboardAdmin,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    use crate::domain::spreadsheet::safe_cell;
    let (_, run) = match run_of(&svc, admin, id, uri.path()).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) => safe_cell(s),
        serde_json::Value::Null => String::new(),
        other => safe_cell(&other.to_string()),
    };
    writer
        .write_record(["row", "key", "field", "code", "message"])
        .map_err(AppError::internal)?;
    for error in run.details["errors"].as_array().into_iter().flatten() {
        writer
            .write_record(["row", "key", "field", "code", "message"].map(|name| text(&error[name])))
            .map_err(AppError::internal)?;
    }
    let body = writer.into_inner().map_err(AppError::internal)?;
    let disposition = format!("attachment; filename=\"run-{}-errors.csv\"", run.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
