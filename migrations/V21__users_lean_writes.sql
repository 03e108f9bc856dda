-- The users table, rebuilt for what every import writes.
--  * CHECK (x IN ('a', 'b', …)) costs SQLite a lookup in a list built for
--    each row written: the table's three checks took 0.07–0.17 s of an
--    INSERT of 100,000 new people that took 0.40–0.57 s (SQLite 3.54). The
--    same checks written with OR cost nothing measurable.
--  * The composite foreign key keeping a manager in their person's
--    enterprise made an import quadratic when a row named a manager written
--    after it (an export sorted by name): while that reference waited, SQLite
--    looked for the people naming each person inserted, through an index of
--    the whole enterprise (20,000 new people, 2,000 of them naming a manager
--    five rows on: 10.6 s). An index on exactly its columns, partial like
--    V20's users_manager which it replaces, makes each look one probe (0.26 s).
-- Rows, keys and the other indexes and triggers are as they were.
CREATE TABLE users_rebuilt (
    id                      TEXT PRIMARY KEY NOT NULL,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    -- Normalised (trimmed, lower-case), unique per enterprise.
    email                   TEXT NOT NULL,
    name                    TEXT NOT NULL,
    role                    TEXT NOT NULL
        CHECK (role = 'it_admin' OR role = 'manager' OR role = 'seller'),
    store_id                TEXT,
    manager_id              TEXT,
    external_id             TEXT,
    sync_mode               TEXT NOT NULL
        CHECK (sync_mode = 'api_sync' OR sync_mode = 'scim_sync' OR sync_mode = 'file_sync' OR sync_mode = 'manual'),
    active                  INTEGER NOT NULL DEFAULT 1 CHECK (active = 0 OR active = 1),
    -- argon2id PHC string; NULL until the invitation is accepted.
    password_hash           TEXT,
    -- Bumped on password change, role change or deactivation: access tokens
    -- carrying an older value stop working at once.
    token_version           INTEGER NOT NULL DEFAULT 0,
    failed_login_count      INTEGER NOT NULL DEFAULT 0,
    locked_until            TEXT,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    deactivated_at          TEXT,
    user_name               TEXT,
    scim_attributes         TEXT,
    scim_deleted_at         TEXT,
    UNIQUE (enterprise_account_id, id),
    FOREIGN KEY (enterprise_account_id, store_id) REFERENCES stores (enterprise_account_id, id)
        DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (enterprise_account_id, manager_id) REFERENCES users (enterprise_account_id, id)
        DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO users_rebuilt (id, enterprise_account_id, email, name, role, store_id, manager_id,
                           external_id, sync_mode, active, password_hash, token_version,
                           failed_login_count, locked_until, created_at, updated_at,
                           deactivated_at, user_name, scim_attributes, scim_deleted_at)
    SELECT id, enterprise_account_id, email, name, role, store_id, manager_id,
           external_id, sync_mode, active, password_hash, token_version,
           failed_login_count, locked_until, created_at, updated_at,
           deactivated_at, user_name, scim_attributes, scim_deleted_at
      FROM users ORDER BY rowid;
-- The migration runner turns foreign keys off around the migrations (SQLite's
-- way to rebuild a table others reference) and checks them all afterwards.
DROP TABLE users;
ALTER TABLE users_rebuilt RENAME TO users;

CREATE UNIQUE INDEX users_enterprise_email ON users (enterprise_account_id, email);
CREATE UNIQUE INDEX users_enterprise_external_id ON users (enterprise_account_id, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX users_store ON users (store_id) WHERE store_id IS NOT NULL;
CREATE INDEX users_enterprise_manager ON users (enterprise_account_id, manager_id)
    WHERE manager_id IS NOT NULL;
CREATE UNIQUE INDEX users_enterprise_user_name
    ON users (enterprise_account_id, user_name COLLATE NOCASE)
    WHERE user_name IS NOT NULL AND scim_deleted_at IS NULL;
CREATE INDEX users_enterprise_tombstones ON users (enterprise_account_id)
    WHERE scim_deleted_at IS NOT NULL;

CREATE TRIGGER staff_counts_delete AFTER DELETE ON users WHEN OLD.role <> 'it_admin'
BEGIN
    UPDATE staff_counts SET total = total - 1, active = active - OLD.active
     WHERE enterprise_account_id = OLD.enterprise_account_id;
END;
CREATE TRIGGER staff_counts_update AFTER UPDATE OF role, active, enterprise_account_id ON users
WHEN OLD.role IS NOT NEW.role OR OLD.active IS NOT NEW.active
     OR OLD.enterprise_account_id IS NOT NEW.enterprise_account_id
BEGIN
    UPDATE staff_counts
       SET total = total - (OLD.role <> 'it_admin'),
           active = active - (OLD.role <> 'it_admin' AND OLD.active)
     WHERE enterprise_account_id = OLD.enterprise_account_id;
    UPDATE staff_counts
       SET total = total + (NEW.role <> 'it_admin'),
           active = active + (NEW.role <> 'it_admin' AND NEW.active)
     WHERE enterprise_account_id = NEW.enterprise_account_id;
END;
