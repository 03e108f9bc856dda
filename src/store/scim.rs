//! SCIM's view of the users and stores tables: people and stores as SCIM
//! resources (IT admins and tombstones left out). Filters become SQL in
//! `scim_filter`.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub use super::scim_filter::FilterSqlError;
use super::scim_filter::{Sql, Subject};
use super::ts;
use crate::domain::scim::filter::Filter;
pub use crate::domain::scim::groups::Member;
pub use crate::domain::scim::users::ScimUser;
use crate::domain::{EnterpriseId, Store, StoreId, UserId};

fn user_select() -> String {
    format!(
        "SELECT {}, user_name, scim_attributes,
                (SELECT s.name FROM stores s WHERE s.id = u.store_id),
                (SELECT s.external_id FROM stores s WHERE s.id = u.store_id)
           FROM users u",
        super::users::COLUMNS
    )
}

fn scim_user(row: &Row<'_>) -> rusqlite::Result<ScimUser> {
    Ok(ScimUser {
        user: super::users::from_row(row)?,
        user_name: row.get(13)?,
        attributes: row.get(14)?,
        store_name: row.get(15)?,
        store_external_id: row.get(16)?,
    })
}

/// The people SCIM shows: staff, not tombstoned.
const LIVE_USER: &str =
    "u.enterprise_account_id = ? AND u.role <> 'it_admin' AND u.scim_deleted_at IS NULL";
const LIVE_STORE: &str = "s.enterprise_account_id = ? AND s.scim_deleted_at IS NULL";

pub fn get_user(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: UserId,
) -> rusqlite::Result<Option<ScimUser>> {
    conn.prepare_cached(&format!("{} WHERE {LIVE_USER} AND u.id = ?", user_select()))?
        .query_row(params![enterprise, id], scim_user)
        .optional()
}

/// One page of people matching `filter`, in creation order (ids are
/// time-ordered), and how many match in all.
pub fn list_users(
    conn: &Connection,
    enterprise: EnterpriseId,
    filter: Option<&Filter>,
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<ScimUser>), ListError> {
    let mut sql = Sql::new(enterprise);
    match filter {
        Some(filter) => {
            sql.where_sql.push_str(" AND ");
            sql.filter(filter, &Subject::User)?;
        }
        // Everyone: the kept staff count less the tombstones, rather than a
        // count of the enterprise on every page.
        None => sql.known_total = Some(live_staff_count(conn, enterprise)?),
    }
    sql.page(
        conn,
        &user_select(),
        LIVE_USER,
        "u.id",
        offset,
        limit,
        scim_user,
    )
}

/// The staff SCIM shows: all of it but the tombstones.
fn live_staff_count(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<usize> {
    let staff = super::users::staff_counts(conn, enterprise)?.total;
    let tombstones: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM users WHERE enterprise_account_id = ?1
                AND scim_deleted_at IS NOT NULL AND role <> 'it_admin'",
        )?
        .query_row(params![enterprise], |row| row.get(0))?;
    Ok(usize::try_from(staff - tombstones).unwrap_or(0))
}

pub fn get_store(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: StoreId,
) -> rusqlite::Result<Option<Store>> {
    conn.prepare_cached(&format!(
        "SELECT {} FROM stores s WHERE {LIVE_STORE} AND s.id = ?",
        super::stores::COLUMNS
    ))?
    .query_row(params![enterprise, id], super::stores::from_row)
    .optional()
}

pub fn list_stores(
    conn: &Connection,
    enterprise: EnterpriseId,
    filter: Option<&Filter>,
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<Store>), ListError> {
    let mut sql = Sql::new(enterprise);
    if let Some(filter) = filter {
        sql.where_sql.push_str(" AND ");
        sql.filter(filter, &Subject::Group)?;
    }
    let select = format!("SELECT {} FROM stores s", super::stores::COLUMNS);
    sql.page(
        conn,
        &select,
        LIVE_STORE,
        "s.id",
        offset,
        limit,
        super::stores::from_row,
    )
}

/// The members of each of `stores`, in creation order.
pub fn members(
    conn: &Connection,
    enterprise: EnterpriseId,
    stores: &[StoreId],
) -> rusqlite::Result<Vec<Member>> {
    let ids: Vec<String> = stores.iter().map(|s| s.to_string()).collect();
    let list = serde_json::to_string(&ids)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let mut statement = conn.prepare_cached(
        "SELECT u.store_id, u.id, u.name FROM users u
          WHERE u.enterprise_account_id = ?1 AND u.store_id IN (SELECT value FROM json_each(?2))
            AND u.role <> 'it_admin' AND u.scim_deleted_at IS NULL
          ORDER BY u.store_id, u.id",
    )?;
    let rows = statement.query_map(params![enterprise, list], |row| {
        Ok(Member {
            store: row.get(0)?,
            user: row.get(1)?,
            name: row.get(2)?,
        })
    })?;
    rows.collect()
}

