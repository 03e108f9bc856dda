//! The staging table of a large users import: rows are streamed into a TEMP
//! table (a file, not memory: see `Db`), then matched, checked and applied
//! with set-based statements, so a million rows cost a few sorted passes
//! instead of a million round trips and never sit in the process's memory.
//!
//! Columns: the row's report `key`; the `n_*` columns start as the row gives
//! them (`n_id` our new id, `n_store` the store resolved, `n_active` true when
//! not given) and, once a row is matched to `user_id`, become the user as the
//! row would leave them; `active` is the value given, `store_ref` a store
//! reference that named no store; `given_id` our id when the row names one
//! (SCIM), matched by it alone and created with it; `clear` the fields the
//! row empties (bits: 1 store, 2 manager, 4 external id); `verb` is what the
//! run records (`created` until a match says otherwise), `changed` which of
//! a matched person's fields the row changes (bits: 1 email, 2 name, 4 role,
//! 8 store, 16 manager, 32 external id, 64 active), and `o_*` what the
//! later checks need of the person as they are (role, manager, active), so
//! that only matching and merging join the users table; `person_rowid` the
//! users row the unchanged-row filter found by the row's external id (a
//! guess by hash, checked when matching).

use rusqlite::{params, Connection};

use super::ts;
use crate::domain::{EnterpriseId, RecordSyncMode};

mod apply;
mod known;
mod matching;
mod page_cache;

pub use page_cache::{with_cache_for_streaming, with_cache_for_writing};

use page_cache::*;

pub use apply::*;
pub use known::*;
pub use matching::*;

const CREATE_TABLE: &str = "
CREATE TEMP TABLE IF NOT EXISTS staged_users (
    row         INTEGER PRIMARY KEY,
    key         TEXT,
    store_ref   TEXT,
    manager_ref TEXT,
    active      INTEGER,
    failed      INTEGER NOT NULL DEFAULT 0,
    given_id    TEXT,
    clear       INTEGER NOT NULL DEFAULT 0,
    user_id     TEXT,
    n_id        TEXT NOT NULL,
    n_email     TEXT,
    n_name      TEXT,
    n_role      TEXT,
    n_store     TEXT,
    n_ext       TEXT,
    n_active    INTEGER NOT NULL,
    n_manager   TEXT,
    verb        TEXT NOT NULL DEFAULT 'created',
    changed     INTEGER NOT NULL DEFAULT 0,
    o_role      TEXT,
    o_manager   TEXT,
    o_active    INTEGER,
    person_rowid INTEGER,
    n_user_name TEXT,
    n_scim_attributes TEXT
);
CREATE TEMP TABLE IF NOT EXISTS leaver_candidates (user_rowid INTEGER PRIMARY KEY);";

/// The staging table's indexes, each built when a phase first needs it.
const INDEXES: [(&str, &str); 4] = [
    (
        "staged_users_user_id",
        "CREATE INDEX IF NOT EXISTS temp.staged_users_user_id ON staged_users (user_id) WHERE user_id IS NOT NULL",
    ),
    (
        "staged_users_n_id",
        "CREATE INDEX IF NOT EXISTS temp.staged_users_n_id ON staged_users (n_id)",
    ),
    (
        "staged_users_n_ext",
        "CREATE INDEX IF NOT EXISTS temp.staged_users_n_ext ON staged_users (n_ext) WHERE n_ext IS NOT NULL",
    ),
    (
        "staged_users_n_email",
        "CREATE INDEX IF NOT EXISTS temp.staged_users_n_email ON staged_users (n_email)",
    ),
];

/// An empty staging table on this connection. A `bulk` import drops the
/// table's indexes first: building them once its rows are in beats keeping
/// them up to date row by row. A small one (a SCIM write) keeps them, so it
/// runs no schema change at all — a schema change makes the connection
/// prepare every cached statement again.
pub fn create(conn: &Connection, bulk: bool) -> rusqlite::Result<()> {
    let emptied = conn
        .prepare_cached("DELETE FROM temp.staged_users")
        .and_then(|mut statement| statement.execute([]));
    if emptied.is_err() {
        conn.execute_batch(CREATE_TABLE)?;
    }
    if bulk {
        for (name, _) in INDEXES {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS temp.{name}"))?;
        }
    }
    Ok(())
}

