//! One claimed file, from `processing/` to `archive/` or `failed/`: checked,
//! hashed, read, imported through the engine (which records the file as applied
//! in the import's own transaction), then reported in `results/`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Utc};
use serde_json::json;

use super::claim::{self, Refusal};
use crate::domain::import::{ImportReport, ImportSource, NotAppliedCode, RowError, SourceKind};
use crate::domain::{text, FileState};
use crate::dropfile::formats::Kind;
use crate::dropfile::layout::Folders;
use crate::dropfile::settings::DropSettings;
use crate::service::import;
use crate::service::Services;
use crate::store;
use crate::AppError;

use crate::service::drop_files;
pub use crate::service::drop_files::{import_records, FileImport, OPERATION};

/// A file in `processing/` with its `drop_files` row.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub folders: Folders,
    pub id: String,
    pub stored_name: String,
    pub display_name: String,
}

/// How a file ended, for its row and its report.
struct Ending {
    state: FileState,
    reason: Option<String>,
    kind: Option<Kind>,
    sha256: Option<String>,
    encoding: Option<&'static str>,
    report: Option<ImportReport>,
    row_count: Option<usize>,
    full_export: bool,
}

impl Ending {
    fn refused(reason: String) -> Ending {
        Ending {
            state: FileState::Refused,
            reason: Some(reason),
            kind: None,
            sha256: None,
            encoding: None,
            report: None,
            row_count: None,
            full_export: false,
        }
    }
}

fn archive_dir(folders: &Folders, now: DateTime<Utc>) -> PathBuf {
    folders
        .archive
        .join(format!("{:04}", now.year()))
        .join(format!("{:02}", now.month()))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Internal(format!("file task: {e}")))
}

/// Runs a claimed file to its end. Errors are the service's own (database,
/// disk); a bad file is an ending, not an error.
pub async fn process(svc: &Services, file: Claimed) -> Result<(), AppError> {
    let path = file.folders.processing.join(&file.stored_name);
    let enterprise = file.folders.enterprise;
    let settings = crate::service::drop_config::settings_of(svc, enterprise).await?;
    let kind = Kind::of(&file.display_name, &svc.config.dropdir);
    let opened = drop_files::open_file(svc, path, (kind, &file.display_name), &settings).await?;
    let opened = match opened {
        Ok(opened) => opened,
        Err(refusal) => return finish(svc, &file, refused(refusal)).await,
    };
    if let Some(ending) = duplicate(svc, enterprise, &opened.sha256).await? {
        return finish(svc, &file, ending).await;
    }
    let Some(kind) = kind else {
        let config = &svc.config.dropdir;
        let mut ending = Ending::refused(format!(
            "the name must start with users or stores, which says what the file holds \
             (configured prefixes: users {:?}, stores {:?})",
            config.users_file_prefixes, config.stores_file_prefixes
        ));
        ending.state = FileState::Failed;
        ending.sha256 = Some(opened.sha256);
        return finish(svc, &file, ending).await;
    };
    let ending = import_file(svc, settings, &file, kind, opened).await?;
    finish(svc, &file, ending).await
}

/// The ending of a file whose content was applied already, if it was.
async fn duplicate(
    svc: &Services,
    enterprise: crate::domain::EnterpriseId,
    sha256: &str,
) -> Result<Option<Ending>, AppError> {
    let hash = sha256.to_string();
    let earlier = svc
        .db
        .read(move |conn| {
            store::drop_files::applied_with_hash(conn, enterprise, &hash).map_err(AppError::from)
        })
        .await?;
    Ok(earlier.map(|earlier| Ending {
        state: FileState::Duplicate,
        reason: Some(format!(
            "the same content was applied already (file {earlier})"
        )),
        kind: None,
        sha256: Some(sha256.to_string()),
        encoding: None,
        report: None,
        row_count: None,
        full_export: false,
    }))
}

/// A report's file state: applied, held by the guard, or failed whole.
fn state_of(report: &ImportReport) -> (FileState, Option<String>) {
    match &report.not_applied {
        None => (FileState::Applied, None),
        Some(n) if n.code == NotAppliedCode::FullExportHeld => {
            (FileState::Held, Some(n.message.clone()))
        }
        Some(n) => (FileState::Failed, Some(n.message.clone())),
    }
}

fn file_source(file: &Claimed) -> ImportSource {
    ImportSource {
        kind: SourceKind::File,
        initiated_by: format!("file:{}", file.display_name),
    }
}

fn file_details(
    file: &Claimed,
    sha256: &str,
    encoding: &str,
    full_export: bool,
) -> serde_json::Map<String, serde_json::Value> {
    let mut details = serde_json::Map::new();
    details.insert("file".into(), json!(file.display_name));
    details.insert("file_id".into(), json!(file.id));
    details.insert("sha256".into(), json!(sha256));
    details.insert("encoding".into(), json!(encoding));
    details.insert("full_export".into(), json!(full_export));
    details
}

