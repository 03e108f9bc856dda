//! What waits in an enterprise's folders, and which names are not data: the
//! scanner skips them and the metrics count around them.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Names producers write to before renaming, never taken: `*.filepart`,
/// `*.part`, `*.tmp`, `*.crdownload`, dotfiles and `~` backups.
pub fn is_temporary(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    let lower = bytes.to_ascii_lowercase();
    bytes.starts_with(b".")
        || bytes.starts_with(b"~")
        || [b".filepart".as_slice(), b".part", b".tmp", b".crdownload"]
            .iter()
            .any(|suffix| lower.ends_with(suffix))
}

/// `<file>.done` / `<file>.ok`: the marker policy's signal, not data.
pub fn marker_target(name: &OsStr) -> Option<&OsStr> {
    let bytes = name.as_bytes();
    let lower = bytes.to_ascii_lowercase();
    [b".done".as_slice(), b".ok"].iter().find_map(|suffix| {
        lower
            .ends_with(suffix)
            .then(|| OsStr::from_bytes(&bytes[..bytes.len() - suffix.len()]))
    })
}

/// Files waiting in one enterprise's folders: data files in `incoming/`
/// (uploads under temporary names and markers are not data) and runs in
/// `processing/`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub files: u64,
    /// Modification time of the oldest waiting file.
    pub oldest: Option<std::time::SystemTime>,
}

impl Waiting {
    /// Counts what waits in `incoming` and `processing`; a folder that does not
    /// exist holds nothing.
    pub fn survey(incoming: &Path, processing: &Path) -> std::io::Result<Waiting> {
        let mut waiting = Waiting::default();
        for folder in [incoming, processing] {
            let entries = match std::fs::read_dir(folder) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name();
                if is_temporary(&name) || marker_target(&name).is_some() {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.file_type().is_file() {
                    continue;
                }
                waiting.files += 1;
                if let Ok(modified) = meta.modified() {
                    waiting.oldest = Some(waiting.oldest.map_or(modified, |o| o.min(modified)));
                }
            }
        }
        Ok(waiting)
    }

    pub fn add(&mut self, other: Waiting) {
        self.files += other.files;
        self.oldest = match (self.oldest, other.oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}
