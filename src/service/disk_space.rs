//! Free space where the service writes: the database's filesystem and the drop
//! directory's. SQLite stops with "database or disk is full" at the wall; the
//! service says so before it gets there (readiness, metrics, the log).

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::domain::notifications::AlertFacts;
use crate::store;
use crate::AppError;

/// One filesystem the service writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
    /// `data` (the database, secrets, backups), `drop_work` (files being
    /// imported) or `temp` (SQLite's temporary files, when `database.temp_dir`
    /// is on a filesystem of its own).
    pub name: &'static str,
    pub path: PathBuf,
    /// Bytes an unprivileged writer may still use; `None` when it cannot be read.
    pub free_bytes: Option<u64>,
}

impl Filesystem {
    /// Under `min_free_bytes`; a filesystem that cannot be read counts as low.
    pub fn is_low(&self, min_free_bytes: u64) -> bool {
        self.free_bytes.is_none_or(|free| free < min_free_bytes)
    }
}

/// The filesystem (device) holding `path` or, before it exists, its nearest parent.
fn device(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let existing = path.ancestors().find(|p| p.exists())?;
    std::fs::metadata(existing).ok().map(|m| m.dev())
}

fn free_bytes(path: &Path) -> Option<u64> {
    // The folder may not exist yet (first start): its nearest parent tells.
    let existing = path.ancestors().find(|p| p.exists())?;
    let stats = rustix::fs::statvfs(existing).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// The filesystems of the database, of SQLite's temporary files when they
/// have one of their own (a large import's staging table and sorts fill it
/// as surely as the database), and (when on) the drop directory's work root.
pub fn survey(config: &Config) -> Vec<Filesystem> {
    let data = config
        .database_path()
        .parent()
        .map_or_else(|| config.data_dir.clone(), Path::to_path_buf);
    let temp = config.database_temp_dir();
    let temp_apart = device(&temp) != device(&data);
    let mut filesystems = vec![Filesystem {
        name: "data",
        free_bytes: free_bytes(&data),
        path: data,
    }];
    if temp_apart {
        filesystems.push(Filesystem {
            name: "temp",
            free_bytes: free_bytes(&temp),
            path: temp,
        });
    }
    if config.dropdir.enabled {
        let work = config.drop_work_root();
        filesystems.push(Filesystem {
            name: "drop_work",
            free_bytes: free_bytes(&work),
            path: work,
        });
    }
    filesystems
}

/// The configured floor, in bytes.
pub fn min_free_bytes(config: &Config) -> u64 {
    config.database.min_free_mb.saturating_mul(1024 * 1024)
}

/// Looks at the filesystems and acts on a change of state: when one goes
/// under the floor, an error in the log and an alert to every enterprise
/// (once per incident, while the database can still record it); when space
/// comes back, a notice, and the drop directory is woken for the files that
/// waited. Returns whether space is low now.
pub async fn watch(svc: &super::Services, was_low: bool) -> bool {
    let config = svc.config.clone();
    let filesystems = tokio::task::spawn_blocking(move || survey(&config))
        .await
        .unwrap_or_default();
    let floor = min_free_bytes(&svc.config);
    let low: Vec<&Filesystem> = filesystems.iter().filter(|fs| fs.is_low(floor)).collect();
    match (was_low, low.is_empty()) {
        (false, false) => {
            for fs in &low {
                tracing::error!(
                    filesystem = fs.name,
                    path = %fs.path.display(),
                    free_mib = fs.free_bytes.map(|b| b / (1024 * 1024)),
                    min_free_mb = svc.config.database.min_free_mb,
                    "low disk space: imports, SCIM writes and dropped files fail or wait once \
                     it is full; readiness fails until space is freed"
                );
            }
            let free_mib =
                low.iter().filter_map(|fs| fs.free_bytes).min().unwrap_or(0) / (1024 * 1024);
            if let Err(e) = alert_every_enterprise(svc, free_mib).await {
                tracing::error!(error = %e, "alerting the enterprises of the low disk space failed");
            }
        }
        (true, true) => {
            tracing::info!("disk space is back above database.min_free_mb");
            if let Some(drop_dir) = svc.drop_dir.get() {
                drop_dir.wake();
            }
        }
        _ => {}
    }
    !low.is_empty()
}

/// Every enterprise's syncs depend on this disk: each one's alert recipients
/// are told, within their hourly cap.
async fn alert_every_enterprise(svc: &super::Services, free_mib: u64) -> Result<(), AppError> {
    let facts = AlertFacts::DiskLow {
        free_mib,
        min_free_mb: svc.config.database.min_free_mb,
        at: svc.clock.now(),
    };
    let now = svc.clock.now();
    svc.db
        .write(move |txn| {
            for enterprise in store::enterprises::all_ids(txn)? {
                super::alerts::raise(txn, enterprise, None, &facts, now)?;
            }
            Ok::<_, AppError>(())
        })
        .await?;
    svc.outbound.wake_email();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_filesystem_counts_as_low() {
        let unknown = Filesystem {
            name: "data",
            path: PathBuf::from("/nowhere"),
            free_bytes: None,
        };
        assert!(unknown.is_low(1));
        let roomy = Filesystem {
            free_bytes: Some(10),
            ..unknown
        };
        assert!(!roomy.is_low(10));
        assert!(roomy.is_low(11));
    }

    #[test]
    fn temporary_files_on_a_filesystem_of_their_own_are_watched_too() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let watched = |config: &Config| survey(config).iter().map(|fs| fs.name).collect::<Vec<_>>();
        assert!(
            !watched(&config).contains(&"temp"),
            "beside the database, the data filesystem's figures are theirs"
        );
        // Any other filesystem: procfs is on every Linux machine.
        config.database.temp_dir = Some(PathBuf::from("/proc/enterprise-sync-temp"));
        assert!(watched(&config).contains(&"temp"));
    }

    #[test]
    fn a_folder_not_made_yet_is_judged_by_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(&dir.path().join("not/yet")).is_some());
    }
}