fn applied_facts(
    svc: &Services,
    kind: Kind,
    sha256: &str,
    encoding: &'static str,
    full_export: bool,
) -> AppliedFacts {
    AppliedFacts {
        kind,
        sha256: sha256.to_string(),
        encoding,
        full_export,
        at: svc.clock.now(),
    }
}

fn refused(refusal: Refusal) -> Ending {
    Ending::refused(format!("refused: {refusal}"))
}

/// The hook that marks the file applied inside its import's transaction.
fn mark_applied(file: &Claimed, outcome: AppliedFacts) -> import::Finish {
    let (id, stored_name) = (file.id.clone(), file.stored_name.clone());
    Box::new(move |conn, report| {
        store::drop_files::finish(
            conn,
            &id,
            &store::drop_files::Outcome {
                state: FileState::Applied,
                kind: Some(outcome.kind.as_str()),
                sha256: Some(&outcome.sha256),
                encoding: Some(outcome.encoding),
                reason: None,
                sync_log_id: report.sync_log_id.as_deref(),
                stored_name: &stored_name,
                row_count: Some(report.total_processed),
                full_export: outcome.full_export,
                finished_at: outcome.at,
            },
        )?;
        Ok(())
    })
}

struct AppliedFacts {
    kind: Kind,
    sha256: String,
    encoding: &'static str,
    full_export: bool,
    at: DateTime<Utc>,
}

/// The guard settings when the file is a full export (a users file the
/// profile or its name declares so), with the last full export's size and age
/// and this file's approval.
async fn full_export_of(
    svc: &Services,
    settings: &DropSettings,
    file: &Claimed,
    kind: Kind,
) -> Result<Option<import::FullExport>, AppError> {
    if kind != Kind::Users || !settings.is_full_export(&file.display_name) {
        return Ok(None);
    }
    let (enterprise, id) = (file.folders.enterprise, file.id.clone());
    let (previous_rows, previous_written, this) = svc
        .db
        .read(move |conn| {
            let previous = store::drop_files::last_full_export_rows(conn, enterprise)?;
            let written = store::drop_files::last_full_export_modified_at(conn, enterprise)?;
            let this = store::drop_files::get(conn, &id)?;
            Ok::<_, AppError>((previous, written, this))
        })
        .await?;
    let approved = this.as_ref().is_some_and(|f| f.approved_by.is_some());
    let written = this
        .and_then(|f| f.file_modified_at)
        .as_deref()
        .and_then(store::parse_ts);
    let stale = match (written, previous_written) {
        (Some(this), Some(last)) if this < last => Some(format!(
            "this full export was written at {}, before the last applied one ({})",
            store::ts(this),
            store::ts(last)
        )),
        _ => None,
    };
    Ok(Some(import::FullExport {
        max_deactivate_percent: settings.max_deactivate_percent,
        max_deactivate_count: settings.max_deactivate_count,
        previous_rows: previous_rows.and_then(|n| usize::try_from(n).ok()),
        approved,
        stale,
    }))
}

/// Imports a claimed file's content, ending as applied, held or failed.
async fn import_file(
    svc: &Services,
    settings: DropSettings,
    file: &Claimed,
    kind: Kind,
    opened: drop_files::OpenedFile,
) -> Result<Ending, AppError> {
    let (sha256, encoding) = (opened.sha256.clone(), opened.encoding);
    let full_export = full_export_of(svc, &settings, file, kind).await?;
    let is_full = full_export.is_some();
    let ending = |state: FileState, reason: Option<String>, report, rows| Ending {
        state,
        reason,
        kind: Some(kind),
        sha256: Some(sha256.clone()),
        encoding: Some(encoding),
        report,
        row_count: rows,
        full_export: is_full,
    };
    let hook = mark_applied(file, applied_facts(svc, kind, &sha256, encoding, is_full));
    let run = drop_files::FileRun {
        enterprise: file.folders.enterprise,
        kind,
        name: file.display_name.clone(),
        source: file_source(file),
        details: file_details(file, &sha256, encoding, is_full),
        settings,
        mode: None,
        dry_run: false,
        full_export,
        finish: Some(hook),
    };
    match drop_files::import_file(svc, opened, run).await {
        Ok(drop_files::FileOutcome::Ran { report, rows }) => {
            let rows = rows.or(Some(report.total_processed));
            let (state, reason) = state_of(&report);
            Ok(ending(state, reason, Some(report), rows))
        }
        Ok(drop_files::FileOutcome::Unreadable { reason, rows }) => {
            Ok(ending(FileState::Failed, Some(reason), None, rows))
        }
        Err(e) if waits_for_the_service(&e) => Err(e),
        Err(other) => Ok(ending(
            FileState::Failed,
            Some(other.to_string()),
            None,
            None,
        )),
    }
}

