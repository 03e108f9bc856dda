//! Where an enterprise's files live. Below the drop root, `<slug>/incoming` is
//! the SFTP upload target and `<slug>/results` holds a report per file; below
//! the work root, `<enterprise id>/{processing,archive,failed,held}` are the
//! service's own, out of the SFTP accounts' reach. Both roots are on one
//! filesystem, so a claim is one atomic rename.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::domain::EnterpriseId;

#[derive(Debug, Clone)]
pub struct Folders {
    pub enterprise: EnterpriseId,
    pub incoming: PathBuf,
    pub results: PathBuf,
    pub processing: PathBuf,
    pub archive: PathBuf,
    pub failed: PathBuf,
    pub held: PathBuf,
}

impl Folders {
    /// The drop folder's name is the enterprise id (stable, unique, safe as a
    /// name) unless the operator named it; the work folders always use the id.
    pub fn of(config: &Config, enterprise: EnterpriseId) -> Folders {
        let drop = config
            .drop_root()
            .join(config.dropdir.folder_name(&enterprise.to_string()));
        let work = config.drop_work_root().join(enterprise.to_string());
        Folders {
            enterprise,
            incoming: drop.join("incoming"),
            results: drop.join("results"),
            processing: work.join("processing"),
            archive: work.join("archive"),
            failed: work.join("failed"),
            held: work.join("held"),
        }
    }

    /// The enterprise's folder as its SFTP account sees it (the chroot).
    pub fn drop_folder(&self) -> &Path {
        self.incoming.parent().unwrap_or(&self.incoming)
    }

    /// Creates what is missing, whoever made the rest (the operator may have
    /// made the drop folder by hand). `incoming/` is group-writable (the SFTP
    /// accounts share the service's group), `results/` group-readable, work
    /// folders private. The work folders come first: they are the service's
    /// own, and must exist even while the drop folder cannot be made.
    pub fn provision(&self) -> std::io::Result<()> {
        for (dir, mode) in [
            (&self.processing, 0o700),
            (&self.archive, 0o700),
            (&self.failed, 0o700),
            (&self.held, 0o700),
            (&self.incoming, 0o770),
            (&self.results, 0o750),
        ] {
            if !dir.is_dir() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(mode)
                    .create(dir)?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
            }
        }
        Ok(())
    }
}

/// Creates both roots and refuses to go on when they sit on different
/// filesystems: a claim would then be a copy, not an atomic rename.
pub fn check_roots(config: &Config) -> Result<(), String> {
    let drop = config.drop_root();
    let work = config.drop_work_root();
    for root in [&drop, &work] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(root)
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    }
    let device = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.dev())
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    if device(&drop)? != device(&work)? {
        return Err(format!(
            "dropdir.root ({}) and dropdir.work_root ({}) must be on the same filesystem",
            drop.display(),
            work.display()
        ));
    }
    Ok(())
}

/// Whether the service can still use the drop directory: a drop root it can
/// list and enter (on a Debian install it belongs to root, as OpenSSH's chroot
/// rules want, and the enterprises' folders inside are the service's), and a
/// work root it can write in.
pub fn root_usable(config: &Config) -> bool {
    let usable = |root: &Path, access: rustix::fs::Access| {
        std::fs::metadata(root).is_ok_and(|m| m.is_dir())
            && rustix::fs::access(root, access).is_ok()
    };
    usable(
        &config.drop_root(),
        rustix::fs::Access::READ_OK | rustix::fs::Access::EXEC_OK,
    ) && usable(
        &config.drop_work_root(),
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
    )
}

/// Whether `path` is on a network or FUSE filesystem, where inotify sees no
/// change made by another host: such a drop root is polled more often.
pub fn is_remote_filesystem(path: &Path) -> bool {
    const NFS: u32 = 0x6969;
    const CIFS: u32 = 0xFF53_4D42;
    const SMB2: u32 = 0xFE53_4D42;
    const SMB: u32 = 0x517B;
    const FUSE: u32 = 0x6573_5546;
    rustix::fs::statfs(path)
        .map(|stats| {
            // f_type's width and sign differ between targets; magic numbers are 32-bit.
            let kind = stats.f_type as u32;
            [NFS, CIFS, SMB2, SMB, FUSE].contains(&kind)
        })
        .unwrap_or(false)
}

/// A name safe to store and log: `[A-Za-z0-9._-]`, others replaced by `_`,
/// no leading dot or dash, at most 100 bytes.
pub fn safe_name(raw: &std::ffi::OsStr) -> String {
    let lossy = raw.to_string_lossy();
    let mut name: String = lossy
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while name.starts_with(['.', '-']) {
        name.replace_range(..1, "_");
    }
    name.truncate(100);
    if name.is_empty() {
        name.push_str("file");
    }
    name
}

/// A printable form of a name for people (escapes control characters).
pub fn display_name(raw: &std::ffi::OsStr) -> String {
    raw.to_string_lossy().escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn a_local_folder_is_not_remote() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_remote_filesystem(dir.path()));
        assert!(!is_remote_filesystem(Path::new("/no/such/folder")));
    }

    #[test]
    fn odd_names_become_safe_ones() {
        assert_eq!(safe_name(OsStr::new("users 2026.csv")), "users_2026.csv");
        assert_eq!(safe_name(OsStr::new("../etc/passwd")), "_._etc_passwd");
        assert_eq!(safe_name(OsStr::new("-rf")), "_rf");
        assert_eq!(safe_name(OsStr::from_bytes(b"caf\xe9.csv")), "caf_.csv");
        assert_eq!(safe_name(OsStr::new(&"a".repeat(300))).len(), 100);
        assert_eq!(display_name(OsStr::new("a\nb")), "a\\nb");
    }
}
