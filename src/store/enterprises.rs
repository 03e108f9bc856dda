use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{parse_ts, ts};
use crate::domain::{Enterprise, EnterpriseId, EnterpriseSyncMode};

pub struct NewEnterprise<'a> {
    pub id: EnterpriseId,
    pub company_name: &'a str,
    pub company_email: &'a str,
    pub sync_mode: EnterpriseSyncMode,
    pub seats_purchased: i64,
    pub now: DateTime<Utc>,
}

pub fn insert(conn: &Connection, new: &NewEnterprise<'_>) -> rusqlite::Result<()> {
    let now = ts(new.now);
    conn.prepare_cached(
        "INSERT INTO enterprise_accounts
           (id, company_name, company_email, sync_mode, scim_enabled, seats_purchased, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        new.id,
        new.company_name,
        new.company_email,
        new.sync_mode,
        new.sync_mode == EnterpriseSyncMode::Scim,
        new.seats_purchased,
        now
    ])?;
    Ok(())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Enterprise> {
    let created: String = row.get("created_at")?;
    let updated: String = row.get("updated_at")?;
    Ok(Enterprise {
        id: row.get("id")?,
        company_name: row.get("company_name")?,
        company_email: row.get("company_email")?,
        sync_mode: row.get("sync_mode")?,
        scim_enabled: row.get("scim_enabled")?,
        seats_purchased: row.get("seats_purchased")?,
        rate_limit_per_key_per_minute: row.get("rate_limit_per_key_per_minute")?,
        rate_limit_per_enterprise_per_minute: row.get("rate_limit_per_enterprise_per_minute")?,
        rate_limit_scim_per_minute: row.get("rate_limit_scim_per_minute")?,
        time_zone: row.get("time_zone")?,
        created_at: parse_ts(&created).unwrap_or_default(),
        updated_at: parse_ts(&updated).unwrap_or_default(),
    })
}

pub fn get(conn: &Connection, id: EnterpriseId) -> rusqlite::Result<Option<Enterprise>> {
    conn.prepare_cached("SELECT * FROM enterprise_accounts WHERE id = ?1")?
        .query_row([id], from_row)
        .optional()
}

/// An enterprise's request limits, per minute (`None` = appliance default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimits {
    pub per_key: Option<u32>,
    pub per_enterprise: Option<u32>,
    pub scim: Option<u32>,
}

impl RateLimits {
    pub fn of(enterprise: &Enterprise) -> RateLimits {
        RateLimits {
            per_key: enterprise.rate_limit_per_key_per_minute,
            per_enterprise: enterprise.rate_limit_per_enterprise_per_minute,
            scim: enterprise.rate_limit_scim_per_minute,
        }
    }
}

/// Changes the enterprise's request limits.
pub fn set_rate_limits(
    conn: &Connection,
    id: EnterpriseId,
    limits: RateLimits,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE enterprise_accounts
                SET rate_limit_per_key_per_minute = ?2,
                    rate_limit_per_enterprise_per_minute = ?3,
                    rate_limit_scim_per_minute = ?4,
                    updated_at = ?5
              WHERE id = ?1",
        )?
        .execute(params![
            id,
            limits.per_key,
            limits.per_enterprise,
            limits.scim,
            ts(now)
        ])?;
    Ok(changed == 1)
}

/// What an IT admin may change of their enterprise.
pub struct Profile<'a> {
    pub company_name: &'a str,
    pub company_email: &'a str,
    pub sync_mode: EnterpriseSyncMode,
    pub time_zone: &'a str,
}

pub fn update_profile(
    conn: &Connection,
    id: EnterpriseId,
    profile: &Profile<'_>,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE enterprise_accounts
                SET company_name = ?2, company_email = ?3, sync_mode = ?4,
                    scim_enabled = ?5, time_zone = ?6, updated_at = ?7
              WHERE id = ?1",
        )?
        .execute(params![
            id,
            profile.company_name,
            profile.company_email,
            profile.sync_mode,
            profile.sync_mode == EnterpriseSyncMode::Scim,
            profile.time_zone,
            ts(now)
        ])?;
    Ok(changed == 1)
}

pub fn set_seats(
    conn: &Connection,
    id: EnterpriseId,
    seats: i64,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE enterprise_accounts SET seats_purchased = ?2, updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![id, seats, ts(now)])?;
    Ok(changed == 1)
}

/// The seats bought and the seat alert last raised (0 none, 1 at 90 %, 2
/// full): what the check after every write needs, without the whole account.
pub fn seats(conn: &Connection, id: EnterpriseId) -> rusqlite::Result<Option<(i64, i64)>> {
    conn.prepare_cached(
        "SELECT seats_purchased, seat_alert_level FROM enterprise_accounts WHERE id = ?1",
    )?
    .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
    .optional()
}

pub fn set_seat_alert_level(
    conn: &Connection,
    id: EnterpriseId,
    level: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE enterprise_accounts SET seat_alert_level = ?2 WHERE id = ?1")?
        .execute(params![id, level])?;
    Ok(())
}

/// Whether any enterprise is registered yet.
pub fn any(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM enterprise_accounts)")?
        .query_row([], |row| row.get(0))
}

pub fn all_ids(conn: &Connection) -> rusqlite::Result<Vec<EnterpriseId>> {
    let mut statement = conn.prepare_cached("SELECT id FROM enterprise_accounts ORDER BY id")?;
    let rows = statement.query_map([], |row| row.get(0))?;
    rows.collect()
}
