//! The drop file's lifecycle as the services see it: the handle to the
//! running drop directory (scan, retry, approve, wake, the claims that
//! failed), and the one way from a file's records to an import request and
//! through the engine. The adapter (`dropdir`) watches, claims and archives;
//! the readers (`dropfile`) parse; this module is where the two meet the
//! engine.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::import::{self, ImportRequest};
use super::Services;
use crate::domain::import::{ImportReport, ImportSource};
use crate::domain::EnterpriseId;
use crate::dropfile::formats;
use crate::AppError;

/// The operation a file's run is recorded as.
pub const OPERATION: &str = "file_import";

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