fn build_indexes(conn: &Connection, names: &[&str]) -> rusqlite::Result<()> {
    for (name, sql) in INDEXES {
        if names.contains(&name) {
            conn.prepare_cached(sql)?.execute([])?;
        }
    }
    Ok(())
}

/// Gives the staging table's space back (its temp file shrinks with it).
pub fn clear(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM temp.staged_users")?
        .execute([])?;
    Ok(())
}

/// Empties both staging tables, if this connection has them: what a bulk
/// import leaves full, emptied after its commit (`Db::release_writer_cache`)
/// or, by a caller that commits later itself (SCIM), in its transaction.
pub fn clear_after_import(conn: &Connection) -> rusqlite::Result<()> {
    let staged: i64 = conn.query_row(
        "SELECT count(*) FROM temp.sqlite_master WHERE type = 'table' AND name = 'staged_users'",
        [],
        |r| r.get(0),
    )?;
    if staged > 0 {
        clear(conn)?;
        clear_leaver_candidates(conn)?;
    }
    Ok(())
}

/// A row as the adapter read it, normalised (trimmed, email lower-cased, role
/// `manager`/`seller` when valid, the store reference resolved), with the id
/// it gets if it creates a user.
pub struct StagedRow {
    pub row: usize,
    pub key: Option<String>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<&'static str>,
    /// The store the reference names, if it names one of the enterprise's.
    pub store_id: Option<String>,
    /// A reference that named no store.
    pub unknown_store: Option<String>,
    pub manager_ref: Option<String>,
    pub active: Option<bool>,
    pub new_id: String,
    /// Our id, when the row names the person by it.
    pub given_id: Option<String>,
    /// The fields the row empties (see the module's comment).
    pub clear: u8,
    pub failed: bool,
    /// The person the row matches, when matched while staging.
    pub user_id: Option<String>,
    /// The row id of the person whose external id the unchanged-row filter
    /// found this row's to be (by its hash: matching checks the id itself).
    pub person_rowid: Option<i64>,
    /// SCIM's, written with the person the row creates.
    pub scim_identity: Option<crate::domain::import::ScimIdentity>,
}

const ROWS_PER_INSERT: usize = 64;
const COLUMNS: usize = 17;

fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn insert_sql(rows: usize) -> String {
    let placeholders = vec![format!("({})", vec!["?"; COLUMNS].join(",")); rows].join(",");
    format!(
        "INSERT INTO temp.staged_users (row, key, store_ref, manager_ref, active, failed, n_id,
                                        n_email, n_name, n_role, n_store, n_ext, n_active, user_id,
                                        given_id, clear, person_rowid)
         VALUES {placeholders}"
    )
}

/// Appends rows, 64 to a statement, binding the rows' own text.
pub fn insert(conn: &Connection, rows: &[StagedRow]) -> rusqlite::Result<()> {
    // A million rows make 15,625 full statements: their text is written once.
    static FULL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut statement = if chunk.len() == ROWS_PER_INSERT {
            conn.prepare_cached(FULL.get_or_init(|| insert_sql(ROWS_PER_INSERT)))?
        } else {
            conn.prepare_cached(&insert_sql(chunk.len()))?
        };
        let mut index = 0;
        let mut bind = |value: &dyn rusqlite::ToSql| {
            index += 1;
            statement.raw_bind_parameter(index, value)
        };
        for r in chunk {
            bind(&int(r.row))?;
            bind(&r.key)?;
            bind(&r.unknown_store)?;
            bind(&r.manager_ref)?;
            bind(&r.active)?;
            bind(&r.failed)?;
            bind(&r.new_id)?;
            bind(&r.email)?;
            bind(&r.name)?;
            bind(&r.role)?;
            bind(&r.store_id)?;
            bind(&r.external_id)?;
            bind(&r.active.unwrap_or(true))?;
            bind(&r.user_id)?;
            bind(&r.given_id)?;
            bind(&r.clear)?;
            bind(&r.person_rowid)?;
        }
        statement.raw_execute()?;
        // Set apart: the rows of files and REST bodies bind no more columns.
        for r in chunk {
            if let Some(identity) = &r.scim_identity {
                conn.prepare_cached(
                    "UPDATE temp.staged_users SET n_user_name = ?2, n_scim_attributes = ?3
                      WHERE row = ?1",
                )?
                .execute(params![
                    int(r.row),
                    identity.user_name,
                    identity.attributes
                ])?;
            }
        }
    }
    Ok(())
}

