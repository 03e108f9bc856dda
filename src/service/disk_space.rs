//! Free space where the service writes: the database's filesystem and the drop
//! directory's. SQLite stops with "database or disk is full" at the wall; the
//! service says so before it gets there (readiness, metrics, the log).

use std::path::{Path, PathBuf};

use crate::config::Config;

/// One filesystem the service writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
    /// `data` (the database, secrets, backups) or `drop_work` (files being imported).
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

fn free_bytes(path: &Path) -> Option<u64> {
    // The folder may not exist yet (first start): its nearest parent tells.
    let existing = path.ancestors().find(|p| p.exists())?;
    let stats = rustix::fs::statvfs(existing).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// The filesystems of the database and (when on) the drop directory's work root.
pub fn survey(config: &Config) -> Vec<Filesystem> {
    let data = config
        .database_path()
        .parent()
        .map_or_else(|| config.data_dir.clone(), Path::to_path_buf);
    let mut filesystems = vec![Filesystem {
        name: "data",
        free_bytes: free_bytes(&data),
        path: data,
    }];
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

/// Looks at the filesystems and logs a change of state: an error when one
/// goes under the floor (once, not at every look), a notice when space comes
/// back, which also wakes the drop directory for the files that waited.
/// Returns whether space is low now.
pub fn check(svc: &super::Services, was_low: bool) -> bool {
    let floor = min_free_bytes(&svc.config);
    let low: Vec<Filesystem> = survey(&svc.config)
        .into_iter()
        .filter(|fs| fs.is_low(floor))
        .collect();
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
    fn a_folder_not_made_yet_is_judged_by_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(&dir.path().join("not/yet")).is_some());
    }
}
