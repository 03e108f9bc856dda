//! The single writer thread: runs each write job in turn, and grouped writes
//! (SCIM's) together in one transaction and one commit.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::Message;
use crate::store::StoreError;

/// Hands a grouped write its commit's outcome (and so its caller the answer).
pub(super) type Deliver = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A grouped write: runs in the shared transaction (or learns it could not
/// begin) and answers how to deliver the commit's outcome.
pub(super) type GroupedJob = Box<dyn FnOnce(Result<&Connection, StoreError>) -> Deliver + Send>;

pub(super) enum WriteJob {
    /// Runs in a transaction of its own (or none: PRAGMAs).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
    /// May share one transaction, and so one commit and one fsync, with the
    /// grouped writes queued behind it; runs in a savepoint of its own, so its
    /// failure undoes only its own work. Given an error when the shared
    /// transaction could not begin.
    Grouped(GroupedJob),
}
/// Grouped writes sharing one commit, at most.
const MAX_GROUPED_WRITES: usize = 64;

pub(super) fn spawn_writer(
    mut conn: Connection,
    jobs: Receiver<Message<WriteJob>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || {
            let mut held: Option<Message<WriteJob>> = None;
            loop {
                let message = match held.take() {
                    Some(message) => message,
                    None => match jobs.recv() {
                        Ok(message) => message,
                        Err(_) => break,
                    },
                };
                match message {
                    Message::Close => break,
                    Message::Job(WriteJob::Alone(job)) => {
                        // A panicking job must not take the only writer down with
                        // it; its transaction rolls back as the stack unwinds.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                    }
                    Message::Job(WriteJob::Grouped(first)) => {
                        held = run_group(&mut conn, first, &jobs);
                    }
                }
            }
            // Dropping the hook ends the checkpointer.
            if let Err(e) =
                conn.wal_hook(None::<fn(&mut rusqlite::hooks::Wal, i32) -> rusqlite::Result<()>>)
            {
                tracing::warn!(error = %e, "removing the WAL hook failed");
            }
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "final WAL checkpoint failed");
            }
            if let Err((_, e)) = conn.close() {
                tracing::warn!(error = %e, "closing the database failed");
            }
        })
}

/// Runs grouped writes in one `BEGIN IMMEDIATE` transaction, each in its own
/// savepoint, commits once, then tells each its outcome. After each write it
/// takes the next grouped write already queued (those that arrived while the
/// group ran too), so the writes that pile up behind one share the commit and
/// its fsync rather than each group waiting for the last one's. Answers the
/// first other message it met, for the caller to run next.
fn run_group(
    conn: &mut Connection,
    first: GroupedJob,
    jobs: &Receiver<Message<WriteJob>>,
) -> Option<Message<WriteJob>> {
    let txn = match Transaction::new(conn, TransactionBehavior::Immediate) {
        Ok(txn) => txn,
        Err(e) => {
            // The writes queued behind try again with a transaction of their own.
            let deliver = first(Err(shared_failure(&e)));
            deliver(Err(shared_failure(&e)));
            return None;
        }
    };
    let mut delivers = Vec::new();
    let mut held = None;
    let mut taken = 0;
    let mut next = Some(first);
    while let Some(job) = next.take() {
        taken += 1;
        match std::panic::catch_unwind(AssertUnwindSafe(|| job(Ok(&txn)))) {
            Ok(deliver) => delivers.push(deliver),
            // The job's savepoint is still open: undo its work, keep the rest.
            Err(_) => {
                let _ = txn.execute_batch("ROLLBACK TO grouped_write; RELEASE grouped_write");
            }
        }
        // SQLite rolls the whole transaction back itself when a write finds
        // the disk full or fails to read or write it: the writes before are
        // undone, and a savepoint opened now would start (and its release
        // commit) a transaction of its own, outside the group's outcome. The
        // group then takes no more; the writes queued go in the next one.
        if taken < MAX_GROUPED_WRITES && !txn.is_autocommit() {
            match jobs.try_recv() {
                Ok(Message::Job(WriteJob::Grouped(job))) => next = Some(job),
                Ok(other) => held = Some(other),
                Err(_) => {}
            }
        }
    }
    let failure = if txn.is_autocommit() {
        Some(StoreError::GroupRolledBack)
    } else {
        txn.commit().err().map(|e| shared_failure(&e))
    };
    for deliver in delivers {
        deliver(match &failure {
            None => Ok(()),
            Some(StoreError::GroupRolledBack) => Err(StoreError::GroupRolledBack),
            Some(StoreError::StorageFull(message)) => Err(StoreError::StorageFull(message.clone())),
            Some(StoreError::GroupedWrite(message)) => {
                Err(StoreError::GroupedWrite(message.clone()))
            }
            Some(other) => Err(StoreError::GroupedWrite(other.to_string())),
        });
    }
    held
}

/// Each grouped write's copy of the shared transaction's failure.
fn shared_failure(e: &rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        StoreError::StorageFull(e.to_string())
    } else {
        StoreError::GroupedWrite(e.to_string())
    }
}
