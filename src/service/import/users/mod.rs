//! User imports. A row is matched by our `id` when it gives one (SCIM), else
//! by `external_id` when it has one, otherwise by email. `store_id` names a
//! store by our id or its external id; `manager_id` names a manager by our id,
//! external id or email, and may point at a row of the same request, in any
//! order. Import never creates or touches IT admins.
//!
//! Every source comes through the one engine (`staged/`): a request whose
//! rows the adapter holds already (a REST body, a SCIM write, a file read
//! whole) streams them into it like a file's.

use crate::domain::import::SyncOperation;
use std::borrow::Cow;

use rusqlite::Connection;

use super::staged::{self, SourceRow, StagedOutcome, StagedRequest};
use super::{check_len, cleaned, ApplyContext, Errors, ImportRequest, MAX_EXTERNAL_ID, MAX_NAME};
use crate::domain::import::{ClearFields, ImportReport, UserRecord};
use crate::domain::{email, Role, UserId};
use crate::service::Services;
use crate::AppError;

pub const OPERATION: SyncOperation = SyncOperation::BulkUserImport;

mod rows;

pub(crate) use rows::*;

/// The engine's request and rows for a request the adapter holds whole.
fn staged(
    mut request: ImportRequest<UserRecord>,
    match_in_memory_up_to: usize,
) -> (StagedRequest, staged::RowStream) {
    let rows = std::mem::take(&mut request.rows);
    let count = rows.len();
    let stream: staged::RowStream = Box::new(rows.into_iter().map(|record| {
        Ok(SourceRow {
            record,
            problems: Vec::new(),
            problems_key: None,
            ignored_fields: Vec::new(),
        })
    }));
    (streamed(request, count, match_in_memory_up_to), stream)
}

/// The engine's request for `request` (whose own rows are not read), of
/// `count` rows that come from a stream.
fn streamed(
    request: ImportRequest<UserRecord>,
    count: usize,
    match_in_memory_up_to: usize,
) -> StagedRequest {
    let ImportRequest {
        enterprise,
        source,
        mode,
        rows: _,
        dry_run,
        invite_new_users,
        warnings,
        row_errors,
        details,
        full_export,
        all_or_nothing,
        numbering,
    } = request;
    StagedRequest {
        enterprise,
        source,
        mode,
        warnings,
        details,
        full_export,
        all_or_nothing,
        dry_run,
        max_rows: count,
        match_in_memory_up_to,
        numbering,
        row_errors,
        invite_new_users,
        expected_rows: Some(count),
    }
}

/// Rows the adapter holds cannot be unreadable; should the engine say so
/// anyway, the request is refused as a bad one.
fn applied(outcome: StagedOutcome) -> Result<ImportReport, AppError> {
    match outcome {
        StagedOutcome::Applied(report) => Ok(report),
        StagedOutcome::Unreadable(message) => Err(AppError::BadRequest {
            code: "unreadable_rows",
            message,
        }),
    }
}

/// An import of a request body `body_bytes` long: `parse` checks the body
/// and gives the request and its rows, which the engine reads as it stages
/// them; the writer meanwhile reads what a large import needs of the
/// enterprise (see [`staged::import_users_parsing`]). The request's own
/// `rows` are not read.
pub async fn import_parsing(
    svc: &Services,
    enterprise: crate::domain::EnterpriseId,
    body_bytes: usize,
    parse: impl FnOnce() -> Result<(ImportRequest<UserRecord>, BodyRows), AppError> + Send + 'static,
) -> Result<ImportReport, AppError> {
    let match_in_memory_up_to = svc.config.imports.match_in_memory_up_to;
    let parse = move || {
        parse().map(|(request, rows)| {
            (
                streamed(request, rows.count, match_in_memory_up_to),
                rows.rows,
            )
        })
    };
    applied(staged::import_users_parsing(svc, enterprise, body_bytes, OPERATION, parse).await?)
}

/// Rows a body gives as the engine reads them, and how many there are.
pub struct BodyRows {
    pub rows: staged::RowStream,
    pub count: usize,
}

/// An import recorded under another operation (`file_import`), with `finish`
/// run in its transaction after the changes are applied and recorded.
pub async fn import_as(
    svc: &Services,
    request: ImportRequest<UserRecord>,
    operation: SyncOperation,
    finish: Option<super::Finish>,
) -> Result<ImportReport, AppError> {
    let (request, rows) = staged(request, svc.config.imports.match_in_memory_up_to);
    applied(staged::import_users(svc, request, rows, operation, finish).await?)
}

/// An import inside the caller's write transaction (SCIM), recorded under
/// `operation`; the caller commits and records the metrics.
pub(crate) fn import_in(
    txn: &Connection,
    request: ImportRequest<UserRecord>,
    operation: SyncOperation,
    context: &ApplyContext,
) -> Result<ImportReport, AppError> {
    let (request, rows) = staged(request, context.match_in_memory_up_to);
    let report = staged::import_in(txn, &request, rows, operation, None, context.now, None)?;
    if request.bulk() {
        // No one gives the writer's memory back after this caller's commit.
        crate::store::import_staging::clear_after_import(txn)?;
    }
    Ok(report)
}

/// Why a full export must not apply: any row error (a skipped row must not
/// look like a leaver), or — unless approved — more leavers than the share or
/// count allowed, an empty file, an export older than the last applied one, or
/// half the rows of the last full export.
pub(crate) fn full_export_guard(
    full: &super::FullExport,
    failed_rows: usize,
    leavers: usize,
    active_staff: usize,
    rows: usize,
) -> Result<(), crate::domain::import::NotApplied> {
    use crate::domain::import::NotApplied;
    if failed_rows > 0 {
        return Err(NotApplied {
            code: crate::domain::import::NotAppliedCode::FullExportRejected,
            message: format!(
                "a full export is applied whole or not at all, and {failed_rows} row(s) have errors"
            ),
        });
    }
    if full.approved {
        return Ok(());
    }
    let share_limit = active_staff * full.max_deactivate_percent as usize / 100;
    let hold = |message: String| NotApplied {
        code: crate::domain::import::NotAppliedCode::FullExportHeld,
        message,
    };
    if rows == 0 {
        return Err(hold(
            "an empty full export would deactivate everyone; held for an IT admin's approval"
                .into(),
        ));
    }
    if leavers > share_limit || leavers > full.max_deactivate_count as usize {
        return Err(hold(format!(
            "it would deactivate {} of {} active people, over the guard ({} % or {} people); held for an IT admin's approval",
            leavers,
            active_staff,
            full.max_deactivate_percent,
            full.max_deactivate_count
        )));
    }
    if let Some(why) = &full.stale {
        return Err(hold(format!("{why}; held for an IT admin's approval")));
    }
    if let Some(previous) = full.previous_rows {
        if rows * 2 < previous {
            return Err(hold(format!(
                "it has {rows} rows where the last full export had {previous}; held for an IT admin's approval"
            )));
        }
    }
    Ok(())
}
