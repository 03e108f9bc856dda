-- What an import changed, recorded in batches instead of one row per record.
--
-- A 100,000-row import used to write 100,000 change events and 100,000 per-record
-- sync-log entries that said the same thing (run, record, verb); together they cost
-- more than the users themselves. A batch holds up to a fixed number of events of
-- one run as a JSON array, is written in the import's transaction (so no event is
-- lost and none outlives a rolled-back import), is what a webhook delivery will
-- send (one request per batch, not one per record), and is what
-- GET /api/enterprise/sync-logs/{id}/changes pages through.
CREATE TABLE change_batches (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    enterprise_account_id   TEXT NOT NULL REFERENCES enterprise_accounts(id),
    -- The sync_logs run entry of the import.
    run_id                  TEXT NOT NULL,
    event_count             INTEGER NOT NULL CHECK (event_count > 0),
    -- [{"type": "user.created", "id": "…", "external_id": "…" | null}, …] in
    -- the order the import applied them.
    events                  TEXT NOT NULL,
    created_at              TEXT NOT NULL
);
CREATE INDEX change_batches_run ON change_batches (run_id, seq);
CREATE INDEX change_batches_enterprise_seq ON change_batches (enterprise_account_id, seq);

-- Earlier events, one batch per run (nothing consumed them yet).
INSERT INTO change_batches (enterprise_account_id, run_id, event_count, events, created_at)
SELECT enterprise_account_id, run_id, COUNT(*),
       json_group_array(json_object('type', event_type, 'id', resource_id,
                                    'external_id', json_extract(payload, '$.external_id'))),
       MIN(created_at)
  FROM (SELECT * FROM change_events ORDER BY seq)
 GROUP BY enterprise_account_id, run_id
 ORDER BY MIN(seq);

DROP TABLE change_events;
