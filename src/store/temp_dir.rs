//! The folder of SQLite's temporary files (`database.temp_dir`).

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Makes `dir` ready for SQLite's temporary files (a large import's staging
/// table and index sorts hold people's names and emails): created if need be,
/// entered by the service alone, and writable — SQLite would otherwise pass
/// over it silently for the system's `/var/tmp`. The process then names it in
/// `SQLITE_TMPDIR` before any connection opens.
pub fn prepare_temp_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}
