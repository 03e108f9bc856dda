//! Which files in `incoming/` are ready. File-system events only wake the scan;
//! the listing is the truth, and readiness follows the completion policy.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use crate::config::CompletionPolicy;

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

/// What the scan saw of a file the last time it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

#[derive(Debug, Clone)]
struct Observation {
    snapshot: Snapshot,
    /// Monotonic time the snapshot was first seen unchanged from.
    stable_since: Duration,
}

/// An entry of `incoming/` the scan hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A complete regular file.
    Ready(OsString),
    /// Not a regular file (symlink, FIFO, directory, device, socket): to be
    /// moved aside unread, at once.
    Refuse(OsString),
}

/// Observations of one `incoming/` folder across scans.
#[derive(Debug, Default)]
pub struct Watchlist {
    seen: HashMap<OsString, Observation>,
}

impl Watchlist {
    /// Lists `incoming`, updates the observations and returns what is ready,
    /// in name order.
    pub fn scan(
        &mut self,
        incoming: &Path,
        policy: CompletionPolicy,
        quiet: Duration,
        now: Duration,
    ) -> std::io::Result<Vec<Found>> {
        let mut names = Vec::new();
        let mut present = std::collections::HashSet::new();
        for entry in std::fs::read_dir(incoming)? {
            let entry = entry?;
            let name = entry.file_name();
            present.insert(name.clone());
            names.push((name, entry.path()));
        }
        names.sort();
        let mut found = Vec::new();
        for (name, path) in &names {
            if is_temporary(name) || marker_target(name).is_some() {
                continue;
            }
            // symlink_metadata: a link is judged as a link, never followed.
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                continue;
            };
            if !meta.file_type().is_file() {
                found.push(Found::Refuse(name.clone()));
                continue;
            }
            let snapshot = Snapshot {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.size(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                ctime: (meta.ctime(), meta.ctime_nsec()),
            };
            let observation = self
                .seen
                .entry(name.clone())
                .or_insert_with(|| Observation {
                    snapshot: snapshot.clone(),
                    stable_since: now,
                });
            if observation.snapshot != snapshot {
                *observation = Observation {
                    snapshot,
                    stable_since: now,
                };
            }
            let ready = match policy {
                CompletionPolicy::Rename => true,
                CompletionPolicy::Marker => has_marker(&present, name),
                CompletionPolicy::Quiet => now.saturating_sub(observation.stable_since) >= quiet,
            };
            if ready {
                found.push(Found::Ready(name.clone()));
            }
        }
        self.seen.retain(|name, _| present.contains(name));
        Ok(found)
    }

    /// Under the quiet policy: the earliest time a file seen changing will have
    /// been quiet long enough, if one is still waiting for it. A file already
    /// quiet is not due again (a claim that failed waits for the next scan).
    pub fn next_due(&self, quiet: Duration, now: Duration) -> Option<Duration> {
        self.seen
            .values()
            .map(|observation| observation.stable_since + quiet)
            .filter(|due| *due > now)
            .min()
    }

    /// Forgets a file once it has been claimed.
    pub fn forget(&mut self, name: &OsStr) {
        self.seen.remove(name);
    }
}

fn has_marker(present: &std::collections::HashSet<OsString>, name: &OsStr) -> bool {
    [".done", ".ok", ".DONE", ".OK"].iter().any(|suffix| {
        let mut marker = name.to_os_string();
        marker.push(suffix);
        present.contains(&marker)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_and_markers_are_not_data() {
        for name in [
            "users.csv.filepart",
            ".users.csv",
            "users.csv.TMP",
            "~users.csv",
            "x.part",
        ] {
            assert!(is_temporary(OsStr::new(name)), "{name}");
        }
        assert!(!is_temporary(OsStr::new("users.csv")));
        assert_eq!(
            marker_target(OsStr::new("users.csv.done")),
            Some(OsStr::new("users.csv"))
        );
        assert_eq!(marker_target(OsStr::new("users.csv")), None);
    }

    #[test]
    fn a_file_is_ready_once_unchanged_for_the_quiet_period() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.csv");
        std::fs::write(&file, "email\n").unwrap();
        let mut list = Watchlist::default();
        let quiet = Duration::from_secs(30);
        let at = Duration::from_secs;
        let scan = |list: &mut Watchlist, now| {
            list.scan(dir.path(), CompletionPolicy::Quiet, quiet, now)
                .unwrap()
        };
        assert!(scan(&mut list, at(0)).is_empty());
        assert!(scan(&mut list, at(29)).is_empty());
        // Still growing: the clock starts again.
        std::fs::write(&file, "email\na@b.example\n").unwrap();
        assert!(scan(&mut list, at(31)).is_empty());
        assert!(scan(&mut list, at(60)).is_empty());
        assert_eq!(list.next_due(quiet, at(60)), Some(at(61)));
        assert_eq!(scan(&mut list, at(61)), [Found::Ready("users.csv".into())]);
        assert_eq!(list.next_due(quiet, at(61)), None);
    }

    #[test]
    fn the_marker_policy_waits_for_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.csv"), "email\n").unwrap();
        let mut list = Watchlist::default();
        let scan = |list: &mut Watchlist| {
            list.scan(
                dir.path(),
                CompletionPolicy::Marker,
                Duration::ZERO,
                Duration::ZERO,
            )
            .unwrap()
        };
        assert!(scan(&mut list).is_empty());
        std::fs::write(dir.path().join("users.csv.done"), "").unwrap();
        assert_eq!(scan(&mut list), [Found::Ready("users.csv".into())]);
    }

    #[test]
    fn links_and_fifos_are_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("users.csv")).unwrap();
        std::fs::create_dir(dir.path().join("stores.csv")).unwrap();
        let mut list = Watchlist::default();
        let found = list
            .scan(
                dir.path(),
                CompletionPolicy::Quiet,
                Duration::from_secs(30),
                Duration::ZERO,
            )
            .unwrap();
        assert_eq!(
            found,
            [
                Found::Refuse("stores.csv".into()),
                Found::Refuse("users.csv".into())
            ]
        );
    }
}
