//! What a large import reads of the enterprise's people — for the
//! unchanged-row filter and for matching rows in memory, in one pass — and
//! the leaver candidates the filter leaves behind.
//!
//! A night's full export of a million people changes a few thousand of them.
//! Matching every row against the users table (a random probe and a random
//! row read each, across tables far larger than the page cache) cost 40 s;
//! reading the people once in storage order and recognising the rows that
//! change nothing costs under a second. See `service::import::staged::unchanged`.

use rusqlite::{params_from_iter, Connection};

use crate::domain::{EnterpriseId, Role};

/// A person as the filter compares a row with them.
/// The text is as stored, in bytes: the filter only compares it.
pub struct KnownPerson<'a> {
    pub rowid: i64,
    pub id: &'a [u8],
    pub external_id: Option<&'a [u8]>,
    pub email: &'a [u8],
    pub name: &'a [u8],
    pub role: &'a [u8],
    pub store_id: Option<&'a [u8]>,
    pub active: bool,
}

/// Calls `each` for every person of the enterprise. An enterprise holding
/// most of the appliance's people is read by a scan of the table (0.22 s
/// for a million); another in the order of our ids, time-ordered like the
/// table's storage, so the table is still read nearly in order (by the
/// external-id index, every person cost a random read: 2.7 s for a million).
pub fn each_known_person(
    conn: &Connection,
    enterprise: EnterpriseId,
    mut each: impl FnMut(KnownPerson<'_>),
) -> rusqlite::Result<()> {
    let (staff, everyone): (i64, i64) = conn
        .prepare_cached(
            "SELECT coalesce(sum(total) FILTER (WHERE enterprise_account_id = ?1), 0),
                    coalesce(sum(total), 0)
               FROM staff_counts",
        )?
        .query_row([enterprise], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let sql = if staff.saturating_mul(2) >= everyone {
        "SELECT rowid, external_id, email, name, role, store_id, active, id FROM users NOT INDEXED
          WHERE enterprise_account_id = ?1"
    } else {
        "SELECT rowid, external_id, email, name, role, store_id, active, id FROM users
          WHERE enterprise_account_id = ?1 ORDER BY id"
    };
    let text = |e: rusqlite::types::FromSqlError| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    };
    let mut read = || {
        let mut statement = conn.prepare_cached(sql)?;
        let mut rows = statement.query([enterprise])?;
        while let Some(row) = rows.next()? {
            each(KnownPerson {
                rowid: row.get(0)?,
                external_id: row.get_ref(1)?.as_bytes_or_null().map_err(text)?,
                email: row.get_ref(2)?.as_bytes().map_err(text)?,
                name: row.get_ref(3)?.as_bytes().map_err(text)?,
                role: row.get_ref(4)?.as_bytes().map_err(text)?,
                store_id: row.get_ref(5)?.as_bytes_or_null().map_err(text)?,
                active: row.get(6)?,
                id: row.get_ref(7)?.as_bytes().map_err(text)?,
            });
        }
        Ok(())
    };
    if staff < LARGE_SCAN {
        return read();
    }
    // Each page is read once: in a full cache the pages of a million people
    // stayed beside the filter's table for the whole staging phase (the
    // night's full export peaked at 109 MiB; the later phases, which reuse
    // pages, have the whole cache back). A smaller enterprise's pages stay
    // cached: its next writes need them.
    super::with_page_cache(conn, super::SCAN_CACHE, read)
}

/// Enterprises with this many people are read with a small page cache.
const LARGE_SCAN: i64 = 20_000;

/// A person a row the filter had let through turns out to share a key with
/// another row: staged after all, with the values they hold (the row's own,
/// since it changed nothing).
pub struct UnchangedPerson {
    pub rowid: i64,
    pub id: String,
    pub external_id: Option<String>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub store_id: Option<String>,
}

/// The people with these row ids.
pub fn people_by_rowid(
    conn: &Connection,
    rowids: &[i64],
) -> rusqlite::Result<Vec<UnchangedPerson>> {
    let mut statement = conn.prepare_cached(
        "SELECT rowid, id, external_id, email, name, role, store_id FROM users WHERE rowid = ?1",
    )?;
    let mut people = Vec::with_capacity(rowids.len());
    for rowid in rowids {
        let found = statement.query_row([rowid], |row| {
            Ok(UnchangedPerson {
                rowid: row.get(0)?,
                id: row.get(1)?,
                external_id: row.get(2)?,
                email: row.get(3)?,
                name: row.get(4)?,
                role: row.get(5)?,
                store_id: row.get(6)?,
            })
        });
        match found {
            Ok(person) => people.push(person),
            Err(rusqlite::Error::QueryReturnedNoRows) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(people)
}

/// The row ids of the enterprise's people holding one of these emails.
pub fn rowids_with_emails(
    conn: &Connection,
    enterprise: EnterpriseId,
    emails: &[&str],
) -> rusqlite::Result<Vec<i64>> {
    let list = super::json_list(emails)?;
    let mut statement = conn.prepare_cached(
        "SELECT rowid FROM users
          WHERE enterprise_account_id = ?1 AND email IN (SELECT value FROM json_each(?2))",
    )?;
    let rows = statement.query_map(rusqlite::params![enterprise, list], |row| row.get(0))?;
    rows.collect()
}

/// Which active people a full export may deactivate: everyone no row names
/// (`Everyone`), or only the candidates the filter left (`Candidates`, in
/// `temp.leaver_candidates`): people it saw unchanged are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaverScope {
    Everyone,
    Candidates,
}

/// Records the people who may leave: those the filter did not see, by row
/// id (sorted: they go in in key order). The table is made with the
/// staging table.
pub fn set_leaver_candidates(conn: &Connection, rowids: &[i64]) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM temp.leaver_candidates")?
        .execute([])?;
    for chunk in rowids.chunks(500) {
        let placeholders = vec!["(?)"; chunk.len()].join(",");
        conn.prepare_cached(&format!(
            "INSERT OR IGNORE INTO temp.leaver_candidates (user_rowid) VALUES {placeholders}"
        ))?
        .execute(params_from_iter(chunk))?;
    }
    Ok(())
}

/// Gives the candidates' pages back.
pub fn clear_leaver_candidates(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM temp.leaver_candidates")?
        .execute([])?;
    Ok(())
}

/// Active people of the enterprise no valid row names.
pub fn unnamed_active(
    conn: &Connection,
    enterprise: EnterpriseId,
    scope: LeaverScope,
) -> rusqlite::Result<usize> {
    conn.query_row(
        &format!("SELECT count(*) {}", unnamed_staff(scope, true)),
        [enterprise],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| usize::try_from(n).unwrap_or(0))
}

/// The people a full export deactivates: active staff no row names
/// (`FROM … WHERE …`, the enterprise as ?1). With `valid_rows_only`, a person
/// only refused rows name counts as unnamed.
pub(super) fn unnamed_staff(scope: LeaverScope, valid_rows_only: bool) -> String {
    let from = match scope {
        LeaverScope::Everyone => "FROM users u WHERE u.enterprise_account_id = ?1",
        LeaverScope::Candidates => {
            "FROM temp.leaver_candidates c CROSS JOIN users u ON u.rowid = c.user_rowid
              WHERE u.enterprise_account_id = ?1"
        }
    };
    let valid = if valid_rows_only {
        "AND s.failed = 0"
    } else {
        ""
    };
    format!(
        "{from} AND u.role <> 'it_admin' AND u.active = 1
           AND NOT EXISTS (SELECT 1 FROM temp.staged_users s WHERE s.user_id = u.id {valid})"
    )
}

pub(super) fn leavers(scope: LeaverScope) -> String {
    unnamed_staff(scope, false)
}
