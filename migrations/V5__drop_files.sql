-- Files taken from the drop directory, one row per claimed file. The row that
-- says `applied` is written in the same transaction as the file's import, so a
-- crash leaves a file either applied (recovery only archives it) or not (it is
-- run again): never applied twice.
CREATE TABLE drop_files (
    id                      TEXT PRIMARY KEY NOT NULL,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    -- The name as uploaded (raw bytes: names need not be UTF-8) and a printable form.
    original_name           BLOB NOT NULL,
    display_name            TEXT NOT NULL,
    -- Name inside processing/, archive/, failed/ or held/.
    stored_name             TEXT NOT NULL,
    kind                    TEXT CHECK (kind IN ('users', 'stores')),
    size_bytes              INTEGER NOT NULL,
    sha256                  TEXT,
    encoding                TEXT,
    state                   TEXT NOT NULL CHECK (state IN ('processing', 'applied', 'duplicate', 'failed', 'refused', 'held')),
    -- Why a file failed or was refused, for people.
    reason                  TEXT,
    sync_log_id             TEXT,
    -- Data rows of the file, once read.
    row_count               INTEGER,
    -- A full export: users missing from it are deactivated (within the guard).
    full_export             INTEGER NOT NULL DEFAULT 0 CHECK (full_export IN (0, 1)),
    -- An IT admin's approval of a held file: it then runs past the guard.
    approved_by             TEXT,
    approved_at             TEXT,
    received_at             TEXT NOT NULL,
    finished_at             TEXT
);
CREATE INDEX drop_files_enterprise ON drop_files (enterprise_account_id, received_at);
-- Content already applied for an enterprise is a duplicate, whatever its name.
CREATE INDEX drop_files_applied_content ON drop_files (enterprise_account_id, sha256) WHERE state = 'applied';
