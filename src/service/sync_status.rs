//! The enterprise's synchronisation overview and its sync logs.

use serde::Serialize;

use super::access::EnterpriseCtx;
use super::import::ChangeEvent;
use super::Services;
use crate::domain::{EnterpriseId, EnterpriseSyncMode};
use crate::store::{self, sync_logs::SyncLog, sync_logs::SyncLogFilter};
use crate::AppError;

pub const RECENT_LOGS: usize = 10;

#[derive(Debug, Serialize)]
pub struct SyncStatus {
    pub enterprise_account_id: EnterpriseId,
    pub company_name: String,
    pub sync_mode: EnterpriseSyncMode,
    pub scim_enabled: bool,
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
}

pub async fn status(svc: &Services, ctx: &EnterpriseCtx) -> Result<SyncStatus, AppError> {
    let enterprise = ctx.enterprise();
    svc.db
        .read(move |conn| {
            let account = store::enterprises::get(conn, enterprise)?.ok_or(AppError::NotFound {
                resource: "enterprise",
            })?;
            let staff = store::users::staff_counts(conn, enterprise)?;
            let total_stores = store::stores::count(conn, enterprise)?;
            let runs = SyncLogFilter {
                runs_only: true,
                ..SyncLogFilter::default()
            };
            let recent_logs = store::sync_logs::list(conn, enterprise, &runs, None, RECENT_LOGS)?;
            let last = recent_logs.first();
            Ok(SyncStatus {
                enterprise_account_id: enterprise,
                company_name: account.company_name,
                sync_mode: account.sync_mode,
                scim_enabled: account.scim_enabled,
                total_users: staff.total,
                active_users: staff.active,
                total_stores,
                seats_purchased: account.seats_purchased,
                seats_used: staff.active,
                last_sync_at: last.map(|l| l.timestamp.clone()),
                last_sync_status: last.map(|l| l.status.clone()),
                last_sync_details: last.map(|l| l.details.clone()),
                recent_logs,
            })
        })
        .await
}

pub struct SyncLogPage {
    pub logs: Vec<SyncLog>,
    pub next_cursor: Option<String>,
}

pub async fn logs(
    svc: &Services,
    ctx: &EnterpriseCtx,
    filter: SyncLogFilter,
    before: Option<i64>,
    limit: usize,
) -> Result<SyncLogPage, AppError> {
    let enterprise = ctx.enterprise();
    let logs = svc
        .db
        .read(move |conn| {
            store::sync_logs::list(conn, enterprise, &filter, before, limit).map_err(AppError::from)
        })
        .await?;
    let next_cursor = if logs.len() == limit {
        logs.last().map(|l| l.seq.to_string())
    } else {
        None
    };
    Ok(SyncLogPage { logs, next_cursor })
}

pub async fn run(svc: &Services, ctx: &EnterpriseCtx, id: String) -> Result<SyncLog, AppError> {
    let enterprise = ctx.enterprise();
    svc.db
        .read(move |conn| store::sync_logs::get(conn, enterprise, &id).map_err(AppError::from))
        .await?
        .ok_or(AppError::NotFound {
            resource: "sync log",
        })
}

/// Where a page of a run's changes starts: a change batch and an index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeCursor {
    pub batch: i64,
    pub index: usize,
}

impl std::str::FromStr for ChangeCursor {
    type Err = ();
    fn from_str(raw: &str) -> Result<Self, ()> {
        let (batch, index) = raw.split_once('.').ok_or(())?;
        Ok(ChangeCursor {
            batch: batch.parse().map_err(|_| ())?,
            index: index.parse().map_err(|_| ())?,
        })
    }
}

impl std::fmt::Display for ChangeCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.batch, self.index)
    }
}

pub struct ChangePage {
    pub changes: Vec<ChangeEvent>,
    pub next_cursor: Option<String>,
}

/// What a run created, updated and deactivated, in the order it applied them.
pub async fn run_changes(
    svc: &Services,
    ctx: &EnterpriseCtx,
    run_id: String,
    from: Option<ChangeCursor>,
    limit: usize,
) -> Result<ChangePage, AppError> {
    let enterprise = ctx.enterprise();
    svc.db
        .read(move |conn| {
            store::sync_logs::get(conn, enterprise, &run_id)?.ok_or(AppError::NotFound {
                resource: "sync log",
            })?;
            let mut cursor = from.unwrap_or(ChangeCursor { batch: 0, index: 0 });
            let mut changes = Vec::with_capacity(limit);
            loop {
                let Some(batch) =
                    store::change_batches::for_run(conn, enterprise, &run_id, cursor.batch, 1)?
                        .pop()
                else {
                    return Ok(ChangePage {
                        changes,
                        next_cursor: None,
                    });
                };
                let events: Vec<ChangeEvent> = serde_json::from_str(&batch.events_json)
                    .map_err(|e| AppError::Internal(format!("change batch {}: {e}", batch.seq)))?;
                let start = if batch.seq == cursor.batch {
                    cursor.index
                } else {
                    0
                };
                let wanted = limit - changes.len();
                let taken = events.len().saturating_sub(start).min(wanted);
                changes.extend(events.into_iter().skip(start).take(taken));
                cursor = ChangeCursor {
                    batch: batch.seq,
                    index: start + taken,
                };
                if changes.len() == limit {
                    return Ok(ChangePage {
                        changes,
                        next_cursor: Some(cursor.to_string()),
                    });
                }
                cursor = ChangeCursor {
                    batch: batch.seq + 1,
                    index: 0,
                };
            }
        })
        .await
}

/// Drops per-record history past `imports.record_log_retention_days`: the runs'
/// change batches and the per-record sync-log entries of older versions; run
/// entries stay.
pub async fn prune_record_logs(svc: &Services) -> Result<usize, AppError> {
    let days = i64::from(svc.config.imports.record_log_retention_days);
    let cutoff = svc.clock.now() - chrono::Duration::days(days);
    svc.db
        .write(move |txn| {
            let entries = store::sync_logs::prune_record_entries(txn, cutoff)?;
            let batches = store::change_batches::prune_older_than(txn, cutoff)?;
            Ok::<_, AppError>(entries + batches)
        })
        .await
}
