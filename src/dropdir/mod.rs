//! The drop directory: files that legacy ERPs push over SFTP, imported exactly
//! once through the same import engine as the REST bulk imports.
//!
//! One task owns it. It is woken by file-system events, by a timer and on
//! request; each wake-up scans every enterprise's `incoming/`, claims what is
//! complete and runs the files one at a time (stores before users).

pub mod claim;
pub mod process;
mod recovery;
pub mod scan;
mod watch;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::domain::{text, EnterpriseId, FileState};
use crate::dropfile::{formats, layout};
use crate::metrics::WakeReason;
use crate::service::drop_files::{
    ClaimProblem, ClaimProblems, DropCommand, DropDirHandle, DropDirInbox,
};
use crate::service::Services;
use crate::store;
use crate::AppError;
use layout::Folders;
use process::Claimed;
use scan::{Found, Watchlist};

/// Scan period on NFS, SMB and FUSE, where inotify is blind to other hosts.
const REMOTE_SCAN_INTERVAL: Duration = Duration::from_secs(10);

/// Checks the roots, prepares every enterprise's folders, takes back files a
/// crash left in `processing/`, then watches and scans until stopped; the
/// services reach it through the handle.
pub async fn start(
    svc: Arc<Services>,
) -> Result<(DropDirHandle, tokio::task::JoinHandle<()>), String> {
    let config = svc.config.clone();
    tokio::task::spawn_blocking(move || layout::check_roots(&config))
        .await
        .map_err(|e| e.to_string())??;
    let (handle, inbox) = DropDirHandle::channel();
    let task = tokio::spawn(run(svc, inbox));
    Ok((handle, task))
}

struct State {
    svc: Arc<Services>,
    watchlists: HashMap<EnterpriseId, Watchlist>,
    wakeups: watch::Wakeups,
    /// Enterprises whose `processing/` may hold a file to take back: every one
    /// at start, then one whose file stopped on a service error (disk, database).
    to_recover: HashSet<EnterpriseId>,
    /// The last problem logged per enterprise's folders: a problem is logged
    /// when it starts or changes, and its end once, not at every scan.
    folder_problems: HashMap<EnterpriseId, String>,
    /// Earliest monotonic time a file under the quiet policy becomes ready.
    next_due: Option<Duration>,
    claim_problems: ClaimProblems,
}

/// Least time between two scans that file-system events start. A lone event
/// (a file renamed into `incoming/`) is answered at once; a burst (an upload
/// of many files, a client writing in small chunks) gets one scan at its
/// start and one per this gap while it goes on.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Waits, after an event, until [`DEBOUNCE`] has passed since the last scan
/// an event started (`None`: none yet).
async fn gather_events(last_event_scan: Option<tokio::time::Instant>) {
    if let Some(last) = last_event_scan {
        tokio::time::sleep_until(last + DEBOUNCE).await;
    }
}

async fn run(
    svc: Arc<Services>,
    DropDirInbox {
        mut commands,
        mut requests,
        claim_problems,
    }: DropDirInbox,
) {
    let (events, mut event_rx) = mpsc::channel(1);
    let mut state = State {
        wakeups: watch::Wakeups::new(events, svc.metrics.clone()),
        svc: svc.clone(),
        watchlists: HashMap::new(),
        to_recover: HashSet::new(),
        folder_problems: HashMap::new(),
        next_due: None,
        claim_problems,
    };
    // Watch first, then scan: a file arriving in between is seen by one or the other.
    state.prepare_folders().await;
    state.recover().await;
    let mut every = Duration::from_secs(svc.config.dropdir.scan_interval_secs);
    if layout::is_remote_filesystem(&svc.config.drop_root()) && every > REMOTE_SCAN_INTERVAL {
        tracing::warn!(
            root = %svc.config.drop_root().display(),
            "the drop root is on a network or FUSE filesystem, where file-system events miss \
             other hosts' uploads: scanning every 10 s"
        );
        every = REMOTE_SCAN_INTERVAL;
    }
    let mut last_event_scan = None;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The clock may be a test's: wait for what it says is left, in real time.
        let due_in = state
            .next_due
            .map(|due| due.saturating_sub(svc.clock.monotonic()));
        let (reply, reason) = tokio::select! {
            command = commands.recv() => match command {
                Some(DropCommand::ScanNow(reply)) => (Some(reply), WakeReason::Request),
                Some(DropCommand::Retry(enterprise, id, reply)) => {
                    let _ = reply.send(state.run_again(enterprise, &id, None).await);
                    continue;
                }
                Some(DropCommand::Approve(enterprise, id, by, reply)) => {
                    let _ = reply.send(state.run_again(enterprise, &id, Some(by)).await);
                    continue;
                }
                Some(DropCommand::Stop) | None => break,
            },
            Some(()) = event_rx.recv() => {
                gather_events(last_event_scan).await;
                // One scan answers every event until now.
                while event_rx.try_recv().is_ok() {}
                last_event_scan = Some(tokio::time::Instant::now());
                (None, WakeReason::Event)
            }
            Some(()) = requests.recv() => (None, WakeReason::Request),
            _ = ticks.tick() => (None, WakeReason::Timer),
            _ = tokio::time::sleep(due_in.unwrap_or_default()), if due_in.is_some() => {
                (None, WakeReason::Due)
            }
        };
        svc.metrics.dropdir_wakeup(reason);
        state.cycle().await;
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }
}

