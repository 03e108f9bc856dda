//! The staged import's last phases in SQL: each row classified (created,
//! updated, unchanged, reactivated), the totals, the leavers of a full export,
//! the change events, and the writes themselves.

use super::*;
use crate::domain::Role;
use crate::store::users::UserChanges;

/// Records what each valid matched row does — `updated`, `deactivated` or
/// `unchanged` (the others create) — once its manager is known, the last
/// field a change can come from. Reads the staged rows alone.
pub fn classify(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE temp.staged_users SET
             changed = changed | ((o_manager IS NOT n_manager) << 4),
             verb = CASE
                 WHEN (changed | ((o_manager IS NOT n_manager) << 4)) = 0 THEN 'unchanged'
                 WHEN o_active = 1 AND n_active = 0 THEN 'deactivated'
                 ELSE 'updated' END
          WHERE user_id IS NOT NULL AND failed = 0",
    )?
    .execute([])?;
    Ok(())
}

#[derive(Debug, Default, Clone, Copy)]
pub struct VerbTotals {
    pub created: usize,
    pub updated: usize,
    pub deactivated: usize,
    pub unchanged: usize,
}

/// What the valid rows do. Only matched rows can do anything but create, and
/// they are found through the `user_id` index: `valid` (rows without errors)
/// gives the creations without a scan.
pub fn totals(conn: &Connection, valid: usize) -> rusqlite::Result<VerbTotals> {
    let mut statement = conn.prepare_cached(
        "SELECT verb, count(*) FROM temp.staged_users
          WHERE user_id IS NOT NULL AND failed = 0 GROUP BY verb",
    )?;
    let mut totals = VerbTotals::default();
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    let mut matched = 0;
    for entry in rows {
        let (verb, count) = entry?;
        let count = usize::try_from(count).unwrap_or(0);
        matched += count;
        match verb.as_str() {
            "updated" => totals.updated = count,
            "deactivated" => totals.deactivated = count,
            _ => totals.unchanged = count,
        }
    }
    totals.created = valid.saturating_sub(matched);
    Ok(totals)
}

/// Active people of the enterprise no row names (a full export's leavers).
pub fn leaver_count(
    conn: &Connection,
    enterprise: EnterpriseId,
    scope: LeaverScope,
) -> rusqlite::Result<usize> {
    let leavers: i64 = conn.query_row(
        &format!("SELECT count(*) {}", leavers(scope)),
        [enterprise],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(leavers).unwrap_or(0))
}

/// What [`each_change`] read of the staged rows the import writes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StagedWrites {
    /// People to create, and how many of them are active.
    pub created: usize,
    pub created_active: usize,
    /// People to update or deactivate (the leavers aside).
    pub changed: usize,
}

/// Calls `each` with (verb, id, external id) for every change, in row order,
/// then for each leaver when `with_leavers`. Read before applying: it compares
/// with the users as they are. Answers what the staged rows write, counted
/// on the way: [`apply`] needs it, and a pass of its own over a million
/// staged rows costs a tenth of a second.
pub fn each_change(
    conn: &Connection,
    enterprise: EnterpriseId,
    with_leavers: Option<LeaverScope>,
    mut each: impl FnMut(&str, &str, Option<&str>) -> Result<(), crate::AppError>,
) -> Result<StagedWrites, crate::AppError> {
    let mut statement = conn.prepare_cached(
        "SELECT verb, n_id, n_ext, n_active FROM temp.staged_users
          WHERE failed = 0 AND verb IN ('created', 'updated', 'deactivated') ORDER BY row",
    )?;
    let text = |e: rusqlite::types::FromSqlError| crate::AppError::Internal(e.to_string());
    let mut writes = StagedWrites::default();
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let verb = row.get_ref(0)?.as_str().map_err(text)?;
        let id = row.get_ref(1)?.as_str().map_err(text)?;
        let external = row.get_ref(2)?.as_str_or_null().map_err(text)?;
        if verb == "created" {
            writes.created += 1;
            writes.created_active += usize::from(row.get::<_, bool>(3)?);
        } else {
            writes.changed += 1;
        }
        each(verb, id, external)?;
    }
    if let Some(scope) = with_leavers {
        let mut statement = conn.prepare_cached(&format!(
            "SELECT u.id, u.external_id {} ORDER BY u.id",
            leavers(scope)
        ))?;
        let mut rows = statement.query([enterprise])?;
        while let Some(row) = rows.next()? {
            let id = row.get_ref(0)?.as_str().map_err(text)?;
            let external = row.get_ref(1)?.as_str_or_null().map_err(text)?;
            each("deactivated", id, external)?;
        }
    }
    Ok(writes)
}