/// Whether an import's error is the service's own trouble — the database
/// closing or failing, its disk full — rather than the file's: the file is
/// then left for recovery, not failed (a full disk wakes it when space comes
/// back).
fn waits_for_the_service(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Unavailable(_) | AppError::StorageFull(_) | AppError::Internal(_)
    )
}

/// Moves the file where its ending says, records the ending (an applied file's
/// row is already written by its import) and writes the report for the ERP side.
async fn finish(svc: &Services, file: &Claimed, ending: Ending) -> Result<(), AppError> {
    let now = svc.clock.now();
    let target = match ending.state {
        FileState::Applied | FileState::Duplicate => archive_dir(&file.folders, now),
        FileState::Held => file.folders.held.clone(),
        _ => file.folders.failed.clone(),
    };
    if ending.state != FileState::Applied {
        let id = file.id.clone();
        let stored = file.stored_name.clone();
        let (state, kind, sha, encoding, reason) = (
            ending.state,
            ending.kind.map(Kind::as_str),
            ending.sha256.clone(),
            ending.encoding,
            ending
                .reason
                .as_deref()
                .map(|reason| text::clip(reason, text::MAX_TEXT_CHARS)),
        );
        let (row_count, full_export) = (ending.row_count, ending.full_export);
        let sync_log = ending.report.as_ref().and_then(|r| r.sync_log_id.clone());
        let (enterprise, display_name) = (file.folders.enterprise, file.display_name.to_string());
        svc.db
            .write(move |txn| {
                // A run tells of itself; a file that failed before any run is told here.
                if state == FileState::Failed && sync_log.is_none() {
                    crate::service::notifications::file_failed(
                        txn,
                        &crate::service::notifications::FileFailure {
                            enterprise,
                            file_id: &id,
                            file: &display_name,
                            reason: reason
                                .as_deref()
                                .unwrap_or("the file could not be imported"),
                        },
                        now,
                    )?;
                }
                store::drop_files::finish(
                    txn,
                    &id,
                    &store::drop_files::Outcome {
                        state,
                        kind,
                        sha256: sha.as_deref(),
                        encoding,
                        reason: reason.as_deref(),
                        sync_log_id: sync_log.as_deref(),
                        stored_name: &stored,
                        row_count,
                        full_export,
                        finished_at: now,
                    },
                )
                .map_err(AppError::from)
            })
            .await?;
        svc.outbound.wake_webhooks();
        svc.outbound.wake_email();
    }
    // The row first: a crash before the move leaves a file that recovery
    // moves where its row says.
    let (from, name, to) = (
        file.folders.processing.clone(),
        file.stored_name.clone(),
        target,
    );
    blocking(move || claim::move_file(&from, &name, &to))
        .await?
        .map_err(|e| AppError::Internal(format!("moving a processed file: {e}")))?;
    let results = file.folders.results.clone();
    let report = report_json(file, &ending);
    // Only a file with row errors gets an errors CSV.
    let errors = ending
        .report
        .as_ref()
        .filter(|r| !r.errors.is_empty())
        .map(|r| errors_csv(&r.errors))
        .unwrap_or_default();
    let base = format!(
        "{}.{}",
        crate::dropfile::layout::safe_name(file.display_name.as_ref()),
        file.id
    );
    blocking(move || write_results(&results, &base, &report, &errors))
        .await?
        .map_err(|e| AppError::Internal(format!("writing a result report: {e}")))?;
    tracing::info!(
        file = %file.display_name,
        id = %file.id,
        state = ending.state.as_str(),
        reason = %text::clip(ending.reason.as_deref().unwrap_or(""), text::MAX_TEXT_CHARS),
        "drop file done"
    );
    Ok(())
}

