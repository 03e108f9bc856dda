//! inotify (through `notify`) only wakes the scanner: whatever the event,
//! including the path-less overflow "rescan", the answer is a scan. Nothing is
//! imported inside the callback.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

pub struct Wakeups {
    watcher: Option<RecommendedWatcher>,
    /// Watched folders and the inode they had, to notice a replaced folder.
    watched: HashMap<PathBuf, u64>,
}

impl Wakeups {
    /// A watcher that sends one wake-up per burst of events (the channel holds one).
    pub fn new(wake: mpsc::Sender<()>) -> Wakeups {
        let watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            let _ = wake.try_send(());
        });
        match watcher {
            Ok(watcher) => Wakeups {
                watcher: Some(watcher),
                watched: HashMap::new(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "no file-system events; the drop directory is polled only");
                Wakeups {
                    watcher: None,
                    watched: HashMap::new(),
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
            }
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot watch; polling it"),
        }
    }
}
