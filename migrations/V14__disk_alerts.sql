-- New alert kinds: the appliance's disk running low (disk_low), raised to
-- every enterprise before SQLite hits the wall, and an enterprise's seats
-- 90 % used (seats_high) or all used (seats_full). SQLite cannot change a
-- CHECK constraint in place: the table is rebuilt with its rows.
CREATE TABLE alerts_rebuilt (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    id                      TEXT NOT NULL UNIQUE,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    kind                    TEXT NOT NULL CHECK (kind IN ('sync_failed', 'sync_partial', 'file_held', 'sync_stale', 'disk_low', 'seats_high', 'seats_full')),
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

-- The seat level an enterprise was last alerted at (0 under 90 %, 1 at 90 %,
-- 2 full): one alert per crossing, again only after use fell back below.
ALTER TABLE enterprise_accounts ADD COLUMN seat_alert_level INTEGER NOT NULL DEFAULT 0;
