-- A new alert kind: the appliance's disk running low (disk_low), raised to
-- every enterprise before SQLite hits the wall. SQLite cannot change a CHECK
-- constraint in place: the table is rebuilt with its rows.
CREATE TABLE alerts_rebuilt (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    id                      TEXT NOT NULL UNIQUE,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    kind                    TEXT NOT NULL CHECK (kind IN ('sync_failed', 'sync_partial', 'file_held', 'sync_stale', 'disk_low')),
    -- The run, file or last successful run the alert is about.
    subject_id              TEXT,
    recipients              INTEGER NOT NULL,
    suppressed              INTEGER NOT NULL DEFAULT 0 CHECK (suppressed IN (0, 1)),
    raised_at               TEXT NOT NULL
);
INSERT INTO alerts_rebuilt (seq, id, enterprise_account_id, kind, subject_id, recipients, suppressed, raised_at)
    SELECT seq, id, enterprise_account_id, kind, subject_id, recipients, suppressed, raised_at FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_rebuilt RENAME TO alerts;
CREATE INDEX alerts_enterprise ON alerts (enterprise_account_id, raised_at);
