use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{parse_ts, ts};
use crate::domain::{ApiKeyId, EnterpriseId, Scope, ScopeSet, UserId};

pub struct NewApiKey<'a> {
    pub id: ApiKeyId,
    pub enterprise_account_id: EnterpriseId,
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a [u8],
    pub scopes: &'a [Scope],
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

fn scopes_json(scopes: &[Scope]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

fn scopes_from_json(text: &str) -> Vec<Scope> {
    // An unknown scope in the database (written by a newer version) grants nothing.
    serde_json::from_str::<Vec<serde_json::Value>>(text)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
        .collect()
}

pub fn insert(conn: &Connection, new: &NewApiKey<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO api_keys (id, enterprise_account_id, name, prefix, secret_hash, scopes,
                               created_at, created_by, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        new.id,
        new.enterprise_account_id,
        new.name,
        new.prefix,
        new.secret_hash,
        scopes_json(new.scopes),
        ts(new.created_at),
        new.created_by,
        new.expires_at.map(ts)
    ])?;
    Ok(())
}

/// What authenticating a key needs.
#[derive(Debug, Clone)]
pub struct KeyCredential {
    pub id: ApiKeyId,
    pub enterprise_account_id: EnterpriseId,
    pub secret_hash: Vec<u8>,
    pub scopes: ScopeSet,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub rate_limit_per_key_per_minute: Option<u32>,
    pub rate_limit_per_enterprise_per_minute: Option<u32>,
    pub rate_limit_scim_per_minute: Option<u32>,
}

pub fn find_credential(conn: &Connection, prefix: &str) -> rusqlite::Result<Option<KeyCredential>> {
    conn.prepare_cached(
        "SELECT k.id, k.enterprise_account_id, k.secret_hash, k.scopes, k.expires_at, k.revoked_at,
                e.rate_limit_per_key_per_minute, e.rate_limit_per_enterprise_per_minute,
                e.rate_limit_scim_per_minute
           FROM api_keys k JOIN enterprise_accounts e ON e.id = k.enterprise_account_id
          WHERE k.prefix = ?1",
    )?
    .query_row([prefix], |row| {
        let scopes: String = row.get(3)?;
        let expires: Option<String> = row.get(4)?;
        let revoked: Option<String> = row.get(5)?;
        Ok(KeyCredential {
            id: row.get(0)?,
            enterprise_account_id: row.get(1)?,
            secret_hash: row.get(2)?,
            scopes: scopes_from_json(&scopes).into_iter().collect(),
            expires_at: expires.as_deref().and_then(parse_ts),
            revoked_at: revoked.as_deref().and_then(parse_ts),
            rate_limit_per_key_per_minute: row.get(6)?,
            rate_limit_per_enterprise_per_minute: row.get(7)?,
            rate_limit_scim_per_minute: row.get(8)?,
        })
    })
    .optional()
}

/// A key as its owners see it: never the secret or its hash.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub request_count: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, prefix, scopes, last_used_at, last_used_ip, request_count,
                       created_at, created_by, expires_at, revoked_at";

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    let opt_ts = |name: &str| -> rusqlite::Result<Option<DateTime<Utc>>> {
        let text: Option<String> = row.get(name)?;
        Ok(text.as_deref().and_then(parse_ts))
    };
    let scopes: String = row.get("scopes")?;
    Ok(ApiKeyRecord {
        id: row.get("id")?,
        name: row.get("name")?,
        prefix: row.get("prefix")?,
        scopes: scopes_from_json(&scopes),
        last_used_at: opt_ts("last_used_at")?,
        last_used_ip: row.get("last_used_ip")?,
        request_count: row.get("request_count")?,
        created_at: opt_ts("created_at")?.unwrap_or_default(),
        created_by: row.get("created_by")?,
        expires_at: opt_ts("expires_at")?,
        revoked_at: opt_ts("revoked_at")?,
    })
}

pub fn list(conn: &Connection, enterprise: EnterpriseId) -> rusqlite::Result<Vec<ApiKeyRecord>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE enterprise_account_id = ?1 ORDER BY created_at DESC, id DESC"
    ))?;
    let rows = statement.query_map([enterprise], record_from_row)?;
    rows.collect()
}

pub fn get(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: ApiKeyId,
) -> rusqlite::Result<Option<ApiKeyRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE enterprise_account_id = ?1 AND id = ?2"
    ))?
    .query_row(params![enterprise, id], record_from_row)
    .optional()
}

/// Revokes a key of `enterprise`; returns its prefix, or `None` when the key does
/// not exist there. Revoking twice keeps the first revocation time.
pub fn revoke(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: ApiKeyId,
    by: UserId,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3), revoked_by = COALESCE(revoked_by, ?4)
          WHERE enterprise_account_id = ?1 AND id = ?2
         RETURNING prefix",
    )?
    .query_row(params![enterprise, id, ts(now), by], |row| row.get(0))
    .optional()
}

/// Folds usage counted in memory into the table.
pub fn add_usage(
    conn: &Connection,
    id: ApiKeyId,
    requests: u64,
    last_used_at: DateTime<Utc>,
    last_used_ip: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE api_keys
            SET request_count = request_count + ?2,
                last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ?3 THEN ?3 ELSE last_used_at END,
                last_used_ip = COALESCE(?4, last_used_ip)
          WHERE id = ?1",
    )?
    .execute(params![id, i64::try_from(requests).unwrap_or(i64::MAX), ts(last_used_at), last_used_ip])?;
    Ok(())
}

/// The enterprise's keys holding the scim scope: how many can still be used
/// at `now`, and the last recorded use of any of them.
pub fn scim_keys(
    conn: &Connection,
    enterprise: EnterpriseId,
    now: DateTime<Utc>,
) -> rusqlite::Result<(i64, Option<String>)> {
    conn.prepare_cached(
        "SELECT coalesce(sum(revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)), 0),
                max(last_used_at)
           FROM api_keys
          WHERE enterprise_account_id = ?1
            AND EXISTS (SELECT 1 FROM json_each(scopes) WHERE value = 'scim')",
    )?
    .query_row(params![enterprise, ts(now)], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
}