impl State {
    async fn enterprises(&self) -> Result<Vec<EnterpriseId>, AppError> {
        self.svc
            .db
            .read(|conn| store::enterprises::all_ids(conn).map_err(AppError::from))
            .await
    }

    /// Each enterprise on its own: one whose folders cannot be made yet does
    /// not keep the others from being watched.
    async fn prepare_folders(&mut self) {
        let enterprises = match self.enterprises().await {
            Ok(enterprises) => enterprises,
            Err(e) => {
                tracing::error!(error = %e, "listing the enterprises for the drop folders failed");
                return;
            }
        };
        for enterprise in enterprises {
            self.to_recover.insert(enterprise);
            let folders = Folders::of(&self.svc.settings(), enterprise);
            if self.provide(&folders).await {
                self.wakeups.ensure(&folders.incoming);
            } else {
                self.watch_for_folders(&folders);
            }
        }
    }

    /// Creates whatever folder is missing (the operator may have made some by
    /// hand); whether `incoming/` is there to be listed.
    async fn provide(&mut self, folders: &Folders) -> bool {
        let wanted = folders.clone();
        let provided = tokio::task::spawn_blocking(move || wanted.provision())
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        match provided {
            Ok(()) => {
                self.folder_state(folders, None);
                true
            }
            Err(e) => {
                self.folder_state(
                    folders,
                    Some(format!(
                        "creating the enterprise's drop folders failed ({e}); when the drop \
                         root belongs to root, create them as docs/sftp.md shows"
                    )),
                );
                false
            }
        }
    }

    /// While the operator has yet to make an enterprise's folders (the drop
    /// root is root's), watch where they will appear: the folder's creation,
    /// then its `incoming/`, wake a scan, so the first upload is seen at once
    /// rather than at the next periodic scan.
    fn watch_for_folders(&mut self, folders: &Folders) {
        self.wakeups.ensure(&self.svc.settings().drop_root());
        self.wakeups.ensure(folders.drop_folder());
    }

    /// Records (or clears) why a file stays in `incoming/`; a problem already
    /// known keeps the time it started.
    fn note_claim(&mut self, enterprise: EnterpriseId, name: &str, problem: Option<ClaimProblem>) {
        let Ok(mut problems) = self.claim_problems.lock() else {
            return;
        };
        let files = problems.entry(enterprise).or_default();
        match problem {
            Some(problem) => {
                let since = files.get(name).map_or(problem.since, |known| known.since);
                files.insert(name.to_string(), ClaimProblem { since, ..problem });
            }
            None => {
                files.remove(name);
            }
        }
        if files.is_empty() {
            problems.remove(&enterprise);
        }
    }

