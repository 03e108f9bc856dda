//! What a `/metrics` scrape reads: the database and the drop directory at this
//! moment, beside the counters kept as things happen.

use std::time::Duration;

use super::Services;
use crate::dropfile::layout::Folders;
use crate::dropfile::waiting::Waiting;
use crate::metrics::Snapshot;
use crate::store;
use crate::AppError;

pub async fn render(svc: &Services) -> Result<String, AppError> {
    let per_enterprise = svc.config.metrics.per_enterprise;
    let (enterprises, last_success) = svc
        .db
        .read(move |conn| {
            let enterprises = store::enterprises::all_ids(conn)?;
            let mut last_success = Vec::new();
            for &enterprise in enterprises.iter().filter(|_| per_enterprise) {
                let at = store::sync_logs::last_success(conn, enterprise)?
                    .as_deref()
                    .and_then(store::parse_ts);
                if let Some(at) = at {
                    last_success.push((enterprise.to_string(), at.timestamp()));
                }
            }
            Ok::<_, AppError>((enterprises, last_success))
        })
        .await?;
    let config = svc.settings();
    let now = std::time::SystemTime::from(svc.clock.now());
    let mut snapshot = tokio::task::spawn_blocking(move || {
        let database = config.database_path();
        let mut wal = database.clone().into_os_string();
        wal.push("-wal");
        let database_bytes = [database.into_os_string(), wal]
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|meta| meta.len())
            .sum();
        let mut waiting = Waiting::default();
        if config.dropdir.enabled {
            for enterprise in enterprises {
                let folders = Folders::of(&config, enterprise);
                match Waiting::survey(&folders.incoming, &folders.processing) {
                    Ok(found) => waiting.add(found),
                    Err(e) => {
                        tracing::warn!(%enterprise, error = %e, "listing a drop folder for metrics failed")
                    }
                }
            }
        }
        let filesystems = super::disk_space::survey(&config);
        let floor = super::disk_space::min_free_bytes(&config);
        Snapshot {
            free_bytes: filesystems
                .iter()
                .filter_map(|fs| fs.free_bytes.map(|free| (fs.name, free)))
                .collect(),
            low_space: filesystems.iter().any(|fs| fs.is_low(floor)),
            database_bytes,
            drop_queue_files: waiting.files,
            drop_oldest_pending: waiting
                .oldest
                .map(|oldest| now.duration_since(oldest).unwrap_or(Duration::ZERO)),
            last_success: Vec::new(),
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?;
    snapshot.last_success = last_success;
    Ok(svc.metrics.render(&snapshot))
}
