//! Refinery migrations embedded from `migrations/`, run before the listener binds.

use rusqlite::{Connection, OptionalExtension};

use super::StoreError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The newest schema version this binary knows.
pub fn latest_known_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// The schema version recorded in a database.
pub fn applied_version(conn: &Connection) -> Result<i64, StoreError> {
    let has_history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refinery_schema_history')",
        [],
        |row| row.get(0),
    )?;
    if !has_history {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM refinery_schema_history",
        [],
        |row| row.get(0),
    )?)
}

/// Applies pending migrations; refuses a database written by a newer binary.
/// Returns the schema version after the run.
pub fn run(conn: &mut Connection) -> Result<i64, StoreError> {
    let known = latest_known_version();
    let found = applied_version(conn)?;
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    // SQLite rebuilds a table other tables reference (V21) only with foreign
    // keys off, and they cannot be turned off inside a migration's
    // transaction: off around the run, every key checked after it.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .run(conn);
    let checked = match &report {
        Ok(report) if !report.applied_migrations().is_empty() => foreign_keys_hold(conn),
        _ => Ok(()),
    };
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let report = report?;
    checked?;
    for migration in report.applied_migrations() {
        tracing::info!(
            version = migration.version(),
            name = migration.name(),
            "applied migration"
        );
    }
    applied_version(conn)
}

