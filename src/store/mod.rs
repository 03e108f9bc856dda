//! All SQL lives here, one module per table. [`Db`] owns the connections: one
//! writer on a dedicated thread (every write is a `BEGIN IMMEDIATE` transaction)
//! and a small pool of read-only connections, both used off the async runtime.

pub mod alerts;
pub mod api_keys;
pub mod audit_log;
pub mod backup;
pub mod change_batches;
mod database;
pub mod drop_files;
pub mod drop_profiles;
pub mod email_outbox;
pub mod enterprises;
pub mod import_staging;
mod list_query;
pub mod migrations;
pub mod notification_settings;
pub mod one_time_links;
pub mod refresh_tokens;
pub mod registration_tokens;
pub mod scim;
mod scim_filter;
pub mod stores;
pub mod sync_logs;
mod temp_dir;
pub mod users;
pub mod wal_writeback;
pub mod web_sessions;
pub mod webhooks;

pub use database::{Db, DbOptions};
pub use temp_dir::prepare_temp_dir;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Migration(#[from] refinery::Error),
    #[error("the database schema is version {found}, newer than this binary knows ({known}); run a newer enterprise-sync or restore a backup")]
    NewerSchema { found: i64, known: i64 },
    #[error("the database is closed")]
    Closed,
    /// A tenant's read ran past `database.read_budget_ms`, or its caller left.
    #[error("the query ran past its time budget")]
    ReadBudgetSpent,
    /// A shared (grouped) transaction failed to begin or commit; each write
    /// in it gets this copy of SQLite's message.
    #[error("the write transaction failed: {0}")]
    GroupedWrite(String),
    /// SQLite rolled a shared transaction back on another write's error (a
    /// full disk, an I/O error): nothing of the group was written.
    #[error("the shared write transaction was rolled back by SQLite after another write's error")]
    GroupRolledBack,
    /// A shared transaction found the disk full (see [`crate::AppError::StorageFull`]).
    #[error("the write transaction found the disk full: {0}")]
    StorageFull(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Rows that break a foreign key, found after the migrations.
    #[error("the database breaks a foreign key: {0}; restore a backup")]
    ForeignKeyBroken(String),
}

impl From<StoreError> for crate::AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Closed => crate::AppError::Unavailable("database is closed".into()),
            StoreError::ReadBudgetSpent => crate::AppError::QueryBudgetSpent,
            StoreError::Sqlite(e) => e.into(),
            StoreError::StorageFull(message) => crate::AppError::StorageFull(message),
            StoreError::GroupRolledBack => crate::AppError::Unavailable(
                "the shared write transaction was rolled back by SQLite after another write's error".into(),
            ),
            other => crate::AppError::Internal(other.to_string()),
        }
    }
}

/// A round trip to SQLite, for readiness checks.
pub fn ping(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT 1", [], |_| Ok(()))
}

/// Opens a database file read-only, for offline checks (`verify-audit`).
pub fn open_read_only(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// True when `e` is a UNIQUE constraint failure on an index whose name contains `index`.
pub fn is_unique_violation(e: &rusqlite::Error, index: &str) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(err, Some(message)) => {
            err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE && message.contains(index)
        }
        _ => false,
    }
}

/// Times are stored as RFC 3339 UTC with milliseconds, which sorts as text.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn parse_ts(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}
