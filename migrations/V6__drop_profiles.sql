-- An enterprise's drop-directory profile as its IT admins set it through the
-- API (JSON, validated by the service); it replaces the config file's profile
-- for that enterprise.
CREATE TABLE drop_profiles (
    enterprise_account_id   TEXT PRIMARY KEY NOT NULL REFERENCES enterprise_accounts(id),
    profile                 TEXT NOT NULL,
    updated_by              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);

-- When the producer last wrote the file (its modification time at the claim),
-- so a full export older than the last applied one is held, not applied.
ALTER TABLE drop_files ADD COLUMN file_modified_at TEXT;