/// Refuses a database whose rows break a foreign key (after migrations that
/// ran with the keys off).
fn foreign_keys_hold(conn: &Connection) -> Result<(), StoreError> {
    // Seconds on a large database: the log says why the start pauses.
    tracing::info!("checking every foreign key after the migrations");
    let broken: Option<(String, i64, String)> = conn
        .query_row("PRAGMA foreign_key_check", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    match broken {
        None => Ok(()),
        Some((table, rowid, parent)) => Err(StoreError::ForeignKeyBroken(format!(
            "after the migrations, row {rowid} of {table} references a missing {parent}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two enterprises, the first with a store (V1's columns).
    const ACME_AND_BETA: &str =
        "INSERT INTO enterprise_accounts (id, company_name, company_email, sync_mode, created_at, updated_at)
              VALUES ('e1', 'Acme', 'it@acme.example', 'api', 't', 't'),
                     ('e2', 'Beta', 'it@beta.example', 'api', 't', 't');
         INSERT INTO stores (id, enterprise_account_id, name, sync_mode, created_at, updated_at)
              VALUES ('s1', 'e1', 'Lyon', 'manual', 't', 't');";

    /// A database migrated up to `version` only, in a directory of its own.
    fn database_at(version: i32) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("at.db")).expect("open");
        embedded::migrations::runner()
            .set_target(refinery::Target::Version(version))
            .run(&mut conn)
            .expect("migrate");
        (dir, conn)
    }

    #[test]
    fn v4_turns_earlier_change_events_into_one_batch_per_run() {
        let (_dir, mut conn) = database_at(3);
        conn.execute_batch(
            "INSERT INTO enterprise_accounts (id, company_name, company_email, sync_mode, created_at, updated_at)
                  VALUES ('e1', 'Acme', 'it@acme.example', 'api', 't', 't');
             INSERT INTO change_events (id, enterprise_account_id, event_type, resource_type, resource_id, run_id, payload, created_at) VALUES
               ('c1', 'e1', 'store.created', 'store', 's1', 'run-a', '{\"external_id\":\"S1\"}', '2026-01-01T00:00:00.000Z'),
               ('c2', 'e1', 'user.created',  'user',  'u1', 'run-b', '{\"external_id\":null}',  '2026-01-02T00:00:00.000Z'),
               ('c3', 'e1', 'user.deactivated', 'user', 'u2', 'run-b', '{\"external_id\":\"E2\"}', '2026-01-02T00:00:00.000Z');
             INSERT INTO sync_logs (id, enterprise_account_id, sync_type, operation, status, initiated_by, run_id, timestamp) VALUES
               ('run-b', 'e1', 'api', 'bulk_user_import', 'success', 'api_key:k', NULL, 't'),
               ('rec-1', 'e1', 'api', 'user_created', 'success', 'api_key:k', 'run-b', 't');",
        )
        .expect("V3 rows");
        run(&mut conn).expect("migrate to the latest");
        let batches: Vec<(String, i64, String)> = conn
            .prepare("SELECT run_id, event_count, events FROM change_batches ORDER BY seq")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .expect("batches");
        assert_eq!(
            batches,
            [
                (
                    "run-a".to_string(),
                    1,
                    r#"[{"type":"store.created","id":"s1","external_id":"S1"}]"#.to_string()
                ),
                (
                    "run-b".to_string(),
                    2,
                    r#"[{"type":"user.created","id":"u1","external_id":null},{"type":"user.deactivated","id":"u2","external_id":"E2"}]"#
                        .to_string()
                ),
            ]
        );
        let old_table: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'change_events')",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert!(!old_table);
        let counts: (i64, i64, i64) = conn
            .query_row(
                "SELECT created_count, updated_count, deactivated_count FROM change_batches WHERE run_id = 'run-b'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("counts");
        assert_eq!(counts, (1, 0, 1));
        let logs: Vec<String> = conn
            .prepare("SELECT id FROM sync_logs")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("logs");
        assert_eq!(
            logs,
            ["run-b"],
            "per-record entries now come from the batches"
        );
    }

    #[test]
    fn v15_keeps_people_and_makes_emails_unique_per_enterprise() {
        let (_dir, mut conn) = database_at(14);
        conn.execute_batch(
            "INSERT INTO enterprise_accounts (id, company_name, company_email, sync_mode, created_at, updated_at) VALUES
               ('e1', 'Acme', 'it@acme.example', 'api', 't', 't'),
               ('e2', 'Beta', 'it@beta.example', 'api', 't', 't');
             INSERT INTO users (id, enterprise_account_id, email, name, role, sync_mode, password_hash, created_at, updated_at) VALUES
               ('u1', 'e1', 'ana@acme.example', 'Ana', 'it_admin', 'manual', '$argon2id$kept', 't', 't'),
               ('u2', 'e1', 'bo@acme.example', 'Bo', 'manager', 'api_sync', NULL, 't', 't');",
        )
        .expect("V14 rows");
        let shared = "INSERT INTO users (id, enterprise_account_id, email, name, role, sync_mode, created_at, updated_at)
                      VALUES (?1, ?2, 'ana@acme.example', 'Ana', 'manager', 'api_sync', 't', 't')";
        assert!(
            conn.execute(shared, ["u3", "e2"]).is_err(),
            "V14: one email per appliance"
        );
        run(&mut conn).expect("migrate to the latest");
        let kept: Vec<(String, String, Option<String>)> = conn
            .prepare("SELECT id, email, password_hash FROM users ORDER BY id")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .expect("users");
        assert_eq!(
            kept,
            [
                (
                    "u1".to_string(),
                    "ana@acme.example".to_string(),
                    Some("$argon2id$kept".to_string())
                ),
                ("u2".to_string(), "bo@acme.example".to_string(), None),
            ]
        );
        conn.execute(shared, ["u3", "e2"])
            .expect("another enterprise may hold the email");
        let again = conn.execute(shared, ["u4", "e1"]);
        assert!(
            again.is_err_and(|e| crate::store::is_unique_violation(&e, "users.email")),
            "one person per email within an enterprise"
        );
    }

    #[test]
    fn v16_names_the_kind_of_every_earlier_run() {
        let (_dir, mut conn) = database_at(15);
        conn.execute_batch(
            "INSERT INTO enterprise_accounts (id, company_name, company_email, sync_mode, created_at, updated_at)
                  VALUES ('e1', 'Acme', 'it@acme.example', 'api', 't', 't');
             INSERT INTO sync_logs (id, enterprise_account_id, sync_type, operation, status, initiated_by, timestamp) VALUES
               ('r1', 'e1', 'api', 'bulk_user_import', 'success', 'k', 't'),
               ('r2', 'e1', 'api', 'bulk_store_import', 'success', 'k', 't'),
               ('r3', 'e1', 'scim', 'scim_user_patch', 'success', 'k', 't'),
               ('r4', 'e1', 'scim', 'scim_group_create', 'success', 'k', 't'),
               ('r5', 'e1', 'file', 'file_import', 'success', 'k', 't'),
               ('r6', 'e1', 'file', 'file_import', 'failed', 'k', 't');
             INSERT INTO drop_files (id, enterprise_account_id, original_name, display_name, stored_name, kind,
                                     size_bytes, state, sync_log_id, received_at) VALUES
               ('f1', 'e1', x'00', 'stores.csv', 'stores.csv', 'stores', 1, 'applied', 'r5', 't');",
        )
        .expect("V15 rows");
        run(&mut conn).expect("migrate to the latest");
        let kinds: Vec<(String, Option<String>)> = conn
            .prepare("SELECT id, resource_type FROM sync_logs ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("runs");
        let kind = |k: &str| Some(k.to_string());
        assert_eq!(
            kinds,
            [
                ("r1".to_string(), kind("user")),
                ("r2".to_string(), kind("store")),
                ("r3".to_string(), kind("user")),
                ("r4".to_string(), kind("store")),
                ("r5".to_string(), kind("store")),
                ("r6".to_string(), None),
            ]
        );
    }

    #[test]
    fn v17_keeps_the_outbox_and_lets_it_hold_password_resets() {
        let (_dir, mut conn) = database_at(16);
        conn.execute_batch(
            "INSERT INTO enterprise_accounts (id, company_name, company_email, sync_mode, created_at, updated_at)
                  VALUES ('e1', 'Acme', 'it@acme.example', 'api', 't', 't');
             INSERT INTO email_outbox (id, enterprise_account_id, kind, recipient, user_id, payload, created_at, state, attempts)
                  VALUES ('m1', 'e1', 'alert', 'it@acme.example', NULL, '{\"kind\":\"sync_stale\"}', 't', 'sent', 1);",
        )
        .expect("V16 rows");
        let reset = "INSERT INTO email_outbox (id, enterprise_account_id, kind, recipient, created_at, state)
                     VALUES ('m2', 'e1', 'password_reset', 'ana@acme.example', 't', 'pending')";
        assert!(conn.execute(reset, []).is_err(), "V16: no such kind");
        run(&mut conn).expect("migrate to the latest");
        let kept: (String, String, i64) = conn
            .query_row(
                "SELECT kind, state, attempts FROM email_outbox WHERE id = 'm1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("kept");
        assert_eq!(kept, ("alert".to_string(), "sent".to_string(), 1));
        conn.execute(reset, []).expect("a password reset email");
    }

    #[test]
    fn v20_finds_people_by_store_and_by_manager_through_indexes_without_the_enterprise() {
        let (_dir, conn) = database_at(20);
        conn.execute_batch(ACME_AND_BETA).expect("enterprises");
        conn.execute_batch(
            "INSERT INTO users (id, enterprise_account_id, email, name, role, store_id, manager_id, sync_mode, created_at, updated_at)
                  VALUES ('m1', 'e1', 'm@acme.example', 'M', 'manager', 's1', NULL, 'manual', 't', 't'),
                         ('u1', 'e1', 'u@acme.example', 'U', 'seller', 's1', 'm1', 'manual', 't', 't');",
        )
        .expect("rows");
        let plan = |sql: &str| -> String {
            conn.query_row(&format!("EXPLAIN QUERY PLAN {sql}"), [], |r| r.get(3))
                .expect("plan")
        };
        let by_store =
            plan("SELECT id FROM users WHERE enterprise_account_id = 'e1' AND store_id = 's1'");
        assert!(by_store.contains("users_store"), "{by_store}");
        let by_manager =
            plan("SELECT id FROM users WHERE enterprise_account_id = 'e1' AND manager_id = 'm1'");
        assert!(by_manager.contains("users_manager"), "{by_manager}");
        // The foreign keys still hold: a store with people cannot go, and a
        // manager must be of the person's own enterprise.
        assert!(conn
            .execute("DELETE FROM stores WHERE id = 's1'", [])
            .is_err());
        let foreign_manager = "INSERT INTO users (id, enterprise_account_id, email, name, role, manager_id, sync_mode, created_at, updated_at)
                               VALUES ('x1', 'e2', 'x@beta.example', 'X', 'seller', 'm1', 'manual', 't', 't')";
        assert!(conn.execute(foreign_manager, []).is_err());
    }

    #[test]
    fn v21_keeps_every_person_key_and_rule() {
        let (_dir, mut conn) = database_at(20);
        conn.execute_batch(ACME_AND_BETA).expect("enterprises");
        conn.execute_batch(
            "INSERT INTO users (id, enterprise_account_id, email, name, role, store_id, manager_id,
                                external_id, sync_mode, created_at, updated_at, user_name)
                  VALUES ('m1', 'e1', 'm@acme.example', 'M', 'manager', 's1', NULL, 'M1', 'scim_sync', 't', 't', 'm'),
                         ('u1', 'e1', 'u@acme.example', 'U', 'seller', 's1', 'm1', 'U1', 'api_sync', 't', 't', NULL),
                         ('b1', 'e2', 'b@beta.example', 'B', 'manager', NULL, NULL, NULL, 'manual', 't', 't', NULL);
             INSERT INTO invitations (id, enterprise_account_id, user_id, token_hash, created_at, expires_at)
                  VALUES ('i1', 'e1', 'u1', x'01', 't', 't');",
        )
        .expect("V20 rows");
        run(&mut conn).expect("migrate to the latest");
        let kept: Vec<(String, Option<String>, Option<String>)> = conn
            .prepare("SELECT id, manager_id, user_name FROM users ORDER BY id")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .expect("users");
        let text = |s: &str| Some(s.to_string());
        assert_eq!(
            kept,
            [
                ("b1".to_string(), None, None),
                ("m1".to_string(), None, text("m")),
                ("u1".to_string(), text("m1"), None),
            ]
        );
        let foreign_keys: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(foreign_keys, 1, "on again after the migrations");
        // Every index and trigger came back, the managers' on the foreign
        // key's own columns.
        let named: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'users' AND name IN
                   ('sqlite_autoindex_users_1', 'sqlite_autoindex_users_2', 'users_enterprise_email',
                    'users_enterprise_external_id', 'users_store', 'users_enterprise_manager',
                    'users_enterprise_user_name', 'users_enterprise_tombstones',
                    'staff_counts_delete', 'staff_counts_update')",
                [],
                |r| r.get(0),
            )
            .expect("schema");
        assert_eq!(named, 10);
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM users WHERE enterprise_account_id = 'e1' AND manager_id = 'm1'",
                [],
                |r| r.get(3),
            )
            .expect("plan");
        assert!(plan.contains("users_enterprise_manager"), "{plan}");
        // (Rows written by hand are not counted at insert: only the change.)
        let active = |conn: &Connection| -> i64 {
            conn.query_row(
                "SELECT active FROM staff_counts WHERE enterprise_account_id = 'e1'",
                [],
                |r| r.get(0),
            )
            .expect("counts")
        };
        let before = active(&conn);
        conn.execute("UPDATE users SET active = 0 WHERE id = 'u1'", [])
            .expect("deactivate");
        assert_eq!(
            active(&conn),
            before - 1,
            "the staff counts' triggers still count"
        );
        // The rules hold: a manager of the person's enterprise, that exists;
        // one email per enterprise; a known role.
        let foreign = conn.execute("UPDATE users SET manager_id = 'b1' WHERE id = 'u1'", []);
        assert!(foreign.is_err(), "a manager of the person's own enterprise");
        let moved = conn.execute(
            "UPDATE users SET enterprise_account_id = 'e2', store_id = NULL WHERE id = 'm1'",
            [],
        );
        assert!(
            moved.is_err(),
            "a manager cannot leave the people they manage behind"
        );
        let missing = "INSERT INTO users (id, enterprise_account_id, email, name, role, manager_id, sync_mode, created_at, updated_at)
                       VALUES ('x1', 'e1', 'x@acme.example', 'X', 'seller', 'nobody', 'manual', 't', 't')";
        assert!(conn.execute(missing, []).is_err(), "a manager who exists");
        let twice = "INSERT INTO users (id, enterprise_account_id, email, name, role, sync_mode, created_at, updated_at)
                     VALUES ('x2', 'e1', 'u@acme.example', 'X', 'seller', 'manual', 't', 't')";
        assert!(conn
            .execute(twice, [])
            .is_err_and(|e| crate::store::is_unique_violation(&e, "users.email")));
        let role = "INSERT INTO users (id, enterprise_account_id, email, name, role, sync_mode, created_at, updated_at)
                    VALUES ('x3', 'e1', 'x3@acme.example', 'X', 'owner', 'manual', 't', 't')";
        assert!(conn.execute(role, []).is_err(), "a known role");
    }
}
