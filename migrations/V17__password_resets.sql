-- Forgotten passwords: a one-time, expiring link by email (or printed for the
-- appliance operator) with which a person sets a new password. Tokens are
-- stored as SHA-256; issuing a new one for a person revokes the open ones.
CREATE TABLE password_resets (
    id                      TEXT PRIMARY KEY NOT NULL,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    user_id                 TEXT NOT NULL REFERENCES users(id),
    token_hash              BLOB NOT NULL UNIQUE,
    created_at              TEXT NOT NULL,
    expires_at              TEXT NOT NULL,
    used_at                 TEXT,
    revoked_at              TEXT
);
CREATE INDEX password_resets_user ON password_resets (user_id);

-- The outbox sends the reset emails too (their token is made when the email
-- goes out, like an invitation's). SQLite cannot change a CHECK constraint in
-- place: the table is rebuilt with its rows.
CREATE TABLE email_outbox_rebuilt (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    id                      TEXT NOT NULL UNIQUE,
    enterprise_account_id   TEXT REFERENCES enterprise_accounts(id),
    kind                    TEXT NOT NULL CHECK (kind IN ('invitation', 'alert', 'test', 'password_reset')),
    recipient               TEXT NOT NULL,
    user_id                 TEXT,
    payload                 TEXT NOT NULL DEFAULT '{}',
    created_at              TEXT NOT NULL,
    state                   TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts                INTEGER NOT NULL DEFAULT 0,
    next_attempt_at         TEXT,
    finished_at             TEXT,
    last_error              TEXT
);
INSERT INTO email_outbox_rebuilt (seq, id, enterprise_account_id, kind, recipient, user_id, payload,
                                  created_at, state, attempts, next_attempt_at, finished_at, last_error)
    SELECT seq, id, enterprise_account_id, kind, recipient, user_id, payload,
           created_at, state, attempts, next_attempt_at, finished_at, last_error
      FROM email_outbox;
DROP TABLE email_outbox;
ALTER TABLE email_outbox_rebuilt RENAME TO email_outbox;
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX email_outbox_enterprise ON email_outbox (enterprise_account_id, seq);