    /// Logs a folder problem when it starts or changes and its end once: a
    /// missing folder must not write a warning at every scan.
    fn folder_state(&mut self, folders: &Folders, problem: Option<String>) {
        let enterprise = folders.enterprise;
        match problem {
            Some(problem) => {
                if self.folder_problems.get(&enterprise) != Some(&problem) {
                    tracing::warn!(
                        %enterprise,
                        folder = %folders.drop_folder().display(),
                        "{problem}; its files wait"
                    );
                    self.folder_problems.insert(enterprise, problem);
                }
            }
            None => {
                if self.folder_problems.remove(&enterprise).is_some() {
                    tracing::info!(
                        %enterprise,
                        folder = %folders.drop_folder().display(),
                        "the enterprise's drop folder is usable again"
                    );
                }
            }
        }
    }

    async fn record_claim(
        &self,
        enterprise: EnterpriseId,
        claimed: &Claimed,
        original_name: &[u8],
        facts: FileFacts,
    ) -> Result<(), AppError> {
        let (id, display, stored, original) = (
            claimed.id.clone(),
            claimed.display_name.clone(),
            claimed.stored_name.clone(),
            original_name.to_vec(),
        );
        let now = self.svc.clock.now();
        self.svc
            .db
            .write(move |txn| {
                store::drop_files::insert_processing(
                    txn,
                    &store::drop_files::NewDropFile {
                        id: &id,
                        enterprise,
                        original_name: &original,
                        display_name: &display,
                        stored_name: &stored,
                        size_bytes: facts.size,
                        modified_at: facts.modified_at,
                        received_at: now,
                    },
                )
                .map_err(AppError::from)
            })
            .await
    }

    /// One scan of every enterprise's `incoming/`, each on its own: a file that
    /// stops on a service error (disk, database) holds up only its enterprise.
    async fn cycle(&mut self) {
        self.svc.metrics.dropdir_scan();
        self.recover().await;
        let enterprises = match self.enterprises().await {
            Ok(enterprises) => enterprises,
            Err(e) => {
                tracing::error!(error = %e, "listing the enterprises for a drop scan failed");
                return;
            }
        };
        self.next_due = None;
        for enterprise in enterprises {
            if let Err(e) = self.cycle_enterprise(enterprise).await {
                tracing::warn!(
                    %enterprise,
                    error = %e,
                    "the enterprise's drop files stopped on a service error; taken back at the \
                     next scan"
                );
                self.to_recover.insert(enterprise);
            }
        }
    }

