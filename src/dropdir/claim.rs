//! Taking a file out of `incoming/`: an atomic rename that never replaces
//! anything, directories synced, then the file opened without following links
//! and checked through the open descriptor, so what is read is what was checked.

pub use crate::dropfile::open::{open_and_read, open_checked, read_within};
pub use crate::dropfile::Refusal;
use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;

use rustix::fs::{RenameFlags, CWD};

/// Renames `incoming/name` to `processing/stored` unless `stored` exists, then
/// makes both directory entries durable.
pub fn claim(
    incoming: &Path,
    name: &OsStr,
    processing: &Path,
    stored: &str,
) -> std::io::Result<()> {
    rustix::fs::renameat_with(
        CWD,
        incoming.join(name),
        CWD,
        processing.join(stored),
        RenameFlags::NOREPLACE,
    )?;
    sync_dir(processing)?;
    sync_dir(incoming)
}

/// Moves a file between two of the service's folders, durably.
pub fn move_file(from_dir: &Path, name: &str, to_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to_dir)?;
    rustix::fs::renameat_with(
        CWD,
        from_dir.join(name),
        CWD,
        to_dir.join(name),
        RenameFlags::NOREPLACE,
    )?;
    sync_dir(to_dir)?;
    sync_dir(from_dir)
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let (incoming, processing) = (dir.path().join("in"), dir.path().join("proc"));
        std::fs::create_dir_all(&incoming).unwrap();
        std::fs::create_dir_all(&processing).unwrap();
        std::fs::write(incoming.join("users.csv"), "new").unwrap();
        std::fs::write(processing.join("taken"), "old").unwrap();
        assert!(claim(&incoming, OsStr::new("users.csv"), &processing, "taken").is_err());
        assert_eq!(std::fs::read(processing.join("taken")).unwrap(), b"old");
        claim(&incoming, OsStr::new("users.csv"), &processing, "fresh").unwrap();
        assert!(!incoming.join("users.csv").exists());
    }

    #[test]
    fn links_fifos_and_large_files_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "do not read").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        assert_eq!(open_and_read(&link, 100), Err(Refusal::Symlink));
        let hard = dir.path().join("hard");
        std::fs::hard_link(&secret, &hard).unwrap();
        assert_eq!(open_and_read(&hard, 100), Err(Refusal::HardLinked(2)));
        std::fs::remove_file(&hard).unwrap();
        assert!(matches!(
            open_and_read(&secret, 3),
            Err(Refusal::TooLarge { .. })
        ));
        assert_eq!(open_and_read(&secret, 100).unwrap(), b"do not read");
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(open_and_read(&fifo, 100), Err(Refusal::NotRegular("FIFO")));
        assert_eq!(
            open_and_read(dir.path(), 100),
            Err(Refusal::NotRegular("directory"))
        );
    }
}