/// Which of `ids` are live staff of the enterprise (group members naming
/// anyone else are ignored).
pub fn live_staff(
    conn: &Connection,
    enterprise: EnterpriseId,
    ids: &[UserId],
) -> rusqlite::Result<Vec<UserId>> {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let list = serde_json::to_string(&ids)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let mut statement = conn.prepare_cached(
        "SELECT u.id FROM users u
          WHERE u.id IN (SELECT value FROM json_each(?2)) AND u.enterprise_account_id = ?1
            AND u.role <> 'it_admin' AND u.scim_deleted_at IS NULL",
    )?;
    let rows = statement.query_map(params![enterprise, list], |row| row.get(0))?;
    rows.collect()
}

/// The live person of the enterprise answering to `user_name`
/// (case-insensitively): by their SCIM userName, or by their email when SCIM
/// never named them.
pub fn user_name_owner(
    conn: &Connection,
    enterprise: EnterpriseId,
    user_name: &str,
) -> rusqlite::Result<Option<UserId>> {
    conn.prepare_cached(
        "SELECT id FROM users
          WHERE enterprise_account_id = ?1 AND user_name = ?2 COLLATE NOCASE
            AND scim_deleted_at IS NULL
         UNION ALL
         SELECT id FROM users
          WHERE enterprise_account_id = ?1 AND email = ?3 AND user_name IS NULL
            AND role <> 'it_admin' AND scim_deleted_at IS NULL
         LIMIT 1",
    )?
    .query_row(
        params![enterprise, user_name, user_name.trim().to_lowercase()],
        |row| row.get(0),
    )
    .optional()
}

/// The tombstone of the enterprise whose email is `email`, if any: a person
/// created again after a DELETE comes back as themselves.
pub fn tombstone_with_email(
    conn: &Connection,
    enterprise: EnterpriseId,
    email: &str,
) -> rusqlite::Result<Option<UserId>> {
    conn.prepare_cached(
        "SELECT id FROM users WHERE enterprise_account_id = ?1 AND email = ?2
            AND role <> 'it_admin' AND scim_deleted_at IS NOT NULL",
    )?
    .query_row(params![enterprise, email], |row| row.get(0))
    .optional()
}

/// Writes what SCIM keeps of a person and brings a tombstone back.
pub fn set_user_attributes(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: UserId,
    user_name: &str,
    attributes: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE users SET user_name = ?3, scim_attributes = ?4, scim_deleted_at = NULL
          WHERE enterprise_account_id = ?1 AND id = ?2",
    )?
    .execute(params![enterprise, id, user_name, attributes])?;
    Ok(())
}

pub fn tombstone_user(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: UserId,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE users SET scim_deleted_at = ?3 WHERE enterprise_account_id = ?1 AND id = ?2",
    )?
    .execute(params![enterprise, id, ts(now)])?;
    Ok(())
}

/// The live store of the enterprise named `name` (case-insensitively).
pub fn store_named(
    conn: &Connection,
    enterprise: EnterpriseId,
    name: &str,
) -> rusqlite::Result<Option<StoreId>> {
    conn.prepare_cached(
        "SELECT id FROM stores
          WHERE enterprise_account_id = ?1 AND name = ?2 COLLATE NOCASE
            AND scim_deleted_at IS NULL
          LIMIT 1",
    )?
    .query_row(params![enterprise, name], |row| row.get(0))
    .optional()
}

pub fn tombstone_store(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: StoreId,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE stores SET scim_deleted_at = ?3 WHERE enterprise_account_id = ?1 AND id = ?2",
    )?
    .execute(params![enterprise, id, ts(now)])?;
    Ok(())
}

pub fn revive_store(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: StoreId,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE stores SET scim_deleted_at = NULL WHERE enterprise_account_id = ?1 AND id = ?2",
    )?
    .execute(params![enterprise, id])?;
    Ok(())
}

#[derive(Debug)]
pub enum ListError {
    Filter(FilterSqlError),
    Sql(rusqlite::Error),
}

impl From<FilterSqlError> for ListError {
    fn from(e: FilterSqlError) -> Self {
        ListError::Filter(e)
    }
}

impl From<rusqlite::Error> for ListError {
    fn from(e: rusqlite::Error) -> Self {
        ListError::Sql(e)
    }
}
