//! Refinery migrations embedded from `migrations/`, run before the listener binds.

use rusqlite::Connection;

use super::StoreError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The newest schema version this binary knows.
pub fn latest_known_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// The schema version recorded in a database.
pub fn applied_version(conn: &Connection) -> Result<i64, StoreError> {
    let has_history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refinery_schema_history')",
        [],
        |row| row.get(0),
    )?;
    if !has_history {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM refinery_schema_history",
        [],
        |row| row.get(0),
    )?)
}

/// Applies pending migrations; refuses a database written by a newer binary.
/// Returns the schema version after the run.
pub fn run(conn: &mut Connection) -> Result<i64, StoreError> {
    let known = latest_known_version();
    let found = applied_version(conn)?;
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .run(conn)?;
    for migration in report.applied_migrations() {
        tracing::info!(
            version = migration.version(),
            name = migration.name(),
            "applied migration"
        );
    }
    applied_version(conn)
}
