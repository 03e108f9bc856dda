//! The writer's page cache during a large import's passes that read or
//! sort more than it holds: limited for the pass, given back after.

use rusqlite::Connection;

/// Page cache (and so sort buffer), in SQLite's units, while indexes are rebuilt.
pub(super) const INDEX_BUILD_CACHE: i64 = -8192;
/// Page cache, in SQLite's units, while a large import reads everyone once.
pub(super) const SCAN_CACHE: i64 = -2048;

/// Runs `work` with the main database's page cache limited to `size` (in
/// `PRAGMA cache_size` units), then gives the cache its size back, whatever
/// `work` answered. Lowering the limit frees the clean pages beyond it.
pub(super) fn with_page_cache<T>(
    conn: &Connection,
    size: i64,
    work: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let kept: i64 = conn.query_row("PRAGMA main.cache_size", [], |r| r.get(0))?;
    conn.execute_batch(&format!("PRAGMA main.cache_size = {size}"))?;
    let outcome = work();
    conn.execute_batch(&format!("PRAGMA main.cache_size = {kept}"))?;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_cache_gets_its_size_back_whatever_the_work_answers() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA main.cache_size = -32768")
            .unwrap();
        let size = || -> i64 {
            conn.query_row("PRAGMA main.cache_size", [], |r| r.get(0))
                .unwrap()
        };
        let during = with_page_cache(&conn, SCAN_CACHE, || Ok(size())).unwrap();
        assert_eq!(during, SCAN_CACHE);
        assert_eq!(size(), -32768);
        let failed = with_page_cache(&conn, INDEX_BUILD_CACHE, || {
            conn.execute_batch("SELECT * FROM no_such_table")
        });
        assert!(failed.is_err());
        assert_eq!(size(), -32768, "a failed step leaves the cache as it was");
    }
}
