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

/// Runs a failed or refused file again (after the ERP side or the mapping was
/// fixed); audited. Answers the file as it ends this time.
pub async fn retry(
    svc: &Services,
    principal: &Principal,
    admin: &AdminCtx,
    id: String,
    meta: &RequestMeta,
) -> Result<DropFile, AppError> {
    let enterprise = admin.enterprise();
    let drop_dir = svc
        .drop_dir
        .get()
        .ok_or_else(|| AppError::Unavailable("the drop directory is disabled".into()))?;
    let outcome = drop_dir.retry(enterprise, id.clone()).await;
    let event = AuditEvent::new(
        "drop_file.retry",
        if outcome.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        principal.actor(),
    )
    .in_enterprise(enterprise)
    .target("drop_file", &id);
    audit::record(svc, event, meta).await?;
    outcome?;
    let ctx = principal.require_scope(crate::domain::Scope::SyncRead)?;
    get(svc, &ctx, id).await
}

/// Applies a held full export past the deactivation guard; audited with the
/// counts it held for. Answers the file as it ends.
pub async fn approve(
    svc: &Services,
    principal: &Principal,
    admin: &AdminCtx,
    id: String,
    meta: &RequestMeta,
) -> Result<DropFile, AppError> {
    let enterprise = admin.enterprise();
    let drop_dir = svc
        .drop_dir
        .get()
        .ok_or_else(|| AppError::Unavailable("the drop directory is disabled".into()))?;
    let ctx = principal.require_scope(crate::domain::Scope::SyncRead)?;
    let held = get(svc, &ctx, id.clone()).await?;
    let outcome = drop_dir
        .approve(enterprise, id.clone(), principal.actor().id)
        .await;
    let event = AuditEvent::new(
        "drop_file.approve",
        if outcome.is_ok() { Outcome::Success } else { Outcome::Failure },
        principal.actor(),
    )
    .in_enterprise(enterprise)
    .target("drop_file", &id)
    .changes(serde_json::json!({ "name": held.display_name, "sha256": held.sha256, "held_because": held.reason }));
    audit::record(svc, event, meta).await?;
    outcome?;
    get(svc, &ctx, id).await
}
