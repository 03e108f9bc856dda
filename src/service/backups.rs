//! The backups the service takes by itself: a consistent copy every
//! `backup.interval_hours`, named by its time, the newest `backup.keep` kept.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use super::Services;
use crate::store::backup::{self, BackupSummary};
use crate::AppError;

const PREFIX: &str = "enterprise-sync-";
const SUFFIX: &str = ".db";

/// Takes one backup now, then removes the oldest beyond the retention count.
pub async fn run_scheduled(svc: &Services) -> Result<BackupSummary, AppError> {
    let dir = svc.config.backup_dir();
    let keep = svc.config.backup.keep.max(1);
    let database = svc.config.database_path();
    let name = format!(
        "{PREFIX}{}{SUFFIX}",
        svc.clock.now().format("%Y%m%dT%H%M%SZ")
    );
    tokio::task::spawn_blocking(move || {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| AppError::Internal(format!("creating {}: {e}", dir.display())))?;
        let summary = backup::backup(&database, &dir.join(name))
            .map_err(|e| AppError::Internal(format!("backup: {e}")))?;
        prune(&dir, keep).map_err(|e| AppError::Internal(format!("pruning backups: {e}")))?;
        Ok(summary)
    })
    .await
    .map_err(|e| AppError::Internal(format!("backup task: {e}")))?
}

/// Removes the oldest of this service's backups (its names sort by time) past `keep`.
fn prune(dir: &std::path::Path, keep: usize) -> std::io::Result<()> {
    let mut ours: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    ours.sort();
    let excess = ours.len().saturating_sub(keep);
    for old in &ours[..excess] {
        std::fs::remove_file(old)?;
    }
    Ok(())
}
