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
    svc.db
        .read(move |conn| store::drop_files::list(conn, enterprise, limit).map_err(AppError::from))
        .await
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