pub fn mark_failed(conn: &Connection, row: usize) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE temp.staged_users SET failed = 1 WHERE row = ?1")?
        .execute([int(row)])?;
    Ok(())
}

/// A staged row a check refused: its index, its key for the report, and the
/// value the message names.
pub struct Flagged {
    pub row: usize,
    pub key: Option<String>,
    pub value: Option<String>,
}

fn flagged(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Flagged>> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, |row| {
        let index: i64 = row.get(0)?;
        Ok(Flagged {
            row: usize::try_from(index).unwrap_or(0),
            key: row.get(1)?,
            value: row.get(2)?,
        })
    })?;
    rows.collect()
}

/// Keys bound as one JSON array, read back with `json_each`.
fn json_list(keys: &[&str]) -> rusqlite::Result<String> {
    serde_json::to_string(keys).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// The report key: the external id given, else the email given (kept in `key`
/// only then, to keep the rows narrow).
const KEY: &str = "coalesce(s.key, s.n_ext)";

/// A staged row with the external id and email it gives.
pub type KeyedRow = (Flagged, Option<String>, Option<String>);

/// The rows giving one of `external_ids` or `emails` (as the rows give them),
/// in one scan: (row, report key, external id, email).
pub fn rows_with_keys(
    conn: &Connection,
    external_ids: &[&str],
    emails: &[&str],
) -> rusqlite::Result<Vec<KeyedRow>> {
    // Before matching, the n_ columns hold what the rows give.
    let mut statement = conn.prepare_cached(&format!(
        "SELECT row, {KEY}, n_ext, n_email FROM temp.staged_users s
          WHERE n_ext IN (SELECT value FROM json_each(?1))
             OR n_email IN (SELECT value FROM json_each(?2))
          ORDER BY row"
    ))?;
    let rows = statement.query_map([json_list(external_ids)?, json_list(emails)?], |row| {
        let index: i64 = row.get(0)?;
        Ok((
            Flagged {
                row: usize::try_from(index).unwrap_or(0),
                key: row.get(1)?,
                value: None,
            },
            row.get(2)?,
            row.get(3)?,
        ))
    })?;
    rows.collect()
}

/// Rows matching an IT administrator, which imports never change. Read
/// through the matches' index (matching builds it): to give rows in order
/// without a sort, the planner would read every staged row of a million-row
/// file that matched no one.
pub fn matching_admins(conn: &Connection) -> rusqlite::Result<Vec<Flagged>> {
    flagged(conn, &matching_admins_statement(), [])
}

fn matching_admins_statement() -> String {
    format!(
        "SELECT s.row, {KEY}, NULL FROM temp.staged_users s INDEXED BY staged_users_user_id
          WHERE s.user_id IS NOT NULL AND s.failed = 0 AND s.o_role = 'it_admin' ORDER BY s.row"
    )
}

/// Rows naming a person by our id whose external id belongs to someone else.
pub fn external_ids_taken(
    conn: &Connection,
    enterprise: EnterpriseId,
) -> rusqlite::Result<Vec<Flagged>> {
    flagged(conn, &external_ids_taken_statement(), [enterprise])
}

// The staged rows drive these joins (CROSS JOIN keeps them the outer loop):
// each probes the users' index for its key.
fn external_ids_taken_statement() -> String {
    format!(
        "SELECT s.row, {KEY}, s.n_ext FROM temp.staged_users s
           CROSS JOIN users u ON u.enterprise_account_id = ?1 AND u.external_id = +s.n_ext
          WHERE s.failed = 0 AND s.given_id IS NOT NULL AND u.id <> s.given_id
          ORDER BY s.row"
    )
}

/// Rows whose email belongs to someone else of the enterprise. A matched
/// row keeping its person's email is not looked up: emails are unique per
/// enterprise, so no one else holds it (a re-sync renaming 10,000 people
/// probed the email index 10,000 times for nothing).
pub fn emails_taken(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Vec<Flagged>> {
    flagged(conn, &emails_taken_statement(), [enterprise])
}

fn emails_taken_statement() -> String {
    format!(
        "SELECT s.row, {KEY}, s.n_email FROM temp.staged_users s
           CROSS JOIN users u ON u.enterprise_account_id = ?1 AND u.email = +s.n_email
          WHERE s.failed = 0 AND s.n_email IS NOT NULL AND (s.user_id IS NULL OR s.changed & 1)
            AND (s.user_id IS NULL OR u.id <> s.user_id)
          ORDER BY s.row"
    )
}

/// Rows that match someone (`existing`) or no one.
pub fn by_match(conn: &Connection, existing: bool) -> rusqlite::Result<Vec<Flagged>> {
    let condition = if existing { "IS NOT NULL" } else { "IS NULL" };
    flagged(
        conn,
        &format!(
            "SELECT row, {KEY}, NULL FROM temp.staged_users s WHERE failed = 0 AND user_id {condition} ORDER BY row"
        ),
        [],
    )
}

/// A row's problems among: a store reference naming no store, fields a new
/// user needs, a seller left without a store.
pub struct StoreAndFieldProblems {
    pub row: Flagged,
    pub unknown_store: Option<String>,
    pub missing: Vec<&'static str>,
    pub seller_without_store: bool,
}

/// The valid rows with one of those problems, in one scan (after matching,
/// so a matched row's store and role are what it leaves).
/// A seller may wait for a store unless `sellers_need_store` (identity
/// providers create a person first and add them to a group afterwards).
pub fn store_and_field_problems(
    conn: &Connection,
    sellers_need_store: bool,
) -> rusqlite::Result<Vec<StoreAndFieldProblems>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT row, {KEY}, store_ref,
                user_id IS NULL AND n_email IS NULL, user_id IS NULL AND n_name IS NULL,
                user_id IS NULL AND n_role IS NULL, ?1 AND n_role = 'seller' AND n_store IS NULL
           FROM temp.staged_users s
          WHERE failed = 0
            AND (store_ref IS NOT NULL
                 OR (user_id IS NULL AND (n_email IS NULL OR n_name IS NULL OR n_role IS NULL))
                 OR (?1 AND n_role = 'seller' AND n_store IS NULL))
          ORDER BY row"
    ))?;
    let rows = statement.query_map([sellers_need_store], |row| {
        let index: i64 = row.get(0)?;
        let missing = [("email", 3), ("name", 4), ("role", 5)]
            .into_iter()
            .filter_map(|(field, at)| match row.get::<_, bool>(at) {
                Ok(true) => Some(Ok(field)),
                Ok(false) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(StoreAndFieldProblems {
            row: Flagged {
                row: usize::try_from(index).unwrap_or(0),
                key: row.get(1)?,
                value: None,
            },
            unknown_store: row.get(2)?,
            missing,
            seller_without_store: row.get::<_, Option<bool>>(6)?.unwrap_or(false),
        })
    })?;
    rows.collect()
}

/// Indexes the keys manager references are resolved by (after matching, so
/// a bulk import builds them once, from sorted keys).
pub fn index_next_keys(conn: &Connection) -> rusqlite::Result<()> {
    build_indexes(
        conn,
        &[
            "staged_users_n_id",
            "staged_users_n_ext",
            "staged_users_n_email",
        ],
    )
}

/// Why a row's manager reference was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerRefusal {
    /// It names no one.
    Unknown,
    /// It names someone who is not a manager.
    NotAManager,
    /// It names the row's own person.
    Themselves,
}

