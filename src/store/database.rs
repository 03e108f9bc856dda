use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::{oneshot, Semaphore};

use super::{migrations, StoreError};

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub path: PathBuf,
    pub read_connections: usize,
    pub busy_timeout: Duration,
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum WriterMessage {
    Job(Job),
    Close,
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    options: DbOptions,
    writer: Mutex<Option<Sender<WriterMessage>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    read_permits: Arc<Semaphore>,
    /// Statements sent to SQLite through this handle; lets tests prove that a
    /// request was refused without touching the database.
    operations: AtomicU64,
}

fn configure(conn: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
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

impl Db {
    /// Opens (creating if needed) the database, applies migrations and starts the writer.
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
        migrations::run(&mut conn)?;

        let (sender, receiver) = mpsc::channel::<WriterMessage>();
        let writer_thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Ok(message) = receiver.recv() {
                    match message {
                        WriterMessage::Job(job) => {
                            // A panicking job must not take the only writer down with it;
                            // its transaction rolls back as the stack unwinds.
                            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                        }
                        WriterMessage::Close => break,
                    }
                }
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "final WAL checkpoint failed");
                }
                if let Err((_, e)) = conn.close() {
                    tracing::warn!(error = %e, "closing the database failed");
                }
            })?;

        let read_connections = options.read_connections.max(1);
        Ok(Db {
            inner: Arc::new(Inner {
                options,
                writer: Mutex::new(Some(sender)),
                writer_thread: Mutex::new(Some(writer_thread)),
                readers: Mutex::new(Vec::new()),
                read_permits: Arc::new(Semaphore::new(read_connections)),
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

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the writer thread:
    /// committed when it returns `Ok`, rolled back when it returns `Err`.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let outcome = (|| {
                let txn = Transaction::new(conn, TransactionBehavior::Immediate)
                    .map_err(StoreError::from)?;
                let value = work(&txn)?;
                txn.commit().map_err(StoreError::from)?;
                Ok(value)
            })();
            let _ = reply.send(outcome);
        });
        {
            let writer = self
                .inner
                .writer
                .lock()
                .map_err(|_| E::from(StoreError::Closed))?;
            let sender = writer.as_ref().ok_or(E::from(StoreError::Closed))?;
            self.inner.operations.fetch_add(1, Ordering::SeqCst);
            sender
                .send(WriterMessage::Job(job))
                .map_err(|_| E::from(StoreError::Closed))?;
        }
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs `work` on a read-only pooled connection in the blocking thread pool.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let permit = self
            .inner
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| E::from(StoreError::Closed))?;
        let inner = self.inner.clone();
        inner.operations.fetch_add(1, Ordering::SeqCst);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => inner.open_reader().map_err(E::from)?,
            };
            let value = work(&conn);
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            value
        })
        .await
        .map_err(|_| E::from(StoreError::Closed))?
    }

    /// Stops the writer after the queued work, checkpoints the WAL and closes
    /// every connection. Later calls fail with [`StoreError::Closed`].
    pub fn close(&self) {
        if let Ok(mut writer) = self.inner.writer.lock() {
            if let Some(sender) = writer.take() {
                let _ = sender.send(WriterMessage::Close);
            }
        }
        if let Ok(mut thread) = self.inner.writer_thread.lock() {
            if let Some(handle) = thread.take() {
                let _ = handle.join();
            }
        }
        self.inner.read_permits.close();
        if let Ok(mut pool) = self.inner.readers.lock() {
            pool.clear();
        }
    }
}

impl Inner {
    fn open_reader(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.options.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn, self.options.busy_timeout)?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(conn)
    }
}
