-- One-time invitation tokens, stored as SHA-256. Issuing a new one for a person
-- revokes the ones still open.
CREATE TABLE invitations (
    id                      TEXT PRIMARY KEY NOT NULL,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    user_id                 TEXT NOT NULL REFERENCES users(id),
    token_hash              BLOB NOT NULL UNIQUE,
    created_at              TEXT NOT NULL,
    expires_at              TEXT NOT NULL,
    used_at                 TEXT,
    revoked_at              TEXT
);
CREATE INDEX invitations_user ON invitations (user_id);
