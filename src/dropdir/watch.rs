//! inotify (through `notify`) only wakes the scanner, and only for events that
//! mean a file arrived or a watched folder went away: the scanner's own reads
//! (IN_OPEN on the folder it lists, on the files it hashes) and the changes it
//! makes itself (a claim moves a file out, a marker is removed) must never wake
//! it, or it would wake itself for ever. Nothing is imported inside the callback.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use notify::event::{AccessKind, AccessMode, ModifyKind, RemoveKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

pub struct Wakeups {
    watcher: Option<RecommendedWatcher>,
    /// Watched folders and the inode they had, to notice a replaced folder.
    watched: HashMap<PathBuf, u64>,
    /// The same folders, read by the callback to tell a watched folder's own
    /// move from a file moved out of it.
    folders: Arc<RwLock<HashSet<PathBuf>>>,
}

/// Whether an event says something arrived that a scan must look at.
fn wakes(event: &Event, watched_folders: &RwLock<HashSet<PathBuf>>) -> bool {
    if event.need_rescan() {
        // The kernel queue overflowed: events were lost, only a scan can tell.
        return true;
    }
    let is_watched_folder = || {
        watched_folders
            .read()
            .is_ok_and(|set| event.paths.iter().any(|path| set.contains(path)))
    };
    match event.kind {
        // A new entry: an upload begins, a link or a legacy-SFTP rename lands.
        EventKind::Create(_) => true,
        // A writer closed the file: an in-place upload may be complete.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        // Renamed into the folder (the temporary-name upload's last step).
        EventKind::Modify(ModifyKind::Name(
            RenameMode::To | RenameMode::Both | RenameMode::Any,
        )) => true,
        // A move out of the folder is our own claim, unless the folder itself moved.
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => is_watched_folder(),
        // The watched folder was deleted: watch it anew once it is back.
        EventKind::Remove(RemoveKind::Folder | RemoveKind::Any | RemoveKind::Other) => {
            is_watched_folder()
        }
        EventKind::Other => true,
        // Opens and reads (ours), writes in progress (close-write follows),
        // metadata, a file removed (our marker, our claim): nothing to scan.
        _ => false,
    }
}

impl Wakeups {
    /// A watcher that sends one wake-up per burst of events (the channel holds one).
    pub fn new(wake: mpsc::Sender<()>, metrics: Arc<Metrics>) -> Wakeups {
        let folders = Arc::new(RwLock::new(HashSet::new()));
        let watched_folders = folders.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            let wake_up = match &event {
                Ok(event) => wakes(event, &watched_folders),
                // An error from the watcher may mean lost events: a scan tells.
                Err(_) => true,
            };
            if wake_up {
                metrics.dropdir_event(true);
                let _ = wake.try_send(());
            } else {
                metrics.dropdir_event(false);
            }
        });
        match watcher {
            Ok(watcher) => Wakeups {
                watcher: Some(watcher),
                watched: HashMap::new(),
                folders,
            },
            Err(e) => {
                tracing::warn!(error = %e, "no file-system events; the drop directory is polled only");
                Wakeups {
                    watcher: None,
                    watched: HashMap::new(),
                    folders,
                }
            }
        }
    }

    /// Watches `dir` unless it is watched already as the same folder; a folder
    /// removed and created again is watched anew.
    pub fn ensure(&mut self, dir: &Path) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let Ok(inode) = std::fs::metadata(dir).map(|m| m.ino()) else {
            return;
        };
        if self.watched.get(dir) == Some(&inode) {
            return;
        }
        let _ = watcher.unwatch(dir);
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf(), inode);
                if let Ok(mut folders) = self.folders.write() {
                    folders.insert(dir.to_path_buf());
                }
            }
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot watch; polling it"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_arrivals_wake_the_scanner() {
        let folders = RwLock::new(HashSet::from([PathBuf::from("/drop/e/incoming")]));
        let file = "/drop/e/incoming/users.csv";
        for (kind, expected) in [
            (EventKind::Access(AccessKind::Open(AccessMode::Any)), false),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                false,
            ),
            (EventKind::Access(AccessKind::Read), false),
            (
                EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any)),
                false,
            ),
            (
                EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::Any)),
                false,
            ),
            (EventKind::Remove(RemoveKind::File), false),
            (EventKind::Modify(ModifyKind::Name(RenameMode::From)), false),
            (EventKind::Create(notify::event::CreateKind::File), true),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                true,
            ),
            (EventKind::Modify(ModifyKind::Name(RenameMode::To)), true),
            (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), true),
        ] {
            assert_eq!(wakes(&event(kind, file), &folders), expected, "{kind:?}");
        }
        // The watched folder itself moved or deleted: a scan re-watches it.
        for kind in [
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Remove(RemoveKind::Folder),
        ] {
            assert!(wakes(&event(kind, "/drop/e/incoming"), &folders));
        }
        // The overflow "rescan" has no path.
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(wakes(&overflow, &folders));
    }
}
