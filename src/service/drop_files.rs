//! The drop file's lifecycle as the services see it: the handle to the
//! running drop directory (scan, retry, approve, wake, the claims that
//! failed), and the one way from a file to the engine: `open_file` (safe
//! open, hash, encoding, whether it streams), `import_file` (streamed into
//! the staged mode or read whole) and `import_records` (records → import
//! request → engine). The adapter (`dropdir`) watches, claims and archives;
//! the readers (`dropfile`) parse; this module is where the two meet the
//! engine.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::import::{self, ImportRequest};
use super::Services;
use crate::domain::import::{ImportMode, ImportReport, ImportSource, SyncOperation};
use crate::domain::EnterpriseId;
use crate::dropfile::formats;
use crate::dropfile::settings::DropSettings;
use crate::dropfile::Refusal;
use crate::AppError;

/// The operation a file's run is recorded as.
pub const OPERATION: SyncOperation = SyncOperation::FileImport;

/// What the services ask of the running drop directory.
pub enum DropCommand {
    /// Scan and run what is ready, then answer.
    ScanNow(oneshot::Sender<()>),
    /// Run a failed file again, then answer.
    Retry(EnterpriseId, String, oneshot::Sender<Result<(), AppError>>),
    /// Run a held file past the guard, then answer.
    Approve(
        EnterpriseId,
        String,
        String,
        oneshot::Sender<Result<(), AppError>>,
    ),
    Stop,
}

/// A file the scanner found complete in `incoming/` but could not take.
#[derive(Debug, Clone)]
pub struct ClaimProblem {
    pub reason: String,
    pub size_bytes: u64,
    pub since: chrono::DateTime<chrono::Utc>,
}

/// Per enterprise, the files waiting in `incoming/` because their claim
/// failed, by name: what the files API shows of them.
pub type ClaimProblems =
    Arc<std::sync::Mutex<HashMap<EnterpriseId, BTreeMap<String, ClaimProblem>>>>;

/// Handle to the drop-directory task, which the adapter (`dropdir`) runs:
/// the services hold it, never the adapter's own type.
#[derive(Clone)]
pub struct DropDirHandle {
    commands: mpsc::Sender<DropCommand>,
    /// Wake-ups asked for by the service (not file-system events).
    requests: mpsc::Sender<()>,
    claim_problems: ClaimProblems,
}

impl DropDirHandle {
    /// A handle and the inbox the drop-directory task reads.
    pub fn channel() -> (DropDirHandle, DropDirInbox) {
        let (commands, command_rx) = mpsc::channel(8);
        let (requests, request_rx) = mpsc::channel(1);
        let claim_problems = ClaimProblems::default();
        (
            DropDirHandle {
                commands,
                requests,
                claim_problems: claim_problems.clone(),
            },
            DropDirInbox {
                commands: command_rx,
                requests: request_rx,
                claim_problems,
            },
        )
    }

