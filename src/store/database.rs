use std::collections::HashMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::{migrations, StoreError};
use crate::domain::EnterpriseId;

mod writer;

use writer::{spawn_writer, WriteJob};

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub path: PathBuf,
    pub read_connections: usize,
    pub busy_timeout: Duration,
    /// How long one tenant's read ([`Db::read_for`]) may run before SQLite
    /// interrupts it.
    pub read_budget: Duration,
}

/// SQLite virtual-machine steps between two looks at a read's deadline and
/// its caller: a few microseconds of work, so an interruption is prompt.
const PROGRESS_STEPS: std::os::raw::c_int = 1000;

/// WAL size (pages) past which a commit wakes the checkpointer; SQLite's own default.
const CHECKPOINT_AFTER_PAGES: i32 = 1000;

/// Page cache of the writer connection, in KiB. Only
/// `import_staging::with_cache_for_writing` widens it, for a request body's rows.
pub(super) const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// The staging table's page cache (large imports), also its sort buffer.
const TEMP_CACHE_KIB: i64 = 8 * 1024;

type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

enum Message<J> {
    Job(J),
    Close,
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    options: DbOptions,
    writer: Mutex<Option<Sender<Message<WriteJob>>>>,
    /// Read jobs go to a few threads that each own a read-only connection and
    /// take the next job as soon as they finish one: under load they rarely
    /// park, where a hop through tokio's blocking pool per query would.
    readers: Mutex<Option<Sender<Message<ReadJob>>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Statements sent to SQLite through this handle; lets tests prove that a
    /// request was refused without touching the database.
    operations: AtomicU64,
    /// Read connections each enterprise may hold at once: all but one, so no
    /// enterprise's reads can leave another without a reader.
    fairness: Fairness,
}

/// Per-enterprise shares of the read connections.
struct Fairness {
    per_enterprise: usize,
    shares: Mutex<HashMap<EnterpriseId, Arc<tokio::sync::Semaphore>>>,
}

impl Fairness {
    fn new(readers: usize) -> Fairness {
        Fairness {
            per_enterprise: readers.saturating_sub(1).max(1),
            shares: Mutex::new(HashMap::new()),
        }
    }

    async fn enter(
        &self,
        enterprise: EnterpriseId,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, StoreError> {
        let share = {
            let mut shares = self.shares.lock().map_err(|_| StoreError::Closed)?;
            // Forget the enterprises that read nothing now (the map stays small).
            if shares.len() > 256 {
                shares.retain(|_, share| Arc::strong_count(share) > 1);
            }
            shares
                .entry(enterprise)
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_enterprise)))
                .clone()
        };
        share.acquire_owned().await.map_err(|_| StoreError::Closed)
    }
}

/// Tells a queued or running read that its caller is gone (the request was
/// cancelled, the client hung up): the reader skips it or interrupts it.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Prepared statements a connection keeps. The code caches some 160 distinct
/// ones, a users import about 40 of them: with rusqlite's default of 16, the
/// cache turned over within every import and each statement was parsed and
/// planned again.
const STATEMENT_CACHE: usize = 512;

fn configure(conn: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The query planner's stability guarantee: one plan per statement,
    // whatever is bound. Without it, a parameter beside the column of a
    // partial index (users have several) ties the plan to the value bound,
    // and SQLite prepares the statement again at every new binding — most of
    // a one-row import's time went to parsing.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

fn create_private_file(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // SQLite gives its -wal and -shm files the mode of the main file, so creating
    // it 0600 keeps every copy of the data private to the service user.
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
    } else {
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

fn open_reader_writer(options: &DbOptions) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        &options.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn, options.busy_timeout)?;
    Ok(conn)
}

fn open_reader(options: &DbOptions) -> Result<Connection, StoreError> {
    let conn = open_reader_writer(options)?;
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}

/// Copies the WAL back into the database beside the writer (a PASSIVE checkpoint
/// never blocks it), whenever a commit leaves the WAL past the threshold. Ends
/// when the writer drops its hook.
fn spawn_checkpointer(conn: Connection, wal_grew: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while wal_grew.recv().is_ok() {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        })
}

