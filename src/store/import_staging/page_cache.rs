//! The writer's page cache during a large import: widened for an import
//! whose rows the process holds already, limited for the passes that read or
//! sort more than it holds, and given back after each.

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

/// Page cache a row of an import takes, in bytes: the user in the table and
/// its indexes (main, measured: 100,000 new people stopped spilling to the
/// WAL at 64 MiB), the row in the staging table (temp).
const MAIN_CACHE_PER_ROW: i64 = 768;
const TEMP_CACHE_PER_ROW: i64 = 320;
/// The widest caches an import gets, in KiB: what a request body at the
/// imports' size limit (64 MiB, some 600,000 rows) holds in memory anyway.
const MAIN_CACHE_MAX_KIB: i64 = 96 * 1024;
const TEMP_CACHE_MAX_KIB: i64 = 32 * 1024;

/// Runs `work` (an import of `rows` rows the process already holds) with
/// page caches wide enough for its pages, then gives both caches their size
/// back. With the writer's fixed cache, 100,000 new people spill dirty pages
/// to the WAL mid-transaction and read them back, and their staged rows go
/// to the temp file and back: a fifth of the import's time. A stream of
/// unknown length keeps the fixed caches, which bound its memory. Never
/// narrows a cache.
pub fn with_caches_for_rows<T, E: From<rusqlite::Error>>(
    conn: &Connection,
    rows: usize,
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let rows = i64::try_from(rows).unwrap_or(i64::MAX);
    let kept_main = cache_size(conn, "main")?;
    let kept_temp = cache_size(conn, "temp")?;
    let wider = |kept: i64, per_row: i64, max_kib: i64| {
        let kib = rows.saturating_mul(per_row) / 1024;
        // Negative sizes are KiB, positive ones pages (4 KiB here).
        let kept_kib = if kept < 0 {
            -kept
        } else {
            kept.saturating_mul(4)
        };
        (kib.min(max_kib) > kept_kib).then_some(-kib.min(max_kib))
    };
    let main = wider(kept_main, MAIN_CACHE_PER_ROW, MAIN_CACHE_MAX_KIB);
    let temp = wider(kept_temp, TEMP_CACHE_PER_ROW, TEMP_CACHE_MAX_KIB);
    if let Some(size) = main {
        conn.execute_batch(&format!("PRAGMA main.cache_size = {size}"))?;
    }
    if let Some(size) = temp {
        conn.execute_batch(&format!("PRAGMA temp.cache_size = {size}"))?;
    }
    let outcome = work();
    // Narrowed inside the transaction (only its commit follows), the cache
    // keeps its dirty pages until then; the writer frees them after a bulk
    // import (`Db::release_writer_cache`).
    if main.is_some() {
        conn.execute_batch(&format!("PRAGMA main.cache_size = {kept_main}"))?;
    }
    if temp.is_some() {
        conn.execute_batch(&format!("PRAGMA temp.cache_size = {kept_temp}"))?;
    }
    outcome
}

fn cache_size(conn: &Connection, schema: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA {schema}.cache_size"), [], |r| r.get(0))
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

    #[test]
    fn an_import_held_in_memory_gets_caches_for_its_rows_and_gives_them_back() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA main.cache_size = -32768; PRAGMA temp.cache_size = -8192")
            .unwrap();
        let sizes = || {
            (
                cache_size(&conn, "main").unwrap(),
                cache_size(&conn, "temp").unwrap(),
            )
        };
        let during =
            with_caches_for_rows(&conn, 100_000, || Ok::<_, rusqlite::Error>(sizes())).unwrap();
        assert_eq!(during, (-75_000, -31_250));
        assert_eq!(sizes(), (-32768, -8192));
        // A small import never narrows them; a huge one gets at most the caps.
        let small = with_caches_for_rows(&conn, 10_000, || Ok::<_, rusqlite::Error>(sizes()));
        assert_eq!(small.unwrap(), (-32768, -8192));
        let huge = with_caches_for_rows(&conn, usize::MAX, || Ok::<_, rusqlite::Error>(sizes()));
        assert_eq!(huge.unwrap(), (-MAIN_CACHE_MAX_KIB, -TEMP_CACHE_MAX_KIB));
        let failed = with_caches_for_rows(&conn, 100_000, || {
            conn.execute_batch("SELECT * FROM no_such_table")
        });
        assert!(failed.is_err());
        assert_eq!(
            sizes(),
            (-32768, -8192),
            "a failed import leaves the caches as they were"
        );
    }
}