/// One pass of manager resolution: each valid row's reference is looked up by
/// our id, then external id, then email — among the valid rows first, then
/// the enterprise's people (IT admins aside). Answers the rows refused, each
/// with its reference and why.
/// Only a pass without refusals sets the managers: a refused row may have
/// been someone else's manager.
pub fn resolve_managers(
    conn: &Connection,
    enterprise: EnterpriseId,
) -> rusqlite::Result<Vec<(Flagged, ManagerRefusal)>> {
    // (id, role) of the manager a reference names, as one "id|role" text.
    const FIND: &str = "coalesce(
        (SELECT m.n_id || '|' || m.n_role FROM temp.staged_users m WHERE m.failed = 0 AND m.n_id = s.manager_ref),
        (SELECT u.id || '|' || u.role FROM users u WHERE u.enterprise_account_id = ?1 AND u.role <> 'it_admin' AND u.id = s.manager_ref),
        (SELECT m.n_id || '|' || m.n_role FROM temp.staged_users m WHERE m.failed = 0 AND m.n_ext = s.manager_ref),
        (SELECT u.id || '|' || u.role FROM users u WHERE u.enterprise_account_id = ?1 AND u.role <> 'it_admin' AND u.external_id = s.manager_ref),
        (SELECT m.n_id || '|' || m.n_role FROM temp.staged_users m WHERE m.failed = 0 AND m.n_email = lower(trim(s.manager_ref))),
        (SELECT u.id || '|' || u.role FROM users u WHERE u.enterprise_account_id = ?1 AND u.role <> 'it_admin' AND u.email = lower(trim(s.manager_ref))))";
    let mut statement = conn.prepare_cached(&format!(
        "SELECT s.row, {KEY}, s.n_id, s.manager_ref, {FIND}
           FROM temp.staged_users s WHERE s.failed = 0 AND s.manager_ref IS NOT NULL ORDER BY s.row"
    ))?;
    let found = statement.query_map([enterprise], |row| {
        let index: i64 = row.get(0)?;
        Ok((
            usize::try_from(index).unwrap_or(0),
            row.get::<_, Option<String>>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut refused = Vec::new();
    let mut resolved = Vec::new();
    for entry in found {
        let (row, key, own_id, reference, manager) = entry?;
        let flagged = Flagged {
            row,
            key,
            value: Some(reference),
        };
        match manager.as_deref().and_then(|m| m.split_once('|')) {
            None => refused.push((flagged, ManagerRefusal::Unknown)),
            Some((_, role)) if role != "manager" => {
                refused.push((flagged, ManagerRefusal::NotAManager))
            }
            Some((id, _)) if id == own_id => refused.push((flagged, ManagerRefusal::Themselves)),
            Some((id, _)) => resolved.push((row, id.to_string())),
        }
    }
    if refused.is_empty() {
        let mut set =
            conn.prepare_cached("UPDATE temp.staged_users SET n_manager = ?2 WHERE row = ?1")?;
        for (row, id) in resolved {
            set.execute(params![int(row), id])?;
        }
    }
    Ok(refused)
}

/// Managers the rows would demote while people still report to them.
pub fn demoted_managers_with_staff(
    conn: &Connection,
    enterprise: EnterpriseId,
) -> rusqlite::Result<Vec<Flagged>> {
    flagged(
        conn,
        &format!("SELECT s.row, {KEY}, NULL FROM temp.staged_users s
          WHERE s.user_id IS NOT NULL AND s.failed = 0 AND s.o_role = 'manager' AND s.n_role <> 'manager'
            AND EXISTS (SELECT 1 FROM users x WHERE x.enterprise_account_id = ?1 AND x.manager_id = s.user_id)
          ORDER BY s.row"),
        [enterprise],
    )
}

/// Active people the rows deactivate.
pub fn deactivating(conn: &Connection) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "SELECT count(*) FROM temp.staged_users s
          WHERE s.user_id IS NOT NULL AND s.failed = 0 AND s.o_active = 1 AND s.n_active = 0",
    )?
    .query_row([], |row| row.get::<_, i64>(0))
    .map(|n| usize::try_from(n).unwrap_or(0))
}

/// Rows that make someone active (new, or inactive until now), in row order,
/// past the first `allowed`.
pub fn activations_beyond(conn: &Connection, allowed: usize) -> rusqlite::Result<Vec<Flagged>> {
    flagged(
        conn,
        &format!(
            "SELECT s.row, {KEY}, NULL FROM temp.staged_users s
          WHERE s.failed = 0 AND s.n_active = 1 AND coalesce(s.o_active, 0) = 0
          ORDER BY s.row LIMIT -1 OFFSET ?1"
        ),
        [int(allowed)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables a statement reads, outer loop first.
    fn loops(conn: &Connection, sql: &str) -> Vec<String> {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let parameters = std::iter::repeat_n(1, statement.parameter_count());
        let details = statement
            .query_map(rusqlite::params_from_iter(parameters), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap);
        details
            .filter(|d| d.starts_with("SCAN") || d.starts_with("SEARCH"))
            .collect()
    }

    #[test]
    fn staged_rows_drive_every_join_with_the_users_and_probe_their_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrations::run(&mut conn).unwrap();
        create(&conn, false).unwrap();
        let names: Vec<&str> = INDEXES.iter().map(|(name, _)| *name).collect();
        // A small request keeps every index of the staging table.
        build_indexes(&conn, &names).unwrap();
        let mut statements = match_statements().to_vec();
        statements.extend([
            merge_matched_statement(),
            external_ids_taken_statement(),
            emails_taken_statement(),
        ]);
        for sql in statements {
            let plan = loops(&conn, &sql);
            assert!(
                plan.first().is_some_and(|outer| {
                    let table = outer.split(' ').nth(1).unwrap_or_default();
                    let table = table.trim_start_matches("temp.");
                    table == "staged_users" || table == "s"
                }),
                "{plan:?} for {sql}"
            );
            let users: Vec<&String> = plan.iter().filter(|d| d.contains(" u ")).collect();
            assert!(
                users
                    .iter()
                    .all(|d| d.starts_with("SEARCH") && d.contains("=?")),
                "{plan:?} for {sql}"
            );
        }
    }

    #[test]
    fn the_admin_check_reads_the_matched_rows_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrations::run(&mut conn).unwrap();
        create(&conn, true).unwrap();
        index_matches(&conn).unwrap();
        let plan = loops(&conn, &matching_admins_statement());
        assert_eq!(
            plan,
            ["SEARCH s USING INDEX staged_users_user_id (user_id>?)"]
        );
    }

    fn row(row: usize, external_id: &str, person_rowid: Option<i64>) -> StagedRow {
        StagedRow {
            row,
            key: None,
            external_id: Some(external_id.into()),
            email: None,
            name: Some(format!("Renamed {external_id}")),
            role: None,
            store_id: None,
            unknown_store: None,
            manager_ref: None,
            active: None,
            new_id: format!("new-{row}"),
            given_id: None,
            clear: 0,
            failed: false,
            user_id: None,
            person_rowid,
            scim_identity: None,
        }
    }

    #[test]
    fn a_row_matches_by_its_external_id_whatever_row_id_the_filter_guessed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("match.db")).expect("open");
        crate::store::migrations::run(&mut conn).expect("migrate");
        conn.execute_batch(
            "INSERT INTO enterprise_accounts (id, company_name, company_email, sync_mode, created_at, updated_at)
                  VALUES ('019ac0de-7a11-7000-8000-0000000000e1', 'Acme', 'it@acme.example', 'api', 't', 't');
             INSERT INTO users (id, enterprise_account_id, email, name, role, external_id, sync_mode, created_at, updated_at)
                  VALUES ('u-a', '019ac0de-7a11-7000-8000-0000000000e1', 'a@acme.example', 'A', 'seller', 'A', 'api_sync', 't', 't'),
                         ('u-b', '019ac0de-7a11-7000-8000-0000000000e1', 'b@acme.example', 'B', 'seller', 'B', 'api_sync', 't', 't'),
                         ('u-c', '019ac0de-7a11-7000-8000-0000000000e1', 'c@acme.example', 'C', 'seller', 'C', 'api_sync', 't', 't');",
        )
        .expect("seed");
        let rowid = |id: &str| -> i64 {
            conn.query_row("SELECT rowid FROM users WHERE id = ?1", [id], |r| r.get(0))
                .expect("rowid")
        };
        let (a, b) = (rowid("u-a"), rowid("u-b"));
        create(&conn, true).expect("staging");
        // A right guess, a wrong one (the hash of another person's id), none,
        // and a guess for an external id no one has.
        insert(
            &conn,
            &[
                row(0, "A", Some(a)),
                row(1, "B", Some(a)),
                row(2, "C", None),
                row(3, "D", Some(b)),
            ],
        )
        .expect("stage");
        let enterprise: EnterpriseId = "019ac0de-7a11-7000-8000-0000000000e1".parse().expect("id");
        let keys = MatchKeys {
            external_ids: true,
            person_rowids: true,
            ..MatchKeys::default()
        };
        match_people(&conn, enterprise, keys).expect("match");
        let matched: Vec<(i64, Option<String>, i64)> = conn
            .prepare("SELECT row, user_id, changed FROM temp.staged_users ORDER BY row")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(
            matched,
            [
                (0, Some("u-a".to_string()), 2),
                (1, Some("u-b".to_string()), 2),
                (2, Some("u-c".to_string()), 2),
                (3, None, 0),
            ]
        );
    }
}