fn spawn_reader(
    index: usize,
    mut conn: Connection,
    jobs: Arc<Mutex<Receiver<Message<ReadJob>>>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("sqlite-reader-{index}"))
        .spawn(move || loop {
            // The lock is held while waiting, so idle readers line up behind it and
            // exactly one takes each job.
            let message = match jobs.lock() {
                Ok(receiver) => receiver.recv(),
                Err(_) => break,
            };
            match message {
                Ok(Message::Job(job)) => {
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                }
                Ok(Message::Close) | Err(_) => break,
            }
        })
}

impl Db {
    /// Opens (creating if needed) the database, applies migrations and starts the
    /// writer and reader threads.
    pub fn open(options: DbOptions) -> Result<Db, StoreError> {
        create_private_file(&options.path)?;
        let mut conn = Connection::open(&options.path)?;
        configure(&conn, options.busy_timeout)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "SQLite refused WAL mode (network filesystem?)");
        }
        // FULL: an acknowledged revocation or password change survives a power cut.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // A large import touches every page of the users table and its
        // indexes; with SQLite's 2 MiB default the writer spills dirty pages to
        // the WAL mid-transaction and reads them back. The cache only grows as
        // pages are used, so a small enterprise never pays for it.
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        // The bundled SQLite keeps TEMP tables in memory by default; a large
        // import's staging table must live in a temp file instead.
        conn.pragma_update(None, "temp_store", "FILE")?;
        conn.pragma_update(Some("temp"), "cache_size", -TEMP_CACHE_KIB)?;
        migrations::run(&mut conn)?;

        let mut threads = Vec::new();
        let (wal_grew, checkpoints) = mpsc::sync_channel(1);
        threads.push(spawn_checkpointer(
            open_reader_writer(&options)?,
            checkpoints,
        )?);
        // Replaces SQLite's automatic checkpoint, which copies the WAL back into the
        // database inside the commit that crosses the threshold, so the request
        // that happened to cross it waited for the copy and its fsync.
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= CHECKPOINT_AFTER_PAGES {
                let _ = wal_grew.try_send(());
            }
            Ok(())
        }))?;
        let (writer, write_jobs) = mpsc::channel();
        threads.push(spawn_writer(conn, write_jobs)?);
        let (readers, read_jobs) = mpsc::channel();
        let read_jobs = Arc::new(Mutex::new(read_jobs));
        for index in 0..options.read_connections.max(1) {
            threads.push(spawn_reader(
                index,
                open_reader(&options)?,
                read_jobs.clone(),
            )?);
        }
        let fairness = Fairness::new(options.read_connections.max(1));
        Ok(Db {
            inner: Arc::new(Inner {
                fairness,
                options,
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Some(readers)),
                threads: Mutex::new(threads),
                operations: AtomicU64::new(0),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.options.path
    }

    pub fn operation_count(&self) -> u64 {
        self.inner.operations.load(Ordering::SeqCst)
    }

    fn submit<J>(
        &self,
        queue: &Mutex<Option<Sender<Message<J>>>>,
        job: J,
    ) -> Result<(), StoreError> {
        let queue = queue.lock().map_err(|_| StoreError::Closed)?;
        let sender = queue.as_ref().ok_or(StoreError::Closed)?;
        self.inner.operations.fetch_add(1, Ordering::SeqCst);
        sender
            .send(Message::Job(job))
            .map_err(|_| StoreError::Closed)
    }

    /// Hands the writer's page cache back to the allocator once the queued work is
    /// done: a large import fills it, and an appliance that imports nightly
    /// should not hold that memory all day. Empties the staging tables first,
    /// which a bulk import leaves full at its commit: emptying 100,000 staged
    /// rows took 0.01 s of its answer.
    pub fn release_writer_cache(&self) {
        let job = WriteJob::Alone(Box::new(|conn: &mut Connection| {
            if let Err(e) = super::import_staging::clear_after_import(conn) {
                tracing::warn!(error = %e, "emptying the import staging tables failed");
            }
            if let Err(e) = conn.execute_batch("PRAGMA shrink_memory") {
                tracing::warn!(error = %e, "releasing the writer's page cache failed");
            }
        }));
        let _ = self.submit(&self.inner.writer, job);
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the writer thread:
    /// committed when it returns `Ok`, rolled back when it returns `Err`.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.write_transaction(work, false).await
    }

    /// Like [`Db::write`] for a transaction that writes much (a bulk
    /// import): a helper thread syncs the WAL as it grows and while it
    /// commits ([`super::wal_writeback`]), so that the commit's fsync finds
    /// little left to wait for.
    pub async fn write_large<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.write_transaction(work, true).await
    }

    async fn write_transaction<T, E, F>(&self, work: F, large: bool) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = WriteJob::Alone(Box::new(move |conn: &mut Connection| {
            let outcome = (|| {
                let txn = Transaction::new(conn, TransactionBehavior::Immediate)
                    .map_err(StoreError::from)?;
                let writeback = large
                    .then(|| super::wal_writeback::Writeback::start(&txn))
                    .flatten();
                let value = work(&txn)?;
                if let Some(writeback) = &writeback {
                    writeback.committing();
                }
                txn.commit().map_err(StoreError::from)?;
                Ok(value)
            })();
            let _ = reply.send(outcome);
        }));
        self.submit(&self.inner.writer, job)?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Like [`Db::write`] for many small concurrent writes (SCIM requests):
    /// writes queued together share one transaction and one commit (group
    /// commit), each in a savepoint of its own, so an `Err` undoes only its own
    /// work. Each answers once the shared commit is durable.
    pub async fn write_grouped<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let job = WriteJob::Grouped(Box::new(move |conn: Result<&Connection, StoreError>| {
            let outcome: Result<T, E> = match conn {
                Err(e) => Err(E::from(e)),
                Ok(conn) => match conn.execute_batch("SAVEPOINT grouped_write") {
                    Err(e) => Err(E::from(StoreError::from(e))),
                    Ok(()) => match work(conn) {
                        Ok(value) => conn
                            .execute_batch("RELEASE grouped_write")
                            .map(|()| value)
                            .map_err(|e| E::from(StoreError::from(e))),
                        Err(e) => {
                            let _ = conn
                                .execute_batch("ROLLBACK TO grouped_write; RELEASE grouped_write");
                            Err(e)
                        }
                    },
                },
            };
            Box::new(move |committed: Result<(), StoreError>| {
                // A write that failed answers with its own error, whatever
                // became of the others'.
                let _ = reply.send(match (outcome, committed) {
                    (Err(own), _) => Err(own),
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(shared)) => Err(E::from(shared)),
                });
            })
        }));
        self.submit(&self.inner.writer, job)?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs `work` on one of the read-only connections, off the async runtime.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.read_within(None, None, work).await
    }

    /// A read made for one enterprise's request: it waits for the
    /// enterprise's share of the readers, and is interrupted when it runs past
    /// `read_budget` or its caller goes away (`StoreError::ReadBudgetSpent`).
    pub async fn read_for<T, E, F>(&self, enterprise: EnterpriseId, work: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let share = self.inner.fairness.enter(enterprise).await?;
        self.read_within(Some(share), Some(self.inner.options.read_budget), work)
            .await
    }

    async fn read_within<T, E, F>(
        &self,
        share: Option<tokio::sync::OwnedSemaphorePermit>,
        budget: Option<Duration>,
        work: F,
    ) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancelled.clone());
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn: &mut Connection| {
            let _share = share;
            if cancelled.load(Ordering::Relaxed) {
                return;
            }
            let deadline = budget.map(|budget| std::time::Instant::now() + budget);
            let over = move || {
                cancelled.load(Ordering::Relaxed)
                    || deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline)
            };
            let stop = over.clone();
            if let Err(e) = conn.progress_handler(PROGRESS_STEPS, Some(stop)) {
                tracing::warn!(error = %e, "a read runs without its time budget");
            }
            let result = work(&*conn);
            if let Err(e) = conn.progress_handler(0, None::<fn() -> bool>) {
                tracing::warn!(error = %e, "removing a read's time budget failed");
            }
            // Whatever error the interrupted statement became, say why it stopped.
            let result = match result {
                Err(_) if over() => Err(E::from(StoreError::ReadBudgetSpent)),
                result => result,
            };
            let _ = reply.send(result);
        });
        self.submit(&self.inner.readers, job)?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Lets queued work finish, checkpoints the WAL and closes every connection.
    /// Later calls fail with [`StoreError::Closed`].
    pub fn close(&self) {
        let readers = self.inner.options.read_connections.max(1);
        if let Ok(mut queue) = self.inner.readers.lock() {
            if let Some(sender) = queue.take() {
                for _ in 0..readers {
                    let _ = sender.send(Message::Close);
                }
            }
        }
        if let Ok(mut queue) = self.inner.writer.lock() {
            if let Some(sender) = queue.take() {
                let _ = sender.send(Message::Close);
            }
        }
        if let Ok(mut threads) = self.inner.threads.lock() {
            for thread in threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    #[test]
    fn a_cached_statement_runs_again_without_being_prepared_again() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn, Duration::from_secs(1)).unwrap();
        migrations::run(&mut conn).unwrap();
        let sql = "SELECT count(*) FROM stores s JOIN users u ON u.store_id = s.id
                    WHERE u.enterprise_account_id = ?1 AND u.external_id = ?2";
        for n in 0..3 {
            let mut statement = conn.prepare_cached(sql).unwrap();
            let count: i64 = statement
                .query_row([format!("enterprise {n}"), format!("E{n}")], |r| r.get(0))
                .unwrap();
            assert_eq!(count, 0);
        }
        let statement = conn.prepare_cached(sql).unwrap();
        assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);
    }

    fn small_db(dir: &Path) -> Db {
        Db::open(DbOptions {
            path: dir.join("test.db"),
            read_connections: 1,
            busy_timeout: Duration::from_secs(1),
            read_budget: Duration::from_secs(1),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_large_write_commits_what_succeeds_and_nothing_of_what_fails() {
        let dir = tempfile::tempdir().unwrap();
        let db = small_db(dir.path());
        let insert = |txn: &Connection, rows: usize| -> Result<(), crate::AppError> {
            txn.execute_batch("CREATE TABLE IF NOT EXISTS big (b BLOB)")?;
            for _ in 0..rows {
                txn.execute("INSERT INTO big VALUES (zeroblob(4096))", [])?;
            }
            Ok(())
        };
        db.write_large(move |txn| insert(txn, 2_000)).await.unwrap();
        let failed = db
            .write_large(move |txn| {
                insert(txn, 100)?;
                Err::<(), _>(crate::AppError::Internal("stopped".into()))
            })
            .await;
        assert!(failed.is_err());
        let count = db
            .read(|conn| -> Result<i64, crate::AppError> {
                Ok(conn.query_row("SELECT count(*) FROM big", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(count, 2_000);
    }

    #[tokio::test]
    async fn giving_the_writer_cache_back_empties_the_staging_tables_an_import_left() {
        let dir = tempfile::tempdir().unwrap();
        let db = small_db(dir.path());
        // Before any import, there is nothing to empty.
        db.release_writer_cache();
        let staged = |fill: bool| {
            move |txn: &Transaction<'_>| -> Result<i64, crate::AppError> {
                if fill {
                    crate::store::import_staging::create(txn, true)?;
                    txn.execute_batch(
                        "INSERT INTO temp.staged_users (row, n_id, n_active) VALUES (0, 'p0', 1), (1, 'p1', 1);
                         INSERT INTO temp.leaver_candidates (user_rowid) VALUES (7);",
                    )?;
                }
                Ok(txn.query_row(
                    "SELECT (SELECT count(*) FROM temp.staged_users)
                          + (SELECT count(*) FROM temp.leaver_candidates)",
                    [],
                    |r| r.get(0),
                )?)
            }
        };
        assert_eq!(db.write(staged(true)).await.unwrap(), 3);
        db.release_writer_cache();
        assert_eq!(db.write(staged(false)).await.unwrap(), 0);
    }

    /// A write that finds no room, alone or grouped, says so: the client is
    /// told to retry later and the drop directory keeps the file for later,
    /// where an internal error would read as a bug.
    #[tokio::test]
    async fn a_write_that_finds_the_disk_full_is_storage_full() {
        let dir = tempfile::tempdir().unwrap();
        let db = small_db(dir.path());
        // SQLite's page limit fails a write the way a full disk does (SQLITE_FULL).
        db.write(|txn| -> Result<(), crate::AppError> {
            let pages: i64 = txn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            txn.pragma_update(None, "max_page_count", pages)?;
            Ok(())
        })
        .await
        .unwrap();
        let grow = |txn: &Connection| -> Result<(), crate::AppError> {
            txn.execute_batch("CREATE TABLE IF NOT EXISTS filler (b BLOB)")?;
            txn.execute("INSERT INTO filler VALUES (zeroblob(1048576))", [])?;
            Ok(())
        };
        let alone = db.write(move |txn| grow(txn)).await;
        assert!(
            matches!(alone, Err(crate::AppError::StorageFull(_))),
            "{alone:?}"
        );
        let grouped = db.write_grouped(move |txn| grow(txn)).await;
        assert!(
            matches!(grouped, Err(crate::AppError::StorageFull(_))),
            "{grouped:?}"
        );
    }

    /// A grouped write queued while a group runs joins that group's commit
    /// (and its fsync) rather than waiting for it and paying its own.
    #[tokio::test]
    async fn a_write_queued_while_a_group_runs_joins_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = small_db(dir.path());
        db.write(|txn| -> Result<(), crate::AppError> {
            txn.execute_batch("CREATE TABLE notes (text TEXT)")?;
            Ok(())
        })
        .await
        .unwrap();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let (go_on, queued) = std::sync::mpsc::channel::<()>();
        let first = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write_grouped(move |conn| -> Result<(), crate::AppError> {
                    conn.execute("INSERT INTO notes VALUES ('first')", [])?;
                    started.send(()).unwrap();
                    let _ = queued.recv();
                    Ok(())
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || running.recv().unwrap())
            .await
            .unwrap();
        let path = dir.path().join("test.db");
        let second = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write_grouped(move |conn| -> Result<i64, crate::AppError> {
                    conn.execute("INSERT INTO notes VALUES ('second')", [])?;
                    // Another connection sees what has been committed.
                    let outside = Connection::open(&path)?;
                    Ok(outside.query_row("SELECT count(*) FROM notes", [], |r| r.get(0))?)
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        go_on.send(()).unwrap();
        first.await.unwrap().unwrap();
        let committed_before_second = second.await.unwrap().unwrap();
        assert_eq!(
            committed_before_second, 0,
            "the first was not committed alone"
        );
        let written: i64 = db
            .read(|conn| -> Result<i64, crate::AppError> {
                Ok(conn.query_row("SELECT count(*) FROM notes", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(written, 2);
    }

    /// One write of a group finding the disk full makes SQLite roll the
    /// group's transaction back: the writes before it are lost with it and
    /// are told so; the group takes no write after it (a savepoint would start
    /// a transaction of its own, committed by its release), and the one queued
    /// behind runs in a group of its own.
    #[tokio::test]
    async fn a_group_rolled_back_by_sqlite_says_so_to_each_and_takes_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let db = small_db(dir.path());
        db.write(|txn| -> Result<(), crate::AppError> {
            txn.execute_batch("CREATE TABLE notes (text TEXT)")?;
            let pages: i64 = txn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            txn.pragma_update(None, "max_page_count", pages)?;
            Ok(())
        })
        .await
        .unwrap();
        // The writer waits while the three queue up: they go as one group.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let held = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |_| -> Result<(), crate::AppError> {
                    let _ = wait.recv();
                    Ok(())
                })
                .await
            })
        };
        let note = |text: &'static str| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write_grouped(move |conn| -> Result<(), crate::AppError> {
                    conn.execute("INSERT INTO notes VALUES (?1)", [text])?;
                    Ok(())
                })
                .await
            })
        };
        let before = note("before");
        let full = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write_grouped(|conn| -> Result<(), crate::AppError> {
                    conn.execute("INSERT INTO notes VALUES (zeroblob(1048576))", [])?;
                    Ok(())
                })
                .await
            })
        };
        let after = note("after");
        tokio::task::yield_now().await;
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        assert!(matches!(
            full.await.unwrap(),
            Err(crate::AppError::StorageFull(_))
        ));
        let told = before.await.unwrap();
        assert!(
            matches!(told, Err(crate::AppError::Unavailable(_))),
            "{told:?}"
        );
        after.await.unwrap().unwrap();
        let written: Vec<String> = db
            .read(|conn| -> Result<Vec<String>, crate::AppError> {
                let mut notes = conn.prepare("SELECT text FROM notes")?;
                let rows = notes.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(written, ["after"], "nothing of the group was written");
    }
}
