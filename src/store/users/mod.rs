//! The users table: people of each enterprise (IT admins, managers, sellers).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::list_query::ListQuery;
use super::{parse_ts, ts};
use crate::domain::{EnterpriseId, RecordSyncMode, Role, StoreId, User, UserId};

mod logins;

pub use logins::*;

pub struct NewUser<'a> {
    pub id: UserId,
    pub enterprise_account_id: EnterpriseId,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub store_id: Option<StoreId>,
    pub manager_id: Option<UserId>,
    pub external_id: Option<&'a str>,
    pub sync_mode: RecordSyncMode,
    pub password_hash: Option<&'a str>,
    pub now: DateTime<Utc>,
}

pub fn insert(conn: &Connection, new: &NewUser<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO users (id, enterprise_account_id, email, name, role, store_id, manager_id,
                            external_id, sync_mode, active, password_hash, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11, ?11)",
    )?
    .execute(params![
        new.id,
        new.enterprise_account_id,
        new.email,
        new.name,
        new.role,
        new.store_id,
        new.manager_id,
        new.external_id,
        new.sync_mode,
        new.password_hash,
        ts(new.now)
    ])?;
    count_inserted(conn, std::slice::from_ref(new))
}

/// Adds inserted people (always active at insert; staff unless IT admins) to
/// the kept staff counts (V9), once per statement rather than a trigger per row.
fn count_inserted(conn: &Connection, users: &[NewUser<'_>]) -> rusqlite::Result<()> {
    let mut per_enterprise: Vec<(EnterpriseId, i64)> = Vec::new();
    for user in users.iter().filter(|u| u.role != Role::ItAdmin) {
        match per_enterprise
            .iter_mut()
            .find(|(e, _)| *e == user.enterprise_account_id)
        {
            Some((_, n)) => *n += 1,
            None => per_enterprise.push((user.enterprise_account_id, 1)),
        }
    }
    for (enterprise, added) in per_enterprise {
        add_to_staff_counts(conn, enterprise, added, added)?;
    }
    Ok(())
}

/// Moves the kept staff counts by `total` people, `active` of them active.
pub fn add_to_staff_counts(
    conn: &Connection,
    enterprise: EnterpriseId,
    total: i64,
    active: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE staff_counts SET total = total + ?2, active = active + ?3
          WHERE enterprise_account_id = ?1",
    )?
    .execute(params![enterprise, total, active])?;
    Ok(())
}

pub(crate) const COLUMNS: &str =
    "id, enterprise_account_id, email, name, role, store_id, manager_id, external_id,
                       sync_mode, active, created_at, updated_at, deactivated_at";

/// [`COLUMNS`] of a `users` table named `u`.
const QUALIFIED_COLUMNS: &str =
    "u.id, u.enterprise_account_id, u.email, u.name, u.role, u.store_id, u.manager_id,
     u.external_id, u.sync_mode, u.active, u.created_at, u.updated_at, u.deactivated_at";

/// Reads the columns of `COLUMNS`, by position.
pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let created: String = row.get(10)?;
    let updated: String = row.get(11)?;
    let deactivated: Option<String> = row.get(12)?;
    Ok(User {
        id: row.get(0)?,
        enterprise_account_id: row.get(1)?,
        email: row.get(2)?,
        name: row.get(3)?,
        role: row.get(4)?,
        store_id: row.get(5)?,
        manager_id: row.get(6)?,
        external_id: row.get(7)?,
        sync_mode: row.get(8)?,
        active: row.get(9)?,
        created_at: parse_ts(&created).unwrap_or_default(),
        updated_at: parse_ts(&updated).unwrap_or_default(),
        deactivated_at: deactivated.as_deref().and_then(parse_ts),
    })
}

pub fn get(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: UserId,
) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users WHERE enterprise_account_id = ?1 AND id = ?2"
    ))?
    .query_row(params![enterprise, id], from_row)
    .optional()
}

/// Staff directory filters; IT admins are not part of the directory.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub active: Option<bool>,
    pub role: Option<Role>,
    pub store_id: Option<StoreId>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    /// Part of the name, email or external id, any case (the dashboard's
    /// search box): a scan of the enterprise's staff.
    pub search: Option<String>,
}

