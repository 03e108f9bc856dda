//! The drop directory's files as the API shows them, and the admin's retry.

use super::access::{AdminCtx, EnterpriseCtx, Principal};
use super::audit::{self, AuditEvent};
use super::{RequestMeta, Services};
use crate::domain::audit::Outcome;
use crate::store::{self, drop_files::DropFile};
use crate::AppError;

pub const MAX_LIST: usize = 200;

pub async fn list(
    svc: &Services,
    ctx: &EnterpriseCtx,
    limit: usize,
) -> Result<Vec<DropFile>, AppError> {
    let enterprise = ctx.enterprise();
    let mut files = svc
        .db
        .read(move |conn| store::drop_files::list(conn, enterprise, limit).map_err(AppError::from))
        .await?;
    // Files the scanner could not take from incoming/ have no row yet: they
    // are listed first, `waiting`, with the reason.
    if let Some(drop_dir) = svc.drop_dir.get() {
        let stuck: Vec<DropFile> = drop_dir
            .claim_problems(enterprise)
            .into_iter()
            .map(|(name, problem)| DropFile {
                id: format!("incoming:{name}"),
                enterprise_account_id: enterprise,
                display_name: name.clone(),
                stored_name: name,
                kind: None,
                size_bytes: i64::try_from(problem.size_bytes).unwrap_or(i64::MAX),
                sha256: None,
                encoding: None,
                state: crate::domain::FileState::Waiting,
                reason: Some(problem.reason),
                sync_log_id: None,
                row_count: None,
                full_export: false,
                approved_by: None,
                approved_at: None,
                received_at: store::ts(problem.since),
                finished_at: None,
                file_modified_at: None,
            })
            .collect();
        files.splice(0..0, stuck);
        files.truncate(limit);
    }
    Ok(files)
}

pub async fn get(svc: &Services, ctx: &EnterpriseCtx, id: String) -> Result<DropFile, AppError> {
    let enterprise = ctx.enterprise();
    svc.db
        .read(move |conn| store::drop_files::get_for(conn, enterprise, &id).map_err(AppError::from))
        .await?
        .ok_or(AppError::NotFound { resource: "file" })
}

/// What an IT admin asks of a file that did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rerun {
    /// A failed or refused file, run again (the ERP side or the set-up was fixed).
    Retry,
    /// A held full export, applied past the deactivation guard.
    Approve,
}

/// Runs the file again as asked; audited (an approval with the name, hash and
/// the reason it was held). Answers the file as it ended this time.
pub async fn rerun(
    svc: &Services,
    principal: &Principal,
    admin: &AdminCtx,
    id: String,
    how: Rerun,
    meta: &RequestMeta,
) -> Result<DropFile, AppError> {
    let enterprise = admin.enterprise();
    let drop_dir = svc
        .drop_dir
        .get()
        .ok_or_else(|| AppError::Unavailable("the drop directory is disabled".into()))?;
    let ctx = principal.require_scope(crate::domain::Scope::SyncRead)?;
    let before = get(svc, &ctx, id.clone()).await?;
    let (action, outcome) = match how {
        Rerun::Retry => (
            "drop_file.retry",
            drop_dir.retry(enterprise, id.clone()).await,
        ),
        Rerun::Approve => (
            "drop_file.approve",
            drop_dir
                .approve(enterprise, id.clone(), principal.actor().id)
                .await,
        ),
    };
    let event = AuditEvent::new(
        action,
        if outcome.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        principal.actor(),
    )
    .in_enterprise(enterprise)
    .target("drop_file", &id)
    .changes(serde_json::json!({
        "name": before.display_name, "sha256": before.sha256,
        "state_before": before.state, "reason_before": before.reason,
    }));
    audit::record(svc, event, meta).await?;
    outcome?;
    get(svc, &ctx, id).await
}

/// Where an uploaded file lands, and what the admin is told.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Uploaded {
    /// The name the file has in the drop folder.
    pub name: String,
    pub size_bytes: usize,
}

/// An IT admin hands a file over through the dashboard: it is written into
/// the enterprise's `incoming/` folder (a hidden temporary name, synced, then
/// renamed, as an SFTP client finishing an upload), so the drop directory
/// imports it like any other file. `kind` names it `users…`/`stores…` when its
/// name does not say. Audited.
pub async fn upload(
    svc: &Services,
    admin: &AdminCtx,
    meta: &RequestMeta,
    file_name: &str,
    kind: crate::dropfile::formats::Kind,
    bytes: Vec<u8>,
) -> Result<Uploaded, AppError> {
    use crate::dropfile::{formats::Kind, layout};
    let drop_dir = svc
        .drop_dir
        .get()
        .ok_or_else(|| AppError::Unavailable("the drop directory is disabled".into()))?;
    if bytes.is_empty() {
        return Err(AppError::field("file", "empty", "the file is empty"));
    }
    let limit = usize::try_from(svc.config.dropdir.max_file_bytes).unwrap_or(usize::MAX);
    if bytes.len() > limit {
        return Err(AppError::PayloadTooLarge { limit });
    }
    let mut name = layout::safe_name(std::ffi::OsStr::new(
        file_name.rsplit(['/', '\\']).next().unwrap_or(file_name),
    ));
    if Kind::of(&name, &svc.config.dropdir) != Some(kind) {
        let prefix = match kind {
            Kind::Users => svc.config.dropdir.users_file_prefixes.first(),
            Kind::Stores => svc.config.dropdir.stores_file_prefixes.first(),
        }
        .cloned()
        .unwrap_or_else(|| kind.as_str().to_string());
        name = format!("{prefix}_{name}");
    }
    let folders = layout::Folders::of(&svc.settings(), admin.enterprise());
    // Under the marker policy a file counts only once its `.done` is there,
    // which an upload through the page writes too.
    let marker = super::drop_config::settings_of(svc, admin.enterprise())
        .await?
        .completion
        == crate::config::CompletionPolicy::Marker;
    let (incoming, target, size) = (folders.incoming.clone(), name.clone(), bytes.len());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(&incoming)?;
        let temp = incoming.join(format!(
            ".{target}.{}.upload",
            uuid::Uuid::now_v7().simple()
        ));
        let mut out = std::fs::File::create(&temp)?;
        out.write_all(&bytes)?;
        out.sync_all()?;
        // A name already waiting in incoming/ is not overwritten.
        if incoming.join(&target).exists() {
            std::fs::remove_file(&temp)?;
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists",
            ));
        }
        std::fs::rename(&temp, incoming.join(&target))?;
        if marker {
            std::fs::File::create(incoming.join(format!("{target}.done")))?.sync_all()?;
        }
        Ok(())
    })
    .await
    .map_err(AppError::internal)?
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => AppError::Conflict {
            code: "file_waiting",
            field: Some("file"),
            message: format!("a file named {name} is already waiting to be imported"),
        },
        _ => AppError::Internal(format!("writing an uploaded file: {e}")),
    })?;
    drop_dir.wake();
    audit::record(
        svc,
        AuditEvent::new("drop_file.upload", Outcome::Success, admin.actor())
            .in_enterprise(admin.enterprise())
            .changes(serde_json::json!({ "name": name, "size_bytes": size })),
        meta,
    )
    .await?;
    Ok(Uploaded {
        name,
        size_bytes: size,
    })
}
