//! Which files in `incoming/` are ready. File-system events only wake the scan;
//! the listing is the truth, and readiness follows the completion policy.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use crate::config::CompletionPolicy;

pub use crate::dropfile::waiting::{is_temporary, marker_target, Waiting};

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
