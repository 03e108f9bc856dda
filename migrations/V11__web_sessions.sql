-- Dashboard sessions: the cookie holds a random id, stored here as SHA-256.
-- A session carries its CSRF token and the person's token_version when it
-- started, so a password change or deactivation ends it as it ends API tokens.
CREATE TABLE web_sessions (
    id_hash                 BLOB PRIMARY KEY NOT NULL,
    user_id                 TEXT NOT NULL REFERENCES users(id),
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    csrf_token              TEXT NOT NULL,
    token_version           INTEGER NOT NULL,
    created_at              TEXT NOT NULL,
    expires_at              TEXT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
