//! A large transaction's WAL written out while the transaction goes on and
//! while it commits.
//!
//! A million-person import appends some 670 MB to the WAL. The kernel starts
//! writing dirty pages out only past a tenth of the memory or after 30
//! seconds, so all of it would still be in memory at the commit, whose fsync
//! then waits for the whole of it while the disk sat idle during the seconds
//! of building indexes before. A helper thread syncs the WAL as it grows; the
//! commit's fsync finds only the last pages left. (PostgreSQL's
//! `backend_flush_after` does the same.)
//!
//! Through the commit too: SQLite writes the pages its cache still holds only
//! when committing — all of them for a request body's rows, whose cache is
//! widened to hold them (`import_staging::with_cache_for_writing`): 62 MB of
//! WAL for 100,000 new people, then one fsync for all of it. While the commit
//! writes, the helper syncs every few milliseconds, so the disk writes beside
//! it: the commit and the answer of those 100,000 took 148–173 ms without,
//! 118–136 ms with (four alternating runs each).
//!
//! Not all of it: when a transaction writes a page a second time after the
//! page went to the WAL (an import that rebuilds the users' indexes changes
//! the schema before its insert and after it), SQLite rewrites the frame in
//! place and, at the commit, the checksum of every frame after it — and those
//! go to disk again (`import_staging::apply` keeps that range to the index
//! rebuild). Measured on a million-row file: the commit took 640 ms without
//! the helper, 530 ms with it (before that range was narrowed).

use std::fs::File;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the helper syncs while the transaction writes: what the writer
/// appends in this time (some 15 MB while a large import writes) is what the
/// commit may find left.
const EVERY: Duration = Duration::from_millis(100);
/// How often it syncs once the commit has begun, which writes every page the
/// cache still holds as fast as the kernel takes them. Measured on 100,000
/// new people: every 20 ms saved nothing, every 5 ms 30 ms.
const WHILE_COMMITTING: Duration = Duration::from_millis(5);

/// A helper thread syncing a database's WAL until dropped (which waits for
/// its last sync): started with a large write transaction, told when its
/// commit begins.
pub struct Writeback {
    pace: Option<mpsc::Sender<()>>,
    helper: Option<JoinHandle<()>>,
}

impl Writeback {
    /// Starts syncing the WAL of `conn`'s database. `None` without a WAL file
    /// (a database in memory) or a thread: the commit makes the WAL durable
    /// anyway, this only spreads the writing.
    pub fn start(conn: &Connection) -> Option<Writeback> {
        let wal = wal_file(conn)?;
        let (pace, paced) = mpsc::channel::<()>();
        let helper = std::thread::Builder::new()
            .name("sqlite-wal-writeback".into())
            .spawn(move || sync_until_dropped(&wal, &paced))
            .ok()?;
        Some(Writeback {
            pace: Some(pace),
            helper: Some(helper),
        })
    }

    /// The commit begins: from now on the helper syncs every
    /// [`WHILE_COMMITTING`].
    pub fn committing(&self) {
        if let Some(pace) = &self.pace {
            let _ = pace.send(());
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        drop(self.pace.take());
        if let Some(helper) = self.helper.take() {
            let _ = helper.join();
        }
    }
}

fn sync_until_dropped(wal: &File, paced: &mpsc::Receiver<()>) {
    let mut every = EVERY;
    loop {
        match paced.recv_timeout(every) {
            Ok(()) => every = WHILE_COMMITTING,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if let Err(e) = wal.sync_data() {
            tracing::debug!(error = %e, "syncing the WAL ahead of the commit failed");
            return;
        }
    }
}

fn wal_file(conn: &Connection) -> Option<File> {
    let database = conn.path().filter(|path| !path.is_empty())?;
    File::open(format!("{database}-wal")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_syncs_beside_a_transaction_and_its_commit_until_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = Connection::open(dir.path().join("db.sqlite")).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB); BEGIN IMMEDIATE;")
            .expect("set up");
        let writeback = Writeback::start(&conn).expect("a WAL to sync");
        for _ in 0..2_000 {
            conn.execute("INSERT INTO t VALUES (zeroblob(4096))", [])
                .expect("insert");
        }
        writeback.committing();
        conn.execute_batch("COMMIT").expect("commit");
        let helper = writeback.helper.as_ref().expect("a helper thread");
        assert_eq!(helper.thread().name(), Some("sqlite-wal-writeback"));
        assert!(!helper.is_finished(), "the helper syncs until dropped");
        drop(writeback);
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(count, 2_000);

        let memory = Connection::open_in_memory().expect("open");
        assert!(Writeback::start(&memory).is_none(), "no WAL, no helper");
    }
}
