use rusqlite::{params, Connection, OptionalExtension, Row};

use super::list_query::ListQuery;
use super::parse_ts;
use crate::domain::{EnterpriseId, Store, StoreId};

pub(crate) const COLUMNS: &str =
    "id, enterprise_account_id, name, location, address, phone, external_id,
                       sync_mode, gerant_id, active, created_at, updated_at, deactivated_at";

/// Reads the columns of `COLUMNS`, by position.
pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Store> {
    let created: String = row.get(10)?;
    let updated: String = row.get(11)?;
    let deactivated: Option<String> = row.get(12)?;
    Ok(Store {
        id: row.get(0)?,
        enterprise_account_id: row.get(1)?,
        name: row.get(2)?,
        location: row.get(3)?,
        address: row.get(4)?,
        phone: row.get(5)?,
        external_id: row.get(6)?,
        sync_mode: row.get(7)?,
        gerant_id: row.get(8)?,
        active: row.get(9)?,
        created_at: parse_ts(&created).unwrap_or_default(),
        updated_at: parse_ts(&updated).unwrap_or_default(),
        deactivated_at: deactivated.as_deref().and_then(parse_ts),
    })
}

pub fn get(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: StoreId,
) -> rusqlite::Result<Option<Store>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM stores WHERE enterprise_account_id = ?1 AND id = ?2"
    ))?
    .query_row(params![enterprise, id], from_row)
    .optional()
}

#[derive(Debug, Default, Clone)]
pub struct StoreFilter {
    pub active: Option<bool>,
    pub external_id: Option<String>,
    /// Part of the name, location or external id, any case.
    pub search: Option<String>,
}

pub fn list(
    conn: &Connection,
    enterprise: EnterpriseId,
    filter: &StoreFilter,
    after: Option<StoreId>,
    limit: usize,
) -> rusqlite::Result<Vec<Store>> {
    ListQuery::new(&format!("SELECT {COLUMNS} FROM stores"), enterprise)
        .equals("active", filter.active)
        .equals("external_id", filter.external_id.clone())
        .compare_opt(
            "instr(lower(name || ' ' || coalesce(location, '') || ' ' || coalesce(external_id, '')), ?) > 0",
            filter.search.as_ref().map(|s| s.to_lowercase()),
        )
        .compare_opt("id > ?", after.map(|a| a.to_string()))
        .fetch(conn, "id", limit, from_row)
}

pub fn count(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COUNT(*) FROM stores WHERE enterprise_account_id = ?1")?
        .query_row([enterprise], |row| row.get(0))
}

pub struct NewStore<'a> {
    pub id: StoreId,
    pub enterprise_account_id: EnterpriseId,
    pub name: &'a str,
    pub location: Option<&'a str>,
    pub address: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub sync_mode: crate::domain::RecordSyncMode,
    pub now: chrono::DateTime<chrono::Utc>,
}

pub fn insert(conn: &Connection, new: &NewStore<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO stores (id, enterprise_account_id, name, location, address, phone, external_id,
                             sync_mode, active, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9)",
    )?
    .execute(params![
        new.id,
        new.enterprise_account_id,
        new.name,
        new.location,
        new.address,
        new.phone,
        new.external_id,
        new.sync_mode,
        super::ts(new.now)
    ])?;
    Ok(())
}

/// Every store of an enterprise, for matching an import against.
pub fn all_for_enterprise(
    conn: &Connection,
    enterprise: EnterpriseId,
) -> rusqlite::Result<Vec<Store>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM stores WHERE enterprise_account_id = ?1"
    ))?;
    let rows = statement.query_map([enterprise], from_row)?;
    rows.collect()
}

/// The enterprise's stores a row's reference could name: the one with that
/// id and the one with that external id (which wins is the import's rule).
pub fn named_by(
    conn: &Connection,
    enterprise: EnterpriseId,
    reference: &str,
) -> rusqlite::Result<Vec<Store>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM stores
          WHERE enterprise_account_id = ?1 AND (id = ?2 OR external_id = ?2)"
    ))?;
    let rows = statement.query_map(params![enterprise, reference], from_row)?;
    rows.collect()
}

/// Writes the mutable fields of `store` back.
pub fn update(conn: &Connection, store: &Store) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE stores SET name = ?3, location = ?4, address = ?5, phone = ?6, external_id = ?7,
                           sync_mode = ?8, active = ?9, updated_at = ?10, deactivated_at = ?11
          WHERE enterprise_account_id = ?1 AND id = ?2",
    )?
    .execute(params![
        store.enterprise_account_id,
        store.id,
        store.name,
        store.location,
        store.address,
        store.phone,
        store.external_id,
        store.sync_mode,
        store.active,
        super::ts(store.updated_at),
        store.deactivated_at.map(super::ts)
    ])?;
    Ok(())
}
