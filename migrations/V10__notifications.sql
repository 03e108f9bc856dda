-- Notifications: signed webhooks fed from the import transaction, alert and
-- invitation emails from a persistent outbox, and each enterprise's settings
-- for them.

-- One row per enterprise that changed a default.
CREATE TABLE notification_settings (
    enterprise_account_id   TEXT PRIMARY KEY NOT NULL REFERENCES enterprise_accounts(id),
    -- Language of the emails sent to the enterprise's people and admins.
    language                TEXT NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en')),
    -- JSON array of addresses; NULL means the enterprise's active IT admins.
    alert_recipients        TEXT,
    alert_on_partial        INTEGER NOT NULL DEFAULT 0 CHECK (alert_on_partial IN (0, 1)),
    -- Alert when no sync succeeded for this many hours; NULL: never.
    stale_after_hours       INTEGER CHECK (stale_after_hours > 0),
    -- JSON array of CIDR networks webhooks may reach although the SSRF guard
    -- refuses them (an on-premise receiver on a private address).
    webhook_allowed_networks TEXT NOT NULL DEFAULT '[]',
    updated_at              TEXT NOT NULL
);

CREATE TABLE webhook_endpoints (
    id                      TEXT PRIMARY KEY NOT NULL,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    url                     TEXT NOT NULL,
    description             TEXT NOT NULL DEFAULT '',
    -- JSON array of the event types subscribed to.
    events                  TEXT NOT NULL,
    -- The signing secret, sealed (AES-256-GCM, nonce first) under a key
    -- derived from the pepper, which lives outside the database: a stolen
    -- database or backup alone cannot sign.
    secret_sealed           BLOB NOT NULL,
    created_at              TEXT NOT NULL,
    created_by              TEXT NOT NULL,
    -- Set on 410 Gone or when the retry window ran out without a success.
    disabled_at             TEXT,
    disabled_reason         TEXT,
    -- Last 2xx answer, to tell a dead endpoint from a message it refuses.
    last_success_at         TEXT
);
CREATE INDEX webhook_endpoints_enterprise ON webhook_endpoints (enterprise_account_id, created_at);

-- The webhook outbox: one message per endpoint and event, written in the
-- transaction that caused it. A message of record changes names its change
-- batch and is built from it at delivery (the same bytes every time); run and
-- file events carry their data.
CREATE TABLE webhook_messages (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The `webhook-id` header: the same on every retry.
    id                      TEXT NOT NULL UNIQUE,
    endpoint_id             TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    event_type              TEXT NOT NULL,
    batch_seq               INTEGER,
    data                    TEXT,
    created_at              TEXT NOT NULL,
    state                   TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts                INTEGER NOT NULL DEFAULT 0,
    next_attempt_at         TEXT,
    finished_at             TEXT,
    CHECK ((batch_seq IS NULL) <> (data IS NULL))
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_messages_endpoint ON webhook_messages (endpoint_id, seq);

-- One row per delivery attempt.
CREATE TABLE webhook_attempts (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    message_seq             INTEGER NOT NULL REFERENCES webhook_messages(seq) ON DELETE CASCADE,
    endpoint_id             TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    attempt                 INTEGER NOT NULL CHECK (attempt > 0),
    started_at              TEXT NOT NULL,
    duration_ms             INTEGER NOT NULL,
    -- NULL when no answer came (connection refused, timeout, address refused).
    status_code             INTEGER,
    error                   TEXT,
    -- The first KiB of the answer, as text.
    response_snippet        TEXT,
    -- When the next attempt is due; NULL after the last.
    next_attempt_at         TEXT
);
CREATE INDEX webhook_attempts_message ON webhook_attempts (message_seq, attempt);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, seq);

-- Alerts raised (one per incident), and whether their emails were held back
-- by the per-enterprise hourly cap.
CREATE TABLE alerts (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    id                      TEXT NOT NULL UNIQUE,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    kind                    TEXT NOT NULL CHECK (kind IN ('sync_failed', 'sync_partial', 'file_held', 'sync_stale')),
    -- The run, file or last successful run the alert is about.
    subject_id              TEXT,
    recipients              INTEGER NOT NULL,
    suppressed              INTEGER NOT NULL DEFAULT 0 CHECK (suppressed IN (0, 1)),
    raised_at               TEXT NOT NULL
);
CREATE INDEX alerts_enterprise ON alerts (enterprise_account_id, raised_at);

-- The email outbox. Invitation emails are rendered when sent, with a token
-- issued then: no clear token is ever stored.
CREATE TABLE email_outbox (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    id                      TEXT NOT NULL UNIQUE,
    -- NULL for the operator's test email.
    enterprise_account_id   TEXT REFERENCES enterprise_accounts(id),
    kind                    TEXT NOT NULL CHECK (kind IN ('invitation', 'alert', 'test')),
    recipient               TEXT NOT NULL,
    -- Invitations: the person invited.
    user_id                 TEXT,
    -- Alerts: what the email says, as facts rendered at sending.
    payload                 TEXT NOT NULL DEFAULT '{}',
    created_at              TEXT NOT NULL,
    state                   TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts                INTEGER NOT NULL DEFAULT 0,
    next_attempt_at         TEXT,
    finished_at             TEXT,
    last_error              TEXT
);
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX email_outbox_enterprise ON email_outbox (enterprise_account_id, seq);