    async fn cycle_enterprise(&mut self, enterprise: EnterpriseId) -> Result<(), AppError> {
        let folders = Folders::of(&self.svc.settings(), enterprise);
        // Each enterprise's own completion policy (its profile or the defaults).
        let settings = match crate::service::drop_config::settings_of(&self.svc, enterprise).await {
            Ok(settings) => settings,
            Err(e) => {
                tracing::warn!(%enterprise, error = %e, "cannot read the drop profile; its files wait");
                return Ok(());
            }
        };
        if !self.provide(&folders).await {
            self.watch_for_folders(&folders);
            return Ok(());
        }
        // Watch first, then list: a file arriving in between is seen by one or the other.
        self.wakeups.ensure(&folders.incoming);
        let now = self.svc.clock.monotonic();
        // The watchlist is lent to the blocking thread and taken back.
        let mut list = self.watchlists.remove(&enterprise).unwrap_or_default();
        let incoming = folders.incoming.clone();
        let (list, found) = tokio::task::spawn_blocking(move || {
            let found = list.scan(&incoming, settings.completion, settings.quiet, now);
            (list, found)
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
        if settings.completion == crate::config::CompletionPolicy::Quiet {
            if let Some(due) = list.next_due(settings.quiet, now) {
                self.next_due = Some(self.next_due.map_or(due, |d| d.min(due)));
            }
        }
        self.watchlists.insert(enterprise, list);
        let found = match found {
            Ok(found) => {
                self.folder_state(&folders, None);
                found
            }
            Err(e) => {
                self.folder_state(
                    &folders,
                    Some(format!("cannot list {}: {e}", folders.incoming.display())),
                );
                return Ok(());
            }
        };
        // Refusals first, then stores before users: users refer to stores.
        let rank = |found: &Found| match found {
            Found::Refuse(_) => 0,
            Found::Ready(name) => {
                match formats::Kind::of(&name.to_string_lossy(), &self.svc.config.dropdir) {
                    Some(formats::Kind::Stores) => 1,
                    Some(formats::Kind::Users) => 2,
                    None => 3,
                }
            }
        };
        let mut found = found;
        found.sort_by_key(rank);
        for entry in found {
            let name = match &entry {
                Found::Ready(name) | Found::Refuse(name) => name.clone(),
            };
            if let Some(list) = self.watchlists.get_mut(&enterprise) {
                list.forget(&name);
            }
            let id = uuid::Uuid::now_v7().to_string();
            let stored = format!("{id}__{}", layout::safe_name(&name));
            let (incoming, processing, raw, target) = (
                folders.incoming.clone(),
                folders.processing.clone(),
                name.clone(),
                stored.clone(),
            );
            let (facts, claimed) = tokio::task::spawn_blocking(move || {
                let facts = FileFacts::of(&incoming.join(&raw));
                (facts, claim::claim(&incoming, &raw, &processing, &target))
            })
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
            let shown_name = layout::display_name(&name);
            if let Err(e) = claimed {
                // A file deleted or renamed meanwhile is no news; anything else
                // keeps the file in incoming/ and must be seen.
                if e.kind() == std::io::ErrorKind::NotFound
                    && !folders.incoming.join(&name).exists()
                {
                    tracing::debug!(file = %shown_name, error = %e, "gone before its claim");
                    self.note_claim(enterprise, &shown_name, None);
                } else {
                    tracing::warn!(
                        %enterprise,
                        file = %shown_name,
                        error = %e,
                        "claiming a dropped file failed; it stays in incoming/ and is tried again \
                         at the next scan"
                    );
                    let problem = ClaimProblem {
                        reason: format!(
                            "the service cannot take the file from incoming/ ({e}); it tries \
                             again at every scan"
                        ),
                        size_bytes: facts.size,
                        since: self.svc.clock.now(),
                    };
                    self.note_claim(enterprise, &shown_name, Some(problem));
                }
                continue;
            }
            self.note_claim(enterprise, &shown_name, None);
            let claimed = Claimed {
                folders: folders.clone(),
                id,
                stored_name: stored,
                display_name: layout::display_name(&name),
            };
            self.record_claim(enterprise, &claimed, name.as_bytes(), facts)
                .await?;
            if let Some(marker) = marker_of(&folders.incoming, &name) {
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(marker)).await;
            }
            let (display, id) = (claimed.display_name.clone(), claimed.id.clone());
            if let Err(e) = process::process(&self.svc, claimed).await {
                self.note_waiting(&id, &e).await;
                return Err(AppError::Internal(format!("file {display}: {e}")));
            }
        }
        Ok(())
    }
}

/// What the directory entry said of a file when it was claimed.
struct FileFacts {
    size: u64,
    modified_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl FileFacts {
    /// Without following a link: the entry is judged as itself.
    fn of(path: &std::path::Path) -> FileFacts {
        let meta = std::fs::symlink_metadata(path).ok();
        FileFacts {
            size: meta.as_ref().map_or(0, |m| m.len()),
            modified_at: meta
                .and_then(|m| m.modified().ok())
                .map(chrono::DateTime::<chrono::Utc>::from),
        }
    }
}

fn marker_of(incoming: &std::path::Path, name: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    [".done", ".ok", ".DONE", ".OK"].iter().find_map(|suffix| {
        let mut marker = name.to_os_string();
        marker.push(suffix);
        let path = incoming.join(marker);
        path.exists().then_some(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_lone_event_is_scanned_at_once_and_a_burst_once_per_gap() {
        let first = Instant::now();
        gather_events(None).await;
        assert_eq!(first.elapsed(), Duration::ZERO, "the first event ever");

        let scanned = Instant::now();
        tokio::time::advance(Duration::from_millis(40)).await;
        gather_events(Some(scanned)).await;
        assert_eq!(
            scanned.elapsed(),
            DEBOUNCE,
            "an event 40 ms after a scan waits out the gap"
        );

        let scanned = Instant::now();
        tokio::time::advance(DEBOUNCE * 4).await;
        let woken = Instant::now();
        gather_events(Some(scanned)).await;
        assert_eq!(
            woken.elapsed(),
            Duration::ZERO,
            "an event long after the last scan"
        );
    }
}
