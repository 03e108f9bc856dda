//! What signing in reads and writes of a person: the login records of an
//! email, failures and lockouts, password hashes, and the token version that
//! ends sessions.

use super::*;

/// What login needs to know about a person, secret included.
pub struct LoginRecord {
    pub user: User,
    /// The enterprise's name: a person with one email in several enterprises
    /// chooses by it.
    pub company_name: String,
    pub password_hash: Option<String>,
    pub token_version: i64,
    pub failed_login_count: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

/// Most accounts one email may open, whatever the appliance holds: bounds the
/// work of a sign-in.
pub const MAX_LOGINS_PER_EMAIL: usize = 32;

/// The accounts `email` names: one per enterprise at most (emails are unique
/// within an enterprise), found with one probe of the (enterprise, email)
/// index per enterprise, or only in `enterprise` when the person named it.
pub fn find_logins_by_email(
    conn: &Connection,
    email: &str,
    enterprise: Option<EnterpriseId>,
) -> rusqlite::Result<Vec<LoginRecord>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {QUALIFIED_COLUMNS}, e.company_name, u.password_hash, u.token_version,
                u.failed_login_count, u.locked_until
           FROM enterprise_accounts e
           -- CROSS JOIN keeps the enterprises outside: a probe of the
           -- (enterprise, email) index each, never a scan of the people.
           CROSS JOIN users u ON u.enterprise_account_id = e.id AND u.email = ?1
          WHERE ?2 IS NULL OR e.id = ?2
          ORDER BY e.created_at, e.id
          LIMIT {MAX_LOGINS_PER_EMAIL}"
    ))?;
    let rows = statement.query_map(params![email, enterprise], login_record)?;
    rows.collect()
}

/// The login record of one person of an enterprise.
pub fn find_login(
    conn: &Connection,
    enterprise: EnterpriseId,
    id: UserId,
) -> rusqlite::Result<Option<LoginRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {QUALIFIED_COLUMNS}, e.company_name, u.password_hash, u.token_version,
                u.failed_login_count, u.locked_until
           FROM users u JOIN enterprise_accounts e ON e.id = u.enterprise_account_id
          WHERE u.enterprise_account_id = ?1 AND u.id = ?2"
    ))?
    .query_row(params![enterprise, id], login_record)
    .optional()
}

pub(super) fn login_record(row: &Row<'_>) -> rusqlite::Result<LoginRecord> {
    let locked: Option<String> = row.get("locked_until")?;
    Ok(LoginRecord {
        user: from_row(row)?,
        company_name: row.get("company_name")?,
        password_hash: row.get("password_hash")?,
        token_version: row.get("token_version")?,
        failed_login_count: row.get("failed_login_count")?,
        locked_until: locked.as_deref().and_then(parse_ts),
    })
}

/// Fields checked on every JWT-authenticated request.
pub struct SessionState {
    pub enterprise_account_id: EnterpriseId,
    pub role: Role,
    pub token_version: i64,
    pub active: bool,
}

pub fn session_state(conn: &Connection, id: UserId) -> rusqlite::Result<Option<SessionState>> {
    conn.prepare_cached(
        "SELECT enterprise_account_id, role, token_version, active FROM users WHERE id = ?1",
    )?
    .query_row([id], |row| {
        Ok(SessionState {
            enterprise_account_id: row.get(0)?,
            role: row.get(1)?,
            token_version: row.get(2)?,
            active: row.get(3)?,
        })
    })
    .optional()
}

pub fn record_login_failure(
    conn: &Connection,
    id: UserId,
    failed_count: u32,
    locked_until: Option<DateTime<Utc>>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE users SET failed_login_count = ?2, locked_until = ?3 WHERE id = ?1",
    )?
    .execute(params![id, failed_count, locked_until.map(ts)])?;
    Ok(())
}

pub fn record_login_success(conn: &Connection, id: UserId) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE users SET failed_login_count = 0, locked_until = NULL
          WHERE id = ?1 AND (failed_login_count <> 0 OR locked_until IS NOT NULL)",
    )?
    .execute([id])?;
    Ok(())
}

pub fn replace_password_hash(conn: &Connection, id: UserId, hash: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?
        .execute(params![id, hash])?;
    Ok(())
}

/// Ends every session of the person (their token version moves on).
pub fn end_sessions(conn: &Connection, id: UserId, now: DateTime<Utc>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE users SET token_version = token_version + 1, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, ts(now)])?;
    Ok(())
}

/// Sets the first password (invitation accepted) and ends any older sessions.
pub fn set_password(
    conn: &Connection,
    id: UserId,
    hash: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE users SET password_hash = ?2, token_version = token_version + 1, failed_login_count = 0,
                          locked_until = NULL, updated_at = ?3
          WHERE id = ?1",
    )?
    .execute(params![id, hash, ts(now)])?;
    Ok(())
}

/// The token version a person's sessions must carry.
pub fn token_version(conn: &Connection, id: UserId) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT token_version FROM users WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
}

/// Whether the person has set a password yet.
pub fn has_password(conn: &Connection, id: UserId) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT password_hash IS NOT NULL FROM users WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
}
