//! The writer's page cache during a large import: widened while an import
//! whose rows the process holds already writes, limited for the passes that
//! read or sort more than it holds, and given back after each.

use rusqlite::Connection;

/// Page cache (and so sort buffer), in SQLite's units, while indexes are rebuilt.
pub(super) const INDEX_BUILD_CACHE: i64 = -8192;
/// The same, when a helper thread sorts beside the writer (see
/// [`with_sort_helper`]): each of the two holds a buffer this large.
pub(super) const SHARED_INDEX_BUILD_CACHE: i64 = -4096;
/// Page cache, in SQLite's units, while a large import reads everyone once.
pub(super) const SCAN_CACHE: i64 = -2048;

/// Runs `work` with the main database's page cache limited to `size` (in
/// `PRAGMA cache_size` units), then gives the cache its size back, whatever
/// `work` answered. Lowering the limit frees the clean pages beyond it.
pub(super) fn with_page_cache<T, E: From<rusqlite::Error>>(
    conn: &Connection,
    size: i64,
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let kept: i64 = conn.query_row("PRAGMA main.cache_size", [], |r| r.get(0))?;
    conn.execute_batch(&format!("PRAGMA main.cache_size = {size}"))?;
    let outcome = work();
    conn.execute_batch(&format!("PRAGMA main.cache_size = {kept}"))?;
    outcome
}

/// Runs `work` (the index rebuild after the insert of `people` new people)
/// with the page cache limited to `size`, as [`with_page_cache`] — unless
/// [`with_cache_for_writing`] widened it for this import's rows. Narrowed,
/// the cache would first write out the new people's dirty pages it holds
/// (to the WAL, and to a statement journal before that: a `CREATE UNIQUE
/// INDEX` may fail halfway) and read the table back from the WAL for each
/// index: 100,000 people's three indexes took 0.16–0.17 s narrowed, 0.12–0.13
/// s in the widened cache. Its sort buffer may then grow past `size`, to
/// the keys of a request body's rows (bounded by the body's size).
pub(super) fn with_index_build_cache<T>(
    conn: &Connection,
    size: i64,
    work: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let current: i64 = conn.query_row("PRAGMA main.cache_size", [], |r| r.get(0))?;
    if widened_for_writing(current) {
        return work();
    }
    with_page_cache(conn, size, work)
}

/// Whether a `PRAGMA cache_size` answer is wider than the writer's own cache.
fn widened_for_writing(cache_size: i64) -> bool {
    kib(cache_size) > crate::store::database::WRITER_CACHE_KIB
}

/// A `PRAGMA cache_size` value in KiB: negative sizes are KiB, positive
/// ones pages (4 KiB here).
fn kib(cache_size: i64) -> i64 {
    if cache_size < 0 {
        cache_size.saturating_neg()
    } else {
        cache_size.saturating_mul(4)
    }
}

/// Runs `work` (index builds) with one helper thread for SQLite's sorter:
/// while the writer reads the table on, the helper sorts and writes each
/// buffer it filled, and the two merge the runs together. Building the
/// users' three rebuilt indexes over a million people: 3.0–3.3 s alone with
/// 8 MiB buffers, 2.8 s with the helper and 4 MiB buffers — the same memory
/// (the sorter holds a buffer per thread, as large as the page cache). For
/// 100,000 people it is no faster: their keys sort in one 8 MiB buffer, in
/// memory. Only here: elsewhere the writer's sorts could hold a buffer per
/// thread of its whole cache.
pub(super) fn with_sort_helper<T>(
    conn: &Connection,
    work: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let kept: i64 = conn.query_row("PRAGMA threads", [], |r| r.get(0))?;
    conn.query_row("PRAGMA threads = 1", [], |r| r.get::<_, i64>(0))?;
    let outcome = work();
    conn.query_row(&format!("PRAGMA threads = {kept}"), [], |r| {
        r.get::<_, i64>(0)
    })?;
    outcome
}

/// Page cache, in SQLite's units, while a bulk import of a stream writes:
/// half the writer's own. A stream (a drop file, CLI input) may hold millions
/// of rows, and what it writes is mostly appended: the change events, the new
/// people and the keys of the indexes kept through the insert, pages the WAL
/// takes once filled. A million new people from a file went in as fast with
/// this cache as with the writer's 32 MiB (7.4-7.9 s against 7.3-7.8 s in
/// alternating rounds), and the import's peak RSS fell from 90-92 to 77-79 MiB.
const STREAM_WRITING_CACHE: i64 = -(crate::store::database::WRITER_CACHE_KIB / 2);

/// Runs `work` (writing the changes of a bulk import from a stream) with the
/// main page cache limited to [`STREAM_WRITING_CACHE`], then gives the cache
/// its size back. Never widens the cache.
pub fn with_cache_for_streaming<T, E: From<rusqlite::Error>>(
    conn: &Connection,
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let current: i64 = conn.query_row("PRAGMA main.cache_size", [], |r| r.get(0))?;
    if kib(current) <= kib(STREAM_WRITING_CACHE) {
        return work();
    }
    with_page_cache(conn, STREAM_WRITING_CACHE, work)
}

/// Page cache a person written takes, in bytes: the user in the table and
/// its indexes (measured: 100,000 new people stopped spilling to the WAL at
/// 64 MiB).
const CACHE_PER_PERSON_WRITTEN: i64 = 768;
/// The widest cache an import writes with, in KiB: what a request body at the
/// imports' size limit (64 MiB, some 600,000 rows) holds in memory anyway.
const MAX_WRITING_CACHE_KIB: i64 = 96 * 1024;