    /// Scans now and returns once every ready file has been run.
    pub async fn scan_now(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(DropCommand::ScanNow(reply))
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    /// Runs a failed file again; answers once it has run.
    pub async fn retry(&self, enterprise: EnterpriseId, id: String) -> Result<(), AppError> {
        let (reply, done) = oneshot::channel();
        self.commands
            .send(DropCommand::Retry(enterprise, id, reply))
            .await
            .map_err(|_| AppError::Unavailable("the drop directory is stopping".into()))?;
        done.await
            .map_err(|_| AppError::Unavailable("the drop directory is stopping".into()))?
    }

    /// Runs a held full export past the guard, recording who approved it;
    /// answers once it has run.
    pub async fn approve(
        &self,
        enterprise: EnterpriseId,
        id: String,
        approved_by: String,
    ) -> Result<(), AppError> {
        let (reply, done) = oneshot::channel();
        self.commands
            .send(DropCommand::Approve(enterprise, id, approved_by, reply))
            .await
            .map_err(|_| AppError::Unavailable("the drop directory is stopping".into()))?;
        done.await
            .map_err(|_| AppError::Unavailable("the drop directory is stopping".into()))?
    }

    /// Asks for a scan soon (a new enterprise's folders, a retried file).
    pub fn wake(&self) {
        let _ = self.requests.try_send(());
    }

    /// The enterprise's files stuck in `incoming/` (their claim failed), by name.
    pub fn claim_problems(&self, enterprise: EnterpriseId) -> Vec<(String, ClaimProblem)> {
        self.claim_problems
            .lock()
            .map(|problems| {
                problems
                    .get(&enterprise)
                    .map(|files| files.iter().map(|(n, p)| (n.clone(), p.clone())).collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    pub async fn stop(&self) {
        let _ = self.commands.send(DropCommand::Stop).await;
    }
}

/// The drop-directory task's side of the handle.
pub struct DropDirInbox {
    pub commands: mpsc::Receiver<DropCommand>,
    /// Wake-ups asked for by the service (not file-system events).
    pub requests: mpsc::Receiver<()>,
    pub claim_problems: ClaimProblems,
}

/// How a file's records go to the import engine.
pub struct FileImport {
    pub enterprise: crate::domain::EnterpriseId,
    pub source: ImportSource,
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Overrides the mode a JSON body names.
    pub mode: Option<crate::domain::import::ImportMode>,
    pub dry_run: bool,
    /// Users files only.
    pub full_export: Option<import::FullExport>,
    /// Any row error fails the whole file.
    pub all_or_nothing: bool,
}

fn file_request<R>(rows: formats::FileRows<R>, how: FileImport) -> ImportRequest<R> {
    ImportRequest {
        enterprise: how.enterprise,
        source: how.source,
        mode: how.mode.unwrap_or(rows.mode),
        rows: rows.rows,
        dry_run: how.dry_run,
        invite_new_users: rows.send_invitations,
        warnings: rows.warnings,
        row_errors: rows.row_errors,
        details: how.details,
        full_export: how.full_export,
        all_or_nothing: how.all_or_nothing,
        numbering: rows.numbering,
    }
}

/// Runs a file's records through the one import engine, recorded as
/// `file_import`: the watcher's files, retries and approvals, the dashboard's
/// uploads and the preview's dry runs all come here.
pub async fn import_records(
    svc: &Services,
    records: formats::FileRecords,
    how: FileImport,
    finish: Option<import::Finish>,
) -> Result<ImportReport, AppError> {
    match records {
        formats::FileRecords::Users(rows) => {
            import::users::import_as(svc, file_request(rows, how), OPERATION, finish).await
        }
        formats::FileRecords::Stores(rows) => {
            let how = FileImport {
                full_export: None,
                ..how
            };
            import::stores::import_as(svc, file_request(rows, how), OPERATION, finish).await
        }
    }
}

/// A drop file opened for import, read the same way whoever runs it (the
/// watcher, a retry or an approval, the operator's `import` command): a large
/// users CSV file (from `dropdir.stream_from_bytes`, no dated rows) streams
/// into the engine's staged mode in bounded memory, dry runs too; any other
/// is read whole, up to `imports.max_rows`.
pub struct OpenedFile {
    pub sha256: String,
    pub encoding: &'static str,
    body: Body,
}

enum Body {
    Streamed(std::fs::File, crate::dropfile::stream::Survey),
    Whole(String),
}

/// Whether a file of `size` bytes streams rather than being read whole.
fn streams(
    svc: &Services,
    kind: Option<formats::Kind>,
    name: &str,
    size: u64,
    settings: &DropSettings,
) -> bool {
    kind == Some(formats::Kind::Users)
        && !formats::is_json(name)
        && size >= svc.config.dropdir.stream_from_bytes
        // Dated rows need every row of a person at once.
        && settings.profile.users.dated_rows.is_none()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Internal(format!("file task: {e}")))
}

/// Opens `path` (no link followed, within `dropdir.max_file_bytes`), hashes
/// it and picks its encoding; `Err(refusal)` is a file that is not read.
pub async fn open_file(
    svc: &Services,
    path: std::path::PathBuf,
    (kind, name): (Option<formats::Kind>, &str),
    settings: &DropSettings,
) -> Result<Result<OpenedFile, Refusal>, AppError> {
    use crate::dropfile::{open, stream};
    let limit = svc.config.dropdir.max_file_bytes;
    let fallback = settings.fallback_encoding;
    let opened = blocking(move || open::open_checked(&path, limit)).await?;
    let (mut handle, size) = match opened {
        Ok(opened) => opened,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if streams(svc, kind, name, size, settings) {
        let surveyed = blocking(move || {
            stream::survey(&mut handle, limit, fallback).map(|survey| (handle, survey))
        })
        .await?;
        return Ok(surveyed.map(|(handle, survey)| OpenedFile {
            sha256: survey.sha256.clone(),
            encoding: survey.encoding.name(),
            body: Body::Streamed(handle, survey),
        }));
    }
    let read = blocking(move || {
        open::read_within(handle, size, limit).map(|bytes| {
            let sha256 = hex_sha256(&bytes);
            (sha256, formats::decode(&bytes, fallback))
        })
    })
    .await?;
    Ok(read.map(|(sha256, decoded)| OpenedFile {
        sha256,
        encoding: decoded.encoding,
        body: Body::Whole(decoded.text),
    }))
}

fn hex_sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What to do with an opened file, and on whose behalf.
pub struct FileRun {
    pub enterprise: EnterpriseId,
    pub kind: formats::Kind,
    /// The name people know the file by (error messages, the run's details).
    pub name: String,
    pub source: ImportSource,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub settings: DropSettings,
    /// Overrides the mode a JSON body names (or `create_or_update`).
    pub mode: Option<ImportMode>,
    pub dry_run: bool,
    /// Users files only.
    pub full_export: Option<import::FullExport>,
    /// Work committed with the import (the watcher marks its file applied).
    pub finish: Option<import::Finish>,
}

/// How an opened file's import ended.
pub enum FileOutcome {
    /// The engine ran; its report says whether it applied. `rows`: the records
    /// read, when the file was read whole.
    Ran {
        report: ImportReport,
        rows: Option<usize>,
    },
    /// Nothing ran: the file cannot be read, or says nothing.
    Unreadable { reason: String, rows: Option<usize> },
}

/// Imports an opened file through the one engine. An `Err` is the engine's
/// refusal of the request or a service failure; a bad file is an outcome.
pub async fn import_file(
    svc: &Services,
    opened: OpenedFile,
    run: FileRun,
) -> Result<FileOutcome, AppError> {
    let FileRun {
        enterprise,
        kind,
        name,
        source,
        mut details,
        settings,
        mode,
        dry_run,
        full_export,
        finish,
    } = run;
    let all_or_nothing = full_export.is_none()
        && settings.delta_row_errors == crate::domain::drop_profile::RowErrorPolicy::RejectFile;
    match opened.body {
        Body::Streamed(handle, survey) => {
            let read = blocking(move || crate::dropfile::stream::users(handle, &survey, &settings))
                .await?;
            let streamed = match read {
                Ok(streamed) => streamed,
                Err(problem) => {
                    return Ok(FileOutcome::Unreadable {
                        reason: problem.0,
                        rows: None,
                    })
                }
            };
            details.insert("delimiter".into(), serde_json::json!(streamed.delimiter));
            details.insert("streamed".into(), serde_json::json!(true));
            let request = import::staged::StagedRequest {
                enterprise,
                source,
                mode: mode.unwrap_or(ImportMode::CreateOrUpdate),
                warnings: streamed.warnings,
                details,
                full_export,
                all_or_nothing,
                dry_run,
                max_rows: svc.config.imports.max_file_rows,
                match_in_memory_up_to: svc.config.imports.match_in_memory_up_to,
                numbering: import::RowNumbering::FromOne,
                row_errors: Vec::new(),
                invite_new_users: false,
                expected_rows: None,
            };
            match import::staged::import_users(svc, request, streamed.rows, OPERATION, finish)
                .await?
            {
                import::staged::StagedOutcome::Applied(report) => {
                    Ok(FileOutcome::Ran { report, rows: None })
                }
                import::staged::StagedOutcome::Unreadable(reason) => {
                    Ok(FileOutcome::Unreadable { reason, rows: None })
                }
            }
        }
        Body::Whole(text) => {
            let max_rows = svc.config.imports.max_rows;
            let today = svc.clock.now().date_naive();
            let read = blocking(move || {
                formats::read(kind, &name, &text, max_rows, &settings.read_options(today))
            })
            .await?;
            let records = match read {
                Ok(records) => records,
                Err(problem) => {
                    return Ok(FileOutcome::Unreadable {
                        reason: problem.0,
                        rows: None,
                    })
                }
            };
            if records.says_nothing() {
                // Applying nothing would look like success to whoever reads the results.
                let reason = match records.columns() {
                    [] => "the file holds no rows",
                    _ => "the file has a header line and no rows",
                };
                return Ok(FileOutcome::Unreadable {
                    reason: reason.into(),
                    rows: Some(0),
                });
            }
            details.insert("delimiter".into(), serde_json::json!(records.delimiter()));
            let rows = records.len();
            let how = FileImport {
                enterprise,
                source,
                details,
                mode,
                dry_run,
                full_export,
                all_or_nothing,
            };
            let report = import_records(svc, records, how, finish).await?;
            Ok(FileOutcome::Ran {
                report,
                rows: Some(rows),
            })
        }
    }
}