/// Fewer new users than this never rebuild the users' indexes.
const REBUILD_INDEXES_FROM: usize = 10_000;
/// From this many new users on, a helper thread sorts their index keys
/// beside the writer (fewer sort in one buffer, in memory).
const SORT_HELPER_FROM: usize = 250_000;

/// Calls `each` with (id, email) of every active user the import created, in
/// row order (after [`apply`]).
pub fn each_created_active(
    conn: &Connection,
    mut each: impl FnMut(&str, &str) -> Result<(), crate::AppError>,
) -> Result<(), crate::AppError> {
    let mut statement = conn.prepare_cached(
        "SELECT n_id, n_email FROM temp.staged_users
          WHERE failed = 0 AND verb = 'created' AND n_active = 1 ORDER BY row",
    )?;
    let text = |e: rusqlite::types::FromSqlError| crate::AppError::Internal(e.to_string());
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let id = row.get_ref(0)?.as_str().map_err(text)?;
        let email = row.get_ref(1)?.as_str().map_err(text)?;
        each(id, email)?;
    }
    Ok(())
}

/// What the created people write into the users' indexes: which keys come
/// in strictly increasing order, and whether any row names a manager.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexedKeys {
    pub emails_ascending: bool,
    pub external_ids_ascending: bool,
    pub managers_named: bool,
}

/// `OR FAIL`: a failing row ends the statement without undoing its earlier
/// rows, which the import's rollback undoes. With no row able to abort it
/// (every foreign key of users is checked at the commit, V22), SQLite keeps
/// no statement journal for it: a million new people wrote 446 MB there.
const INSERT_CREATED: &str =
    "INSERT OR FAIL INTO users (id, enterprise_account_id, email, name, role, store_id, manager_id, external_id,
                        sync_mode, active, created_at, updated_at, deactivated_at, user_name,
                        scim_attributes)
     SELECT n_id, ?1, n_email, n_name, n_role, n_store, n_manager, n_ext, ?2, n_active, ?3, ?3,
            CASE WHEN n_active = 0 THEN ?3 END, n_user_name, n_scim_attributes
       FROM temp.staged_users
      WHERE failed = 0 AND verb = 'created' AND row BETWEEN ?4 AND ?5 ORDER BY row";

/// Staged rows a created-users INSERT takes at a time while indexes are being
/// rebuilt: some 1,000 of the cache's 8,000 pages.
const INSERT_ROWS_PER_STEP: i64 = 8_192;

/// Inserts the created users in row order. When `schema_changed` (indexes
/// dropped for a rebuild), in steps with a read of the schema between them:
/// the drop changed a page of the schema that the rebuild changes again, and
/// a page this transaction writes to the WAL twice makes SQLite rewrite, at
/// the commit, the checksum of every WAL frame written after its first one
/// (each one read back and written again: a third of a million-row file's
/// commit). Read between steps, the schema's pages stay the most recently
/// used dirty pages, which the cache spills last, so their first write comes
/// during the rebuild instead of at the start of the insert.
fn insert_created(
    conn: &Connection,
    (enterprise, sync_mode, now): (EnterpriseId, RecordSyncMode, &str),
    schema_changed: bool,
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(INSERT_CREATED)?;
    if !schema_changed {
        insert.execute(params![enterprise, sync_mode, now, 0, i64::MAX])?;
        return Ok(());
    }
    let last: i64 = conn.query_row(
        "SELECT coalesce(max(row), 0) FROM temp.staged_users",
        [],
        |r| r.get(0),
    )?;
    let mut first = 0;
    while first <= last {
        let until = first.saturating_add(INSERT_ROWS_PER_STEP - 1);
        insert.execute(params![enterprise, sync_mode, now, first, until])?;
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })?;
        first = until.saturating_add(1);
    }
    Ok(())
}