/// Runs `work` (writing `people` people of an import whose rows the process
/// holds already) with the main page cache wide enough for their pages,
/// then gives the cache its size back. With the writer's fixed cache,
/// 100,000 new people spill dirty pages to the WAL mid-transaction and read
/// them back: a tenth of the import's time. A stream of unknown length writes
/// with a narrower cache ([`with_cache_for_streaming`]), which bounds its
/// memory. Never narrows the cache.
pub fn with_cache_for_writing<T, E: From<rusqlite::Error>>(
    conn: &Connection,
    people: usize,
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let current: i64 = conn.query_row("PRAGMA main.cache_size", [], |r| r.get(0))?;
    let wanted_kib = i64::try_from(people)
        .unwrap_or(i64::MAX)
        .saturating_mul(CACHE_PER_PERSON_WRITTEN)
        / 1024;
    let size = wanted_kib.min(MAX_WRITING_CACHE_KIB);
    if size <= kib(current) {
        return work();
    }
    // Narrowed again inside the transaction (only its commit follows), the
    // cache keeps its dirty pages until then; the writer frees them after a
    // bulk import (`Db::release_writer_cache`).
    with_page_cache(conn, -size, work)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection whose main cache is the writer's (32 MiB).
    fn writer_like() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA main.cache_size = -32768")
            .unwrap();
        conn
    }

    fn main_cache_size(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA main.cache_size", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn the_page_cache_gets_its_size_back_whatever_the_work_answers() {
        let conn = writer_like();
        let size = || main_cache_size(&conn);
        let during =
            with_page_cache(&conn, SCAN_CACHE, || Ok::<_, rusqlite::Error>(size())).unwrap();
        assert_eq!(during, SCAN_CACHE);
        assert_eq!(size(), -32768);
        let failed = with_page_cache(&conn, INDEX_BUILD_CACHE, || {
            conn.execute_batch("SELECT * FROM no_such_table")
        });
        assert!(failed.is_err());
        assert_eq!(size(), -32768, "a failed step leaves the cache as it was");
    }

    #[test]
    fn an_index_rebuild_keeps_a_cache_widened_for_a_body_and_limits_any_other() {
        let conn = writer_like();
        let size = || main_cache_size(&conn);
        let during = with_index_build_cache(&conn, INDEX_BUILD_CACHE, || Ok(size())).unwrap();
        assert_eq!(
            during, INDEX_BUILD_CACHE,
            "the writer's own cache is limited"
        );
        assert_eq!(size(), -32768);
        let kept = with_cache_for_writing(&conn, 100_000, || {
            with_index_build_cache(&conn, INDEX_BUILD_CACHE, || Ok(size()))
        });
        assert_eq!(kept.unwrap(), -75_000, "a body's widened cache is kept");
        assert_eq!(size(), -32768);
    }

    #[test]
    fn index_builds_get_a_sort_helper_and_nothing_else_does() {
        let conn = Connection::open_in_memory().unwrap();
        let threads = || -> i64 { conn.query_row("PRAGMA threads", [], |r| r.get(0)).unwrap() };
        assert_eq!(threads(), 0);
        let during = with_sort_helper(&conn, || Ok(threads())).unwrap();
        assert_eq!(during, 1, "this SQLite has worker threads");
        assert_eq!(threads(), 0);
        let failed = with_sort_helper(&conn, || conn.execute_batch("SELECT * FROM no_such_table"));
        assert!(failed.is_err());
        assert_eq!(threads(), 0, "a failed build leaves the writer without it");
    }

    #[test]
    fn writing_many_people_widens_the_cache_for_them_and_gives_it_back() {
        let conn = writer_like();
        let size = || main_cache_size(&conn);
        let during = with_cache_for_writing(&conn, 100_000, || Ok::<_, rusqlite::Error>(size()));
        assert_eq!(during.unwrap(), -75_000);
        assert_eq!(size(), -32768);
        // A small import never narrows it; a huge one gets at most the cap.
        let small = with_cache_for_writing(&conn, 10_000, || Ok::<_, rusqlite::Error>(size()));
        assert_eq!(small.unwrap(), -32768);
        let huge = with_cache_for_writing(&conn, usize::MAX, || Ok::<_, rusqlite::Error>(size()));
        assert_eq!(huge.unwrap(), -MAX_WRITING_CACHE_KIB);
        let failed = with_cache_for_writing(&conn, 100_000, || {
            conn.execute_batch("SELECT * FROM no_such_table")
        });
        assert!(failed.is_err());
        assert_eq!(size(), -32768, "a failed step leaves the cache as it was");
    }

    #[test]
    fn a_stream_writes_with_half_the_writers_cache_and_gives_it_back() {
        let conn = writer_like();
        let size = || main_cache_size(&conn);
        let during = with_cache_for_streaming(&conn, || Ok::<_, rusqlite::Error>(size()));
        assert_eq!(during.unwrap(), STREAM_WRITING_CACHE);
        assert_eq!(size(), -32768);
        let failed =
            with_cache_for_streaming(&conn, || conn.execute_batch("SELECT * FROM no_such_table"));
        assert!(failed.is_err());
        assert_eq!(size(), -32768, "a failed step leaves the cache as it was");
        // A cache narrower already is left as it is.
        conn.execute_batch("PRAGMA main.cache_size = -2048")
            .unwrap();
        let narrow = with_cache_for_streaming(&conn, || Ok::<_, rusqlite::Error>(size()));
        assert_eq!(narrow.unwrap(), -2048);
    }
}
