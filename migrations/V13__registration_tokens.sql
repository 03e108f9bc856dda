-- One-time tokens the operator issues (`enterprise-sync registration-token`) so
-- that one more enterprise can register while registration is closed. Stored
-- as SHA-256; spent by the registration that used it.
CREATE TABLE registration_tokens (
    token_hash              BLOB PRIMARY KEY NOT NULL,
    created_at              TEXT NOT NULL,
    expires_at              TEXT NOT NULL,
    used_at                 TEXT,
    used_by_enterprise      TEXT
);
