//! Online backups and restores of the database file. A backup is `VACUUM INTO`
//! from a read-only connection — a consistent snapshot taken while the service
//! runs and writes — checked with `integrity_check` before it is kept. The
//! service holds a lock file beside the database so a restore never replaces
//! a database in use.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// The lock the running service holds, beside the database.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_os_string();
    name.push(".service-lock");
    PathBuf::from(name)
}

/// Held while the service runs; released when dropped (or when the process dies).
pub struct ServiceLock {
    _file: File,
}

impl ServiceLock {
    /// Takes the lock, or says another service holds it.
    pub fn acquire(database: &Path) -> Result<ServiceLock, StoreError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(lock_path(database))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| {
                StoreError::Io(std::io::Error::other(format!(
                    "another enterprise-sync service uses {}",
                    database.display()
                )))
            },
        )?;
        Ok(ServiceLock { _file: file })
    }
}

/// What a backup holds.
#[derive(Debug, serde::Serialize)]
pub struct BackupSummary {
    pub file: String,
    pub bytes: u64,
    pub enterprises: i64,
    pub users: i64,
    pub stores: i64,
}

fn summary(path: &Path) -> Result<BackupSummary, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Io(std::io::Error::other(format!(
            "{} fails its integrity check: {check}",
            path.display()
        ))));
    }
    let count = |table: &str| -> Result<i64, StoreError> {
        Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
    };
    Ok(BackupSummary {
        file: path.display().to_string(),
        bytes: std::fs::metadata(path)?.len(),
        enterprises: count("enterprise_accounts")?,
        users: count("users")?,
        stores: count("stores")?,
    })
}

/// Copies the database into `target` (a new file, mode 0600), consistent as of
/// one moment, and checks the copy. A failed copy is removed.
pub fn backup(database: &Path, target: &Path) -> Result<BackupSummary, StoreError> {
    // Created empty first, with its mode: the copy is never readable by others.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)?;
    let copied = (|| {
        let conn = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let target_text = target
            .to_str()
            .ok_or_else(|| StoreError::Io(std::io::Error::other("the backup path is not UTF-8")))?;
        conn.execute("VACUUM INTO ?1", [target_text])?;
        File::open(target)?.sync_all()?;
        summary(target)
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(target);
    }
    copied
}

/// Replaces the database with a checked backup. Refused while a service holds
/// the database. The replaced files are kept beside it, renamed with `suffix`.
pub fn restore(database: &Path, backup: &Path, suffix: &str) -> Result<BackupSummary, StoreError> {
    let checked = summary(backup)?;
    let _lock = ServiceLock::acquire(database)?;
    let dir = database.parent().unwrap_or(Path::new("."));
    let with = |path: &Path, extra: &str| {
        let mut name = path.as_os_str().to_os_string();
        name.push(extra);
        PathBuf::from(name)
    };
    let incoming = with(database, ".restoring");
    std::fs::copy(backup, &incoming)?;
    std::fs::set_permissions(
        &incoming,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    File::open(&incoming)?.sync_all()?;
    // The old database and its WAL move aside together, so they stay a pair.
    for extra in ["", "-wal", "-shm"] {
        let current = with(database, extra);
        if current.exists() {
            std::fs::rename(&current, with(database, &format!(".{suffix}{extra}")))?;
        }
    }
    std::fs::rename(&incoming, database)?;
    File::open(dir)?.sync_all()?;
    Ok(BackupSummary {
        file: database.display().to_string(),
        ..checked
    })
}
