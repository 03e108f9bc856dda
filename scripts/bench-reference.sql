-- The reference every import benchmark compares with (issue 19): what a user
-- would load the same rows into by hand. A plain table with the users'
-- columns and only its two unique indexes, WAL, synchronous=FULL; not the
-- service's schema, whose extra indexes and triggers would slow the reference
-- down and flatter the ratio.
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE users (id TEXT NOT NULL, enterprise_account_id TEXT NOT NULL, email TEXT NOT NULL,
  name TEXT NOT NULL, role TEXT NOT NULL, store_id TEXT, manager_id TEXT, external_id TEXT,
  sync_mode TEXT NOT NULL, active INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE UNIQUE INDEX users_enterprise_external_id ON users (enterprise_account_id, external_id);
CREATE UNIQUE INDEX users_enterprise_email ON users (enterprise_account_id, email);