/// The report of a file whose import committed before a crash stopped it
/// on the way to its report: rebuilt from its row and its run, written unless
/// the crash came after it was.
pub async fn report_recovered(
    svc: &Services,
    file: &Claimed,
    row: &store::drop_files::DropFile,
) -> Result<(), AppError> {
    let base = format!(
        "{}.{}",
        crate::dropfile::layout::safe_name(file.display_name.as_ref()),
        file.id
    );
    let results = file.folders.results.clone();
    let name = format!("{base}.result.json");
    if blocking(move || results.join(name).exists()).await? {
        return Ok(());
    }
    let run = match row.sync_log_id.clone() {
        Some(id) => {
            let enterprise = file.folders.enterprise;
            svc.db
                .read(move |conn| {
                    store::sync_logs::get(conn, enterprise, &id).map_err(AppError::from)
                })
                .await?
        }
        None => None,
    };
    let report = run.map(|run| {
        let count = |key: &str| {
            run.details[key]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0)
        };
        ImportReport {
            success: run.status == "success",
            total_processed: count("total_processed"),
            created: count("created"),
            updated: count("updated"),
            unchanged: count("unchanged"),
            deactivated: count("deactivated"),
            failed: count("failed"),
            warnings: run.details["warnings"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|w| w.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            sync_log_id: Some(run.id.clone()),
            ..ImportReport::default()
        }
    });
    let ending = Ending {
        state: if row.state == FileState::Duplicate {
            FileState::Duplicate
        } else {
            FileState::Applied
        },
        reason: row.reason.clone(),
        kind: row.kind.as_deref().and_then(Kind::parse),
        sha256: row.sha256.clone(),
        encoding: row
            .encoding
            .as_deref()
            .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
            .map(|encoding| encoding.name()),
        report,
        row_count: row.row_count.and_then(|n| usize::try_from(n).ok()),
        full_export: row.full_export,
    };
    let report = report_json(file, &ending);
    let results = file.folders.results.clone();
    // Row errors stay in the run's sync log: a crash lost the full list.
    blocking(move || write_results(&results, &base, &report, &[]))
        .await?
        .map_err(|e| AppError::Internal(format!("writing a result report: {e}")))?;
    tracing::info!(file = %file.display_name, id = %file.id, "result report written after a restart");
    Ok(())
}

fn report_json(file: &Claimed, ending: &Ending) -> String {
    let report = ending.report.as_ref();
    let has_errors_file = report.is_some_and(|r| !r.errors.is_empty());
    let mut json = json!({
        "file": file.display_name,
        "id": file.id,
        "state": ending.state,
        "reason": ending.reason.as_deref().map(|reason| text::clip(reason, text::MAX_TEXT_CHARS)),
        "kind": ending.kind.map(Kind::as_str),
        "sha256": ending.sha256,
        "encoding": ending.encoding,
        "total_processed": report.map(|r| r.total_processed),
        "created": report.map(|r| r.created),
        "updated": report.map(|r| r.updated),
        "unchanged": report.map(|r| r.unchanged),
        "deactivated": report.map(|r| r.deactivated),
        "failed": report.map(|r| r.failed),
        "warnings": report.map(|r| text::bounded_warnings(&r.warnings)),
        "sync_log_id": report.and_then(|r| r.sync_log_id.clone()),
    });
    // Only where the errors CSV is written beside this report.
    if has_errors_file {
        json["errors"] = json!(
            "see the .errors.csv file beside this one (record 1 is the first line after the header)"
        );
    }
    json.to_string()
}

/// A spreadsheet opens this: a cell starting with = + - @ would be a formula.
fn errors_csv(errors: &[RowError]) -> Vec<u8> {
    use crate::domain::spreadsheet::safe_cell as cell;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(["record", "key", "field", "code", "message"]);
    for e in errors.iter().map(RowError::bounded) {
        let _ = writer.write_record([
            e.row.to_string(),
            cell(e.key.as_deref().unwrap_or("")),
            cell(e.field.as_deref().unwrap_or("")),
            e.code.as_str().to_string(),
            cell(&e.message),
        ]);
    }
    writer.into_inner().unwrap_or_default()
}

fn write_results(dir: &Path, base: &str, report: &str, errors: &[u8]) -> std::io::Result<()> {
    write_atomically(dir, &format!("{base}.result.json"), report.as_bytes())?;
    if !errors.is_empty() {
        write_atomically(dir, &format!("{base}.errors.csv"), errors)?;
    }
    claim::sync_dir(dir)
}

/// Temp name then rename: the ERP side never reads half a report.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temp = dir.join(format!(".{name}.tmp"));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&temp)?;
    out.write_all(bytes)?;
    out.sync_all()?;
    std::fs::rename(&temp, dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_s_own_trouble_leaves_the_file_for_later_and_the_file_s_fails_it() {
        for own in [
            AppError::StorageFull("database or disk is full".into()),
            AppError::Unavailable("database is closed".into()),
            AppError::Internal("database: disk I/O error".into()),
        ] {
            assert!(waits_for_the_service(&own), "{own:?}");
        }
        for the_file_s in [
            AppError::BadRequest {
                code: "unreadable_source",
                message: "not a CSV".into(),
            },
            AppError::TooManyRows { limit: 100_000 },
        ] {
            assert!(!waits_for_the_service(&the_file_s), "{the_file_s:?}");
        }
    }
}
