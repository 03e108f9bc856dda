//! The enterprise's synchronisation overview and its sync logs.

use serde::Serialize;

use super::access::EnterpriseCtx;
use super::Services;
use crate::domain::{EnterpriseId, EnterpriseSyncMode};
use crate::store::{self, sync_logs::SyncLog, sync_logs::SyncLogFilter};
use crate::AppError;

pub const RECENT_LOGS: usize = 10;

#[derive(utoipa::ToSchema, Debug, Serialize)]
pub struct SyncStatus {
    pub enterprise_account_id: EnterpriseId,
    pub company_name: String,
    pub sync_mode: EnterpriseSyncMode,
    /// An identity provider can provision: a usable key with the scim scope
    /// exists (see docs/scim.md).
    pub scim_enabled: bool,
    /// Usable keys with the scim scope.
    pub scim_keys: i64,
    /// The last SCIM request of the enterprise's identity provider.
    pub scim_last_call_at: Option<String>,
    pub total_users: i64,
    pub active_users: i64,
    pub total_stores: i64,
    pub seats_purchased: i64,
    /// Active staff; counted, never stored, so it cannot drift.
    pub seats_used: i64,
    pub last_sync_at: Option<String>,
    pub last_sync_status: Option<String>,
    pub last_sync_details: Option<serde_json::Value>,
    pub recent_logs: Vec<SyncLog>,
    /// The enterprise's folder in the drop directory (its SFTP account's root;
    /// files go into `incoming/`), when the drop directory is on.
    pub drop_folder: Option<String>,
}

/// The enterprise's sync at a glance; the runs are those `view` shows.
pub async fn status(
    svc: &Services,
    ctx: &EnterpriseCtx,
    view: super::sync_logs::SyncView,
) -> Result<SyncStatus, AppError> {
    let enterprise = ctx.enterprise();
    let drop_folder = svc.config.dropdir.enabled.then(|| {
        crate::dropfile::layout::Folders::of(&svc.settings(), enterprise)
            .drop_folder()
            .display()
            .to_string()
    });
    let now = svc.clock.now();
    let last_call_here = svc.scim_activity.last(enterprise);
    svc.db
        .read(move |conn| {
            let (scim_keys, last_key_use) = store::api_keys::scim_keys(conn, enterprise, now)?;
            let last_call_here = last_call_here.map(store::ts);
            let scim_last_call_at = last_call_here.max(last_key_use);
            let account = store::enterprises::get(conn, enterprise)?.ok_or(AppError::NotFound {
                resource: "enterprise",
            })?;
            let staff = store::users::staff_counts(conn, enterprise)?;
            let total_stores = store::stores::count(conn, enterprise)?;
            let runs = SyncLogFilter {
                resource_types: view.resource_types(),
                ..SyncLogFilter::default()
            };
            let recent_logs = store::sync_logs::list(conn, enterprise, &runs, None, RECENT_LOGS)?;
            let last = recent_logs.first();
            Ok(SyncStatus {
                enterprise_account_id: enterprise,
                company_name: account.company_name,
                sync_mode: account.sync_mode,
                scim_enabled: account.scim_enabled || scim_keys > 0,
                scim_keys,
                scim_last_call_at,
                total_users: staff.total,
                active_users: staff.active,
                total_stores,
                seats_purchased: account.seats_purchased,
                seats_used: staff.active,
                last_sync_at: last.map(|l| l.timestamp.clone()),
                last_sync_status: last.map(|l| l.status.clone()),
                last_sync_details: last.map(|l| l.details.clone()),
                recent_logs,
                drop_folder,
            })
        })
        .await
}
