//! What the dashboard's overview shows, read in one snapshot: the sync
//! status, the last run of each source, what waits for an admin, and the rows
//! changed per day over 30 days.

use serde::Serialize;

use super::access::EnterpriseCtx;
use super::sync_status::{self, SyncStatus};
use super::Services;
use crate::store::{
    self,
    sync_logs::{SyncLog, SyncLogFilter},
};
use crate::AppError;

pub const CHART_DAYS: i64 = 30;

#[derive(Debug, Serialize)]
pub struct Overview {
    pub status: SyncStatus,
    /// The last run of each source (`api`, `file`, `scim`), if any.
    pub last_by_source: Vec<(String, Option<SyncLog>)>,
    /// Drop files waiting for an admin's approval.
    pub held_files: i64,
    pub failed_last_7_days: i64,
    /// One entry per day of the last 30, oldest first, days without runs included.
    pub days: Vec<Day>,
}

/// One day of the chart.
pub use crate::store::sync_logs::DayCounts as Day;

pub async fn overview(svc: &Services, ctx: &EnterpriseCtx) -> Result<Overview, AppError> {
    let status = sync_status::status(svc, ctx, super::sync_logs::SyncView::ALL).await?;
    let enterprise = ctx.enterprise();
    let now = svc.clock.now();
    let week_ago = store::ts(now - chrono::Duration::days(7));
    let first_day = (now - chrono::Duration::days(CHART_DAYS - 1)).date_naive();
    let since = store::ts(first_day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    let (last_by_source, held_files, failed_last_7_days, counted) = svc
        .db
        .read(move |conn| {
            let mut last = Vec::new();
            for source in ["api", "file", "scim"] {
                let filter = SyncLogFilter {
                    sync_type: Some(source.to_string()),
                    ..SyncLogFilter::default()
                };
                let run = store::sync_logs::list(conn, enterprise, &filter, None, 1)?.pop();
                last.push((source.to_string(), run));
            }
            let held = store::drop_files::count_in_state(
                conn,
                enterprise,
                crate::domain::FileState::Held,
            )?;
            let failed = store::sync_logs::failed_since(conn, enterprise, &week_ago)?;
            let counted = store::sync_logs::daily_counts(conn, enterprise, &since)?;
            Ok::<_, AppError>((last, held, failed, counted))
        })
        .await?;
    let days = (0..CHART_DAYS)
        .map(|offset| {
            let day = (first_day + chrono::Duration::days(offset))
                .format("%Y-%m-%d")
                .to_string();
            counted
                .iter()
                .find(|c| c.day == day)
                .cloned()
                .unwrap_or(Day {
                    day,
                    ..Day::default()
                })
        })
        .collect();
    Ok(Overview {
        status,
        last_by_source,
        held_files,
        failed_last_7_days,
        days,
    })
}
