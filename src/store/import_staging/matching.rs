//! Matching staged rows to the enterprise's people, and merging each match
//! into its row: by our id, by the row id the unchanged-row filter found, by
//! external id, by email.

use rusqlite::Connection;

use super::build_indexes;
use crate::domain::EnterpriseId;

/// What a row matched to person `u` leaves of them: the row's values over
/// the current ones, less the fields it empties; which fields change (all but
/// the manager, resolved later); and what later checks read of `u`. Every
/// expression reads the row as it was before the UPDATE. (SQLite's `|` and
/// `<<` bind alike, left to right: each bit has its own parentheses.)
const MERGE: &str = "
    user_id = u.id, n_id = u.id,
    n_email = coalesce(staged_users.n_email, u.email),
    n_name = coalesce(staged_users.n_name, u.name),
    n_role = coalesce(staged_users.n_role, u.role),
    n_store = CASE WHEN staged_users.clear & 1 THEN NULL ELSE coalesce(staged_users.n_store, u.store_id) END,
    n_ext = CASE WHEN staged_users.clear & 4 THEN NULL ELSE coalesce(staged_users.n_ext, u.external_id) END,
    n_active = coalesce(staged_users.active, u.active),
    n_manager = CASE WHEN staged_users.clear & 2 THEN NULL ELSE u.manager_id END,
    o_role = u.role, o_manager = u.manager_id, o_active = u.active,
    changed = (u.email IS NOT coalesce(staged_users.n_email, u.email))
        | ((u.name IS NOT coalesce(staged_users.n_name, u.name)) << 1)
        | ((u.role IS NOT coalesce(staged_users.n_role, u.role)) << 2)
        | ((u.store_id IS NOT CASE WHEN staged_users.clear & 1 THEN NULL
                                   ELSE coalesce(staged_users.n_store, u.store_id) END) << 3)
        | ((u.external_id IS NOT CASE WHEN staged_users.clear & 4 THEN NULL
                                      ELSE coalesce(staged_users.n_ext, u.external_id) END) << 5)
        | ((u.active IS NOT coalesce(staged_users.active, u.active)) << 6)";

/// Matches rows to the enterprise's people — by our id when the row gives
/// it, else by external id when it has one, else by email — and merges each
/// match (see [`MERGE`]) in the same pass. Each row probes the users'
/// indexes; only matched rows are written.
pub fn match_people(
    conn: &Connection,
    enterprise: EnterpriseId,
    keys: MatchKeys,
) -> rusqlite::Result<()> {
    let needed = [keys.ids, keys.person_rowids, keys.external_ids, keys.emails];
    for (sql, needed) in match_statements().iter().zip(needed) {
        // Each pass reads every staged row: a pass no row needs is skipped.
        if needed {
            conn.prepare_cached(sql)?.execute([enterprise])?;
        }
    }
    index_matches(conn)
}

/// The keys the valid rows are matched by, as far as staging saw them.
#[derive(Debug, Default, Clone, Copy)]
pub struct MatchKeys {
    /// Some row gives our id.
    pub ids: bool,
    /// Some row gives an external id (and no id).
    pub external_ids: bool,
    /// Some row gives an email alone.
    pub emails: bool,
    /// Some row carries the row id the unchanged-row filter found.
    pub person_rowids: bool,
}

/// The passes of [`match_people`]. `+` keeps the staged side of each
/// comparison off the staging table's indexes: with them, a one-row request
/// (a SCIM write) was planned as a scan of the enterprise's people probing
/// the staging table — every user read for every write. A row the
/// unchanged-row filter found a person for goes to that row id first (a
/// quarter faster than the external-id index for a re-sync's changed rows)
/// and matches only if the external id is the row's; any it leaves go by
/// the index.
pub(super) fn match_statements() -> [String; 4] {
    [
        "u.id = +staged_users.given_id AND staged_users.given_id IS NOT NULL",
        "u.rowid = +staged_users.person_rowid AND u.external_id = +staged_users.n_ext
             AND staged_users.given_id IS NULL AND staged_users.person_rowid IS NOT NULL",
        "u.external_id = +staged_users.n_ext AND staged_users.given_id IS NULL
             AND staged_users.user_id IS NULL",
        "u.email = +staged_users.n_email AND staged_users.given_id IS NULL AND staged_users.n_ext IS NULL",
    ]
    .map(|condition| {
        format!(
            "UPDATE temp.staged_users SET {MERGE} FROM users u
              WHERE u.enterprise_account_id = ?1 AND {condition} AND staged_users.failed = 0"
        )
    })
}

pub(super) fn merge_matched_statement() -> String {
    format!(
        "UPDATE temp.staged_users SET {MERGE} FROM users u
          WHERE staged_users.user_id IS NOT NULL AND u.id = +staged_users.user_id
            AND staged_users.failed = 0"
    )
}

/// Merges the matches made while staging (see [`MERGE`]).
pub fn merge_matched(conn: &Connection) -> rusqlite::Result<()> {
    index_matches(conn)?;
    conn.prepare_cached(&merge_matched_statement())?
        .execute([])?;
    Ok(())
}

/// Forgets the matches made while staging of rows refused since (repeated
/// keys): as when matching by a pass, which only matches valid rows, a
/// person only refused rows name is named by no row.
pub fn unmatch_failed(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE temp.staged_users SET user_id = NULL WHERE failed = 1 AND user_id IS NOT NULL",
    )?
    .execute([])?;
    Ok(())
}

/// Indexes the matches made while staging.
pub fn index_matches(conn: &Connection) -> rusqlite::Result<()> {
    build_indexes(conn, &["staged_users_user_id"])
}
