//! Opening a drop file safely: no link followed, never blocking on a FIFO,
//! checked through the open descriptor (so what is read is what was checked)
//! and read within the size limit.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::OFlags;

use super::Refusal;

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
