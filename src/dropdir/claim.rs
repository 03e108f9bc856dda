//! Taking a file out of `incoming/`: an atomic rename that never replaces
//! anything, directories synced, then the file opened without following links
//! and checked through the open descriptor, so what is read is what was checked.

pub use crate::dropfile::Refusal;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{OFlags, RenameFlags, CWD};

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

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// Opens the claimed file (no links followed, never blocking on a FIFO), checks
/// it through the descriptor and reads it whole, within `limit` bytes.
pub fn open_and_read(path: &Path, limit: u64) -> Result<Vec<u8>, Refusal> {
    let (file, size) = open_checked(path, limit)?;
    read_within(file, size, limit)
}

/// Opens without following a link and checks the open file: a regular file
/// with one link, within the size limit. Answers it with its size.
pub fn open_checked(path: &Path, limit: u64) -> Result<(File, u64), Refusal> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, rustix::fs::Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => return Err(Refusal::Symlink),
        Err(e) => return Err(Refusal::Unreadable(e.to_string())),
    };
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(Refusal::NotRegular(kind_of(&meta)));
    }
    if meta.nlink() != 1 {
        return Err(Refusal::HardLinked(meta.nlink()));
    }
    if meta.len() > limit {
        return Err(Refusal::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    Ok((file, meta.len()))
}

/// Reads a checked file whole; one byte past the limit tells a file that grew
/// after the check.
pub fn read_within(mut file: File, size: u64, limit: u64) -> Result<Vec<u8>, Refusal> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.by_ref()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(Refusal::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
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
