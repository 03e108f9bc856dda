-- The whole data model of the product spec (MISSION.md, "Data").
-- Conventions: ids are UUID text (v7, so they sort by creation time); times are
-- RFC 3339 UTC text with millisecond precision ("2026-11-26T10:00:00.000Z"), which
-- sorts lexicographically; booleans are 0/1 integers; JSON columns are text.
-- Every business row carries enterprise_account_id, and references between rows
-- are composite foreign keys that include it, so the schema itself refuses to link
-- a user to another enterprise's store or manager.

CREATE TABLE enterprise_accounts (
    id                      TEXT PRIMARY KEY NOT NULL,
    company_name            TEXT NOT NULL,
    company_email           TEXT NOT NULL,
    sync_mode               TEXT NOT NULL CHECK (sync_mode IN ('api', 'scim', 'file')),
    scim_enabled            INTEGER NOT NULL DEFAULT 0 CHECK (scim_enabled IN (0, 1)),
    scim_settings           TEXT NOT NULL DEFAULT '{}',
    billing_type            TEXT,
    stripe_customer_id      TEXT,
    stripe_subscription_id  TEXT,
    -- seats_used is never stored: it is counted from active non-admin users.
    seats_purchased         INTEGER NOT NULL DEFAULT 0 CHECK (seats_purchased >= 0),
    -- NULL means "use the appliance default from the configuration".
    rate_limit_per_key_per_minute        INTEGER CHECK (rate_limit_per_key_per_minute > 0),
    rate_limit_per_enterprise_per_minute INTEGER CHECK (rate_limit_per_enterprise_per_minute > 0),
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);

CREATE TABLE stores (
    id                      TEXT PRIMARY KEY NOT NULL,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    name                    TEXT NOT NULL,
    location                TEXT,
    address                 TEXT,
    phone                   TEXT,
    external_id             TEXT,
    sync_mode               TEXT NOT NULL CHECK (sync_mode IN ('api_sync', 'scim_sync', 'file_sync', 'manual')),
    -- Enterprise stores are managed by the enterprise, never by a single "gérant".
    gerant_id               TEXT CHECK (gerant_id IS NULL),
    active                  INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    deactivated_at          TEXT,
    UNIQUE (enterprise_account_id, id)
);
CREATE UNIQUE INDEX stores_enterprise_external_id ON stores (enterprise_account_id, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX stores_enterprise_name ON stores (enterprise_account_id, name);

CREATE TABLE users (
    id                      TEXT PRIMARY KEY NOT NULL,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    -- Normalised (trimmed, lower-case). Login is by email alone, so an email names
    -- one person across the whole appliance; that also makes it unique per enterprise.
    email                   TEXT NOT NULL,
    name                    TEXT NOT NULL,
    role                    TEXT NOT NULL CHECK (role IN ('it_admin', 'manager', 'seller')),
    store_id                TEXT,
    manager_id              TEXT,
    external_id             TEXT,
    sync_mode               TEXT NOT NULL CHECK (sync_mode IN ('api_sync', 'scim_sync', 'file_sync', 'manual')),
    active                  INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
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
    UNIQUE (enterprise_account_id, id),
    FOREIGN KEY (enterprise_account_id, store_id) REFERENCES stores (enterprise_account_id, id)
        DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (enterprise_account_id, manager_id) REFERENCES users (enterprise_account_id, id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE UNIQUE INDEX users_enterprise_external_id ON users (enterprise_account_id, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX users_enterprise_store ON users (enterprise_account_id, store_id);
CREATE INDEX users_enterprise_manager ON users (enterprise_account_id, manager_id);

CREATE TABLE api_keys (
    id                      TEXT PRIMARY KEY NOT NULL,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    name                    TEXT NOT NULL,
    -- Public key id embedded in the key (ent_<prefix><secret><crc>); used for lookup.
    prefix                  TEXT NOT NULL UNIQUE,
    -- HMAC-SHA256(pepper, full key). The pepper lives outside the database.
    secret_hash             BLOB NOT NULL,
    scopes                  TEXT NOT NULL,
    last_used_at            TEXT,
    last_used_ip            TEXT,
    request_count           INTEGER NOT NULL DEFAULT 0,
    created_at              TEXT NOT NULL,
    created_by              TEXT NOT NULL,
    expires_at              TEXT,
    revoked_at              TEXT,
    revoked_by              TEXT
);
CREATE INDEX api_keys_enterprise ON api_keys (enterprise_account_id, created_at);

CREATE TABLE refresh_tokens (
    id                      TEXT PRIMARY KEY NOT NULL,
    -- All tokens obtained from one login share a family; reuse of a rotated
    -- token revokes the whole family.
    family_id               TEXT NOT NULL,
    user_id                 TEXT NOT NULL REFERENCES users(id),
    token_hash              BLOB NOT NULL UNIQUE,
    created_at              TEXT NOT NULL,
    expires_at              TEXT NOT NULL,
    used_at                 TEXT,
    revoked_at              TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE sync_logs (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    id                      TEXT NOT NULL UNIQUE,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    sync_type               TEXT NOT NULL CHECK (sync_type IN ('api', 'scim', 'file')),
    operation               TEXT NOT NULL,
    status                  TEXT NOT NULL CHECK (status IN ('success', 'partial', 'failed')),
    resource_type           TEXT,
    resource_id             TEXT,
    details                 TEXT NOT NULL DEFAULT '{}',
    error_message           TEXT,
    initiated_by            TEXT NOT NULL,
    -- Per-record entries point at the run entry that produced them.
    run_id                  TEXT,
    timestamp               TEXT NOT NULL
);
CREATE INDEX sync_logs_enterprise_seq ON sync_logs (enterprise_account_id, seq);
CREATE INDEX sync_logs_run ON sync_logs (run_id) WHERE run_id IS NOT NULL;

-- Append-only, hash-chained audit trail. enterprise_account_id is NULL for events
-- that belong to no enterprise (a login attempt for an unknown email, say).
CREATE TABLE audit_log (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id                TEXT NOT NULL UNIQUE,
    ts                      TEXT NOT NULL,
    enterprise_account_id   TEXT,
    actor_type              TEXT NOT NULL CHECK (actor_type IN ('anonymous', 'user', 'api_key', 'scim', 'file', 'system')),
    actor_id                TEXT,
    source_ip               TEXT,
    user_agent              TEXT,
    request_id              TEXT,
    action                  TEXT NOT NULL,
    target_type             TEXT,
    target_id               TEXT,
    outcome                 TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    reason_code             TEXT,
    changes                 TEXT,
    prev_hash               TEXT NOT NULL,
    hash                    TEXT NOT NULL
);
CREATE INDEX audit_log_enterprise_seq ON audit_log (enterprise_account_id, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