/// One page in id order (ids are time-ordered), starting after `after`.
pub fn list(
    conn: &Connection,
    enterprise: EnterpriseId,
    filter: &UserFilter,
    after: Option<UserId>,
    limit: usize,
) -> rusqlite::Result<Vec<User>> {
    ListQuery::new(&format!("SELECT {COLUMNS} FROM users"), enterprise)
        .condition("role <> 'it_admin'")
        .equals("active", filter.active)
        .equals("role", filter.role.map(|r| r.as_str().to_string()))
        .equals("store_id", filter.store_id.map(|s| s.to_string()))
        .equals("external_id", filter.external_id.clone())
        .equals("email", filter.email.clone())
        .compare_opt(
            "instr(lower(name || ' ' || email || ' ' || coalesce(external_id, '')), ?) > 0",
            filter.search.as_ref().map(|s| s.to_lowercase()),
        )
        .compare_opt("id > ?", after.map(|a| a.to_string()))
        .fetch(conn, "id", limit, from_row)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaffCounts {
    pub total: i64,
    pub active: i64,
}

/// The enterprise's staff and active staff, kept by triggers (V9).
pub fn staff_counts(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<StaffCounts> {
    conn.prepare_cached("SELECT total, active FROM staff_counts WHERE enterprise_account_id = ?1")?
        .query_row([enterprise], |row| {
            Ok(StaffCounts {
                total: row.get(0)?,
                active: row.get(1)?,
            })
        })
        .optional()
        .map(|counts| {
            counts.unwrap_or(StaffCounts {
                total: 0,
                active: 0,
            })
        })
}

/// The fields an import changes on a person; `None` leaves a field as it is.
#[derive(Debug, Clone)]
pub struct UserChanges {
    pub id: UserId,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<Role>,
    pub store_id: Option<Option<StoreId>>,
    pub manager_id: Option<Option<UserId>>,
    pub external_id: Option<Option<String>>,
    /// Deactivating stamps `deactivated_at`; reactivating clears it.
    pub active: Option<bool>,
    /// Ends the person's sessions (token_version).
    pub end_sessions: bool,
}

impl UserChanges {
    pub fn deactivation(id: UserId) -> Self {
        UserChanges {
            id,
            email: None,
            name: None,
            role: None,
            store_id: None,
            manager_id: None,
            external_id: None,
            active: Some(false),
            end_sessions: false,
        }
    }
}

/// Writes the changed fields only: an UPDATE naming a column rewrites every
/// index holding it, so a name change must not touch the email, store,
/// manager and external-id indexes. One statement per combination of fields,
/// each prepared once.
pub fn update_fields(
    conn: &Connection,
    enterprise: EnterpriseId,
    changes: &UserChanges,
    sync_mode: RecordSyncMode,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let now = ts(now);
    let mut sql = String::from("UPDATE users SET sync_mode = ?3, updated_at = ?4");
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&enterprise, &changes.id, &sync_mode, &now];
    let fields: [(&str, Option<&dyn rusqlite::ToSql>); 7] = [
        ("email", changes.email.as_ref().map(|v| v as _)),
        ("name", changes.name.as_ref().map(|v| v as _)),
        ("role", changes.role.as_ref().map(|v| v as _)),
        ("store_id", changes.store_id.as_ref().map(|v| v as _)),
        ("manager_id", changes.manager_id.as_ref().map(|v| v as _)),
        ("external_id", changes.external_id.as_ref().map(|v| v as _)),
        ("active", changes.active.as_ref().map(|v| v as _)),
    ];
    for (column, value) in fields {
        if let Some(value) = value {
            values.push(value);
            sql.push_str(&format!(", {column} = ?{}", values.len()));
        }
    }
    if changes.active.is_some() {
        sql.push_str(&format!(
            ", deactivated_at = CASE WHEN ?{} THEN NULL ELSE ?4 END",
            values.len()
        ));
    }
    if changes.end_sessions {
        sql.push_str(", token_version = token_version + 1");
    }
    sql.push_str(" WHERE enterprise_account_id = ?1 AND id = ?2");
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// Who of the enterprise has `email`, if anyone.
pub fn with_email(
    conn: &Connection,
    enterprise: EnterpriseId,
    email: &str,
) -> rusqlite::Result<Option<UserId>> {
    conn.prepare_cached("SELECT id FROM users WHERE enterprise_account_id = ?1 AND email = ?2")?
        .query_row(params![enterprise, email], |row| row.get(0))
        .optional()
}

/// An enterprise's IT administrators, and whether each has set a password.
pub fn admins(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Vec<(User, bool)>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, password_hash IS NOT NULL FROM users
          WHERE enterprise_account_id = ?1 AND role = 'it_admin'
          ORDER BY created_at, id"
    ))?;
    let rows = statement.query_map([enterprise], |row| Ok((from_row(row)?, row.get(13)?)))?;
    rows.collect()
}

/// Active IT administrators who can sign in (a password set), but `except`.
pub fn admins_who_can_sign_in(
    conn: &Connection,
    enterprise: EnterpriseId,
    except: UserId,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT count(*) FROM users
          WHERE enterprise_account_id = ?1 AND role = 'it_admin' AND active = 1
            AND password_hash IS NOT NULL AND id <> ?2",
    )?
    .query_row(params![enterprise, except], |row| row.get(0))
}

/// Deactivates (every session ended) or reactivates a person.
pub fn set_active(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: UserId,
    active: bool,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let now = ts(now);
    if active {
        conn.prepare_cached(
            "UPDATE users SET active = 1, deactivated_at = NULL, updated_at = ?3
              WHERE enterprise_account_id = ?1 AND id = ?2",
        )?
        .execute(params![enterprise, id, now])?;
    } else {
        conn.prepare_cached(
            "UPDATE users SET active = 0, deactivated_at = ?3, updated_at = ?3,
                              token_version = token_version + 1
              WHERE enterprise_account_id = ?1 AND id = ?2",
        )?
        .execute(params![enterprise, id, now])?;
    }
    Ok(())
}

/// The emails of an enterprise's active IT admins: the default alert recipients.
pub fn admin_emails(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare_cached(
        "SELECT email FROM users
          WHERE enterprise_account_id = ?1 AND role = 'it_admin' AND active = 1
          ORDER BY created_at",
    )?;
    let rows = statement.query_map([enterprise], |row| row.get(0))?;
    rows.collect()
}