/// Writes the plan: new users in row order, changed users, and (a full
/// export) the leavers deactivated. Losing access or a role ends sessions.
/// `writes` are what [`each_change`] counted. `step` is told as each part
/// ends (`leavers`, `insert`, `indexes`, `updates`), for the run's timings.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    conn: &Connection,
    enterprise: EnterpriseId,
    sync_mode: RecordSyncMode,
    with_leavers: Option<LeaverScope>,
    writes: StagedWrites,
    keys: IndexedKeys,
    now_at: chrono::DateTime<chrono::Utc>,
    step: &mut dyn FnMut(&'static str),
) -> rusqlite::Result<()> {
    let now = ts(now_at);
    // Leavers first: the users about to be created are named by no row's
    // user_id and must not count among them.
    if let Some(scope) = with_leavers {
        conn.prepare_cached(&format!(
            "UPDATE users SET active = 0, deactivated_at = ?2, updated_at = ?2, sync_mode = ?3,
                              token_version = token_version + 1
              WHERE id IN (SELECT u.id {})",
            leavers(scope)
        ))?
        .execute(params![enterprise, now, sync_mode])?;
        step("leavers");
    }
    // Inserting more rows than the table holds: building the secondary
    // indexes afterwards, from sorted keys, beats updating them row by row (in
    // the transaction: readers see the indexes as before until it commits) —
    // except an index whose keys arrive in order (an HR export sorted by
    // personnel number), which is only appended to, and a partial index the
    // new people have no entry in (SCIM's userName and tombstones), which a
    // rebuild would cost a scan of the table for nothing. The managers' index
    // always stays: while a row names a manager written after it, SQLite's
    // foreign-key check looks for the people naming each person inserted,
    // and without it scans the table for each (quadratic).
    let kept = |name: &str| match name {
        "users_enterprise_email" => keys.emails_ascending,
        "users_enterprise_external_id" => keys.external_ids_ascending,
        "users_enterprise_manager"
        | "users_enterprise_user_name"
        | "users_enterprise_tombstones" => true,
        _ => false,
    };
    // Counting the users costs a scan: only an import this large may beat them.
    let outnumbers = |creating: usize| -> rusqlite::Result<bool> {
        let existing: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        Ok(int(creating) > existing)
    };
    let creating = writes.created;
    let rebuilt = if creating >= REBUILD_INDEXES_FROM && outnumbers(creating)? {
        let mut statement = conn.prepare(
            "SELECT name, sql FROM sqlite_master
              WHERE type = 'index' AND tbl_name = 'users' AND sql IS NOT NULL",
        )?;
        let indexes = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .filter(|index| !index.as_ref().is_ok_and(|(name, _)| kept(name)))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (name, _) in &indexes {
            conn.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
        }
        indexes
    } else {
        Vec::new()
    };
    if creating > 0 {
        insert_created(conn, (enterprise, sync_mode, &now), !rebuilt.is_empty())?;
        // The kept staff counts (V9): imports never create IT admins.
        crate::store::users::add_to_staff_counts(
            conn,
            enterprise,
            int(creating),
            int(writes.created_active),
        )?;
        step("insert");
    }
    if !rebuilt.is_empty() {
        // A sort's buffers are as large as the page cache: with the cache at
        // its size, the service would hold it twice and more during the build.
        // (A body's rows keep their widened cache unless a helper sorts too:
        // one buffer, holding no more than their keys.)
        let build = || {
            rebuilt
                .iter()
                .try_for_each(|(_, sql)| conn.execute_batch(sql))
        };
        if creating >= SORT_HELPER_FROM {
            with_page_cache(conn, SHARED_INDEX_BUILD_CACHE, || {
                with_sort_helper(conn, build)
            })?;
        } else {
            with_index_build_cache(conn, INDEX_BUILD_CACHE, build)?;
        }
        step("indexes");
    }
    if writes.changed > 0 {
        update_changed(conn, enterprise, sync_mode, now_at)?;
        step("updates");
    }
    Ok(())
}

