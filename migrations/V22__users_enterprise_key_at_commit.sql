-- The users table, rebuilt with its enterprise's foreign key checked at the
-- commit, as its store's and manager's are. A statement that writes many
-- rows and may stop halfway (there: an immediate foreign key's violation)
-- makes SQLite keep a statement journal, and a page that existed when the
-- statement began is copied into it before the statement first spills it to
-- the WAL. An import inserts its new people in steps of 8,192 rows (so that
-- a schema page it changes stays in the page cache), and the pages one step
-- fills reach the WAL during the next ones: a million new people wrote
-- 446 MB into that journal (108,000 pages, strace; the insert took
-- 2.34–2.41 s, without the journal 2.06–2.07 s, same file, same runs).
-- The insert stops at no row now (its other checks FAIL rather than ABORT;
-- any failure rolls the whole import back), so nothing is journaled. A user
-- naming an enterprise that does not exist is still refused, at the commit.
-- Rows, keys, the other constraints, indexes and triggers are as V21 left them.
CREATE TABLE users_rebuilt (
    id                      TEXT PRIMARY KEY NOT NULL,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id)
        DEFERRABLE INITIALLY DEFERRED,
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
