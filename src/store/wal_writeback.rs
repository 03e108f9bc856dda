//! A large transaction's WAL written out while the transaction goes on.
//!
//! A million-person import appends some 670 MB to the WAL. The kernel starts
//! writing dirty pages out only past a tenth of the memory or after 30
//! seconds, so all of it would still be in memory at the commit, whose fsync
//! then waits for the whole of it while the disk sat idle during the seconds
//! of building indexes before. A helper thread syncs the WAL as it grows; the
//! commit's fsync finds only the last pages left. (PostgreSQL's
//! `backend_flush_after` does the same.)
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
use std::time::Duration;

use rusqlite::Connection;

/// How often the helper syncs: what the writer appends in this time (some
/// 15 MB while a large import writes) is what the commit may find left.
const EVERY: Duration = Duration::from_millis(100);

/// Runs `work` (a large write in `conn`'s open transaction) with a helper
/// thread syncing the database's WAL every [`EVERY`] until `work` returns.
/// Without a WAL file (a database in memory) or a thread, `work` runs alone:
/// the commit makes the WAL durable anyway, this only spreads the writing.
pub fn during<T>(conn: &Connection, work: impl FnOnce() -> T) -> T {
    let Some(wal) = wal_file(conn) else {
        return work();
    };
    let (stop, stopped) = mpsc::channel::<()>();
    let helper = std::thread::Builder::new()
        .name("sqlite-wal-writeback".into())
        .spawn(move || {
            while stopped.recv_timeout(EVERY) == Err(RecvTimeoutError::Timeout) {
                if let Err(e) = wal.sync_data() {
                    tracing::debug!(error = %e, "syncing the WAL ahead of the commit failed");
                    return;
                }
            }
        });
    let outcome = work();
    drop(stop);
    if let Ok(helper) = helper {
        let _ = helper.join();
    }
    outcome
}

fn wal_file(conn: &Connection) -> Option<File> {
    let database = conn.path().filter(|path| !path.is_empty())?;
    File::open(format!("{database}-wal")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_runs_once_and_its_answer_comes_back_with_or_without_a_wal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = Connection::open(dir.path().join("db.sqlite")).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB); BEGIN IMMEDIATE;")
            .expect("set up");
        assert!(wal_file(&conn).is_some());
        let mut runs = 0;
        let written = during(&conn, || {
            runs += 1;
            for _ in 0..2_000 {
                conn.execute("INSERT INTO t VALUES (zeroblob(4096))", [])
                    .expect("insert");
            }
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        });
        conn.execute_batch("COMMIT").expect("commit");
        assert_eq!((runs, written.expect("count")), (1, 2_000));
        assert!(
            !helper_running(),
            "the helper ends with the work it ran beside"
        );

        let memory = Connection::open_in_memory().expect("open");
        assert!(wal_file(&memory).is_none());
        assert_eq!(during(&memory, || 7), 7);
    }

    /// Whether a thread of this process is the helper (no other test of
    /// this binary starts one).
    fn helper_running() -> bool {
        std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
            .any(|name| name.trim() == "sqlite-wal-writ")
    }
}
