-- Change events written in the same transaction as the import that caused them
-- (the outbox webhooks will consume). One row per created, updated or
-- deactivated record; nothing is written for an unchanged one.
CREATE TABLE change_events (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    id                      TEXT NOT NULL UNIQUE,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    event_type              TEXT NOT NULL,
    resource_type           TEXT NOT NULL CHECK (resource_type IN ('user', 'store')),
    resource_id             TEXT NOT NULL,
    -- The sync_logs run entry of the import.
    run_id                  TEXT NOT NULL,
    payload                 TEXT NOT NULL,
    created_at              TEXT NOT NULL
);
CREATE INDEX change_events_enterprise_seq ON change_events (enterprise_account_id, seq);