/// Writes each changed person's changed fields only: an UPDATE naming a
/// column rewrites every index holding it, so a name change must not touch
/// the email, store, manager and external-id indexes. In the order of our
/// ids, time-ordered like the table's storage: 10,000 changes among a
/// million people then walk the table and its id index forwards instead of
/// reading a random page each.
fn update_changed(
    conn: &Connection,
    enterprise: EnterpriseId,
    sync_mode: RecordSyncMode,
    now: chrono::DateTime<chrono::Utc>,
) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(
        "SELECT n_id, changed, n_email, n_name, n_role, n_store, n_manager, n_ext, n_active, verb
           FROM temp.staged_users
          WHERE failed = 0 AND verb IN ('updated', 'deactivated') ORDER BY n_id",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let changed: i64 = row.get(1)?;
        let has = |bit: u8| changed & (1 << bit) != 0;
        let role: Option<Role> = if has(2) { Some(row.get(4)?) } else { None };
        let changes = UserChanges {
            id: row.get(0)?,
            email: if has(0) { row.get(2)? } else { None },
            name: if has(1) { row.get(3)? } else { None },
            role,
            store_id: if has(3) { Some(row.get(5)?) } else { None },
            manager_id: if has(4) { Some(row.get(6)?) } else { None },
            external_id: if has(5) { Some(row.get(7)?) } else { None },
            active: if has(6) { Some(row.get(8)?) } else { None },
            // Losing access or changing role ends the person's sessions.
            end_sessions: row.get_ref(9)?.as_str() == Ok("deactivated") || role.is_some(),
        };
        crate::store::users::update_fields(conn, enterprise, &changes, sync_mode, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACME: &str = "019ac0de-7a11-7000-8000-0000000000e1";
    const BETA: &str = "019ac0de-7a11-7000-8000-0000000000e2";

    /// Acme with a store, Beta with a manager of its own.
    fn seeded() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("apply.db")).expect("open");
        crate::store::migrations::run(&mut conn).expect("migrate");
        conn.execute_batch(&format!(
            "INSERT INTO enterprise_accounts (id, company_name, company_email, sync_mode, created_at, updated_at)
                  VALUES ('{ACME}', 'Acme', 'it@acme.example', 'api', 't', 't'),
                         ('{BETA}', 'Beta', 'it@beta.example', 'api', 't', 't');
             INSERT INTO stores (id, enterprise_account_id, name, sync_mode, created_at, updated_at)
                  VALUES ('s1', '{ACME}', 'Lyon', 'manual', 't', 't');
             INSERT INTO users (id, enterprise_account_id, email, name, role, sync_mode, created_at, updated_at)
                  VALUES ('beta-manager', '{BETA}', 'm@beta.example', 'M', 'manager', 'manual', 't', 't');"
        ))
        .expect("seed");
        create(&conn, true).expect("staging");
        (dir, conn)
    }

    /// Stages `count` people to create in Acme, naming the managers `manager` gives.
    fn stage_created(conn: &Connection, count: usize, manager: impl Fn(usize) -> Option<String>) {
        let mut statement = conn
            .prepare(
                "INSERT INTO temp.staged_users (row, n_id, n_email, n_name, n_role, n_store, n_ext, n_active, n_manager)
                 VALUES (?1, ?2, ?3, ?4, 'seller', 's1', ?5, 1, ?6)",
            )
            .expect("prepare");
        for row in 0..count {
            statement
                .execute(params![
                    i64::try_from(row).expect("row"),
                    format!("p{row:06}"),
                    format!("p{row}@acme.example"),
                    format!("P {row}"),
                    format!("E{row}"),
                    manager(row)
                ])
                .expect("stage");
        }
    }

    fn apply_created(conn: &Connection, count: usize) -> rusqlite::Result<()> {
        apply_created_in(conn, ACME, count)
    }

    fn apply_created_in(conn: &Connection, enterprise: &str, count: usize) -> rusqlite::Result<()> {
        let keys = IndexedKeys {
            managers_named: true,
            ..IndexedKeys::default()
        };
        let enterprise: EnterpriseId = enterprise.parse().expect("id");
        apply(
            conn,
            enterprise,
            RecordSyncMode::ApiSync,
            None,
            StagedWrites {
                created: count,
                created_active: count,
                changed: 0,
            },
            keys,
            chrono::Utc::now(),
            &mut |_| {},
        )
    }

    #[test]
    fn people_naming_managers_written_after_them_cost_linear_work() {
        let (_dir, conn) = seeded();
        // Enough rows for the indexes to be rebuilt; every tenth names the
        // person five rows on as their manager, who may come in the insert's
        // next step: the check waits for the commit, as in every import.
        let count = 20_000;
        stage_created(&conn, count, |row| {
            (row % 10 == 0).then(|| format!("p{:06}", row + 5))
        });
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        apply_created(&conn, count).expect("apply");
        conn.execute_batch("COMMIT").expect("commit");
        let named: i64 = conn
            .query_row(
                "SELECT count(*) FROM users
                  WHERE manager_id IS NOT NULL AND manager_id = printf('p%06d', CAST(substr(id, 2) AS INTEGER) + 5)",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(named, 2_000);
        // SQLite's check of a deferred foreign key looks for the people
        // naming each person inserted while a reference waits; through an
        // index that is a step or two each, through the table (or an index
        // of the whole enterprise) it is every row each time.
        let steps = conn
            .prepare_cached(INSERT_CREATED)
            .expect("cached")
            .get_status(rusqlite::StatementStatus::VmStep);
        let per_row = steps / i32::try_from(count).expect("count");
        assert!(per_row < 500, "{per_row} virtual machine steps per row");
    }

    #[test]
    fn people_inserted_in_steps_beside_a_rebuild_are_each_there_once_in_row_order() {
        let (_dir, conn) = seeded();
        // Enough rows for a rebuild, and for the insert to take three steps.
        let count = usize::try_from(INSERT_ROWS_PER_STEP * 2 + 5).expect("count");
        stage_created(&conn, count, |_| None);
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        apply_created(&conn, count).expect("apply");
        conn.execute_batch("COMMIT").expect("commit");
        let (people, out_of_order): (i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT (SELECT count(DISTINCT id) FROM users WHERE enterprise_account_id = '{ACME}'),
                            (SELECT count(*) FROM users a JOIN users b ON b.rowid = a.rowid + 1
                              WHERE a.enterprise_account_id = '{ACME}' AND b.id < a.id)"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("count");
        assert_eq!(
            (people, out_of_order),
            (i64::try_from(count).expect("count"), 0)
        );
    }

    #[test]
    fn a_person_of_an_enterprise_that_does_not_exist_is_refused_at_the_commit() {
        let (_dir, conn) = seeded();
        stage_created(&conn, 3, |_| None);
        let nowhere = "019ac0de-7a11-7000-8000-0000000000e9";
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        // Checked at the commit (V22), so the insert that may stop at no row
        // needs no statement journal; refused all the same.
        apply_created_in(&conn, nowhere, 3).expect("the insert itself stops at nothing");
        let refused = conn.execute_batch("COMMIT").expect_err("refused");
        assert!(refused.to_string().contains("FOREIGN KEY"), "{refused}");
        conn.execute_batch("ROLLBACK").expect("rollback");
        let people: i64 = conn
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .expect("count");
        assert_eq!(people, 1, "Beta's manager alone");
    }

    #[test]
    fn a_created_person_cannot_name_a_manager_of_another_enterprise() {
        let (_dir, conn) = seeded();
        stage_created(&conn, 2, |row| {
            (row == 1).then(|| "beta-manager".to_string())
        });
        let refused = apply_created(&conn, 2).expect_err("refused");
        assert!(refused.to_string().contains("FOREIGN KEY"), "{refused}");
    }
}
